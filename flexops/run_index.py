"""The runs directory as an index for people: a run's status (aborted when its process died), its row in
`flexops runs list`, and `flexops runs show`'s description. Finding and verifying runs is run_folder's.
"""
import json
import os
import socket
from pathlib import Path

from . import audit
from .lock import pid_alive
from .atomic import read_json
from .run_folder import MANIFEST, PARAMETERS, RESULTS


def status_of(manifest):
    """The manifest's status, except that a run still `running` whose process is gone (killed, or the machine went
    down) is `aborted`: its folder keeps what was written until then, every audit line included."""
    status, pid = manifest.get("status"), manifest.get("pid")
    if status == "running" and isinstance(pid, int) and manifest.get("host") == socket.gethostname() \
            and not pid_alive(pid):
        return "aborted"
    return status


def row(folder, manifest):
    """One line of `flexops runs list`: changes = mutations Twilio accepted, failed_calls = refused or failed,
    in_flight = sent but never answered (the run was killed): those may or may not have changed something."""
    target = manifest.get("target") or {}
    counts = audit.summary(folder / audit.AUDIT_FILE)
    return {"id": manifest.get("run_id", folder.name), "notebook": Path(manifest["notebook"]["path"]).name,
            "target": "sandbox" if target.get("kind") == "sandbox" else target.get("account") or target.get("kind"),
            "status": status_of(manifest), "started": manifest.get("started_at"),
            "duration": manifest.get("duration_s"), "changes": counts["changes"], "failed_calls": counts["failed"],
            "in_flight": counts["in_flight"]}


def changes_label(row):
    """A row's changes, compact: `3`, `3 (+1 failed)`, `3 (+1 failed, +1 unanswered)`."""
    extra = [f"+{n} {what}" for n, what in ((row.get("failed_calls"), "failed"), (row.get("in_flight"), "unanswered"))
             if n]
    return f"{row['changes']}" + (f" ({', '.join(extra)})" if extra else "")


def describe(folder, max_changes=50):
    """`flexops runs show`: one run as `label: value` lines — what ran, against what, how it ended, what changed."""
    folder = Path(folder)
    m = read_json(folder / MANIFEST, {}) or {}
    results = read_json(folder / RESULTS, {}) or {}
    nb, target, error = m.get("notebook") or {}, m.get("target") or {}, m.get("error") or {}
    git = f", git {nb['git_commit'][:10]}{' (modified)' if nb.get('git_modified') else ''}" \
        if nb.get("git_commit") else ""
    where = "sandbox" if target.get("kind") == "sandbox" else target.get("kind")
    lines = [("run", m.get("run_id", folder.name)), ("folder", os.fspath(folder)),
             ("notebook", f"{nb.get('path')}" + (f" (sha256 {nb['sha256'][:12]}{git})" if nb.get("sha256") else "")),
             ("target", " ".join(str(v) for v in (where, target.get("account")) if v)
              + (f" (credentials from {target['credentials_from']})" if target.get("credentials_from") else "")),
             ("status", status_of(m) + (f" (exit {m['exit_code']})" if m.get("exit_code") is not None else ""))]
    if error:
        cell = f" at cell {error['cell_index']}" if error.get("cell_index") is not None else ""
        lines.append(("error", f"{error.get('ename')}{cell}: {str(error.get('evalue') or '').strip()}"))
    ended = f"ended {m['ended_at']}, {m.get('duration_s')} s" if m.get("ended_at") else "no end recorded"
    lines += [("started", f"{m.get('started_at')}, {ended}"),
              ("by", f"{m.get('user')}@{m.get('host')}"),
              ("versions", ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items() if v))]
    params = read_json(folder / PARAMETERS, None) or m.get("parameters") or {}
    lines.append(("parameters", ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in params.items()) or "-"))
    if isinstance(results.get("summary"), dict):
        lines.append(("summary", ", ".join(f"{k}={v}" for k, v in results["summary"].items())))
    for kind, path in (results.get("reports") or {}).items() if isinstance(results.get("reports"), dict) else []:
        lines.append(("report", f"{kind}: {path}"))
    counts = audit.summary(folder / audit.AUDIT_FILE)
    unanswered = f", {counts['in_flight']} sent but never answered (outcome unknown)" if counts["in_flight"] else ""
    lines.append(("changes", f"{counts['changes']} accepted, {counts['failed']} refused or failed{unanswered} "
                             f"(audit.jsonl, {counts['lines']} line(s))"))
    records = audit.calls(audit.read(folder / audit.AUDIT_FILE, strict=False))
    for record in records[:max_changes]:
        code = f" error {record['error_code']}" if record.get("error_code") else ""
        state = record.get("after") or record.get("before") or {}
        what = " ".join(str(v) for v in (record.get("sid"), state.get("address") if isinstance(state, dict) else None)
                        if v)
        answer = "in flight, never answered" if record.get("event") == "sent" else record.get("status") or "no answer"
        lines.append(("", f"{record.get('seq')}. {record.get('method')} {record.get('product')} "
                          f"{record.get('path')} -> {answer}{code} {what}".rstrip()))
    if len(records) > max_changes:
        lines.append(("", f"... {len(records) - max_changes} more calls in audit.jsonl"))
    lines.append(("files", ", ".join(sorted(p.name for p in folder.iterdir() if p.is_file()))))
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label + ':' if label else '':<{width + 1}} {value}" for label, value in lines)
