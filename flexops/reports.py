"""Exports of an inventory DataFrame: CSV, XLSX, JSON, one self-contained HTML report, a Markdown summary.

Safe by construction, because reports get opened by people in spreadsheets and browsers:
- spreadsheet cells that could start a formula (=, +, -, @, tab, CR; OWASP "CSV injection") get a leading `'`
  in CSV and XLSX, and XLSX stores them as strings; `unprotect_cell` undoes it exactly when a report is reloaded;
- HTML and Markdown escape every value; the HTML has no scripts and references nothing outside itself (charts
  are matplotlib PNGs inlined as data: URIs), so it opens offline and can be mailed as one file;
- CSV is UTF-8 with a BOM (Excel then reads emoji/CJK/RTL correctly); every text field is quoted, and
  page_id is written as the exact digits. Excel still guesses types when it opens a CSV, so for Excel use the
  XLSX, where page_id is a text cell (format "@") and stays 104738392011234, not 1.04E+14.
Files are written to a temporary name and renamed, so a scheduler never picks up half a report.
"""
import base64
import csv
import html
import json
import os
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from . import charts as charting, inventory
from .exceptions import ConfigurationError, ValidationError
from .inventory import COLUMNS, DATE_COLUMNS

FORMATS = ("csv", "xlsx", "json", "html", "md")
FILE_NAMES = {"csv": "inventory.csv", "xlsx": "inventory.xlsx", "json": "inventory.json", "html": "inventory.html",
              "md": "summary.md"}
DEFAULT_TITLE = "Address configuration inventory"
TABLE_COLUMNS = tuple(c for c in COLUMNS if c not in ("account", "generated_at"))  # shown once, in the header
# What a reader scans for first, the address (the key, kept in view) leading; then the remaining columns.
_HTML_FRONT = ("address", "friendly_name", "type", "integration", "studio_flow_name", "studio_flow_status",
               "verification", "auto_creation_enabled", "retry_count", "webhook_url", "webhook_method")
HTML_COLUMNS = _HTML_FRONT + tuple(c for c in TABLE_COLUMNS if c not in _HTML_FRONT)
_FORMULA_START = re.compile(r"'*[=+\-@\t\r]")


# --- cell safety ---------------------------------------------------------------------------------------------

def protect_cell(value):
    """`=1+2` -> `'=1+2` (and `'=x` -> `''=x`, so the quote can be removed again without ambiguity)."""
    if isinstance(value, str) and _FORMULA_START.match(value):
        return "'" + value
    return value


def unprotect_cell(value):
    """The inverse of protect_cell, for reading our own CSV/XLSX back."""
    if isinstance(value, str) and value.startswith("'") and _FORMULA_START.match(value, 1):
        return value[1:]
    return value


