"""`flexops run`: real papermill kernels against the sandbox. Every run leaves a complete folder (output.ipynb,
output.html, parameters.json, results.json, audit.jsonl, manifest.json) and a scheduler-friendly exit code:
0 ok, 1 check failed, 2 bad parameters, 3 target unusable, 130 interrupted."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from flexops import audit, run_folder, run_parameters, runs
from flexops.cli import main
from flexops.exceptions import ValidationError

pytestmark = pytest.mark.notebook

ROOT = Path(__file__).resolve().parents[1]
CONNECT = ROOT / "notebooks" / "00_connect.ipynb"
CREATE = ROOT / "notebooks" / "10_create_messenger_address.ipynb"
FILES = {"output.ipynb", "output.html", "parameters.json", "results.json", "audit.jsonl", "manifest.json"}


def write_notebook(path, parameters, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, os.fspath(path))
    return path


def flexops_run(runs_dir, *args):
    """`flexops run ARGS` in this process: (click result, the run folder it made or None)."""
    def folders():
        return {p for p in Path(runs_dir).iterdir() if p.is_dir()} if Path(runs_dir).exists() else set()

    before = folders()
    result = CliRunner().invoke(main, ["run", *map(str, args), "--runs-dir", str(runs_dir)])
    made = folders() - before
    assert len(made) <= 1
    return result, made.pop() if made else None


def manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def read(folder, name):
    return json.loads((folder / name).read_text())


def cell_index(notebook, text):
    """Index of the first cell of `notebook` whose source contains `text`."""
    cells = nbformat.read(os.fspath(notebook), as_version=4).cells
    return next(i for i, cell in enumerate(cells) if text in cell.source)


def assert_complete(folder):
    assert {p.name for p in folder.iterdir()} == FILES
    assert json.loads((folder / "output.ipynb").read_text())["cells"]
    assert "<html" in (folder / "output.html").read_text()[:2000].lower()


def first_markdown(folder):
    return nbformat.read(os.fspath(folder / "output.ipynb"), as_version=4).cells[0].source


# --- the runbook, end to end ---------------------------------------------------------------------------------

def test_successful_run_folder_manifest_and_index(sandbox, tmp_path):
    result, folder = flexops_run(tmp_path / "runs", CONNECT)
    assert result.exit_code == 0, result.output
    assert_complete(folder)
    m = manifest(folder)
    assert m["run_id"] == folder.name and folder.name.endswith(f"-00_connect-{folder.name.rsplit('-', 1)[1]}")
    assert (m["status"], m["exit_code"], m["error"]) == ("succeeded", 0, None)
    assert m["notebook"]["sha256"] == hashlib.sha256(CONNECT.read_bytes()).hexdigest()
    assert set(m["versions"]) >= {"flexops", "twilio", "papermill"} and m["versions"]["twilio"]
    assert m["user"] and m["host"] and m["duration_s"] > 0 and m["ended_at"] >= m["started_at"]
    assert m["target"]["kind"] == "sandbox"
    assert m["target"]["account"].startswith("AC…") and sandbox.demo["account_sid"] not in json.dumps(m)
    assert m["audit"] == {"lines": 0, "changes": 0, "failed": 0, "in_flight": 0, "head": None}  # read-only
    assert (folder / "audit.jsonl").read_text() == "" and m["pid"] == os.getpid()  # CliRunner: this process
    results = read(folder, "results.json")
    assert results["summary"]["failed"] == 0
    # target "auto" resolved through FLEXOPS_TARGET=sandbox, as the notebook saw it
    assert read(folder, "parameters.json") == results["parameters"] == {"target": "sandbox", "profile": None,
                                                                         "interactive": False}
    assert "connect_params" in (folder / "output.html").read_text()  # inputs kept by default

    listing = CliRunner().invoke(main, ["runs", "list", "--runs-dir", str(tmp_path / "runs"), "--json"])
    (row,) = json.loads(listing.output)
    assert row["id"] == folder.name and row["status"] == "succeeded" and row["target"] == "sandbox"
    assert row["changes"] == 0 and row["notebook"] == "00_connect.ipynb"
    table = CliRunner().invoke(main, ["runs", "list", "--runs-dir", str(tmp_path / "runs")]).output
    assert folder.name in table and "changes" in table
    shown = CliRunner().invoke(main, ["runs", "show", "latest", "--runs-dir", str(tmp_path / "runs")]).output
    assert f"run:        {folder.name}" in shown and "status:     succeeded (exit 0)" in shown
    assert "target:     sandbox AC…" in shown and "changes:    0 accepted" in shown
    shown = CliRunner().invoke(main, ["runs", "show", "latest", "--runs-dir", str(tmp_path / "runs"), "--json"])
    assert json.loads(shown.output)["manifest"]["run_id"] == folder.name
    assert json.loads(shown.output)["results"]["summary"]["failed"] == 0
    verified = CliRunner().invoke(main, ["runs", "verify", folder.name[-6:], "--runs-dir", str(tmp_path / "runs")])
    assert verified.exit_code == 0


def test_a_run_leaves_no_kernel_behind(tmp_path):
    """Each run shuts its kernel down when it ends: a long-lived process (JupyterLab, a scheduler, the test suite)
    running many notebooks must not collect idle kernels until it exits."""
    import psutil

    notebook = tmp_path / "one.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), notebook)

    def kernels():
        return [p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]

    before = kernels()
    for n in range(2):
        runs.execute_notebook(notebook, tmp_path / f"out{n}.ipynb")
    assert kernels() == before


def test_failing_check_exits_1_with_the_failing_cell(sandbox, tmp_path):
    sandbox.client().studio.v2.flows(sandbox.demo["messaging_flow_sid"]).update(status="draft")
    result, folder = flexops_run(tmp_path / "runs", CONNECT, "--no-input")
    assert result.exit_code == 1, result.output
    assert_complete(folder)
    m = manifest(folder)
    assert (m["status"], m["error"]["ename"]) == ("failed", "CheckFailed")
    assert m["error"]["cell_index"] == cell_index(CONNECT, "fail_if_failed")
    assert read(folder, "results.json")["summary"]["failed"] >= 1  # results saved before the run failed
    assert "connect_params" not in (folder / "output.html").read_text()  # --no-input


def test_notebook_validation_error_exits_2(sandbox, tmp_path):
    result, folder = flexops_run(tmp_path / "runs", CONNECT, "-p", "target", "nowhere")
    assert result.exit_code == 2, result.output
    assert_complete(folder)
    error = manifest(folder)["error"]
    assert error["ename"] == "ValidationError" and "target" in error["evalue"]
    assert error["cell_index"] == cell_index(CONNECT, "connect_params(")
    assert read(folder, "parameters.json") == {"target": "nowhere"}


def test_unreachable_or_unconfigured_target_exits_3(sandbox, tmp_path, monkeypatch):
    result, folder = flexops_run(tmp_path / "runs", CONNECT, "--target", "twilio")
    assert result.exit_code == 3, result.output
    assert_complete(folder)
    m = manifest(folder)
    assert m["error"]["ename"] == "ConfigurationError" and m["target"]["requested"] == "twilio"
    assert read(folder, "parameters.json")["target"] == "twilio"  # --target reached the notebook

    with socket.socket() as free:  # a port nobody listens on: connection refused
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("FLEXOPS_SANDBOX_URL", f"http://127.0.0.1:{port}")
    result, folder = flexops_run(tmp_path / "runs", CONNECT)
    assert result.exit_code == 3, result.output
    assert_complete(folder)
    assert manifest(folder)["error"]["ename"] == "ConnectionFailed" and f":{port}" in result.output


# --- parameters ------------------------------------------------------------------------------------------------

def test_unknown_and_credential_parameters_are_refused_before_any_kernel(tmp_path):
    nb = write_notebook(tmp_path / "p.ipynb", 'page_id = ""')
    started = time.monotonic()
    result, folder = flexops_run(tmp_path / "runs", nb, "-p", "pageid", "1")
    assert result.exit_code == 2 and "pageid" in result.output
    assert_complete(folder)
    assert manifest(folder)["error"]["ename"] == "ValidationError"
    assert "kernel" not in manifest(folder)  # refused before a kernel was started
    result, folder2 = flexops_run(tmp_path / "runs", nb, "-r", "auth_token", "tok_SHOULD_NOT_BE_KEPT")
    assert result.exit_code == 2 and "credentials are never notebook parameters" in result.output
    for path in folder2.iterdir():
        assert "tok_SHOULD_NOT_BE_KEPT" not in path.read_text()
    assert time.monotonic() - started < 10


def test_a_broken_parameters_file_is_a_bad_parameters_run(tmp_path):
    nb = write_notebook(tmp_path / "p.ipynb", 'page_id = ""')
    (tmp_path / "p.yaml").write_text("page_id: [unclosed\n")
    result, folder = flexops_run(tmp_path / "runs", nb, "-f", tmp_path / "p.yaml")
    assert result.exit_code == 2 and "parameters_file" in result.output
    assert_complete(folder)
    assert manifest(folder)["error"]["ename"] == "ValidationError"
    (tmp_path / "p.yaml").write_text("page_id: '1'\n<b>nope</b>: 2\n")
    result, folder = flexops_run(tmp_path / "runs", nb, "-f", tmp_path / "p.yaml")
    assert result.exit_code == 2 and "<b>nope</b>: is not a parameter of p.ipynb" in result.output
    assert first_markdown(folder).startswith("**This runbook did not run**: ValidationError: &lt;b&gt;nope")
    assert "<b>nope" not in (folder / "output.html").read_text()  # error text is escaped in the HTML copy


def test_runs_dir_comes_from_the_environment(tmp_path, monkeypatch):
    nb = write_notebook(tmp_path / "p.ipynb", 'page_id = ""')
    monkeypatch.setenv("FLEXOPS_RUNS_DIR", str(tmp_path / "from-env"))
    result = CliRunner().invoke(main, ["run", str(nb), "-p", "nope", "1"])
    assert result.exit_code == 2
    (folder,) = [p for p in (tmp_path / "from-env").iterdir() if p.is_dir()]
    assert_complete(folder)
    (tmp_path / "blocked").write_text("a file, not a folder")
    result = CliRunner().invoke(main, ["run", str(nb), "--runs-dir", str(tmp_path / "blocked" / "runs")])
    assert result.exit_code == 2 and "runs_dir" in result.output


def test_ids_stay_strings(tmp_path):
    nb = write_notebook(tmp_path / "ids.ipynb",
                        'page_id = "1"\nphone = ""\nretry_count = 1\ndry_run = False\nwebhook_url = None\nlabel = 0',
                        "from flexops import notebook\n"
                        "notebook.record('parameters', {k: [v, type(v).__name__] for k, v in dict(page_id=page_id, "
                        "phone=phone, retry_count=retry_count, dry_run=dry_run, webhook_url=webhook_url, "
                        "label=label).items()})")
    (tmp_path / "p.yaml").write_text("page_id: 0099\nretry_count: 4\nwebhook_url: null\n")
    result, folder = flexops_run(tmp_path / "runs", nb, "-f", tmp_path / "p.yaml", "-p", "page_id", "0012",
                                 "-p", "phone", "+15551234567", "-p", "dry_run", "true", "-r", "label", "0007",
                                 "--report-mode")
    assert result.exit_code == 0, result.output
    cells = json.loads((folder / "output.ipynb").read_text())["cells"]
    assert all(c["metadata"].get("jupyter", {}).get("source_hidden") for c in cells if c["cell_type"] == "code")
    assert read(folder, "parameters.json") == {
        "page_id": ["0012", "str"], "phone": ["+15551234567", "str"], "retry_count": [4, "int"],
        "dry_run": [True, "bool"], "webhook_url": [None, "NoneType"], "label": ["0007", "str"]}


def test_parameter_typing_follows_the_notebook(tmp_path):
    nb = write_notebook(tmp_path / "t.ipynb", 'target = "auto"\npage_id: str = None\ncount = 1\nflows = []')
    assert run_parameters.prepare_parameters(nb, {"page_id": "0012", "count": "0012", "flows": "[1]"}) == {
        "page_id": "0012", "count": 12, "flows": "[1]"}
    assert run_parameters.prepare_parameters(nb, {"page_id": 12}) == {"page_id": "12"}
    assert run_parameters.prepare_parameters(nb, {}, target="sandbox") == {"target": "sandbox"}
    with pytest.raises(ValidationError, match="conflicts"):
        run_parameters.prepare_parameters(nb, {"target": "twilio"}, target="sandbox")
    with pytest.raises(ValidationError, match="api_secret"):
        run_parameters.prepare_parameters(nb, {"api_secret": "x"})
    (tmp_path / "p.yaml").write_text("page_id: '0012'\ncount: 3\nflows: [a, b]\n")
    assert run_parameters.load_parameters_file(tmp_path / "p.yaml") == {"page_id": "0012", "count": "3",
                                                                       "flows": ["a", "b"]}


@pytest.mark.parametrize("ename, evalue, code", [
    ("CheckFailed", "1 of 5 preflight checks failed", 1), ("ValueError", "boom", 1),
    ("ValidationError", "page_id: must be digits", 2), ("ConfigurationError", "set TWILIO_ACCOUNT_SID", 3),
    ("ConnectionFailed", "cannot reach the sandbox", 3), ("TwilioRestException", "HTTP 401 error: Authenticate", 3),
    ("TwilioCallFailed", "create: HTTP 401, Twilio error 20003: Authenticate", 3),
    ("TwilioCallFailed", "create: no HTTP answer after 8 attempts: ConnectionError", 3),
    ("TwilioCallFailed", "create: HTTP 400, Twilio error 21610: invalid", 1), ("KeyboardInterrupt", "", 130)])
def test_exit_codes_for_notebook_errors(ename, evalue, code):
    assert runs.exit_code_for(ename, evalue) == code


# --- interruption, kernel death, a killed runner --------------------------------------------------------------

def start_run(runs_dir, nb, *args):
    """`flexops run` as its own process (as a scheduler starts it)."""
    return subprocess.Popen([str(Path(sys.executable).with_name("flexops")), "run", str(nb), *map(str, args),
                             "--runs-dir", str(runs_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(marker, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate(timeout=5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_leaves_a_complete_interrupted_run(sig, tmp_path):
    marker = tmp_path / "started"
    nb = write_notebook(tmp_path / "sleepy.ipynb", 'marker = ""',
                        "from pathlib import Path\nfrom flexops import notebook\nimport time\n"
                        "notebook.record('before_sleep', True)\nPath(marker).write_text('x')\ntime.sleep(30)",
                        "notebook.record('after_sleep', True)")
    runs_dir = tmp_path / "runs"
    proc = start_run(runs_dir, nb, "-p", "marker", marker)
    try:
        wait_for(marker, proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    (folder,) = [p for p in runs_dir.iterdir() if p.is_dir()]  # beside index.html
    assert out.strip() == str(folder)
    assert_complete(folder)
    m = manifest(folder)
    assert (m["status"], m["exit_code"], m["error"]["ename"], m["error"]["cell_index"]) == (
        "interrupted", 130, "KeyboardInterrupt", 1)
    assert m["error"]["evalue"] == f"interrupted by {sig.name}"
    assert read(folder, "results.json") == {"before_sleep": True}
    assert m["duration_s"] < 30


def test_a_second_signal_aborts_a_cell_that_ignores_the_first(tmp_path):
    marker = tmp_path / "started"
    nb = write_notebook(tmp_path / "stubborn.ipynb", 'marker = ""',
                        "import signal, time\nfrom pathlib import Path\n"
                        "signal.signal(signal.SIGINT, signal.SIG_IGN)\nPath(marker).write_text('x')\ntime.sleep(30)",
                        "print('never')")
    runs_dir = tmp_path / "runs"
    proc = start_run(runs_dir, nb, "-p", "marker", marker)
    try:
        wait_for(marker, proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        assert proc.poll() is None  # the cell ignored the interrupt: still running
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    (folder,) = [p for p in runs_dir.iterdir() if p.is_dir()]  # beside index.html
    assert_complete(folder)
    m = manifest(folder)
    assert (m["status"], m["error"]["cell_index"]) == ("interrupted", 1) and m["duration_s"] < 30
    assert first_markdown(folder).startswith("**This run was interrupted at cell 1; later cells did not run**")


def test_kernel_death_is_a_failed_complete_run(tmp_path):
    nb = write_notebook(tmp_path / "dies.ipynb", "x = 1", "from flexops import notebook\nnotebook.record('a', 1)",
                        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "notebook.record('b', 2)")
    result, folder = flexops_run(tmp_path / "runs", nb)
    assert result.exit_code == 1
    assert_complete(folder)
    m = manifest(folder)
    assert m["status"] == "failed" and m["error"]["ename"] == "DeadKernelError"
    assert m["error"]["cell_index"] == 2 and "DeadKernelError at cell 2" in result.output
    assert first_markdown(folder).startswith("**This run failed at cell 2; later cells did not run**: DeadKernelError")
    assert "This run failed at cell 2" in (folder / "output.html").read_text()
    assert read(folder, "results.json") == {"a": 1}


KILLED = """import time
from pathlib import Path
import flexops
addresses = flexops.connect("sandbox").conversations.v1.address_configurations
for page in ("1047383920001", "1047383920002"):
    addresses.create(type="messenger", address=f"messenger:{page}")
