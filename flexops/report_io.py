"""Report files: the CSV / XLSX / JSON writers and the readers that load a report back, beside each other so the
two sides of one format never drift apart.

Safe by construction, because reports get opened by people in spreadsheets:
- spreadsheet cells that could start a formula (=, +, -, @, tab, CR; OWASP "CSV injection") get a leading `'`
  in CSV and XLSX, and XLSX stores them as strings; `unprotect_cell` undoes it exactly when a report is reloaded;
- CSV is UTF-8 with a BOM (Excel then reads emoji/CJK/RTL correctly); every text field is quoted, and
  page_id is written as the exact digits. Excel still guesses types when it opens a CSV, so for Excel use the
  XLSX, where page_id is a text cell (format "@") and stays 104738392011234, not 1.04E+14.
Files are written to a temporary name and renamed (atomic.py), so a scheduler never picks up half a report.
"""
import csv
import json
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from .atomic import atomic_path
from .exceptions import ValidationError
from .inventory import COLUMNS, DATE_COLUMNS, frame, plain_value

FILE_NAMES = {"csv": "inventory.csv", "xlsx": "inventory.xlsx", "json": "inventory.json", "html": "inventory.html",
              "md": "summary.md"}
REPORT_FILES = ("inventory.json", "inventory.csv", "inventory.xlsx")  # what load() reads, best first
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


def iso(value):
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else value


def records(df, columns=COLUMNS):
    """Rows as lists of plain values (datetimes stay datetimes)."""
    for row in df[list(columns)].itertuples(index=False, name=None):
        yield [plain_value(v) for v in row]



# --- writing -------------------------------------------------------------------------------------------------

def write_csv(df, path):
    """UTF-8 with BOM, RFC 4180 (CRLF), text quoted, formula-like text prefixed with `'`, dates ISO 8601 UTC."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(COLUMNS)
        for row in records(df):
            writer.writerow([protect_cell(iso(v)) for v in row])
    return Path(path)


def _xlsx_text(value):
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", protect_cell(value)) if isinstance(value, str) else value


def _widths(df, columns, sample=500):
    """Column widths from the header and a sample of values, clamped to 10..60 characters."""
    head = df.head(sample)
    widths = []
    for column in columns:
        shown = head[column].astype(object).map(lambda v: len(str(iso(plain_value(v)) or "")))
        longest = shown.max() if len(head) else 0
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
    if meta.get("accounts"):  # a fleet report: one line per account
        rows += [(None, None), ("Account", "Addresses")] + [
            (f"{a.get('account_name') or ''} {a['account_sid']} [{a['status']}]", a["addresses"])
            for a in meta["accounts"]]
    return rows


def write_xlsx(df, path, title, meta, summary):
    """Sheets "Summary" and "Inventory" (frozen header, autofilter, widths); text never becomes a formula.
    `meta` and `summary` are the report's (reports.export computes them once for every format)."""
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
    for row in records(df):
        out = []
        for i, value in enumerate(row):
            if i in dates_at and value is not None:  # Excel has no time zones: UTC, said in the Summary
                out.append(cell(sheet, value.replace(tzinfo=None), number_format="yyyy-mm-dd hh:mm:ss"))
            elif i in text_at:
                out.append(cell(sheet, value, number_format="@"))
            else:
                out.append(_xlsx_text(value))
        sheet.append(out)
    with atomic_path(path) as tmp:
        book.save(tmp)
    return Path(path)


def write_json(df, path, meta):
    """`{"metadata": {...}, "records": [...]}`, UTF-8 (not \\u-escaped), dates ISO 8601 UTC, missing -> null."""
    rows = [dict(zip(COLUMNS, (iso(v) for v in row))) for row in records(df)]
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"metadata": meta, "records": rows}, fh, ensure_ascii=False, indent=1)
    return Path(path)


# --- reading -------------------------------------------------------------------------------------------------

def _report_in(folder):
    """The newest report under `folder` (a report folder, a run folder, or a folder of them, e.g. `reports/`).

    The newest folder wins, whatever formats it holds; within it JSON (it carries metadata) before CSV and XLSX.
    """
    found = [p for name in REPORT_FILES for p in folder.rglob(name) if p.is_file()]
    if not found:
        raise ValidationError("path", f"no {', '.join(REPORT_FILES)} found in the folder", str(folder))
    newest = max(found, key=lambda p: p.stat().st_mtime).parent
    return min((p for p in found if p.parent == newest), key=lambda p: REPORT_FILES.index(p.name))


def load(path):
    """A previous inventory from a report file (CSV, JSON, XLSX) or a folder holding reports (the newest)."""
    if path is None or not Path(path).exists():
        raise ValidationError("path", "does not exist", None if path is None else str(path))
    path = Path(path)
    if path.is_dir():
        path = _report_in(path)
    if path.suffix.lower() not in (".json", ".csv", ".xlsx"):
        raise ValidationError("path", "must be a .csv, .json or .xlsx report or a folder holding one", str(path))
    try:
        raw, meta = _read(path)
    except ValidationError:
        raise
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise ValidationError("path", f"cannot be read as an inventory report ({type(exc).__name__})",
                              str(path)) from None
    if "address" not in raw.columns:
        raise ValidationError("path", "is not an inventory report (it has no address column)", str(path))
    df = frame(raw)
    df.attrs["flexops"] = {**meta, "loaded_from": str(path)}
    return df


def _read(path):
    """(raw DataFrame, metadata) of one report file; our spreadsheet cell protection is undone."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        document = json.loads(path.read_text(encoding="utf-8"))
        records = document.get("records") if isinstance(document, dict) else document
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValidationError("path", "is not an inventory report (no list of records)", str(path))
        meta = document.get("metadata", {}) if isinstance(document, dict) else {}
        return pd.DataFrame.from_records(records, columns=None if records else list(COLUMNS)), meta
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig").map(unprotect_cell), {}
    return _read_xlsx(path), {}


def _read_xlsx(path):
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book["Inventory"] if "Inventory" in book.sheetnames else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(h) for h in next(rows, ())]
        return pd.DataFrame([[unprotect_cell(v) for v in row] for row in rows], columns=header)
    finally:
        book.close()
