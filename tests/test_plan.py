"""Plan and apply against the sandbox through the real SDK: create / update / no-op / prune, faults (429s with and
without Retry-After, commit-then-500 and commit-then-drop on creates and deletes, permanent errors, refused
credentials), the account lock (holder and age, stale takeover, --break-lock), the CLI and its help, a kill -9 in
the middle of a 200-address apply, Ctrl-C, and runbook 40."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flexops import audit, notebook, plan, retry, run_folder, runs, ui
from flexops.cli import main
from flexops.coerce import age_text
from flexops.exceptions import LockHeld, ValidationError
from flexops.lock import AccountLock
from flexops.params import apply_params

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "inventory.yaml"
CREATE_PATH = "^/v1/Configuration/Addresses$"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run folders and locks under tmp_path (the CLI writes them relative to the working folder)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLEXOPS_RUNS_DIR", os.fspath(tmp_path / "runs"))
    monkeypatch.setenv("FLEXOPS_LOCK_DIR", os.fspath(tmp_path / "locks"))
    return tmp_path


def inventory(folder, page_ids, prune=False, name="inventory.yaml", **fields):
    extra = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in fields.items())
    rows = "".join(f'  - page_id: "{p}"\n    friendly_name: "Page {p}"\n{extra}' for p in page_ids)
    path = Path(folder) / name
    path.write_text(f"prune: {str(prune).lower()}\ndefaults:\n  studio_flow: Messaging Flow\naddresses:\n{rows}")
    return path


def pages(count, start=500000):
    return [str(start + i) for i in range(count)]


def stored(sandbox):
    """{address: JSON} of every address configuration in the sandbox's demo account (read from its database)."""
    rows = sandbox.store.read("SELECT key, data FROM resources WHERE account_sid = ? AND kind = ?",
                              (sandbox.demo["account_sid"], "address_configuration"))
    found = {}
    for row in rows:
        assert row["key"] not in found, f"duplicate {row['key']}"
        found[row["key"]] = json.loads(row["data"])
    return found


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# --- plan / apply / no-op / prune ----------------------------------------------------------------------------

def test_plan_apply_then_rerun_is_a_no_op(sandbox, client, workdir):
    first = plan.make_plan(client, EXAMPLE)
    assert first.counts() == {"create": 3, "update": 0, "delete": 0, "noop": 0}
    table = first.table()
    assert list(table["action"]) == ["create"] * 3 and list(table["line"]) == [28, 30, 33]
    saved = json.loads(first.to_json(workdir / "plan.json").read_text())
    assert saved["changes"][1]["desired"]["retry_count"] == 1
    assert saved["changes"][0]["desired"]["studio_flow_sid"] == sandbox.demo["messaging_flow_sid"]

    result = plan.apply(client, first, progress=False)
    assert result.ok and result.exit_code == 0 and result.summary()["ok"] == 3
    assert set(stored(sandbox)) == {"messenger:104738392011234", "messenger:204738392011235",
                                    "messenger:304738392011236"}
    again = plan.make_plan(client, ROOT / "examples" / "inventory.csv")
    assert again.counts()["noop"] == 3 and not again.pending
    assert plan.apply(client, again, progress=False).outcomes == []


def test_update_is_field_by_field_including_auto_creation(sandbox, client, workdir):
    plan.apply(client, plan.make_plan(client, inventory(workdir, ["11111", "22222"])), progress=False)
    sid = stored(sandbox)["messenger:11111"]["sid"]
    client.conversations.v1.address_configurations(sid).update(auto_creation_enabled=False)  # someone disabled it
    changed = inventory(workdir, ["11111", "22222"], name="changed.yaml", retry_count=1)
    the_plan = plan.make_plan(client, changed)
    diffs = {c.address: c.diff for c in the_plan.changes}
    assert diffs["messenger:11111"] == {"auto_creation_enabled": (False, True), "retry_count": (3, 1)}
    assert diffs["messenger:22222"] == {"retry_count": (3, 1)}
    assert "auto_creation_enabled: False → True" in the_plan.table()["changes"][0]
    assert plan.apply(client, the_plan, progress=False).ok
    state = stored(sandbox)["messenger:11111"]["auto_creation"]
    assert state["enabled"] is True and state["studio_retry_count"] == 1
    assert not plan.make_plan(client, changed).pending


