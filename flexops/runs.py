"""`flexops run`: execute a runbook headless with papermill into a self-contained, reviewable run folder.

    runs/<UTC stamp>-<notebook stem>-<short id>/
        output.ipynb  output.html  parameters.json  results.json  audit.jsonl  manifest.json

Why a folder per run: a scheduler, an auditor or a colleague reads one place to learn what ran, against which
account, with what parameters, what changed (audit.jsonl) and how it ended (manifest.json, exit code). The folder
is completed in a `finally`, so Ctrl-C, a bad parameter or a dead kernel still leave a full record; a `kill -9` of
the runner still leaves parameters.json and every audit line (the kernel writes them as calls return), and the run
lists as `aborted`.

Parameters are checked against the notebook (`papermill.inspect_notebook`) before anything starts: unknown names and
credential-like names are refused; text values are typed by the notebook's declared default, so `-p page_id 0012`
stays the string "0012" when the default is a string (papermill alone would pass the integer 12).
"""
import ast
import getpass
import hashlib
import html
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from . import audit, settings
from .exceptions import ConfigurationError, ValidationError
from .notebook import RESULTS_FILE

EXIT_OK, EXIT_FAILED, EXIT_BAD_PARAMETERS, EXIT_TARGET, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
KERNEL = "flexops"
ENGINE = "flexops"
MANIFEST, PARAMETERS, OUTPUT_NB, OUTPUT_HTML = "manifest.json", "parameters.json", "output.ipynb", "output.html"
DEFAULT_RUNS_DIR = "runs"
TARGET_ERRORS = ("ConfigurationError", "ConnectionFailed", "ConnectionError", "ConnectTimeout", "ProxyError")
PAPERMILL_CELLS = ("injected-parameters", "papermill-error-cell-tag")


@dataclass
class RunRecord:
    """What a run produced: its folder, status (succeeded | failed | interrupted), exit code and manifest."""

    run_id: str
    folder: Path
    status: str
    exit_code: int
    manifest: dict

    @property
    def succeeded(self):
        return self.status == "succeeded"

    @property
    def error(self):
        return self.manifest.get("error")

    def results(self):
        return read_json(self.folder / RESULTS_FILE, {})

    def audit(self):
        """One record per mutating call: its answered line, or its sent line when it was never answered."""
        return audit.calls(audit.read(self.folder / audit.AUDIT_FILE))


# --- parameters ---------------------------------------------------------------------------------------------

def declared_parameters(notebook):
    """{name: {default, inferred_type_name, help}} as papermill reads the notebook's `parameters` cell."""
    import papermill

    return papermill.inspect_notebook(os.fspath(notebook))


def declared_type(spec):
    """The Python type a parameter is declared with: its annotation, else its default's type (None if unknown)."""
    hint = (spec.get("inferred_type_name") or "None").replace("Optional[", "").rstrip("]")
    if hint in ("str", "int", "float", "bool", "list", "dict"):
        return {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}[hint]
    try:
        default = ast.literal_eval(spec.get("default") or "None")
    except (ValueError, SyntaxError):
        return None
    return None if default is None else type(default)


