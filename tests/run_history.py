"""Run folders as `flexops run` leaves them (manifest.json, results.json, output.html), made by hand for the
dashboard tests: two accounts over four days, and one run whose names hold markup."""
from datetime import datetime, timedelta, timezone

from flexops.atomic import write_json

EVIL = '<img src=x onerror=alert(1)><svg onload=alert(2)>&amp;"'  # no slash: it is a file name too


def make_run(root, name, started, status="succeeded", exit_code=0, account="AC…cdef", checks=None, inventory=None,
             notebook="notebooks/20_verify_messenger_addresses.ipynb", html=True):
    folder = root / f"{started:%Y%m%dT%H%M%SZ}-{name}"
    folder.mkdir(parents=True)
    write_json(folder / "manifest.json", {
        "run_id": folder.name, "status": status, "exit_code": exit_code, "notebook": {"path": notebook},
        "target": {"kind": "twilio", "account": account}, "started_at": started.isoformat(timespec="seconds"),
        "duration_s": 3.5, "pid": 1, "host": "elsewhere"})
    results = {}
    if checks:
        passed, failed = checks
        results["summary"] = {"passed": passed, "failed": failed, "warnings": 0, "total": passed + failed}
        results["checks"] = [{"subject": f"messenger:{i}", "check": "c", "status": "pass"} for i in range(passed)]
    if inventory is not None:
        results["summary"] = {"total": inventory, "by_type": {"messenger": inventory}}
    write_json(folder / "results.json", results)
    (folder / "audit.jsonl").write_text("")
    if html:
        (folder / "output.html").write_text("<html>run</html>")
    return folder


def history(root):
    start = datetime(2026, 11, 20, 2, 15, tzinfo=timezone.utc)
    folders = []
    for day in range(4):
        when = start + timedelta(days=day)
        folders.append(make_run(root, f"verify-{day}", when, checks=(3, day % 2), exit_code=day % 2,
                                status="failed" if day % 2 else "succeeded"))
        folders.append(make_run(root, f"report-{day}", when + timedelta(minutes=30), account="AC…beef",
                                inventory=10 + day, notebook="notebooks/30_inventory_report.ipynb"))
    folders.append(make_run(root, "evil", start + timedelta(days=5), notebook=f"notebooks/{EVIL}.ipynb",
                            account=EVIL, status="interrupted", exit_code=130, html=False))
    return folders
