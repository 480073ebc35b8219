"""`flexops run`: execute a runbook headless with papermill into a self-contained, reviewable run folder
(run_folder.py says what the folder holds).

Why a folder per run: a scheduler, an auditor or a colleague reads one place to learn what ran, against which
account, with what parameters, what changed (audit.jsonl) and how it ended (manifest.json, exit code). The folder
is completed in a `finally`, so Ctrl-C, a bad parameter or a dead kernel still leave a full record; a `kill -9` of
the runner still leaves parameters.json and every audit line (the kernel writes them as calls return), and the run
lists as `aborted`.

Like papermill's own engines, the `flexops` engine (RunEngine) and its kernel manager are defined and registered
once, at import; `execute_notebook()` is the one papermill call every caller uses (`flexops run`, `flexops demo`,
the notebook tests). Parameters are checked first (run_parameters.py).
"""
import html
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError

from . import audit, run_folder, settings
from .atomic import read_json, write_json
from .exceptions import ValidationError
from .run_folder import MANIFEST, OUTPUT_HTML, OUTPUT_NB, PARAMETERS, RESULTS
from .run_parameters import load_parameters_file, prepare_parameters

EXIT_OK, EXIT_FAILED, EXIT_BAD_PARAMETERS, EXIT_TARGET, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
KERNEL = "flexops"
ENGINE = "flexops"
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]  # no "TCP without encryption" warning on a loopback-only demo
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
        return read_json(self.folder / RESULTS, {})

    def audit(self):
        """One record per mutating call: its answered line, or its sent line when it was never answered."""
        return audit.calls(audit.read(self.folder / audit.AUDIT_FILE))


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


class RunKernelManager(AsyncKernelManager):
    """Starts the kernel with the run's environment (`control.env` over os.environ) and tells the RunControl which
    kernel to interrupt."""

    control = None  # the RunControl of the run, set by RunEngine

    async def start_kernel(self, **kw):
        control = self.control or RunControl()
        kw["env"] = {**os.environ, **(kw.get("env") or {}), **control.env}
        if "curve" in (self.kernel_spec.metadata or {}).get("supported_encryption", []):
            kw.setdefault("transport_encryption", "auto")  # loopback, but no plain-text warning either
        control.km = self
        return await super().start_kernel(**kw)


class RunEngine(NBClientEngine):
    """papermill's nbclient engine, with the run's kernel manager and RunControl.stop honoured between cells."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, run_control=None, **kwargs):
        control = run_control or RunControl()
        start = nb_man.cell_start

        def cell_start(cell, cell_index=None, **kw):
            control.cell_index = cell_index
            if control.stop.is_set():
                raise KeyboardInterrupt
            return start(cell, cell_index, **kw)

        nb_man.cell_start = cell_start
        # nbclient shuts down only a kernel whose manager it made itself (a `km=` given to it outlives the run, until
        # this process exits): so it gets the class, bound to this run's control, and makes the manager.
        manager = type("RunKernelManagerOfThisRun", (RunKernelManager,), {"control": control})
        return super().execute_managed_notebook(nb_man, kernel_name, kernel_manager_class=manager, **kwargs)


papermill_engines.register(ENGINE, RunEngine)


def execute_notebook(notebook, output, parameters=None, kernel_name=None, control=None, env=None, cwd=None,
                     progress_bar=False, report_mode=False, timeout=None, extra_arguments=None):
    """Run `notebook` into `output` with the `flexops` engine; the kernel gets os.environ plus `env` (or the
    RunControl's). Raises papermill's PapermillExecutionError when a cell fails."""
    control = control or RunControl(env)
    return papermill.execute_notebook(
        os.fspath(notebook), os.fspath(output), parameters=parameters or {}, kernel_name=kernel_name or ensure_kernel(),
        engine_name=ENGINE, progress_bar=progress_bar, report_mode=report_mode, execution_timeout=timeout,
        run_control=control, extra_arguments=extra_arguments or [], cwd=os.fspath(cwd) if cwd else None)


# --- the run ------------------------------------------------------------------------------------------------

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
    run_id = run_folder.new_run_id(notebook, started)
    folder = (run_folder.runs_root(runs_dir) / run_id).resolve()
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise ValidationError("runs_dir", f"cannot create a run folder there: {exc.strerror}",
                              os.fspath(run_folder.runs_root(runs_dir))) from None
    audit.AuditLog(folder / run_folder.AUDIT, run_id).touch()
    manifest = run_folder.notebook_manifest(run_id, notebook, target, started,
                                            {"no_input": no_input, "report_mode": report_mode})
    write_json(folder / MANIFEST, manifest)
    control = RunControl({run_folder.RUN_DIR_ENV: os.fspath(folder), run_folder.RUN_ID_ENV: run_id})
    outcome = _failure(EXIT_INTERRUPTED, "KeyboardInterrupt", "interrupted")  # until proven otherwise
    params = {k: audit.REDACTED if audit.is_secret_key(k) else v
              for k, v in {**(parameters or {}), **(raw_parameters or {})}.items()}
    with control.signals():
        try:
            try:
                if parameters_file:
                    parameters = {**load_parameters_file(parameters_file), **(parameters or {})}
                params = prepare_parameters(notebook, parameters, raw_parameters, target)
                write_json(folder / PARAMETERS, params)  # now, in case the run is killed
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
    try:
        execute_notebook(notebook, folder / OUTPUT_NB, params, kernel, control, progress_bar=progress_bar,
                         report_mode=report_mode, timeout=timeout)
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
    results = read_json(folder / RESULTS, None)
    if results is None:
        results = {}
        write_json(folder / RESULTS, results)
    recorded = results.get("parameters")
    write_json(folder / PARAMETERS, recorded if isinstance(recorded, dict) else params)
    manifest["target"] = run_folder.target_info(manifest["target"].get("requested"), results)
    env_secrets = [os.environ.get(n) for n in ("TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "FLEXOPS_SANDBOX_TOKEN")
                   if os.environ.get(n)]
    return run_folder.finish(folder, manifest, outcome["status"], outcome["exit_code"], outcome["error"], env_secrets)


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
