"""Bar charts of inventory counts, drawn with matplotlib's Agg canvas (no pyplot state, no display needed).

Shared by the HTML report (inlined as data: URIs) and the report runbook (shown as images), so both show the same
pictures.
"""
import functools
import io
import warnings


def _label(text, limit=32):
    text = str(text).replace("\n", " ")
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return text.replace("$", r"\$")  # matplotlib would read $...$ as math


# Tried in order for each glyph (matplotlib >= 3.6 falls back per character); only installed ones are used, so a
# machine with a CJK or Hebrew/Arabic font draws those names instead of boxes. (Agg draws no colour emoji.)
FONT_PREFERENCE = ("DejaVu Sans", "Noto Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans Hebrew",
                   "Noto Sans Arabic", "WenQuanYi Zen Hei", "Droid Sans Fallback", "Arial Unicode MS",
                   "Microsoft YaHei", "PingFang SC", "Hiragino Sans", "Segoe UI", "Segoe UI Symbol")


@functools.lru_cache(maxsize=1)
def _fonts():
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return [name for name in FONT_PREFERENCE if name in installed] or ["sans-serif"]


def bar_png(title, counts, colors=None, horizontal=False):
    """A bar chart of {label: count} as PNG bytes (Agg canvas, no pyplot state), or None when there is nothing."""
    if not counts:
        return None
    from matplotlib import rc_context

    with rc_context({"font.family": _fonts()}):  # text picks its font when created: draw inside the context
        return _draw(title, counts, colors, horizontal)


def _draw(title, counts, colors, horizontal):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels, values = [_label(k) for k in counts], list(counts.values())
    fig = Figure(figsize=(5.4, 0.4 * len(labels) + 1.3 if horizontal else 3.2), dpi=96)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    color = [colors.get(k, "#7f8c8d") for k in counts] if colors else "#2c7fb8"
    positions = range(len(labels))  # positional, so two equal labels stay two bars
    if horizontal:
        bars = ax.barh(list(positions)[::-1], values, color=color)
        ax.set_yticks(list(positions)[::-1], labels)
    else:
        bars = ax.bar(list(positions), values, color=color)
        ax.set_xticks(list(positions), labels, rotation=30 if len(labels) > 4 else 0, ha="right"
                      if len(labels) > 4 else "center")
    ax.bar_label(bars, padding=2)
    if horizontal:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(x=0.12)
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        pad = (max(len(labels), 4) - len(labels)) / 2  # a lone bar stays a bar, not a wall
        ax.set_xlim(-0.5 - pad, len(labels) - 0.5 + pad)
        ax.margins(y=0.12)
    ax.set_title(_label(title, 60))
    ax.spines[["top", "right"]].set_visible(False)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs missing from the bundled font (CJK, emoji) are drawn as boxes
        fig.tight_layout()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


VERDICT_COLORS = {"pass": "#2e7d32", "fail": "#c62828", "warn": "#ef6c00", "not verified": "#9e9e9e"}


def for_summary(summary, top=12):
    """[(title, PNG bytes or None)]: the charts of an inventory summary (`reports.summarize`), for the HTML report
    and the report runbook alike."""
    flows = {}
    for f in summary["by_flow"][:top]:
        flows[f"{f['name'] or f['sid'] or '(none)'} [{f['status'] or '?'}]"] = f["addresses"]
    rest = sum(f["addresses"] for f in summary["by_flow"][top:])
    if rest:
        flows["(other flows)"] = rest
    return [("Addresses by type", bar_png("Addresses by type", summary["by_type"])),
            ("Addresses by integration", bar_png("Addresses by integration", summary["by_integration"])),
            ("Studio-integrated addresses by flow", bar_png("Addresses by Studio flow", flows, horizontal=True)),
            ("Verification", bar_png("Verification", summary["verification"], colors=VERDICT_COLORS)),
            ("Created per month", bar_png("Created per month (UTC)", summary["created_per_month"]))]


def accounts_png(accounts):
    """A fleet's addresses per account, coloured by the account's status (`fleet.account_figures` dicts)."""
    counts, colors = {}, {}
    for figures in accounts:
        label = figures.get("account_name") or figures["account_sid"]
        label = label if label not in counts else f"{label} ({figures['account_sid'][-4:]})"
        counts[label], colors[label] = figures["addresses"], VERDICT_COLORS.get(figures["status"], "#7f8c8d")
    return bar_png("Addresses per account (colour: account status)", counts, colors=colors, horizontal=True)
def data_uri(png):
    """PNG bytes as a data: URI, so a page shows the picture with nothing beside it (None stays None)."""
    import base64

    return "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else None


def lines_png(title, series, ylabel="", ylim=None):
    """A line per label over time, {label: [(datetime, value)]}, as PNG bytes, or None when no point exists."""
    series = {k: sorted(v) for k, v in series.items() if v}
    if not series:
        return None
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    with rc_context({"font.family": _fonts()}):
        fig = Figure(figsize=(6.4, 3.2), dpi=96)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for label, points in series.items():
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3, label=_label(label))
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _finish(fig, ax, title)


def stacked_png(title, columns, colors=None):
    """Stacked bars, {column label: {part: count}} in the given order, as PNG bytes, or None when empty."""
    if not columns:
        return None
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    parts = list(dict.fromkeys(part for counts in columns.values() for part in counts))
    labels = [_label(k) for k in columns]
    with rc_context({"font.family": _fonts()}):
        fig = Figure(figsize=(6.4, 3.2), dpi=96)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        bottom = [0] * len(labels)
        for part in parts:
            values = [counts.get(part, 0) for counts in columns.values()]
            ax.bar(range(len(labels)), values, bottom=bottom, label=_label(part),
                   color=(colors or {}).get(part, None))
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0,
                      ha="right" if len(labels) > 4 else "center")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        pad = (max(len(labels), 4) - len(labels)) / 2
        ax.set_xlim(-0.5 - pad, len(labels) - 0.5 + pad)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _finish(fig, ax, title)


def _finish(fig, ax, title):
    ax.set_title(_label(title, 60))
    ax.spines[["top", "right"]].set_visible(False)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.tight_layout()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()