Path(marker).write_text("x")
time.sleep(30)
addresses.create(type="messenger", address="messenger:1047383920003")"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the kernel process through Linux /proc")
def test_a_killed_runner_keeps_every_audit_line_and_lists_as_aborted(sandbox, tmp_path):
    """`kill -9` of `flexops run` itself: nothing can complete the folder, but every change made so far is in
    audit.jsonl (written by the kernel as each call returned), the chain verifies, and the kernel goes too."""
    marker = tmp_path / "changed"
    nb = write_notebook(tmp_path / "killed.ipynb", 'marker = ""', KILLED)
    runs_dir = tmp_path / "runs"
    proc = start_run(runs_dir, nb, "-p", "marker", marker)
    try:
        wait_for(marker, proc)
        kernels = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert kernels
        proc.kill()
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    (folder,) = [p for p in runs_dir.iterdir() if p.is_dir()]  # beside index.html
    lines = runs.RunRecord(folder.name, folder, None, None, {}).audit()
    assert [(r["method"], r["status"], r["after"]["address"]) for r in lines] == [
        ("POST", 201, "messenger:1047383920001"), ("POST", 201, "messenger:1047383920002")]
    assert run_folder.verify_run(folder) == (True, None, "4 line(s), chain intact")  # sent + answered per call
    assert read(folder, "parameters.json") == {"marker": str(marker)}  # written before the kernel started
    (row,) = json.loads(CliRunner().invoke(main, ["runs", "list", "--runs-dir", str(runs_dir), "--json"]).output)
    assert (row["status"], row["changes"], row["duration"]) == ("aborted", 2, None)
    deadline = time.monotonic() + 15  # the kernel notices its parent is gone and exits
    while any(Path(f"/proc/{pid}").exists() for pid in kernels) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() for pid in kernels)
    made = {a.address for a in sandbox.client().conversations.v1.address_configurations.list()}
    assert {"messenger:1047383920001", "messenger:1047383920002"} <= made
    assert "messenger:1047383920003" not in made  # the kernel did not carry on without its runner


