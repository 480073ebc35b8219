"""The inventory report: its summary model (figures, what needs attention, metadata), the HTML page (a Jinja2
template, autoescaped), the Markdown summary, and `export()`, which writes every chosen format once.

Safe by construction, because reports get opened by people in browsers and chats: HTML and Markdown escape every
value; the HTML has no scripts and references nothing outside itself (charts are matplotlib PNGs inlined as data:
URIs), so it opens offline and can be mailed as one file. CSV/XLSX safety and the readers are report_io's.
"""
import base64
import html
import json
import re
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from . import charts as charting, first_message, inventory, report_io, silence
from .atomic import atomic_path
from .exceptions import ValidationError
from .inventory import COLUMNS
from .report_io import FILE_NAMES, iso, plain_value, records

FORMATS = ("csv", "xlsx", "json", "html", "md")
DEFAULT_TITLE = "Address configuration inventory"
TABLE_COLUMNS = tuple(c for c in COLUMNS if c not in ("account", "generated_at"))  # shown once, in the header
# What a reader scans for first, the address (the key, kept in view) leading; then the remaining columns.
_HTML_FRONT = ("address", "friendly_name", "type", "integration", "studio_flow_name", "studio_flow_status",
               "verification", "verification_notes", "auto_creation_enabled", "retry_count", "webhook_url",
               "webhook_method")
HTML_COLUMNS = _HTML_FRONT + tuple(c for c in TABLE_COLUMNS if c not in _HTML_FRONT)


# --- summary figures -----------------------------------------------------------------------------------------

def _counts(series, missing="(none)", order=()):
    """{value: count}, most frequent first; values named in `order` come first, in that order."""
    counts = {str(k): int(v) for k, v in series.astype(object).fillna(missing).value_counts().items()}
    rank = {k: i for i, k in enumerate(order)}
    return dict(sorted(counts.items(), key=lambda kv: rank.get(kv[0], len(rank))))


VERDICTS = ("pass", "warn", "fail", "not verified")


def summarize(df, changes=None):
    """The headline numbers and breakdowns every format shows."""
    if tuple(df.columns) != COLUMNS:
        df = inventory.frame(df)
    studio = df[df["integration"] == "studio"]
    flows = {}
    for sid, name, status in studio[["studio_flow_sid", "studio_flow_name", "studio_flow_status"]].itertuples(
            index=False, name=None):
        key = plain_value(sid) or "(none)"
        entry = flows.setdefault(key, {"sid": plain_value(sid), "name": plain_value(name),
                                       "status": plain_value(status),
                                       "addresses": 0})
        entry["addresses"] += 1
    created = df["date_created"].dropna()
    status = df["studio_flow_status"].astype(object)
    return {
        "total": len(df),
        "messenger": int((df["type"] == "messenger").sum()),
        "auto_creation_enabled": int(df["auto_creation_enabled"].fillna(False).sum()),
        "flows_missing": int((status == "missing").sum()),
        "flows_draft": int((status == "draft").sum()),
        "by_type": _counts(df["type"]),
        "by_integration": _counts(df["integration"]),
        "by_flow": sorted(flows.values(), key=lambda f: (-f["addresses"], f["name"] or "", f["sid"] or "")),
        "verification": _counts(df["verification"], missing="not verified", order=VERDICTS),
        "created_per_month": {k: int(v) for k, v in created.dt.strftime("%Y-%m").value_counts().sort_index().items()},
        "changes": changes.counts if changes is not None else None,
    }


SILENT = silence.CHECK + ":"
NOT_REACHED = first_message.CHECK + ": no conversation from this page among those scanned so far"


def attention(df):
    """[(address, friendly_name, problem)] for addresses that route nothing to Flex, failed verification, went
    silent, or whose first message the state store's capped scan has not reached yet (verification_notes)."""
    rows = []
    notes = df["verification_notes"] if "verification_notes" in df else [None] * len(df)
    for address, name, status, verdict, note in zip(df["address"], df["friendly_name"], df["studio_flow_status"],
                                                    df["verification"], notes):
        note = plain_value(note) or ""
        problems = [text for text, bad in (("verification failed", plain_value(verdict) == "fail"),
                                           ("Studio flow missing", plain_value(status) == "missing"),
                                           ("Studio flow is a draft", plain_value(status) == "draft"),
                                           ("page went silent (see verification_notes)", SILENT in note),
                                           ("first message not reached yet: the scan stopped at its cap, the next "
                                            "run continues", NOT_REACHED in note)) if bad]
        if problems:
            rows.append((plain_value(address), plain_value(name), "; ".join(problems)))
    return rows