def _typed(text):
    """papermill's `-p` typing: True/False/None, then int, then float, else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def coerce(name, value, spec):
    """A `-p`-style value typed for the notebook: text stays text where the notebook declares a string."""
    kind = declared_type(spec)
    if kind is str:
        return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value
    return _typed(value) if isinstance(value, str) else value


def load_parameters_file(path):
    """A YAML/JSON mapping of parameters. Scalars come back as their text, so they are typed like `-p` values."""
    import yaml

    text = Path(path).read_text()
    try:
        typed = yaml.safe_load(text) or {}
        raw = yaml.load(text, Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as exc:
        raise ValidationError("parameters_file", f"{path} is not valid YAML: {exc}") from None
    if not isinstance(typed, dict):
        raise ValidationError("parameters_file", f"{path} must hold a mapping of parameter names to values")
    return {str(k): None if v is None else raw.get(str(k), v) if isinstance(raw.get(str(k)), str) else v
            for k, v in typed.items()}


def prepare_parameters(notebook, parameters=None, raw_parameters=None, target=None, declared=None):
    """Validate names against the notebook and type the values. Raises ValidationError (-> exit 2)."""
    parameters, raw_parameters = dict(parameters or {}), dict(raw_parameters or {})
    given = {**parameters, **raw_parameters}
    for name in given:
        if audit.is_secret_key(name):
            raise ValidationError(name, "credentials are never notebook parameters: set TWILIO_AUTH_TOKEN or "
                                        "TWILIO_API_KEY/TWILIO_API_SECRET in the environment, or use a twilio-cli "
                                        "profile")
    declared = declared_parameters(notebook) if declared is None else declared
    for name in given:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ValidationError(name, f"is not a parameter of {Path(notebook).name} (it declares: {known})")
    final = {name: coerce(name, value, declared[name]) for name, value in parameters.items()}
    final.update({name: str(value) for name, value in raw_parameters.items()})
    if target is not None:
        chosen = settings.choose_target(target)
        if "target" in final and str(final["target"]).strip().lower() != chosen:
            raise ValidationError("target", f"-p target {final['target']!r} conflicts with --target {chosen!r}")
        if "target" in declared:
            final["target"] = chosen
    return final


# --- kernel and papermill engine ----------------------------------------------------------------------------

_kernel_cache = {}


def ensure_kernel(name=KERNEL):
    """The kernel to run with: `flexops` (registered into this environment if missing), else this Python's own."""
    if name in _kernel_cache:
        return _kernel_cache[name]
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    chosen = "python3"
    try:
        spec = manager.get_kernel_spec(name)
    except NoSuchKernel:
        done = subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", name,
                               "--display-name", f"{name} ({Path(sys.prefix).name})"],
                              capture_output=True, timeout=120)
        spec = manager.get_kernel_spec(name) if done.returncode == 0 else None
    # Only a spec that starts this environment's Python: a `flexops` spec left by another checkout (say, in the
    # user's Jupyter folder, which comes first) would run the notebooks with someone else's packages.
    if spec is not None and spec.argv and Path(os.path.abspath(spec.argv[0])).parent.parent == Path(sys.prefix):
        chosen = name
    _kernel_cache[name] = chosen
    return chosen


class RunControl:
    """Per-run kernel environment and Ctrl-C handling, for the whole run.

    The first SIGINT/SIGTERM interrupts the kernel (the running cell raises KeyboardInterrupt, papermill saves the
    notebook) and stops before the next cell; a second one aborts at once. Before a kernel exists it aborts at once;
    while the run folder is being completed (`finishing`) signals are noted and otherwise ignored, so the record is
    never cut short.
    """

    def __init__(self, env=None):
        self.env = dict(env or {})
        self.stop = threading.Event()
        self.km = None
        self.cell_index = None  # papermill's index of the cell last started (or about to be)
        self.signal_name = None
        self.finishing = False

    @property
    def why(self):
        """How the run was interrupted, for the manifest."""
        return f"interrupted by {self.signal_name}" if self.signal_name else "interrupted"

    def kernel_manager_class(self):
        from jupyter_client.manager import AsyncKernelManager

        control = self

        class RunKernelManager(AsyncKernelManager):
            async def start_kernel(self, **kw):
                kw["env"] = {**os.environ, **(kw.get("env") or {}), **control.env}
                if "curve" in (self.kernel_spec.metadata or {}).get("supported_encryption", []):
                    kw.setdefault("transport_encryption", "auto")  # loopback, but no plain-text warning either
                control.km = self
                return await super().start_kernel(**kw)

        return RunKernelManager

    def on_signal(self, signum, frame):
        self.signal_name = self.signal_name or signal.Signals(signum).name
        if self.finishing:
            return
        if self.stop.is_set() or self.km is None:
            self.stop.set()
            raise KeyboardInterrupt
        self.stop.set()
        provisioner = getattr(self.km, "provisioner", None)
        try:
            if getattr(provisioner, "pgid", None):
                os.killpg(provisioner.pgid, signal.SIGINT)
            elif getattr(provisioner, "pid", None):
                os.kill(provisioner.pid, signal.SIGINT)
        except (OSError, ProcessLookupError):
            raise KeyboardInterrupt from None

    @contextmanager
    def signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _engine():
    """A papermill engine that passes the run's environment to the kernel and honours RunControl.stop."""
    from papermill.engines import NBClientEngine, papermill_engines

    class RunEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, run_control=None, **kwargs):
            start = nb_man.cell_start

            def cell_start(cell, cell_index=None, **kw):
                run_control.cell_index = cell_index
                if run_control.stop.is_set():
                    raise KeyboardInterrupt
                return start(cell, cell_index, **kw)

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(
                nb_man, kernel_name, kernel_manager_class=run_control.kernel_manager_class(), **kwargs)

    papermill_engines.register(ENGINE, RunEngine)
    return ENGINE


