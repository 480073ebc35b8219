"""Rollback from a run's audit trail, against the sandbox: undo creates, updates and deletes; refuse (naming the
address and what changed) when an address changed since the run unless forced; settle lost answers from the
run's results, and calls a killed run had in flight (a `sent` line with no answer) against the account and its
plan; finish an interrupted rollback by running it again; refuse a trail that fails verification or no longer ends
where its manifest pinned it; every rollback is an audited run of its own."""
import json
import signal
import time
from pathlib import Path

import pytest

from flexops import audit, plan, rollback, run_folder, run_index
from flexops.exceptions import ValidationError

import test_plan
from processes import flexops_stopped_when
from test_plan import CREATE_PATH, cli, inventory, kill_9_during_apply, pages, stored

workdir = test_plan.workdir  # the fixture: run folders and locks under tmp_path


def last_run(workdir, command):
    folders = [f for f in (workdir / "runs").iterdir() if f"-{command}-" in f.name]
    return max(folders, key=lambda f: (f / "manifest.json").stat().st_mtime)


def essentials(addresses):
    return {a: (d["friendly_name"], json.dumps(d["auto_creation"], sort_keys=True)) for a, d in addresses.items()}


def test_rollback_undoes_creates_updates_and_deletes_and_can_itself_be_rolled_back(sandbox, workdir):
    first = inventory(workdir, ["11111", "22222", "33333"], name="first.yaml")
    assert cli("apply", first, "--yes", "--no-progress").exit_code == 0
    before = essentials(stored(sandbox))
    second = workdir / "second.yaml"
    second.write_text("""prune: true
defaults: {studio_flow: Messaging Flow}
addresses:
  - {page_id: "11111", friendly_name: Renamed, retry_count: 1}
  - {page_id: "22222", friendly_name: "Page 22222"}
  - {page_id: "44444", integration: webhook, webhook_url: "https://hooks.example/in"}
""")
    applied = cli("apply", second, "--yes", "--no-progress")
    assert applied.exit_code == 0 and "1 to create, 1 to update, 1 to delete" in applied.output
    after = essentials(stored(sandbox))
    run = last_run(workdir, "apply")

    undo = cli("rollback", run.name, "--yes", "--no-progress")
    assert undo.exit_code == 0, undo.output
    assert essentials(stored(sandbox)) == before  # 33333 re-created as it was, 11111 restored, 44444 gone
    folder = last_run(workdir, "rollback")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["command"] == "flexops rollback"
    assert sorted(r["method"] for r in audit.calls(folder / "audit.jsonl")) == ["DELETE", "POST", "POST"]
    assert run_folder.verify_run(folder.name)[0]
    twice = cli("rollback", run.name, "--yes", "--no-progress")  # 33333 is back (with a new SID): nothing to undo
    assert twice.exit_code == 0 and "Nothing to do" in twice.output, twice.output

    redo = cli("rollback", folder.name, "--yes", "--no-progress")  # the undo of the undo
    assert redo.exit_code == 0, redo.output
    assert essentials(stored(sandbox)) == after


def test_rollback_latest_undoes_the_latest_run_not_itself(sandbox, workdir):
    assert cli("apply", inventory(workdir, ["11111", "22222"]), "--yes", "--no-progress").exit_code == 0
    undo = cli("rollback", "latest", "--yes", "--no-progress")
    assert undo.exit_code == 0, undo.output
    assert stored(sandbox) == {}  # the rollback's own (newer) run folder was not taken for `latest`


def test_rollback_refuses_when_an_address_changed_since_the_run_unless_forced(sandbox, client, workdir):
    path = inventory(workdir, ["11111", "22222"])
    assert cli("apply", path, "--yes", "--no-progress").exit_code == 0
    run = last_run(workdir, "apply")
    sid = stored(sandbox)["messenger:11111"]["sid"]
    client.conversations.v1.address_configurations(sid).update(friendly_name="Edited by hand")

    refused = cli("rollback", run.name, "--yes", "--no-progress")
    assert refused.exit_code == 1
    assert "messenger:11111: changed since run" in refused.output
    assert "friendly_name: Page 11111 after the run, now Edited by hand" in refused.output
    assert "messenger:22222" not in refused.output
    assert len(stored(sandbox)) == 2  # nothing was changed
    refusal = last_run(workdir, "rollback")
    assert json.loads((refusal / "manifest.json").read_text())["status"] == "refused"
    assert json.loads((refusal / "results.json").read_text())["conflicts"][0]["address"] == "messenger:11111"

    forced = cli("rollback", run.name, "--yes", "--no-progress", "--force")
    assert forced.exit_code == 0, forced.output
    assert "forced: messenger:11111" in forced.output
    assert stored(sandbox) == {}


