"""What the runbooks call around the real work: the target banner, tables, and results recorded for the run.

A headless run (`flexops run`) sets FLEXOPS_RUN_DIR for the kernel; `record()` merges values into
`results.json` there, so a reviewer or scheduler reads outcomes without parsing the notebook. Outside a run
`record()` keeps values in memory only.
"""
import html
import json
import os
from pathlib import Path

from .exceptions import CheckFailed

RESULTS_FILE = "results.json"
_results = {}


def run_dir():
    value = os.environ.get("FLEXOPS_RUN_DIR")
    return Path(value) if value else None


def in_notebook():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "Kernel" in type(shell).__name__


def _show(obj, text):
    if in_notebook():
        from IPython.display import HTML, display
        display(HTML(obj) if isinstance(obj, str) else obj)
    else:
        print(text)


def banner(client):
    """State the target loudly: SANDBOX, or the masked account SID of a real Twilio account."""
    target = client.flexops_target
    colour = "#1f7a1f" if target.is_sandbox else "#b3261e"
    label = "SANDBOX — no real Twilio account is touched" if target.is_sandbox else "REAL TWILIO ACCOUNT"
    _show(f'<div style="border:3px solid {colour};padding:8px 12px;font-size:1.1em">'
          f'<b style="color:{colour}">{html.escape(label)}</b><br>{html.escape(target.describe())}</div>',
          f"== {label}: {target.describe()} ==")
    record("target", target.public())
    return target


def show_table(frame, title=None):
    """Display a DataFrame (or list of dicts) as a table, escaped."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame([getattr(r, "to_dict", lambda r=r: r)() for r in frame])
    if in_notebook():
        from IPython.display import HTML, display
        if title:
            display(HTML(f"<h4>{html.escape(title)}</h4>"))
        display(frame.style.hide(axis="index") if len(frame) else frame)
    else:
        if title:
            print(title)
        print(frame.to_string(index=False) if len(frame) else "(no rows)")
    return frame


def _jsonable(value):
    if hasattr(value, "to_dict"):
        try:
            return value.to_dict(orient="records")
        except TypeError:
            return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def record(key, value):
    """Record a result for this run (results.json in the run folder when there is one)."""
    _results[key] = _jsonable(value)
    folder = run_dir()
    if folder is None:
        return
    path = folder / RESULTS_FILE
    current = json.loads(path.read_text()) if path.exists() else {}
    current[key] = _results[key]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2, default=str))
    tmp.replace(path)


def results():
    return dict(_results)


def fail_if_failed(summary, what="checks"):
    """End a headless run non-zero after results are saved, when required checks failed."""
    if summary.get("failed"):
        raise CheckFailed(f"{summary['failed']} of {summary['total']} {what} failed; see the table above for remedies")