# --- audit through a run ---------------------------------------------------------------------------------------

MUTATE = """import flexops
from flexops import notebook
client = flexops.connect("sandbox")
addresses = client.conversations.v1.address_configurations
try:
    addresses(f"messenger:{page_id}").fetch()
except Exception:
    pass
created = addresses.create(type="messenger", address=f"messenger:{page_id}", friendly_name="Acme")
addresses(created.sid).update(friendly_name="Acme 2")
addresses(created.sid).delete()
notebook.record("sid", created.sid)"""


def test_mutations_in_a_run_are_audited_and_verifiable(sandbox, tmp_path):
    nb = write_notebook(tmp_path / "mutate.ipynb", 'page_id = ""', MUTATE)
    page = sandbox.demo["pages"][0]["page_id"]
    result, folder = flexops_run(tmp_path / "runs", nb, "-p", "page_id", page)
    assert result.exit_code == 0, result.output
    raw = [json.loads(line) for line in (folder / "audit.jsonl").read_text().splitlines()]
    assert [r["event"] for r in raw] == ["sent", "answered"] * 3
    lines = audit.calls(raw)
    sid = read(folder, "results.json")["sid"]
    assert [(r["method"], r["status"], r["sid"]) for r in lines] == [("POST", 201, sid), ("POST", 200, sid),
                                                                    ("DELETE", 204, sid)]
    assert lines[0]["before_seen"] and lines[0]["before"] is None and lines[0]["run_id"] == folder.name
    assert lines[2]["before"]["friendly_name"] == "Acme 2"
    assert manifest(folder)["audit"]["lines"] == 6
    assert run_folder.verify_run(folder) == (True, None, "6 line(s), chain intact")

    text = (folder / "audit.jsonl").read_text().splitlines()
    edited = [*text[:2], text[2].replace("Acme 2", "Acme 3"), *text[3:]]  # the sent line of the update
    (folder / "audit.jsonl").write_text("\n".join(edited) + "\n")
    verified = CliRunner().invoke(main, ["runs", "verify", str(folder)])
    assert verified.exit_code == 1 and "line 3" in verified.output
    (folder / "audit.jsonl").write_text("\n".join(text[:5]) + "\n")  # a dropped last line breaks no chain...
    assert run_folder.verify_run(folder)[:2] == (False, 6)  # ...but the manifest pinned six lines
    forged = audit.seal({"method": "DELETE", "path": "/v1/Configuration/Addresses/IGx", "status": 204},
                        hashlib.sha256(text[5].encode()).hexdigest())
    (folder / "audit.jsonl").write_text("\n".join([*text, forged]) + "\n")  # a well-chained line appended
    ok, line, message = run_folder.verify_run(folder)
    assert (ok, line) == (False, 7) and "7 line(s) but the manifest recorded 6" in message
    (folder / "audit.jsonl").write_text("\n".join([text[0], "{not json", *text[2:]]) + "\n")
    verified = CliRunner().invoke(main, ["runs", "verify", str(folder)])
    assert verified.exit_code == 1 and "line 2: not a sealed audit line" in verified.output
    listing = CliRunner().invoke(main, ["runs", "list", "--runs-dir", str(tmp_path / "runs"), "--json"])
    assert listing.exit_code == 0 and json.loads(listing.output)[0]["changes"] == 2  # a damaged file still lists


