"""The run folder: one home for its layout, its manifest, its results and where run folders live.

    runs/<UTC stamp>-<notebook stem or command>-<short id>/
        output.ipynb  output.html  parameters.json  results.json  audit.jsonl  manifest.json

A notebook run (`flexops run`, runs.py) and a command run (`flexops apply` / `rollback`, CommandRun below) make the
same folder with the same manifest, so `flexops runs list/show/verify` and rollback read both alike. It sits low
(beside audit.py, which writes the folder's audit.jsonl) because the runbooks record into it (`notebook.record`)
and rollback reads it, as well as the run layer above that executes runs.

`record()` merges one key into results.json (read, set, atomic write), whoever records: a notebook cell, a form's
button or a CLI command; a reader never sees half a file.
"""
import getpass
import hashlib
import os
import secrets
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from . import audit, settings
from .atomic import read_json, write_json
from .exceptions import ConfigurationError, ValidationError

OUTPUT_NB, OUTPUT_HTML = "output.ipynb", "output.html"
MANIFEST, PARAMETERS, RESULTS, AUDIT = "manifest.json", "parameters.json", "results.json", audit.AUDIT_FILE
DEFAULT_RUNS_DIR = "runs"
RUN_DIR_ENV, RUN_ID_ENV = "FLEXOPS_RUN_DIR", "FLEXOPS_RUN_ID"  # set for the kernel of a notebook run


def runs_root(runs_dir=None):
    return Path(runs_dir or os.environ.get("FLEXOPS_RUNS_DIR") or DEFAULT_RUNS_DIR)


def new_run_id(name, when):
    return f"{when.strftime('%Y%m%dT%H%M%SZ')}-{Path(name).stem}-{secrets.token_hex(3)}"


def current():
    """The folder of the run this process records into (FLEXOPS_RUN_DIR), or None outside a run."""
    run = audit.current_run()
    return run[0] if run else None


def record(folder, key, value):
    """Merge `key: value` into the folder's results.json (created when missing); returns the whole results."""
    path = Path(folder) / RESULTS
    current_results = read_json(path, {}) if path.exists() else {}
    current_results[key] = value
    write_json(path, current_results)
    return current_results


# --- the manifest ---------------------------------------------------------------------------------------------

def new_manifest(run_id, started, notebook, sha256=None, target=None, versions=("flexops", "twilio"), **extra):
    """What every run's manifest.json starts as: what runs, where, by whom, since when (status `running`)."""
    return {"run_id": run_id, **extra, "status": "running", "exit_code": None, "error": None,
            "notebook": {"path": os.fspath(notebook), "sha256": sha256},
            "versions": {name: _version(name) for name in versions} | {"python": sys.version.split()[0]},
            "user": _user(), "host": socket.gethostname(), "pid": os.getpid(), "target": target or {},
            "started_at": started.isoformat(timespec="seconds"), "ended_at": None, "duration_s": None}


def notebook_manifest(run_id, notebook, target, started, options):
    """The manifest of a notebook run: the notebook pinned by sha256 and git state, the target as requested."""
    manifest = new_manifest(run_id, started, notebook, hashlib.sha256(Path(notebook).read_bytes()).hexdigest(),
                            target_info(target, {}), ("flexops", "twilio", "papermill", "nbclient"))
    manifest["notebook"].update(_git_state(notebook))
    manifest["options"] = dict(options)
    return manifest


def finish(folder, manifest, status, exit_code, error=None, secrets_=()):
    """Complete the manifest (how it ended, the audit trail pinned, the files) and write it, credentials masked."""
    ended = datetime.now(timezone.utc)
    started = datetime.fromisoformat(manifest["started_at"])
    manifest.update(status=status, exit_code=exit_code, error=error, ended_at=ended.isoformat(timespec="seconds"),
                    duration_s=round((ended - started).total_seconds(), 2), audit=audit.summary(Path(folder) / AUDIT),
                    files=sorted({p.name for p in Path(folder).iterdir() if p.is_file()} | {MANIFEST}))
    write_json(Path(folder) / MANIFEST, audit.redact(manifest, secrets_))
    return manifest


def target_info(requested, results):
    """What a manifest may say about the target: sandbox, or the masked account SID — never credentials."""
    chosen = (requested or os.environ.get("FLEXOPS_TARGET") or "auto").strip().lower()
    info = {"requested": chosen}
    seen_target = results.get("target") if isinstance(results, dict) else None
    if isinstance(seen_target, dict):
        return {**info, **seen_target}
    try:
        creds = settings.twilio_credentials() if chosen in ("auto", "twilio") else None
    except (ConfigurationError, ValidationError):
        creds = None
    if creds is not None:
        return {**info, **creds.public()}
    return {**info, "kind": "sandbox" if chosen in ("auto", "sandbox") else chosen}