def test_prune_deletes_only_messenger_addresses_absent_from_the_file(sandbox, client, workdir):
    configs = client.conversations.v1.address_configurations
    configs.create(type="messenger", address="messenger:99999", friendly_name="not in the file")
    configs.create(type="whatsapp", address="whatsapp:+15005550006")
    kept = plan.make_plan(client, inventory(workdir, ["11111"]))
    assert [c.action for c in kept.changes] == ["create"]  # prune: false leaves 99999 alone
    pruning = plan.make_plan(client, inventory(workdir, ["11111"], prune=True))
    assert sorted((c.action, c.address) for c in pruning.changes) == [("create", "messenger:11111"),
                                                                       ("delete", "messenger:99999")]
    assert plan.apply(client, pruning, progress=False).ok
    assert set(stored(sandbox)) == {"messenger:11111", "whatsapp:+15005550006"}
    assert plan.make_plan(client, inventory(workdir, ["11111"]), prune=True).pending == []


# --- faults --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("retry_after", [0, None], ids=["retry-after", "no-retry-after"])
def test_30_percent_429s_are_waited_out(sandbox, client, workdir, monkeypatch, retry_after):
    monkeypatch.setattr(retry, "BACKOFF_BASE", 0.01)  # keep the no-Retry-After backoff short in tests
    sandbox.control.add_fault(product="conversations", probability=0.3, seed=1, status=429, code=20429,
                              retry_after=retry_after)
    path = inventory(workdir, pages(40))
    result = plan.apply(client, plan.make_plan(client, path), progress=False)
    assert result.ok, result.table().to_string()
    fault = sandbox.control.faults()[0]
    assert fault["fired"] >= 10  # the 429s did happen
    assert set(stored(sandbox)) == {f"messenger:{p}" for p in pages(40)}
    sandbox.control.clear_faults()
    assert not plan.make_plan(client, path).pending


@pytest.mark.parametrize("action", ["commit_then_error", "commit_then_drop"])
def test_create_whose_answer_is_lost_is_not_duplicated(sandbox, client, workdir, action):
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, action=action,
                              status=500, code=20500, times=3)
    path = inventory(workdir, pages(6))
    result = plan.apply(client, plan.make_plan(client, path), progress=False)
    assert result.ok, result.table().to_string()
    assert sandbox.control.faults()[0]["fired"] == 3
    assert set(stored(sandbox)) == {f"messenger:{p}" for p in pages(6)}  # stored() fails on a duplicate


@pytest.mark.parametrize("action", ["commit_then_error", "commit_then_drop"])
def test_delete_whose_answer_is_lost_is_reconciled_not_failed(sandbox, client, workdir, action):
    plan.apply(client, plan.make_plan(client, inventory(workdir, pages(6))), progress=False)
    sandbox.control.add_fault(product="conversations", method="DELETE", action=action, status=500, code=20500,
                              times=3)
    calls = []
    client.http_client.listeners.append(lambda method, url, **rest: calls.append((method, url)))
    pruning = plan.make_plan(client, inventory(workdir, pages(1), prune=True, name="pruned.yaml"))
    result = plan.apply(client, pruning, progress=False)
    assert result.ok, result.table().to_string()
    assert sandbox.control.faults()[0]["fired"] == 3
    assert set(stored(sandbox)) == {"messenger:500000"}
    deletes = [url for method, url in calls if method == "DELETE"]
    assert len(deletes) == len(set(deletes)) == 5  # the unanswered deletes were looked up, not sent again
    assert sum(1 for method, url in calls if method == "GET" and url in deletes) == 3


def test_30_percent_429s_with_retry_after_wait_it_out_with_jitter(sandbox, client, monkeypatch):
    from flexops import addresses

    waits = []
    monkeypatch.setattr(retry, "sleep", waits.append)
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, status=429, code=20429,
                              retry_after=2, times=5)
    spec = addresses.MessengerAddress.from_params(page_id="11111", studio_flow_sid=sandbox.demo["messaging_flow_sid"])
    assert addresses.create(client, spec).address == "messenger:11111"
    assert len(waits) == 5 and all(2 <= w <= 2.4 for w in waits)  # never sooner than Twilio asked
    assert len(set(waits)) > 1  # jittered: throttled workers do not all come back at the same instant


def test_credentials_refused_while_planning_exit_3(sandbox, workdir):
    sandbox.control.add_fault(product="conversations", method="GET", status=401, code=20003,
                              message="Authenticate")
    planned = cli("plan", inventory(workdir, ["11111"]))
    assert planned.exit_code == 3 and "20003" in planned.output