def test_runs_list_and_show_tell_calls_in_flight_apart(tmp_path):
    """A call sent but never answered (the run was killed) may have changed something: list and show say so."""
    with run_folder.CommandRun("apply", runs_dir=tmp_path / "runs") as command_run:
        log = audit.AuditLog(command_run.audit_path, command_run.run_id)
        create = {"method": "POST", "product": "conversations", "path": "/v1/Configuration/Addresses"}
        for entry in ({"event": "sent", "call": "a"}, {"event": "answered", "call": "a", "status": 201},
                      {"event": "sent", "call": "b"}, {"event": "answered", "call": "b", "status": 400},
                      {"event": "sent", "call": "c"}):
            log.append({**create, **entry})
        command_run.finish("interrupted", 130)
    runs_dir = ["--runs-dir", str(tmp_path / "runs")]
    (row,) = json.loads(CliRunner().invoke(main, ["runs", "list", *runs_dir, "--json"]).output)
    assert (row["changes"], row["failed_calls"], row["in_flight"]) == (1, 1, 1)
    assert "1 (+1 failed, +1 unanswered)" in CliRunner().invoke(main, ["runs", "list", *runs_dir]).output
    shown = CliRunner().invoke(main, ["runs", "show", "latest", *runs_dir]).output
    assert "1 accepted, 1 refused or failed, 1 sent but never answered (outcome unknown) (audit.jsonl, 5 line(s))" \
        in shown
    assert "5. POST conversations /v1/Configuration/Addresses -> in flight, never answered" in shown
    assert "2. POST conversations /v1/Configuration/Addresses -> 201" in shown
    assert manifest(command_run.folder)["audit"]["in_flight"] == 1