# --- the run ------------------------------------------------------------------------------------------------

def runs_root(runs_dir=None):
    return Path(runs_dir or os.environ.get("FLEXOPS_RUNS_DIR") or DEFAULT_RUNS_DIR)


def new_run_id(notebook, when):
    return f"{when.strftime('%Y%m%dT%H%M%SZ')}-{Path(notebook).stem}-{secrets.token_hex(3)}"


def exit_code_for(ename, evalue):
    """The exit code for an error raised in the notebook (papermill gives its class name and message)."""
    if ename == "KeyboardInterrupt":
        return EXIT_INTERRUPTED
    if ename == "ValidationError":
        return EXIT_BAD_PARAMETERS
    text = str(evalue or "")
    if ename in TARGET_ERRORS or (ename.startswith("Twilio") and any(
            sign in text for sign in ("20003", "HTTP 401", "no HTTP answer"))):
        return EXIT_TARGET
    return EXIT_FAILED


def execute(notebook, parameters=None, target=None, runs_dir=None, raw_parameters=None, no_input=False,
            report_mode=False, kernel_name=None, progress_bar=False, timeout=None, parameters_file=None):
    """Run `notebook` headless into a new run folder; never raises for a failing run, returns its RunRecord.

    `parameters_file` (YAML/JSON) is read inside the run, so a broken file is a bad-parameters run (exit 2) with
    its folder like any other; `parameters` win over it."""
    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValidationError("notebook", "no such notebook file", os.fspath(notebook))
    started = datetime.now(timezone.utc)
    run_id = new_run_id(notebook, started)
    folder = (runs_root(runs_dir) / run_id).resolve()
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise ValidationError("runs_dir", f"cannot create a run folder there: {exc.strerror}",
                              os.fspath(runs_root(runs_dir))) from None
    audit.AuditLog(folder / audit.AUDIT_FILE, run_id).touch()
    manifest = _base_manifest(run_id, notebook, target, started, no_input, report_mode)
    _write_json(folder / MANIFEST, manifest)
    control = RunControl({"FLEXOPS_RUN_DIR": os.fspath(folder), "FLEXOPS_RUN_ID": run_id})
    outcome = _failure(EXIT_INTERRUPTED, "KeyboardInterrupt", "interrupted")  # until proven otherwise
    params = {k: audit.REDACTED if audit.is_secret_key(k) else v
              for k, v in {**(parameters or {}), **(raw_parameters or {})}.items()}
    with control.signals():
        try:
            try:
                if parameters_file:
                    parameters = {**load_parameters_file(parameters_file), **(parameters or {})}
                params = prepare_parameters(notebook, parameters, raw_parameters, target)
                _write_json(folder / PARAMETERS, params)  # now, in case the run is killed
            except ValidationError as exc:
                outcome = _failure(EXIT_BAD_PARAMETERS, "ValidationError", str(exc))
            else:
                manifest["kernel"] = kernel_name or ensure_kernel()
                if target:
                    control.env["FLEXOPS_TARGET"] = settings.choose_target(target)
                outcome = _papermill(notebook, folder, params, control, manifest["kernel"], report_mode,
                                     progress_bar, timeout)
        except KeyboardInterrupt:
            outcome = _failure(EXIT_INTERRUPTED, "KeyboardInterrupt", control.why)
        except Exception as exc:  # a bug or an environment problem: still leave a complete folder
            outcome = _failure(EXIT_FAILED, type(exc).__name__, str(exc)[:1000])
        finally:
            control.finishing = True
            manifest = _finish(folder, notebook, manifest, outcome, params, no_input, control.cell_index)
    return RunRecord(run_id, folder, manifest["status"], manifest["exit_code"], manifest)


def _failure(exit_code, ename, evalue, cell_index=None, execution_count=None):
    status = "interrupted" if exit_code == EXIT_INTERRUPTED else "failed"
    return {"status": status, "exit_code": exit_code,
            "error": {"ename": ename, "evalue": evalue, "cell_index": cell_index, "execution_count": execution_count}}