def _nothing_needs_attention(df):
    verified = "no verification failed" if df["verification"].notna().any() else "verification was not run"
    return f"No missing or draft Studio flow; {verified}."


def _generated_at(df, meta):
    if meta.get("generated_at"):
        return meta["generated_at"]
    stamps = df["generated_at"].dropna()
    return iso((stamps.max() if len(stamps) else pd.Timestamp.now(tz="UTC").floor("s")).to_pydatetime())


def _compared_with(previous):
    """Where the previous inventory came from and when it was generated, for "changes since last report"."""
    attrs = previous.attrs.get("flexops") or {}
    stamps = inventory.frame(previous)["generated_at"].dropna()
    when = attrs.get("generated_at") or (iso(stamps.max().to_pydatetime()) if len(stamps) else None)
    return {"path": attrs.get("loaded_from"), "generated_at": when}


def _metadata(df, title, metadata, summary, changes=None, previous=None):
    """What collect() recorded (df.attrs), then this report's own facts, then the caller's extras."""
    collected = {k: v for k, v in (df.attrs.get("flexops") or {}).items() if k not in ("changes", "summary")}
    accounts = sorted(set(df["account"].dropna()))
    meta = {**collected, "title": title, "tool": "flexops", "generated_at": _generated_at(df, collected),
            "account": collected.get("account") or (", ".join(accounts) if accounts else None), "rows": len(df),
            "columns": list(COLUMNS), "summary": summary, **(metadata or {})}
    if changes is not None:
        meta["changes"] = {**changes.to_dict(), "previous": _compared_with(previous) if previous is not None else None}
    return json.loads(json.dumps(meta, default=str))


# --- charts --------------------------------------------------------------------------------------------------