def test_an_interrupted_or_partly_failed_rollback_finishes_when_run_again(sandbox, workdir):
    assert cli("apply", inventory(workdir, ["11111", "22222", "33333"]), "--yes", "--no-progress").exit_code == 0
    run = last_run(workdir, "apply")
    sandbox.control.add_fault(product="conversations", method="DELETE", status=400, code=21999, times=1)
    partial = cli("rollback", run.name, "--yes", "--no-progress")
    assert partial.exit_code == 1 and "21999" in partial.output
    assert f"Run `flexops rollback {run.name}` again to finish" in partial.output
    assert len(stored(sandbox)) == 1
    # the two addresses already rolled back are not "changed since the run": no refusal, no --force needed
    again = cli("rollback", run.name, "--yes", "--no-progress")
    assert again.exit_code == 0, again.output
    assert "0 to create, 0 to update, 1 to delete" in again.output and stored(sandbox) == {}
    done = cli("rollback", run.name, "--yes", "--no-progress")
    assert done.exit_code == 0 and "Nothing to do" in done.output


def test_rollback_settles_a_lost_create_answer_from_the_run_results(sandbox, workdir):
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, action="commit_then_drop",
                              times=1)
    assert cli("apply", inventory(workdir, ["11111", "22222"]), "--yes", "--no-progress").exit_code == 0
    run = last_run(workdir, "apply")
    lines = audit.read(run / "audit.jsonl")
    assert any(r["status"] is None and r["error"] for r in audit.calls(lines))  # one answer never came
    items = rollback.touched(lines)
    assert any(t.final is rollback.UNKNOWN for t in items.values())  # the trail alone cannot tell...
    undo = cli("rollback", run.name, "--yes", "--no-progress")  # ...the run's results can
    assert undo.exit_code == 0, undo.output
    assert stored(sandbox) == {}


@pytest.mark.slow  # starts a process
def test_rollback_of_a_killed_run_undoes_the_calls_it_had_in_flight(sandbox, workdir):
    existing = kill_9_during_apply(sandbox, workdir, inventory(workdir, pages(120)), after=30)
    run = last_run(workdir, "apply")
    answered = [r for r in audit.calls(run / "audit.jsonl") if r.get("status") == 201]
    assert len(answered) < existing  # Twilio committed calls whose answers the killed process never got...
    in_flight = audit.summary(run / "audit.jsonl")["in_flight"]
    assert len(answered) + in_flight >= existing  # ...each of which has its sent line in the trail
    undo = cli("rollback", run.name, "--yes", "--no-progress")
    assert undo.exit_code == 0, undo.output
    assert f"{existing} to delete" in undo.output and stored(sandbox) == {}


def test_a_planned_change_the_trail_says_nothing_of_is_settled_against_the_account(sandbox, client, workdir):
    the_plan = plan.make_plan(client, inventory(workdir, ["11111", "22222", "33333"]))
    with run_folder.CommandRun("apply", runs_dir=workdir / "runs") as command_run:  # killed before any answer came
        command_run.record("plan", the_plan.to_dict())
    configs = client.conversations.v1.address_configurations
    flow = sandbox.demo["messaging_flow_sid"]
    configs.create(type="messenger", address="messenger:11111", friendly_name="Page 11111",  # as the run asked
                   auto_creation_enabled=True, auto_creation_type="studio", auto_creation_studio_flow_sid=flow,
                   auto_creation_studio_retry_count=3)
    configs.create(type="messenger", address="messenger:22222", friendly_name="someone else's")  # not the run's
    with pytest.raises(rollback.RollbackRefused) as refused:  # 33333 was never created: nothing to undo
        rollback.plan_rollback(client, command_run.run_id)
    (conflict,) = refused.value.conflicts
    assert conflict.address == "messenger:22222" and "planned, no answer recorded" in conflict.reason
    undo, _ = rollback.plan_rollback(client, command_run.run_id, force=True)
    assert [(c.action, c.address) for c in undo.changes] == [("delete", "messenger:11111")]


def test_an_update_whose_previous_state_was_not_recorded_cannot_be_rolled_back(sandbox, client, workdir):
    client.conversations.v1.address_configurations.create(type="messenger", address="messenger:11111")
    the_plan = plan.make_plan(client, inventory(workdir, ["11111"]))  # no audit attached while planning
    with run_folder.CommandRun("apply", runs_dir=workdir / "runs") as command_run:
        plan.apply(client, the_plan, progress=False, audit=audit.AuditLog(command_run.audit_path,
                                                                          command_run.run_id))
        command_run.finish("succeeded", 0)
    with pytest.raises(rollback.RollbackRefused, match="messenger:11111: the state before the run is not in"):
        rollback.plan_rollback(client, command_run.run_id)
    the_undo, conflicts = rollback.plan_rollback(client, command_run.run_id, force=True)
    assert the_undo.changes == [] and not conflicts[0].restorable