def _papermill(notebook, folder, params, control, kernel, report_mode, progress_bar, timeout):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(os.fspath(notebook), os.fspath(folder / OUTPUT_NB), parameters=params,
                                   kernel_name=kernel, engine_name=_engine(), progress_bar=progress_bar,
                                   report_mode=report_mode, execution_timeout=timeout, run_control=control)
        return {"status": "succeeded", "exit_code": EXIT_OK, "error": None}
    except PapermillExecutionError as exc:
        if control.stop.is_set():
            return _failure(EXIT_INTERRUPTED, "KeyboardInterrupt", control.why, execution_count=exc.exec_count)
        return _failure(exit_code_for(exc.ename, exc.evalue), exc.ename, str(exc.evalue)[:2000],
                        execution_count=exc.exec_count)
    except KeyboardInterrupt:
        return _failure(EXIT_INTERRUPTED, "KeyboardInterrupt", control.why)
    except Exception as exc:  # the kernel died (DeadKernelError), a timeout, or the kernel died of the interrupt
        if control.stop.is_set():
            return _failure(EXIT_INTERRUPTED, "KeyboardInterrupt", f"{control.why} ({type(exc).__name__})")
        return _failure(EXIT_FAILED, type(exc).__name__, str(exc)[:2000])


def _finish(folder, notebook, manifest, outcome, params, no_input, running_cell=None):
    """Complete the folder whatever happened: output notebook + HTML, parameters, results, manifest."""
    out = folder / OUTPUT_NB
    if outcome["error"]:
        cell = failing_cell(out, running_cell)
        if cell is not None:
            outcome["error"]["cell_index"] = cell
        _explain(out, notebook, outcome)
    _write_html(out, folder / OUTPUT_HTML, no_input)
    results = read_json(folder / RESULTS_FILE, None)
    if results is None:
        results = {}
        _write_json(folder / RESULTS_FILE, results)
    recorded = results.get("parameters")
    _write_json(folder / PARAMETERS, recorded if isinstance(recorded, dict) else params)
    ended = datetime.now(timezone.utc)
    started = datetime.fromisoformat(manifest["started_at"])
    manifest.update(status=outcome["status"], exit_code=outcome["exit_code"], error=outcome["error"],
                    ended_at=ended.isoformat(timespec="seconds"),
                    duration_s=round((ended - started).total_seconds(), 2),
                    target=_target_info(manifest["target"].get("requested"), results),
                    audit=audit.summary(folder / audit.AUDIT_FILE),
                    files=sorted({p.name for p in folder.iterdir() if p.is_file()} | {MANIFEST}))
    _write_json(folder / MANIFEST, audit.redact(manifest, _env_secrets()))
    return manifest


def failing_cell(output_notebook, running=None):
    """Index in the source notebook of the cell that failed or was running (papermill's own cells not counted).

    `running` is papermill's index of the cell last started: the answer when the notebook carries no mark, as
    after a dead kernel or an abort."""
    nb = read_json(output_notebook, None)
    if not nb:
        return None
    cells = [(position, cell) for position, cell in enumerate(nb.get("cells", []))
             if not any(t in cell.get("metadata", {}).get("tags", []) for t in PAPERMILL_CELLS)]
    for index, (_, cell) in enumerate(cells):
        state = cell.get("metadata", {}).get("papermill", {})
        if state.get("exception") or state.get("status") == "running":
            return index
    return next((index for index, (position, _) in enumerate(cells) if position == running), None)


def _explain(out, notebook, outcome):
    """Say at the top of output.ipynb (and so output.html) how the run ended, unless papermill already did; with
    no output notebook (nothing ran), the source notebook under that note stands in for it."""
    import nbformat

    try:
        nb = nbformat.read(os.fspath(out if out.exists() else notebook), as_version=4)
    except Exception:  # unreadable notebook: an empty one still explains the run
        nb = nbformat.v4.new_notebook()
    if out.exists() and any(PAPERMILL_CELLS[1] in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return
    error = outcome["error"]
    cell = error.get("cell_index")
    if not out.exists():
        what = "This runbook did not run"
    else:
        what = ("This run was interrupted" if outcome["status"] == "interrupted" else "This run failed") + (
            f" at cell {cell}; later cells did not run" if cell is not None else "")
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"**{what}**: {html.escape(error['ename'])}: {html.escape(str(error['evalue'] or ''))}",
        metadata={"tags": [PAPERMILL_CELLS[1]]}))
    nbformat.write(nb, os.fspath(out))