def _plain(value):
    """A DataFrame value as a plain Python value (None for any missing marker)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _iso(value):
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else value


def _records(df, columns=COLUMNS):
    """Rows as lists of plain values (datetimes stay datetimes)."""
    for row in df[list(columns)].itertuples(index=False, name=None):
        yield [_plain(v) for v in row]


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
        key = _plain(sid) or "(none)"
        entry = flows.setdefault(key, {"sid": _plain(sid), "name": _plain(name), "status": _plain(status),
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


def attention(df):
    """[(address, friendly_name, problem)] for addresses that route nothing to Flex or failed verification."""
    rows = []
    for address, name, status, verdict in df[["address", "friendly_name", "studio_flow_status",
                                               "verification"]].itertuples(index=False, name=None):
        problems = [text for text, bad in (("verification failed", _plain(verdict) == "fail"),
                                           ("Studio flow missing", _plain(status) == "missing"),
                                           ("Studio flow is a draft", _plain(status) == "draft")) if bad]
        if problems:
            rows.append((_plain(address), _plain(name), "; ".join(problems)))
    return rows


def _nothing_needs_attention(df):
    verified = "no verification failed" if df["verification"].notna().any() else "verification was not run"
    return f"No missing or draft Studio flow; {verified}."


def _generated_at(df, meta):
    if meta.get("generated_at"):
        return meta["generated_at"]
    stamps = df["generated_at"].dropna()
    return _iso((stamps.max() if len(stamps) else pd.Timestamp.now(tz="UTC").floor("s")).to_pydatetime())


def _compared_with(previous):
    """Where the previous inventory came from and when it was generated, for "changes since last report"."""
    attrs = previous.attrs.get("flexops") or {}
    stamps = inventory.frame(previous)["generated_at"].dropna()
    when = attrs.get("generated_at") or (_iso(stamps.max().to_pydatetime()) if len(stamps) else None)
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


# --- file writing --------------------------------------------------------------------------------------------

@contextmanager
def _atomic(path):
    """Write to `path.tmp`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_csv(df, path):
    """UTF-8 with BOM, RFC 4180 (CRLF), text quoted, formula-like text prefixed with `'`, dates ISO 8601 UTC."""
    with _atomic(path) as tmp, open(tmp, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(COLUMNS)
        for row in _records(df):
            writer.writerow([protect_cell(_iso(v)) for v in row])
    return Path(path)


def _xlsx_text(value):
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", protect_cell(value)) if isinstance(value, str) else value


def _widths(df, columns, sample=500):
    """Column widths from the header and a sample of values, clamped to 10..60 characters."""
    head = df.head(sample)
    widths = []
    for column in columns:
        longest = head[column].astype(object).map(lambda v: len(str(_iso(_plain(v)) or ""))).max() if len(head) else 0
        widths.append(min(60, max(10, len(column) + 2, int(longest or 0) + 2)))
    return widths


def _summary_rows(title, meta, summary):
    rows = [("Title", title), ("Generated at (UTC)", meta["generated_at"]), ("Account", meta.get("account")),
            ("Dates in the Inventory sheet", "UTC (Excel cells carry no time zone)"),
            ("Address configurations", summary["total"]), ("Messenger addresses", summary["messenger"]),
            ("Auto-creation enabled", summary["auto_creation_enabled"]),
            ("Addresses whose Studio flow is missing", summary["flows_missing"]),
            ("Addresses whose Studio flow is a draft", summary["flows_draft"]), (None, None)]
    for label, key in (("Type", "by_type"), ("Integration", "by_integration"), ("Verification", "verification"),
                       ("Created in month", "created_per_month")):
        rows.append((label, "Addresses"))
        rows += list(summary[key].items()) or [("(none)", 0)]
        rows.append((None, None))
    rows.append(("Studio flow", "Addresses"))
    rows += [(f"{f['name'] or '(unnamed)'} [{f['status'] or 'unknown'}] {f['sid'] or ''}", f["addresses"])
             for f in summary["by_flow"]] or [("(none)", 0)]
    if summary["changes"] is not None:
        rows += [(None, None), ("Changes since previous report", "Addresses")] + list(summary["changes"].items())
    return rows


def _context(df, title, changes, meta, summary):
    """Fill in what a writer was not given (export() computes both once for all formats)."""
    summary = summary or summarize(df, changes)
    return meta or _metadata(df, title, None, summary, changes), summary


def write_xlsx(df, path, title=DEFAULT_TITLE, changes=None, meta=None, summary=None):
    """Sheets "Summary" and "Inventory" (frozen header, autofilter, widths); text never becomes a formula."""
    meta, summary = _context(df, title, changes, meta, summary)
    book = Workbook(write_only=True)  # streams rows: 10,000 addresses stay well inside memory limits
    bold = Font(bold=True)

    def cell(sheet, value, **style):
        c = WriteOnlyCell(sheet, value=_xlsx_text(value))
        if isinstance(c.value, str):
            c.data_type = "s"
        for key, setting in style.items():
            setattr(c, key, setting)
        return c

    sheet = book.create_sheet("Summary")
    sheet.column_dimensions["A"].width, sheet.column_dimensions["B"].width = 60, 40
    for label, value in _summary_rows(title, meta, summary):
        style = {"font": bold} if value == "Addresses" else {}
        sheet.append([cell(sheet, label, **style), cell(sheet, value, **style)])

    sheet = book.create_sheet("Inventory")
    for index, width in enumerate(_widths(df, COLUMNS), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(df) + 1}"
    sheet.append([cell(sheet, name, font=bold) for name in COLUMNS])
    text_at = {COLUMNS.index("page_id")}
    dates_at = {COLUMNS.index(c) for c in DATE_COLUMNS}
    for row in _records(df):
        out = []
        for i, value in enumerate(row):
            if i in dates_at and value is not None:  # Excel has no time zones: UTC, said in the Summary
                out.append(cell(sheet, value.replace(tzinfo=None), number_format="yyyy-mm-dd hh:mm:ss"))
            elif i in text_at:
                out.append(cell(sheet, value, number_format="@"))
            else:
                out.append(_xlsx_text(value))
        sheet.append(out)
    with _atomic(path) as tmp:
        book.save(tmp)
    return Path(path)


def write_json(df, path, title=DEFAULT_TITLE, changes=None, meta=None, summary=None):
    """`{"metadata": {...}, "records": [...]}`, UTF-8 (not \\u-escaped), dates ISO 8601 UTC, missing -> null."""
    meta, summary = _context(df, title, changes, meta, summary)
    records = [dict(zip(COLUMNS, (_iso(v) for v in row))) for row in _records(df)]
    with _atomic(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"metadata": meta, "records": records}, fh, ensure_ascii=False, indent=1)
    return Path(path)