def test_permanent_failure_is_reported_with_its_code_and_the_rest_continue(sandbox, client, workdir):
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, status=400, code=21999,
                              message="Injected refusal", times=1)
    path = inventory(workdir, pages(5))
    result = cli("apply", path, "--yes", "--no-progress")
    assert result.exit_code == 1, result.output
    assert "FAILED create messenger:" in result.output and "21999" in result.output
    assert len(stored(sandbox)) == 4
    (folder,) = [p for p in (workdir / "runs").iterdir() if p.is_dir()]
    manifest = json.loads((folder / "manifest.json").read_text())
    results = json.loads((folder / "results.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_code"] == 1
    (failed,) = [o for o in results["apply"]["outcomes"] if o["status"] == "failed"]
    assert failed["code"] == 21999 and failed["http_status"] == 400
    assert results["summary"]["status"] == "partial failure"
    rerun = cli("apply", path, "--yes", "--no-progress")  # converges: only the missing one is created
    assert rerun.exit_code == 0, rerun.output
    assert "1 to create" in rerun.output and len(stored(sandbox)) == 5


def test_a_create_meeting_an_existing_address_converges(sandbox, client, workdir):
    path = inventory(workdir, ["11111"])
    stale = plan.make_plan(client, path)  # planned while absent
    client.conversations.v1.address_configurations.create(type="messenger", address="messenger:11111",
                                                          friendly_name="made meanwhile")
    (outcome,) = plan.apply(client, stale, progress=False).outcomes
    assert outcome.status == "ok" and outcome.result == "already existed: updated"
    assert stored(sandbox)["messenger:11111"]["friendly_name"] == "Page 11111"


# --- the account lock ----------------------------------------------------------------------------------------

def test_lock_held_refuses_with_holder_and_age(sandbox, client, workdir):
    path = inventory(workdir, ["11111"])
    with AccountLock(client.account_sid, "other-run"):
        result = cli("apply", path, "--yes", "--no-progress")
        assert result.exit_code == 1
        assert "another apply holds the lock" in result.output and "run other-run" in result.output
        assert f"pid {os.getpid()}" in result.output and re.search(r"held for \d+s", result.output)
        with pytest.raises(LockHeld):
            plan.apply(client, plan.make_plan(client, path), progress=False)
    assert stored(sandbox) == {}
    assert cli("apply", path, "--yes", "--no-progress").exit_code == 0
    assert not list((workdir / "locks").glob("*.lock"))  # released


def write_lock(workdir, account_sid, **holder):
    record = {"run_id": "ghost", "pid": 1, "host": socket.gethostname(), "started": "2020-01-01T00:00:00+00:00",
              "token": "t", **holder}
    (workdir / "locks").mkdir(exist_ok=True)
    (workdir / "locks" / f"{account_sid}.lock").write_text(json.dumps(record))


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("holder", ["dead", "reused"])
@pytest.mark.slow  # starts a process
def test_stale_lock_of_a_dead_process_is_taken_over(sandbox, client, workdir, holder):
    # reused: the pid runs again, but as another process (its start time differs from the recorded one)
    pid = {"dead": dead_pid, "reused": os.getpid}[holder]()
    write_lock(workdir, client.account_sid, pid=pid, pid_started=1000.0)
    result = cli("apply", inventory(workdir, ["11111"]), "--yes", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "took over a stale lock held by run ghost" in result.output


def test_lock_from_another_host_needs_break_lock(sandbox, client, workdir):
    write_lock(workdir, client.account_sid, host="elsewhere.example")
    path = inventory(workdir, ["11111"])
    refused = cli("apply", path, "--yes", "--no-progress")
    assert refused.exit_code == 1 and "on host elsewhere.example" in refused.output
    assert "--break-lock" in refused.output
    broken = cli("apply", path, "--yes", "--no-progress", "--break-lock")
    assert broken.exit_code == 0, broken.output
    write_lock(workdir, client.account_sid, host="elsewhere.example")
    breaker = AccountLock(client.account_sid).acquire(break_lock=True)
    assert breaker.took_over["host"] == "elsewhere.example"
    breaker.release()
    assert AccountLock(client.account_sid).holder() is None


@pytest.mark.slow  # starts a process
def test_break_lock_never_breaks_a_holder_still_running_here(sandbox, client, workdir):
    import psutil

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(workdir, client.account_sid, pid=holder.pid, pid_started=psutil.Process(holder.pid).create_time())
        path = inventory(workdir, ["11111"])
        refused = cli("apply", path, "--yes", "--no-progress", "--break-lock")
        assert refused.exit_code == 1 and "still running on this host" in refused.output
        assert f"kill {holder.pid}" in refused.output and "run ghost" in refused.output
        assert stored(sandbox) == {}
    finally:
        holder.kill()
        holder.wait()
    assert cli("apply", path, "--yes", "--no-progress").exit_code == 0  # dead now: taken over without a flag


def test_the_lock_is_per_user_not_per_working_folder(monkeypatch, tmp_path):
    from flexops import lock

    monkeypatch.delenv("FLEXOPS_LOCK_DIR", raising=False)
    monkeypatch.setenv("HOME", os.fspath(tmp_path / "home"))
    for folder in ("project", "project/notebooks"):  # a shell in the project, a JupyterLab kernel in notebooks/
        (tmp_path / folder).mkdir(parents=True)
        monkeypatch.chdir(tmp_path / folder)
        assert AccountLock("AC" + "1" * 32).path == tmp_path / "home" / ".flexops" / "locks" / f"AC{'1' * 32}.lock"
    assert [age_text(s) for s in (45, 75, 7500, 200000)] == ["45s", "1m 15s", "2h 05m", "2d 7h"]


# --- CLI -----------------------------------------------------------------------------------------------------

def test_cli_refuses_without_tty_or_yes_and_dry_run_changes_nothing(sandbox, workdir):
    refused = cli("apply", EXAMPLE, "--no-progress")
    assert refused.exit_code == 2 and "no terminal to ask on" in refused.output
    dry = cli("apply", EXAMPLE, "--dry-run")
    assert dry.exit_code == 0 and "3 to create" in dry.output
    planned = cli("plan", EXAMPLE, "--out", workdir / "plan.json")
    assert planned.exit_code == 0 and json.loads((workdir / "plan.json").read_text())["counts"]["create"] == 3
    assert stored(sandbox) == {} and not (workdir / "runs").exists()
    bad = cli("apply", inventory(workdir, ["12"]), "--yes")
    assert bad.exit_code == 2 and "page_id" in bad.output and "line 5" not in bad.output
    assert cli("apply", EXAMPLE, "--yes", "--concurrency", "0").exit_code == 2


@pytest.mark.parametrize("command, says", [
    ("plan", ["YAML or CSV", "Changes nothing", "Exit codes: 0 planned 2 bad FILE"]),
    ("apply", ["--yes", "--concurrency", "429", "looked up before any retry", "lock", "rollback",
               "1 some changes failed", "130 interrupted"]),
    ("rollback", ["`latest`", "--force", "an audited run of its own", "1 refused", "finished by running it again"])])
def test_help_says_what_a_user_needs(command, says):
    shown = cli(command, "--help")
    assert shown.exit_code == 0
    text = " ".join(shown.output.split())
    for phrase in says:
        assert phrase in text, phrase


def test_cli_apply_is_an_audited_run(sandbox, workdir):
    result = cli("apply", EXAMPLE, "--yes", "--no-progress")
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in (workdir / "runs").iterdir() if p.is_dir()]
    assert {"manifest.json", "audit.jsonl", "results.json"} <= {p.name for p in folder.iterdir()}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["target"]["kind"] == "sandbox"
    assert (manifest["audit"]["lines"], manifest["audit"]["changes"]) == (6, 3)  # a sent + an answered line each
    ok, _, _ = run_folder.verify_run(folder.name)
    assert ok
    lines = audit.calls(folder / "audit.jsonl")
    assert [(r["method"], r["status"]) for r in lines] == [("POST", 201)] * 3
    assert sandbox.demo["auth_token"] not in (folder / "audit.jsonl").read_text()


# --- kill -9 in the middle of a 200-address apply ------------------------------------------------------------

def kill_9_during_apply(sandbox, workdir, path, after):
    """Start `flexops apply PATH --yes` in a process, kill -9 it once `after` addresses exist, let the calls it had
    in flight land (the sandbox finishes them, as Twilio would), and return how many addresses exist then."""
    sandbox.control.set_latency(60)
    proc = subprocess.Popen([sys.executable, "-m", "flexops.cli", "apply", os.fspath(path), "--yes", "--no-progress"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(stored(sandbox)) < after:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.5)
    sandbox.control.set_latency(0)
    return len(stored(sandbox))


@pytest.mark.slow  # starts a process
def test_kill_9_mid_apply_then_rerun_converges(sandbox, client, workdir):
    path = inventory(workdir, pages(200))
    done_before = kill_9_during_apply(sandbox, workdir, path, after=40)
    assert 40 <= done_before < 200
    rerun = cli("apply", path, "--yes", "--no-progress")
    assert rerun.exit_code == 0, rerun.output
    assert "took over a stale lock" in rerun.output
    assert f"{200 - done_before} to create, 0 to update, 0 to delete, {done_before} unchanged" in rerun.output
    assert set(stored(sandbox)) == {f"messenger:{p}" for p in pages(200)}  # stored() fails on a duplicate
    assert not plan.make_plan(client, path).pending
    for folder in (p for p in (workdir / "runs").iterdir() if p.is_dir()):
        for line in (folder / "audit.jsonl").read_text().splitlines():
            json.loads(line)  # every line of the killed run too


@pytest.mark.slow  # starts a process
def test_ctrl_c_lets_running_changes_finish_and_records_an_interrupted_run(sandbox, client, workdir):
    path = inventory(workdir, pages(200))
    sandbox.control.set_latency(200)
    proc = subprocess.Popen([sys.executable, "-m", "flexops.cli", "apply", os.fspath(path), "--yes", "--no-progress"],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(stored(sandbox)) < 16:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    (folder,) = [p for p in (workdir / "runs").iterdir() if p.is_dir()]
    results = json.loads((folder / "results.json").read_text())
    assert json.loads((folder / "manifest.json").read_text())["status"] == "interrupted"
    summary = results["summary"]
    assert summary["interrupted"] and summary["failed"] == 0 and summary["ok"] == len(stored(sandbox)) < 200
    assert not list((workdir / "locks").glob("*.lock"))  # released on the way out
    sandbox.control.set_latency(0)
    assert cli("apply", path, "--yes", "--no-progress").exit_code == 0
    assert len(stored(sandbox)) == 200


# --- runbook 40 ----------------------------------------------------------------------------------------------

@pytest.mark.notebook
def test_runbook_40_applies_headless_with_confirm_as_an_audited_run(sandbox, workdir):
    path = inventory(workdir, ["11111", "22222"])
    record = runs.execute(ROOT / "notebooks" / "40_apply_inventory.ipynb",
                          {"inventory": os.fspath(path), "confirm": True}, runs_dir=workdir / "runs")
    assert record.succeeded, record.error
    results = record.results()
    assert results["plan"]["counts"]["create"] == 2 and results["summary"]["ok"] == 2
    assert len(stored(sandbox)) == 2
    assert [r["status"] for r in record.audit()] == [201, 201]
    executed = (record.folder / "output.ipynb").read_text()
    assert f"flexops rollback {record.folder.name} would" in executed  # the undo preview of this very run
    assert executed.count("created by the run: delete it") == 2
    assert len(stored(sandbox)) == 2  # the preview changed nothing


def test_a_headless_runbook_ends_interrupted_or_failed_like_the_cli():
    from flexops.exceptions import CheckFailed

    change = plan.Change("create", "messenger:11111")
    notebook.raise_for_outcome(plan.ApplyResult([plan.Outcome(change, "ok")]))  # nothing to raise
    with pytest.raises(KeyboardInterrupt, match="1 change\\(s\\) not started"):
        notebook.raise_for_outcome(plan.ApplyResult([plan.Outcome(change, "skipped")], interrupted=True))
    with pytest.raises(CheckFailed, match="1 of 1 changes failed"):
        notebook.raise_for_outcome(plan.ApplyResult([plan.Outcome(change, "failed", code=21999)]))


def test_interactive_apply_button_runs_the_same_apply(sandbox, client, workdir):
    the_plan = plan.make_plan(client, inventory(workdir, ["11111"]))
    button = ui.confirm_panel(client, the_plan)
    assert stored(sandbox) == {}  # nothing before the click
    button.click()
    assert button.result.ok and set(stored(sandbox)) == {"messenger:11111"}
    assert button.disabled


def test_apply_params_validate_before_any_call(workdir):
    path = inventory(workdir, ["11111"])
    params = apply_params(inventory=path.name, prune="none", confirm="true", concurrency="4")
    assert params["inventory"] == os.fspath(path) and params["prune"] is None and params["concurrency"] == 4
    with pytest.raises(ValidationError, match="^inventory: file not found"):
        apply_params(inventory="nope.yaml")
    with pytest.raises(ValidationError, match="^concurrency"):
        apply_params(inventory=path.name, concurrency=99)