def _write_html(notebook, html_path, no_input):
    try:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter(exclude_input=no_input).from_filename(os.fspath(notebook))
    except Exception as exc:  # an HTML copy must never cost the run its record
        body = f"<html><body><p>HTML export failed: {type(exc).__name__}</p></body></html>"
    html_path.write_text(body, encoding="utf-8")


# --- manifest helpers ---------------------------------------------------------------------------------------

def _base_manifest(run_id, notebook, target, started, no_input, report_mode):
    return {"run_id": run_id, "status": "running", "exit_code": None, "error": None,
            "notebook": {"path": os.fspath(notebook), "sha256": hashlib.sha256(notebook.read_bytes()).hexdigest(),
                         **_git_state(notebook)},
            "versions": {name: _version(name) for name in ("flexops", "twilio", "papermill", "nbclient")}
            | {"python": sys.version.split()[0]},
            "user": _user(), "host": socket.gethostname(), "pid": os.getpid(),
            "target": _target_info(target, {}), "started_at": started.isoformat(timespec="seconds"),
            "ended_at": None, "duration_s": None, "options": {"no_input": no_input, "report_mode": report_mode}}


def _target_info(requested, results):
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


def _env_secrets():
    return [os.environ.get(n) for n in ("TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "FLEXOPS_SANDBOX_TOKEN")
            if os.environ.get(n)]


def read_json(path, default):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def _write_json(path, data):
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


class CommandRun:
    """A run folder for a CLI command (`flexops apply` / `flexops rollback`): the same layout as a notebook run
    (manifest.json, audit.jsonl attached to the client, results.json), so `flexops runs list/verify` and
    rollback read both alike."""

    def __init__(self, command, parameters=None, runs_dir=None):
        self.started = datetime.now(timezone.utc)
        self.command = command
        self.run_id = new_run_id(command, self.started)
        self.folder = (runs_root(runs_dir) / self.run_id).resolve()
        self.folder.mkdir(parents=True)
        self.audit_path = self.folder / audit.AUDIT_FILE
        audit.AuditLog(self.audit_path, self.run_id).touch()
        self.results = {}
        self.manifest = {
            "run_id": self.run_id, "kind": "command", "command": f"flexops {command}",
            "parameters": dict(parameters or {}),
            "status": "running", "exit_code": None, "error": None,
            "notebook": {"path": f"flexops {command}", "sha256": None},
            "versions": {"flexops": _version("flexops"), "twilio": _version("twilio"),
                         "python": sys.version.split()[0]},
            "user": _user(), "host": socket.gethostname(), "pid": os.getpid(), "target": {},
            "started_at": self.started.isoformat(timespec="seconds"), "ended_at": None, "duration_s": None}
        self._write("manifest.json", self.manifest)

    def attach(self, client):
        self.manifest["target"] = client.flexops_target.public()
        self._write("manifest.json", self.manifest)
        return audit.attach(client, self.audit_path, self.run_id)

    def record(self, key, value):
        self.results[key] = value
        self._write("results.json", self.results)

    def finish(self, status, exit_code, error=None):
        ended = datetime.now(timezone.utc)
        if "results.json" not in os.listdir(self.folder):
            self._write("results.json", self.results)
        self.manifest.update(status=status, exit_code=exit_code, error=error,
                             ended_at=ended.isoformat(timespec="seconds"),
                             duration_s=round((ended - self.started).total_seconds(), 2),
                             audit=audit.summary(self.audit_path))
        self.manifest["files"] = sorted({p.name for p in self.folder.iterdir() if p.is_file()} | {"manifest.json"})
        self._write("manifest.json", audit.redact(self.manifest))
        return self.manifest

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        """An exception before finish() still completes the folder: failed, or interrupted for Ctrl-C."""
        if kind is not None and self.manifest["status"] == "running":
            interrupted = issubclass(kind, KeyboardInterrupt)
            self.finish("interrupted" if interrupted else "failed",
                        130 if interrupted else getattr(exc, "exit_code", 1),
                        {"ename": kind.__name__, "evalue": str(exc)[:2000]})

    def _write(self, name, data):
        _write_json(self.folder / name, data)