def charts(summary, top=12):
    """[(title, data: URI or None)] for the HTML report: the PNGs of `charts.for_summary`, inlined."""
    return [(title, "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else None)
            for title, png in charting.for_summary(summary, top)]


# --- HTML and Markdown -----------------------------------------------------------------------------------------

def _compared_line(meta, changes):
    """'Compared with the report generated <when> (<path>)', and the types compared when only some were."""
    previous = (meta.get("changes") or {}).get("previous") or {}
    text = "Compared with the inventory generated " + (f"{previous['generated_at']} (UTC)"
                                                        if previous.get("generated_at") else "at an unknown time")
    text += f" in {previous['path']}" if previous.get("path") else ""
    if changes.types is not None:
        text += f"; only {', '.join(changes.types) or 'no'} addresses compared (one side listed only those types)"
    return text + "."


def esc(value):
    """A value as page text: None as nothing, datetimes as ISO 8601 UTC, escaped (quotes included)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(iso(value)), quote=True))


# Autoescape on, with Python's html.escape as the escaper (`finalize` runs on every {{ value }}).
_PAGES = jinja2.Environment(loader=jinja2.PackageLoader("flexops", "templates"), autoescape=True, finalize=esc,
                            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                            keep_trailing_newline=False)
_PAGES.filters["esc"] = esc


def _changes(changes, meta):
    """What the "changes since last report" section shows, or None when no previous inventory was given."""
    if changes is None:
        return None
    return {"counts": ", ".join(f"{k}: {v}" for k, v in changes.counts.items()),
            "compared": _compared_line(meta, changes), "brief": CHANGE_BRIEF,
            "added": [[a[k] for k in CHANGE_BRIEF] for a in changes.added],
            "removed": [[r[k] for k in CHANGE_BRIEF] for r in changes.removed],
            "changed": [(c["address"], f, o, n) for c in changes.changed for f, (o, n) in c["fields"].items()]}


CHANGE_BRIEF = ("address", "sid", "type", "friendly_name", "integration")


ACCOUNT_COLUMNS = ("account_name", "account_sid", "status", "addresses", "messenger", "verification_fail",
                   "verification_warn", "flows_draft", "flows_missing", "problem", "remedy")


def _accounts(meta):
    """A fleet report's per-account rows (fleet.account_figures, kept in the metadata), or []."""
    return [[a.get(c) for c in ACCOUNT_COLUMNS] for a in meta.get("accounts") or []]


def render_html(df, title, meta, summary, changes=None):
    """One self-contained page (templates/report.html): no scripts, no links to anything outside it. A fleet's
    report starts with its per-account table and chart."""
    accounts = _accounts(meta)
    columns = HTML_COLUMNS if not accounts else ("address", "account_name", *(c for c in HTML_COLUMNS
                                                                              if c not in ("address", "account_name")))
    cards = [("Address configurations", summary["total"], ""), ("Messenger", summary["messenger"], ""),
             ("Auto-creation enabled", summary["auto_creation_enabled"], ""),
             ("Studio flow missing", summary["flows_missing"], "bad" if summary["flows_missing"] else ""),
             ("Studio flow draft", summary["flows_draft"], "bad" if summary["flows_draft"] else "")]
    cards += [(f"Verification: {k}", v, {"fail": "bad", "warn": "warn"}.get(k, "") if v else "")
              for k, v in summary["verification"].items()]
    chart = charting.accounts_png(meta["accounts"]) if accounts else None
    return _PAGES.get_template("report.html").render(
        title=title, meta=meta, accounts=accounts, account_columns=ACCOUNT_COLUMNS,
        accounts_chart="data:image/png;base64," + base64.b64encode(chart).decode("ascii") if chart else None,
        cards=cards, problems=attention(df), all_clear=_nothing_needs_attention(df),
        charts=charts(summary), flows=[(f["name"], f["status"], f["sid"], f["addresses"]) for f in summary["by_flow"]],
        changes=_changes(changes, meta), columns=columns, rows=[[iso(v) for v in row]
                                                               for row in records(df, columns)])


def write_html(df, path, title, meta, summary, changes=None):
    with atomic_path(path) as tmp:
        tmp.write_text(render_html(df, title, meta, summary, changes), encoding="utf-8")
    return Path(path)


# --- Markdown ------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#<>])")


def md(value):
    """Escape for a Markdown table cell: no markup, no HTML, no line breaks."""
    text = "" if value is None else str(iso(value))
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\r", " ").replace("\n", " "))


def _md_table(header, rows):
    lines = ["| " + " | ".join(md(h) for h in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(md(v) for v in row) + " |" for row in rows]


def _shown(value):
    return "(none)" if value is None else value


def change_rows(changes):
    """[(change, address, detail)]: one line per added, removed or changed address (for Markdown, notebooks)."""
    return ([("added", a["address"], a.get("friendly_name") or "") for a in changes.added]
            + [("removed", r["address"], r.get("friendly_name") or "") for r in changes.removed]
            + [("changed", c["address"], ", ".join(f"{f}: {_shown(o)} → {_shown(n)}"
                                                   for f, (o, n) in c["fields"].items())) for c in changes.changed])


def _more(lines, shown, total):
    return lines + (["", f"… and {total - shown} more (see inventory.html)."] if total > shown else [])


def render_markdown(title, meta, summary, changes=None, limit=50, problems=(), all_clear=""):
    """The summary to paste into a ticket or chat: figures, what needs attention, what changed (`limit` rows)."""
    lines = [f"# {md(title)}", "", f"Generated {md(meta['generated_at'])} (UTC), account {md(meta.get('account'))}.",
             ""]
    if _accounts(meta):
        lines += [f"## Accounts ({len(_accounts(meta))})", ""] + _md_table(ACCOUNT_COLUMNS, _accounts(meta)) + [""]
    lines += _md_table(("Figure", "Value"), [
        ("Address configurations", summary["total"]), ("Messenger addresses", summary["messenger"]),
        ("Auto-creation enabled", summary["auto_creation_enabled"]),
        ("Studio flow missing", summary["flows_missing"]), ("Studio flow draft", summary["flows_draft"])])
    for heading, key in (("By type", "by_type"), ("By integration", "by_integration"),
                         ("Verification", "verification")):
        lines += ["", f"## {heading}", ""] + _md_table(("", "Addresses"), summary[key].items())
    lines += ["", "## By Studio flow", ""] + _md_table(
        ("Flow", "Status", "SID", "Addresses"),
        [(f["name"], f["status"], f["sid"], f["addresses"]) for f in summary["by_flow"]])
    lines += ["", f"## Needs attention ({len(problems)})", ""]
    if problems:
        lines = _more(lines + _md_table(("Address", "Friendly name", "Problem"), problems[:limit]), limit,
                      len(problems))
    else:
        lines.append(md(all_clear))
    lines += ["", "## Changes since last report", ""]
    if changes is None:
        lines.append("No previous inventory was given.")
    else:
        lines += [md(_compared_line(meta, changes)), "",
                  ", ".join(f"{k}: {v}" for k, v in changes.counts.items()) + "."]
        items = change_rows(changes)
        if items:
            lines = _more(lines + [""] + _md_table(("Change", "Address", "Detail"), items[:limit]), limit, len(items))
    return "\n".join(lines) + "\n"


def write_markdown(df, path, title, meta, summary, changes=None):
    with atomic_path(path) as tmp:
        tmp.write_text(render_markdown(title, meta, summary, changes, problems=attention(df),
                                       all_clear=_nothing_needs_attention(df)), encoding="utf-8")
    return Path(path)


WRITERS = {"csv": lambda df, path, **_: report_io.write_csv(df, path),
           "xlsx": lambda df, path, title, meta, summary, **_: report_io.write_xlsx(df, path, title, meta, summary),
           "json": lambda df, path, meta, **_: report_io.write_json(df, path, meta),
           "html": write_html, "md": write_markdown}


# --- export --------------------------------------------------------------------------------------------------

def check_formats(formats):
    """The chosen formats (a list or comma-separated text) as a list, each one of FORMATS."""
    chosen = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats or ())]
    chosen = [f for f in chosen if f]
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ValidationError("formats", f"choose from {', '.join(FORMATS)}", ",".join(bad) if bad else None)
    return list(dict.fromkeys(chosen))


