"""`runs/index.html`: the history of runs as a page to look at, not a folder to grep.

The runs newest first (status, what ran, target, account, duration, checks passed/failed, links to each run's
output.html and folder) and charts over time: verification pass rate and addresses per account, runs by outcome per
day. One self-contained page like the inventory report: no scripts, charts inlined as data: URIs (charts.py), every
value autoescaped (run names and notebook paths are text from users). Links are relative, so the runs folder can be
copied or served as it is. Reading run folders is run_folder's and run_index's.
"""
import os
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import jinja2

from . import charts, run_folder, run_index
from .atomic import atomic_path, read_json

INDEX = "index.html"
STATUS_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "interrupted": "#ef6c00", "aborted": "#6a1b9a",
                 "refused": "#8d6e63", "running": "#1565c0"}
_PAGES = jinja2.Environment(loader=jinja2.PackageLoader("flexops", "templates"), autoescape=True,
                            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def check_counts(results):
    """(passed, failed, warnings) of the checks a run recorded, or (None, None, None) when it ran no check."""
    summary = results.get("summary") if isinstance(results, dict) else None
    if isinstance(summary, dict) and isinstance(summary.get("passed"), int) and isinstance(summary.get("failed"), int):
        return summary["passed"], summary["failed"], summary.get("warnings") or 0
    return None, None, None


def address_count(results):
    """How many address configurations the run saw: the inventory's total, else the addresses its checks name."""
    summary = results.get("summary") if isinstance(results, dict) else None
    if isinstance(summary, dict) and "by_type" in summary and isinstance(summary.get("total"), int):
        return summary["total"]
    rows = results.get("checks") if isinstance(results, dict) else None
    if isinstance(rows, list):
        subjects = {r.get("subject") for r in rows if isinstance(r, dict) and ":" in str(r.get("subject") or "")}
        return len(subjects) or None
    return None


def entry(folder, manifest):
    """One run as the page shows it; links are relative to the runs folder."""
    row = run_index.row(folder, manifest)
    results = read_json(Path(folder) / run_folder.RESULTS, {}) or {}
    target = manifest.get("target") or {}
    passed, failed, warnings = check_counts(results)
    link = quote(Path(folder).name)
    return {**row, "what": manifest.get("command") or (manifest.get("notebook") or {}).get("path") or row["notebook"],
            "name": Path(str(manifest.get("command") or row["notebook"])).name,
            "kind": target.get("kind") or target.get("requested") or "?", "account": target.get("account") or "",
            "passed": passed, "failed": failed, "warnings": warnings, "addresses": address_count(results),
            "exit_code": manifest.get("exit_code"), "when": _when(row["started"]),
            "html": f"{link}/{run_folder.OUTPUT_HTML}" if (Path(folder) / run_folder.OUTPUT_HTML).is_file() else None,
            "folder": f"{link}/", "changes_label": run_index.changes_label(row)}


def entries(runs_dir=None):
    """Every readable run, newest first; a folder whose manifest lacks what a run has is counted, not shown."""
    shown, unreadable = [], 0
    for folder, manifest in reversed(run_folder.list_runs(runs_dir)):
        try:
            shown.append(entry(folder, manifest))
        except (KeyError, TypeError, AttributeError, ValueError):
            unreadable += 1
    return shown, unreadable


def _when(started):
    try:
        return datetime.fromisoformat(started)
    except (TypeError, ValueError):
        return None


def chart_images(rows):
    """[(title, data: URI or None)]: pass rate and addresses per account over time, runs by outcome per day."""
    pass_rate, addresses, outcomes = defaultdict(list), defaultdict(list), defaultdict(Counter)
    for row in sorted((r for r in rows if r["when"]), key=lambda r: r["when"]):
        account = row["account"] or row["kind"]
        if row["passed"] is not None and row["passed"] + row["failed"] + row["warnings"]:
            total = row["passed"] + row["failed"] + row["warnings"]
            pass_rate[account].append((row["when"], round(100 * row["passed"] / total, 1)))
        if row["addresses"] is not None:
            addresses[account].append((row["when"], row["addresses"]))
        outcomes[row["when"].strftime("%Y-%m-%d")][row["status"] or "?"] += 1
    return [("Verification pass rate per account",
             charts.data_uri(charts.lines_png("Verification pass rate per account", pass_rate, "% of checks passed",
                                              (0, 105)))),
            ("Addresses per account", charts.data_uri(charts.lines_png("Addresses per account", addresses,
                                                                       "address configurations"))),
            ("Runs by outcome", charts.data_uri(charts.stacked_png("Runs by outcome per day (UTC)",
                                                                   dict(sorted(outcomes.items())), STATUS_COLORS)))]


def render(runs_dir=None, title="flexops runs"):
    """The page's HTML (templates/runs_index.html)."""
    rows, unreadable = entries(runs_dir)
    counts = Counter(r["status"] for r in rows)
    return _PAGES.get_template("runs_index.html").render(
        title=title, rows=rows, unreadable=unreadable, charts=chart_images(rows), counts=sorted(counts.items()),
        colors=STATUS_COLORS, root=os.fspath(run_folder.runs_root(runs_dir).resolve()),
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def write_index(runs_dir=None):
    """Write (or refresh) <runs dir>/index.html atomically; returns its path."""
    path = run_folder.runs_root(runs_dir) / INDEX
    page = render(runs_dir)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