# --- charts --------------------------------------------------------------------------------------------------

def charts(summary, top=12):
    """[(title, data: URI or None)] for the HTML report: the PNGs of `charts.for_summary`, inlined."""
    return [(title, "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else None)
            for title, png in charting.for_summary(summary, top)]


# --- HTML ----------------------------------------------------------------------------------------------------

def esc(value):
    return html.escape("" if value is None else str(_iso(value)), quote=True)


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222}
h1{margin-bottom:4px} .meta{color:#555;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:140px}
.card .n{font-size:1.8em;font-weight:600} .card.bad .n{color:#c62828} .card.warn .n{color:#ef6c00}
.charts{display:flex;flex-wrap:wrap;gap:16px} .charts figure{margin:0;border:1px solid #eee;padding:6px}
.charts img{max-width:100%} .empty{color:#777;font-style:italic} .hint{color:#555;font-size:.85em;margin:4px 0}
.wrap{width:fit-content;max-width:100%;overflow:auto;margin:6px 0 14px;border:1px solid #ddd;
  background:linear-gradient(to left,#fff 30%,#fff0) right/40px 100% no-repeat local,
    linear-gradient(to left,#0002,#0000) right/12px 100% no-repeat scroll}
.wrap.tall{max-height:70vh}
table{border-collapse:separate;border-spacing:0;font-size:.85em}
th,td{border:solid #ddd;border-width:0 1px 1px 0;padding:4px 8px;text-align:left;vertical-align:top;
  white-space:nowrap;unicode-bidi:plaintext}
td .w{white-space:normal;min-width:14em;max-width:28em;overflow-wrap:anywhere}
th:last-child,td:last-child{border-right:0} tr:last-child td{border-bottom:0}
th{background:#f4f4f4;white-space:nowrap;position:sticky;top:0;z-index:1}
tbody tr:nth-child(even) td{background:#0000000a}
th:first-child,td:first-child{position:sticky;left:0;background:#fff;white-space:nowrap;box-shadow:1px 0 #ccc}
th:first-child{background:#f4f4f4;z-index:2} tbody tr:nth-child(even) td:first-child{background:#f6f6f6}
"""


def _cell(value, wrap_over=40):
    """One line per row keeps the table scannable; only long text (names, URLs) wraps, within 14-28em."""
    text = esc(value)
    return f'<td><div class="w">{text}</div></td>' if len(text) > wrap_over else f"<td>{text}</td>"


def _table(columns, rows, empty="Nothing to show.", tall=False):
    """A table in a box that scrolls sideways (and, `tall`, down) within the page; the first column stays in view.
    A shadow on the right edge (CSS alone: a white cover scrolls with the table's end) shows more columns follow."""
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return (f'<div class="wrap{" tall" if tall else ""}"><table><thead><tr>{head}</tr></thead><tbody>\n{body}\n'
            "</tbody></table></div>")


def _compared_line(meta, changes):
    """'Compared with the report generated <when> (<path>)', and the types compared when only some were."""
    previous = (meta.get("changes") or {}).get("previous") or {}
    text = "Compared with the inventory generated " + (f"{previous['generated_at']} (UTC)"
                                                        if previous.get("generated_at") else "at an unknown time")
    text += f" in {previous['path']}" if previous.get("path") else ""
    if changes.types is not None:
        text += f"; only {', '.join(changes.types) or 'no'} addresses compared (one side listed only those types)"
    return text + "."


def _changes_html(changes, meta):
    if changes is None:
        return '<p class="empty">No previous inventory was given (use --since to compare).</p>'
    counts = ", ".join(f"{esc(k)}: {v}" for k, v in changes.counts.items())
    brief = ("address", "sid", "type", "friendly_name", "integration")
    changed = [(c["address"], f, o, n) for c in changes.changed for f, (o, n) in c["fields"].items()]
    return (f'<p>{counts}</p><p class="hint">{esc(_compared_line(meta, changes))}</p>'
            + "<h3>Added</h3>" + _table(brief, [[a[k] for k in brief] for a in changes.added])
            + "<h3>Removed</h3>" + _table(brief, [[r[k] for k in brief] for r in changes.removed])
            + "<h3>Changed</h3>" + _table(("address", "field", "before", "after"), changed))


def _attention_html(df):
    problems = attention(df)
    if problems:
        return (f"<h2>Needs attention ({len(problems)})</h2>"
                + _table(("address", "friendly_name", "problem"), problems, tall=True))
    return f'<h2>Needs attention (0)</h2><p class="empty">{esc(_nothing_needs_attention(df))}</p>'


def render_html(df, title, meta, summary, changes=None):
    """One self-contained page: no scripts, no links to anything outside it."""
    cards = [("Address configurations", summary["total"], ""), ("Messenger", summary["messenger"], ""),
             ("Auto-creation enabled", summary["auto_creation_enabled"], ""),
             ("Studio flow missing", summary["flows_missing"], "bad" if summary["flows_missing"] else ""),
             ("Studio flow draft", summary["flows_draft"], "bad" if summary["flows_draft"] else "")]
    cards += [(f"Verification: {k}", v, {"fail": "bad", "warn": "warn"}.get(k, "") if v else "")
              for k, v in summary["verification"].items()]
    figures = "".join(f'<figure><img alt="{esc(name)}" src="{uri}"></figure>' if uri else
                      f'<figure><p class="empty">{esc(name)}: no data</p></figure>' for name, uri in charts(summary))
    rows = [[_iso(v) for v in row] for row in _records(df, HTML_COLUMNS)]
    flows = [(f["name"], f["status"], f["sid"], f["addresses"]) for f in summary["by_flow"]]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<div class="meta">Generated {esc(meta["generated_at"])} (UTC) · account {esc(meta.get("account"))}'
        + (f' · target {esc((meta.get("target") or {}).get("kind"))}' if meta.get("target") else "") + "</div>",
        '<div class="cards">' + "".join(f'<div class="card {mark}"><div class="n">{esc(n)}</div>'
                                        f"<div>{esc(label)}</div></div>" for label, n, mark in cards) + "</div>",
        _attention_html(df),
        f'<h2>Charts</h2><div class="charts">{figures}</div>',
        "<h2>Studio flows</h2>" + _table(("flow", "status", "sid", "addresses"), flows,
                                         "No address is integrated with a Studio flow."),
        f"<h2>Changes since last report</h2>{_changes_html(changes, meta)}",
        f"<h2>Inventory ({len(df)})</h2>"
        + (f'<p class="hint">{len(HTML_COLUMNS)} columns: scroll the table sideways to see them all; the address '
           "stays in view.</p>" if rows else "")
        + _table(HTML_COLUMNS, rows, "No address configurations in this account.", tall=True),
        "</body></html>"]
    return "\n".join(parts)


def write_html(df, path, title=DEFAULT_TITLE, changes=None, meta=None, summary=None):
    meta, summary = _context(df, title, changes, meta, summary)
    with _atomic(path) as tmp:
        tmp.write_text(render_html(df, title, meta, summary, changes), encoding="utf-8")
    return Path(path)


# --- Markdown ------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#<>])")


def md(value):
    """Escape for a Markdown table cell: no markup, no HTML, no line breaks."""
    text = "" if value is None else str(_iso(value))
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


def write_markdown(df, path, title=DEFAULT_TITLE, changes=None, meta=None, summary=None):
    meta, summary = _context(df, title, changes, meta, summary)
    with _atomic(path) as tmp:
        tmp.write_text(render_markdown(title, meta, summary, changes, problems=attention(df),
                                       all_clear=_nothing_needs_attention(df)), encoding="utf-8")
    return Path(path)


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "json": write_json, "html": write_html, "md": write_markdown}


# --- export --------------------------------------------------------------------------------------------------

def _formats(formats):
    chosen = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats or ())]
    chosen = [f for f in chosen if f]
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ValidationError("formats", f"choose from {', '.join(FORMATS)}", ",".join(bad) if bad else None)
    return list(dict.fromkeys(chosen))


def _output(out_dir, title):
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
        return inventory.load(previous)
    except ValidationError as exc:
        raise ValidationError(parameter, exc.rule, exc.value) from None


def export(df, out_dir, formats=FORMATS, previous=None, title=DEFAULT_TITLE, metadata=None):
    """Write the chosen formats of an inventory into `out_dir`; returns {format: Path}.

    `previous`: an inventory DataFrame, a report file or a run folder: adds "changes since last report".
    `metadata`: extra JSON-able facts for the JSON metadata (never put secrets in it).
    """
    if not isinstance(df, pd.DataFrame):
        raise ValidationError("df", "must be a pandas DataFrame (from inventory.collect or inventory.load)",
                              type(df).__name__)
    chosen, out = _formats(formats), _output(out_dir, title)
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
    return {fmt: WRITERS[fmt](df, out / FILE_NAMES[fmt], **({} if fmt == "csv" else context)) for fmt in chosen}


# --- one call for the CLI and schedulers --------------------------------------------------------------------

def default_verifier():
    """The verification callable for `verify=True`: flexops.checks.verify_inventory(client, df) -> {address: status}."""
    try:
        from .checks import verify_inventory
    except ImportError:
        raise ConfigurationError("verification is not available in this installation "
                                 "(flexops.checks.verify_inventory is missing); run without --verify") from None
    return verify_inventory


def default_out_dir():
    """reports/inventory-<UTC stamp>: a new folder per report, so `--since` can point at the last one."""
    return Path("reports") / f"inventory-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"


def run_report(target=None, types=None, formats=FORMATS, out_dir=None, since=None, verify=False,
               title=DEFAULT_TITLE, progress=True, echo=None):
    """Connect, collect, export: what `flexops report` does. Every input is checked before the first API call.

    Returns (inventory DataFrame, {format: Path}); `echo(text)` (optional) hears which target is used.
    """
    from .client import connect

    chosen_formats, chosen_types = _formats(formats), inventory.parse_types(types)
    out = _output(out_dir or default_out_dir(), title)
    before = load_previous(since, "since")
    verifier = default_verifier() if verify else None
    client = connect(target)
    if echo:
        echo(f"target: {client.flexops_target.describe()}")
    df = inventory.collect(client, types=chosen_types, progress=progress, verify=verifier)
    written = export(df, out, formats=chosen_formats, previous=before, title=title,
                     metadata={"types": chosen_types or "all"})
    if echo and before is not None:
        counts = inventory.diff(before, df).counts
        echo(f"since {(before.attrs.get('flexops') or {}).get('loaded_from', 'the previous inventory')}: "
             + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return df, written