def test_create_runbook_audits_each_change(sandbox, tmp_path):
    """The create runbook's one mutation per run is audited with the state before and after; a rerun that finds
    nothing to change writes no line."""
    page = sandbox.demo["pages"][0]["page_id"]
    result, folder = flexops_run(tmp_path / "runs", CREATE, "-p", "page_id", page)
    assert result.exit_code == 0, result.output
    (created,) = runs.RunRecord(folder.name, folder, None, None, {}).audit()
    sid = read(folder, "results.json")["result"]["sid"]
    assert (created["method"], created["path"], created["status"], created["sid"]) == (
        "POST", "/v1/Configuration/Addresses", 201, sid)
    assert created["before"] is None and created["before_seen"] is True  # the runbook looked before creating
    assert created["after"]["address"] == created["parameters"]["Address"] == f"messenger:{page}"
    assert created["after"]["friendly_name"] is None and manifest(folder)["audit"]["changes"] == 1

    result, folder = flexops_run(tmp_path / "runs", CREATE, "-p", "page_id", page, "-p", "friendly_name",
                                 "Acme Support", "-p", "update_existing", "true")
    assert result.exit_code == 0, result.output
    (updated,) = runs.RunRecord(folder.name, folder, None, None, {}).audit()
    assert (updated["method"], updated["path"], updated["status"]) == (
        "POST", f"/v1/Configuration/Addresses/{sid}", 200)
    assert updated["before"]["friendly_name"] is None and updated["after"]["friendly_name"] == "Acme Support"
    assert run_folder.verify_run(folder) == (True, None, "2 line(s), chain intact")

    result, folder = flexops_run(tmp_path / "runs", CREATE, "-p", "page_id", page, "-p", "friendly_name",
                                 "Acme Support")
    assert result.exit_code == 0 and read(folder, "results.json")["result"]["action"] == "unchanged"
    assert (folder / "audit.jsonl").read_text() == ""
