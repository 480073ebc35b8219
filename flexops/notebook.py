"""What the runbooks call around the real work: the target banner, tables, and results recorded for the run.

A headless run (`flexops run`) sets FLEXOPS_RUN_DIR for the kernel; `record()` merges values into
`results.json` there, so a reviewer or scheduler reads outcomes without parsing the notebook. Outside a run
`record()` keeps values in memory only.
"""
import html
import sys
from pathlib import Path

from . import addresses, checks, run_folder
from .charts import for_summary
from .exceptions import CheckFailed, ConnectionFailed

FULL_TABLE_ROWS = 200  # show_checks: above this, only the rows that need work
_results = {}


def run_dir():
    """The run folder this kernel records into (FLEXOPS_RUN_DIR), or None outside `flexops run`."""
    return run_folder.current()


def in_notebook():
    """True inside a Jupyter kernel (ZMQInteractiveShell has a kernel; a terminal IPython does not)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_html(obj, text):
    """Rich output (HTML text or a displayable) in a notebook, `text` elsewhere."""
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
    show_html(f'<div style="border:3px solid {colour};padding:8px 12px;font-size:1.1em">'
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
        display(HTML(_html_table(frame)) if len(frame) else frame)
    else:
        if title:
            print(title)
        print(frame.to_string(index=False) if len(frame) else "(no rows)")
    return frame


def _html_table(frame):
    """The table as HTML: pandas escapes every cell (a friendly name may hold `<script>`); alignment is inline
    because JupyterLab's sanitiser drops <style> blocks in widget outputs."""
    text = frame.to_html(index=False, escape=True, border=0)
    return (text.replace("<th>", '<th style="text-align:left">')
            .replace("<td>", '<td style="text-align:left;vertical-align:top">'))


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
    if folder is not None:
        run_folder.record(folder, key, _results[key])


def results():
    return dict(_results)


def progress():
    """`progress` for a runbook cell's long calls: off in a recorded headless run (`flexops run`, the demo), where
    a bar is only a stale widget left in the saved notebook; on when someone is watching the notebook."""
    return run_dir() is None


def show_checks(results, title="Checks", limit=FULL_TABLE_ROWS):
    """The check rows (all of them up to `limit`, else only the failed and warning ones), and a table per address
    when there are several: thousands of ✓ rows would bury the few that need work."""
    if len({r.subject for r in results}) > 1:
        show_table(checks.subject_table(results), f"{title} by address")
    if len(results) <= limit:
        return show_table(checks.table(results), title)
    problems = [r for r in results if r.status != checks.PASS]
    return show_table(checks.table(problems), f"{title}: the {len(problems)} failed or warning rows of "
                      f"{len(results)} (every row is recorded with the run's results)")


def show_summary(summary, what="checks"):
    """One line an engineer reads first: how many checks passed, failed, warned."""
    line = (f"{summary['total']} {what}: {summary['passed']} passed ✓, {summary['failed']} failed ✗, "
            f"{summary['warnings']} warning{'s' if summary['warnings'] != 1 else ''} !")
    colour = "#b3261e" if summary["failed"] else "#1f7a1f"
    show_html(f'<p style="color:{colour};font-weight:bold">{html.escape(line)}</p>', line)
    return summary


def fail_if_failed(summary, what="checks"):
    """End a headless run non-zero after results are saved, when required checks failed (exit 3 when the target
    refused the credentials or could not be reached, so a scheduler can tell the two apart)."""
    if summary.get("unreachable"):
        raise ConnectionFailed("the target refused the credentials or could not be reached; see the table above")
    if summary.get("failed"):
        raise CheckFailed(f"{summary['failed']} of {summary['total']} {what} failed; see the table above for remedies")


# --- address results (runbook 10 and its form) ---------------------------------------------------------------

ACTION_TEXT = {"created": "created", "updated": "updated to match the parameters",
               "unchanged": "no change: it already matches the parameters",
               "drift": "exists with different settings (drift): nothing changed; rerun with update_existing=True "
                        "to apply the parameters",
               "would_create": "would be created", "would_update": "would be updated"}


def plan_text(result):
    """One line saying what `addresses.ensure` did or would do."""
    return f"{result.address}: {ACTION_TEXT.get(result.action, result.action)}" + (
        f" ({result.sid})" if result.sid else "")


def plan_frame(result):
    """The fields a create/update touches (or that drifted), as rows of field / current / desired."""
    import pandas as pd

    rows = [{"field": name, "current": _cell(old), "desired": _cell(new)} for name, (old, new) in result.diff.items()]
    return pd.DataFrame(rows, columns=["field", "current", "desired"])


NOT_SET = "—"


def _cell(value):
    """A value as a table shows it: lists joined, counts as `name: n`, nothing as a dash (not Python's None)."""
    if isinstance(value, dict):
        value = [f"{k}: {v}" for k, v in value.items()]
    if isinstance(value, (tuple, list)):
        value = ", ".join(map(str, value))
    return NOT_SET if value is None or value == "" else value