def check_output(out_dir, title):
    """The checked output folder (title checked too): both are known before any API call."""
    if not isinstance(title, str) or not title.strip():
        raise ValidationError("title", "must be a non-empty string", title)
    if out_dir is None or str(out_dir).strip() == "":
        raise ValidationError("out_dir", "a folder is required")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValidationError("out_dir", "exists and is not a folder", str(out))
    return out


def load_previous(previous, parameter="previous"):
    """None, a DataFrame, or a report file / folder (the newest report in it) -> an inventory DataFrame or None.

    Call it while validating inputs, before any API call: errors name `parameter` (e.g. "since").
    """
    if previous is None or isinstance(previous, pd.DataFrame):
        return previous
    try:
        return report_io.load(previous)
    except ValidationError as exc:
        raise ValidationError(parameter, exc.rule, exc.value) from None


def export(df, out_dir, formats=FORMATS, previous=None, title=DEFAULT_TITLE, metadata=None):
    """Write the chosen formats of an inventory into `out_dir`; returns {format: Path}.

    `previous`: an inventory DataFrame, a report file or a run folder: adds "changes since last report".
    `metadata`: extra JSON-able facts for the JSON metadata (never put secrets in it).
    """
    if not isinstance(df, pd.DataFrame):
        raise ValidationError("df", "must be a pandas DataFrame (from inventory.collect or report_io.load)",
                              type(df).__name__)
    chosen, out = check_formats(formats), check_output(out_dir, title)
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError("metadata", "must be a dict or None", type(metadata).__name__)
    previous = load_previous(previous)
    attrs = dict(df.attrs)
    df = inventory.frame(df)
    df.attrs.update(attrs)
    changes = inventory.diff(previous, df) if previous is not None else None
    summary = summarize(df, changes)
    meta = _metadata(df, title, metadata, summary, changes, previous)
    out.mkdir(parents=True, exist_ok=True)
    context = {"title": title, "changes": changes, "meta": meta, "summary": summary}
    return {fmt: WRITERS[fmt](df, out / FILE_NAMES[fmt], **context) for fmt in chosen}