def _git_state(path):
    def git(*args):
        try:
            done = subprocess.run(["git", *args], cwd=Path(path).resolve().parent, capture_output=True, text=True,
                                  timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    name = Path(path).name
    commit = git("log", "-1", "--format=%H", "--", name) or None
    status = git("status", "--porcelain", "--", name)
    return {"git_commit": commit, "git_modified": bool(status) if status is not None else None}


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _user():
    try:
        return getpass.getuser()
    except Exception:
        return None


# --- command runs ---------------------------------------------------------------------------------------------

class CommandRun:
    """A run folder for a CLI command (`flexops apply` / `flexops rollback`): the same layout as a notebook run
    (manifest.json, audit.jsonl attached to the client, results.json)."""

    def __init__(self, command, parameters=None, runs_dir=None):
        self.started = datetime.now(timezone.utc)
        self.run_id = new_run_id(command, self.started)
        self.folder = (runs_root(runs_dir) / self.run_id).resolve()
        self.folder.mkdir(parents=True)
        self.audit_path = self.folder / AUDIT
        audit.AuditLog(self.audit_path, self.run_id).touch()
        self.manifest = new_manifest(self.run_id, self.started, f"flexops {command}", kind="command",
                                     command=f"flexops {command}", parameters=dict(parameters or {}))
        write_json(self.folder / MANIFEST, self.manifest)

    def attach(self, client):
        self.manifest["target"] = client.flexops_target.public()
        write_json(self.folder / MANIFEST, self.manifest)
        return audit.attach(client, self.audit_path, self.run_id)

    def record(self, key, value):
        record(self.folder, key, value)

    def finish(self, status, exit_code, error=None):
        if not (self.folder / RESULTS).exists():
            write_json(self.folder / RESULTS, {})
        return finish(self.folder, self.manifest, status, exit_code, error)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        """An exception before finish() still completes the folder: failed, or interrupted for Ctrl-C."""
        if kind is not None and self.manifest["status"] == "running":
            interrupted = issubclass(kind, KeyboardInterrupt)
            self.finish("interrupted" if interrupted else "failed",
                        130 if interrupted else getattr(exc, "exit_code", 1),
                        {"ename": kind.__name__, "evalue": str(exc)[:2000]})


# --- finding and checking runs --------------------------------------------------------------------------------

def list_runs(runs_dir=None):
    """Every run folder under the runs directory, oldest first: (folder, manifest)."""
    root = runs_root(runs_dir)
    found = []
    for folder in root.iterdir() if root.is_dir() else []:
        manifest = read_json(folder / MANIFEST, None)
        if isinstance(manifest, dict):
            found.append((folder, manifest))
    return sorted(found, key=lambda item: (item[1].get("started_at") or "", item[0].name))


def find_run(run, runs_dir=None):
    """A run folder by path, id, unique id fragment, or `latest`."""
    if Path(run, MANIFEST).is_file():
        return Path(run)
    runs = list_runs(runs_dir)
    if run in ("latest", "last") and runs:
        return runs[-1][0]
    matches = [folder for folder, _ in runs if folder.name == run] or \
              [folder for folder, _ in runs if run in folder.name]
    if len(matches) != 1:
        problem = "no run matches" if not matches else f"{len(matches)} runs match; give more of the id"
        raise ValidationError("run", f"{problem} in {runs_root(runs_dir)}", run)
    return matches[0]


def verify_run(run, runs_dir=None):
    """Check a run's audit chain and that it still ends where the manifest pinned it: (ok, bad line, message)."""
    folder = find_run(run, runs_dir)
    ok, line, message = audit.verify(folder / AUDIT)
    if not ok:
        return ok, line, message
    pinned = (read_json(folder / MANIFEST, {}) or {}).get("audit") or {}
    now = audit.summary(folder / AUDIT)
    if pinned and pinned.get("lines") != now["lines"]:
        return False, min(now["lines"], pinned["lines"] or 0) + 1, \
            f"audit.jsonl has {now['lines']} line(s) but the manifest recorded {pinned['lines']} (lines added or " \
            "removed after the run)"
    if pinned and pinned.get("head") != now["head"]:
        return False, now["lines"], f"line {now['lines']}: differs from the last line the manifest recorded"
    return True, None, message