def test_unknown_or_tampered_runs_are_refused_before_any_change(sandbox, client, workdir):
    assert cli("rollback", "no-such-run", "--yes").exit_code == 2
    assert cli("apply", inventory(workdir, ["11111"]), "--yes", "--no-progress").exit_code == 0
    run = last_run(workdir, "apply")
    text = (run / "audit.jsonl").read_text()
    (run / "audit.jsonl").write_text(text.replace("Page 11111", "Page 99999"))
    with pytest.raises(ValidationError, match="fails verification"):
        rollback.plan_rollback(client, run.name)
    assert len(stored(sandbox)) == 1


@pytest.mark.slow  # starts a process
def test_a_create_in_flight_when_the_run_is_killed_is_in_the_trail_and_rolled_back(sandbox, workdir):
    """kill -9 while Twilio holds the create: the trail has its `sent` line and no answer, the chain verifies, the
    run counts one call in flight; once Twilio commits it, rollback finds it from the trail and deletes it."""
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, action="latency",
                              latency_ms=3000, times=1)
    # killed while Twilio is holding the create: the answer will not come
    proc = flexops_stopped_when(["apply", inventory(workdir, ["11111"]), "--yes", "--no-progress"],
                                lambda: sandbox.control.faults()[0]["fired"], workdir, timeout=30, poll=0.01)
    assert proc.returncode == -signal.SIGKILL
    run = last_run(workdir, "apply")
    trail = run / "audit.jsonl"
    (sent,) = audit.read(trail)  # no answer line: the process died waiting for it
    assert (sent["event"], sent["method"], sent["path"]) == ("sent", "POST", "/v1/Configuration/Addresses")
    assert sent["parameters"]["Address"] == "messenger:11111" and sent["call"]
    assert audit.verify(trail)[0] and run_folder.verify_run(run.name)[0]
    assert audit.summary(trail)["in_flight"] == 1
    assert "in flight, never answered" in run_index.describe(run)
    (item,) = rollback.touched(audit.read(trail)).values()  # the trail alone names it, outcome unknown
    assert (item.address, item.initial, item.final) == ("messenger:11111", None, rollback.UNKNOWN)

    deadline = time.monotonic() + 10  # Twilio commits the create after all
    while not stored(sandbox):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    undo = cli("rollback", run.name, "--yes", "--no-progress")
    assert undo.exit_code == 0, undo.output
    assert "1 to delete" in undo.output and stored(sandbox) == {}


@pytest.mark.slow  # starts a process and a kernel
def test_runbook_10_killed_while_its_create_is_in_flight_is_settled_by_its_sent_request(sandbox, workdir):
    """Runbook 10 saves no plan: a create killed in flight is settled from its `sent` line's parameters — once Twilio
    has committed it as asked, rollback deletes it (before, it could only say "cannot restore")."""
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, action="latency",
                              latency_ms=3000, times=1)
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "10_create_messenger_address.ipynb"
    flexops_stopped_when(["run", notebook, "-p", "page_id", "11111"], lambda: sandbox.control.faults()[0]["fired"],
                         workdir, timeout=120)  # the CLI and its kernel, while Twilio holds the create
    run = last_run(workdir, "10_create_messenger_address")
    (sent,) = [r for r in audit.read(run / "audit.jsonl") if r.get("method") == "POST"]
    assert sent["event"] == "sent"
    deadline = time.monotonic() + 10  # Twilio commits the create after all
    while not stored(sandbox):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    undo = cli("rollback", run.name, "--yes", "--no-progress")
    assert undo.exit_code == 0, undo.output
    assert "1 to delete" in undo.output and stored(sandbox) == {}


def test_a_run_whose_last_audit_line_was_removed_is_refused(sandbox, client, workdir):
    assert cli("apply", inventory(workdir, ["11111", "22222"]), "--yes", "--no-progress").exit_code == 0
    run = last_run(workdir, "apply")
    text = (run / "audit.jsonl").read_text().splitlines()
    (run / "audit.jsonl").write_text("\n".join(text[:-1]) + "\n")  # the chain still verifies...
    assert audit.verify(run / "audit.jsonl")[0]
    with pytest.raises(ValidationError, match="fails verification.*the manifest recorded 4"):
        rollback.plan_rollback(client, run.name)  # ...but the manifest pinned one more line
    refused = cli("rollback", run.name, "--yes", "--no-progress")
    assert refused.exit_code == 2 and "fails verification" in refused.output
    assert len(stored(sandbox)) == 2