def show_plan(result, title="Plan"):
    show_html(f"<p><b>{html.escape(plan_text(result))}</b></p>", plan_text(result))
    if result.diff:
        show_table(plan_frame(result), title)
    return result


def address_fields(resource):
    """What is stored for an address configuration, as a flat dict (None when there is none)."""
    if resource is None:
        return None
    state = addresses.state_of(resource)
    state["webhook_filters"] = list(state["webhook_filters"])
    return {"sid": resource.sid, "address": resource.address, "type": resource.type, **state,
            "date_updated": str(resource.date_updated) if resource.date_updated else None}


def fields_frame(fields):
    import pandas as pd

    return pd.DataFrame([{"field": k, "value": _cell(v)} for k, v in (fields or {}).items()],
                        columns=["field", "value"])


def fail_on_drift(result):
    """A headless run that was asked to create but found different settings must not end green."""
    if result.action == "drift":
        raise CheckFailed(plan_text(result))


def plan_address(client, spec, update_existing=False, view=None):
    """Runbook 10's plan: what `ensure` would do, changing nothing; shown on `view` (this module, or a form's
    Panel: both have show_plan / show_table) and recorded as `plan`."""
    view = view or sys.modules[__name__]
    result = addresses.ensure(client, spec, update_existing=update_existing, dry_run=True)
    view.show_plan(result, "Plan")
    record("plan", result)
    return result


def create_address(client, spec, update_existing=False, view=None):
    """Runbook 10's change, the same from the headless cell and the form's Confirm button: create or update the
    address, fetch back what Twilio stores, verify it. Each step is shown on `view` and recorded (`result`,
    `stored`, `checks`, `summary`) as it happens; drift (nothing changed) stops after the first.
    Returns (result, stored fields, check rows); the last two are None after drift."""
    view = view or sys.modules[__name__]
    result = addresses.ensure(client, spec, update_existing=update_existing)
    view.show_plan(result, "Changes")
    record("result", result)
    if result.action == "drift":
        return result, None, None
    stored = address_fields(addresses.find(client, spec.page_id))
    view.show_table(fields_frame(stored), f"Stored configuration of {spec.address}")
    record("stored", stored)
    rows = checks.verify(client, page_ids=[spec.page_id], require_first_message=False, progress=False)
    view.show_table(checks.table(rows), "Checks")
    record("checks", [r.to_dict() for r in rows])
    record("summary", checks.summary(rows))
    return result, stored, rows


# --- apply results (runbook 40 and its Apply button) ----------------------------------------------------------

def show_apply(result):
    """The outcome table of an apply (`plan.apply_recorded` has recorded it for the run), and a repair's verify
    (the resources as made, the Pages' traces after it) when it has one."""
    show_table(result.table(), f"Results: {result.summary()['status']}")
    if getattr(result, "verification", ()):
        show_table(verify_table(result.verification), "Verified (and traced)")
    return result


def raise_for_outcome(result):
    """End a headless run as the CLI would: interrupted -> KeyboardInterrupt (exit 130), a failed change ->
    CheckFailed (exit 1). Call after the results are recorded."""
    if result.interrupted:
        raise KeyboardInterrupt(f"the apply was interrupted: {result.summary()['skipped']} change(s) not started; "
                                "run it again to finish")
    fail_if_failed(result.summary(), "changes")
    bad = [r for r in getattr(result, "verification", ()) if not r["ok"]]
    if bad:  # a repair's check afterwards (repair_trace): the change landed, the path is still broken
        remedy = next((r.get("remedy") for r in bad if r.get("remedy")), "")
        raise CheckFailed(f"the check after the repair failed for {', '.join(str(r.get('target')) for r in bad)}"
                          + (f": {remedy}" if remedy else "; see the table above"))


VERIFY_COLUMNS = ["target", "kind", "ok", "verdict", "detail", "remedy", "note"]


def verify_table(rows):
    """A repair's verify rows (resources as made, the Pages' traces) as a DataFrame, ✓/✗ in `ok`."""
    import pandas as pd

    return pd.DataFrame([{**{c: r.get(c) for c in VERIFY_COLUMNS}, "ok": "✓" if r.get("ok") else "✗"}
                         for r in rows or []], columns=VERIFY_COLUMNS)


# --- report chart (runbook 30) -------------------------------------------------------------------------------

def show_charts(summary):
    """The inventory report's charts (`charts.for_summary`), shown as images; returns how many were drawn."""
    pictures = [(title, png) for title, png in for_summary(summary) if png]
    for title, png in pictures:
        show_png(png, title)
    return len(pictures)


def show_png(png, title):
    """A chart (PNG bytes) as an image in a notebook, its title elsewhere; nothing when there is no chart."""
    if png is None:
        return
    if in_notebook():
        from IPython.display import Image, display
        display(Image(data=png, format="png"))
    else:
        print(f"chart: {title}")
