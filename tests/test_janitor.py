"""`flexops janitor` on the sandbox: stale conversations are found (and only those), closed as an audited run,
verified afterwards (the customer's next message starts a new conversation and a Studio execution, and the trace is
healthy again), never rolled back, and closed exactly once through faults, 429s and a kill -9."""
import json
import time

import pytest

from flexops import audit, janitor, repair_trace, run_folder, trace
from flexops.exceptions import ValidationError
from processes import flexops_stopped_when
from test_plan import cli, workdir  # noqa: F401  (fixture)

PAGE = "104738392011234"
OTHER_PAGE = "204738392011235"


def address(client, sandbox, page=PAGE):
    return client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{page}", auto_creation_enabled=True, auto_creation_type="studio",
        auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"])


def customers(count, start=7000001):
    return [str(start + i) for i in range(count)]


def conversations_with_ended_tasks(client, sandbox, senders, page=PAGE):
    """Each sender writes once; Flex's task then ends (canceled) and the conversation stays active: stale."""
    tasks = client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"]).tasks
    found = []
    for sender in senders:
        delivered = sandbox.control.simulate_inbound(page, sender, "Hello?")
        tasks(delivered["task_sid"]).update(assignment_status="canceled", reason="agent left")
        found.append(delivered["conversation_sid"])
    return found


def states(client):
    return {c.sid: c.state for c in client.conversations.v1.conversations.list(page_size=100)}


def closes(folder):
    """The answered close calls of a run's audit trail, per conversation SID."""
    found = {}
    for record in audit.calls(audit.read(folder / run_folder.AUDIT)):
        if record.get("method") == "POST" and (record.get("parameters") or {}).get("State") == "closed":
            found.setdefault(record["path"].rsplit("/", 1)[-1], []).append(record.get("status"))
    return found


def test_the_plan_holds_only_stale_conversations(client, sandbox):
    address(client, sandbox)
    stale, = conversations_with_ended_tasks(client, sandbox, ["7000001"])
    busy = sandbox.control.simulate_inbound(PAGE, "7000002", "Still waiting")  # its task is still pending
    before = states(client)
    plan = janitor.find_stale(client, idle="0s")
    assert [s.conversation_sid for s in plan.stale] == [stale]
    assert plan.stale[0].customer == "messenger:…0001" and plan.stale[0].page_id == PAGE
    assert "no open Flex task" in plan.stale[0].reason
    assert plan.skipped == {"open Flex task": 1} and plan.scanned == 2
    assert busy["conversation_sid"] not in json.dumps(plan.to_dict()["stale"])
    assert "7000001" not in json.dumps(plan.to_dict())  # the customer is masked everywhere in the plan
    assert janitor.find_stale(client, idle="1h").stale == []  # the last message is too recent
    assert janitor.find_stale(client, [OTHER_PAGE], idle="0s").skipped == {"another Page": 2}
    assert states(client) == before  # planning changes nothing


def test_bad_input_is_named_before_any_call(client, sandbox):
    with pytest.raises(ValidationError, match="idle"):
        janitor.find_stale(client, idle="soon")
    with pytest.raises(ValidationError, match="page"):
        janitor.find_stale(client, ["12ab"])
    assert cli("janitor", "--idle", "3 fortnights").exit_code == 2


def test_without_yes_and_no_terminal_nothing_changes(client, sandbox, workdir):
    address(client, sandbox)
    conversations_with_ended_tasks(client, sandbox, customers(2))
    result = cli("janitor", "--idle", "0s")
    assert result.exit_code == 2 and "without confirmation" in result.output
    assert set(states(client).values()) == {"active"}


def test_close_verify_then_the_next_message_reaches_flex_again(client, sandbox, workdir):
    address(client, sandbox)
    first, second = conversations_with_ended_tasks(client, sandbox, customers(2))
    # Twilio stamps to the second and lists conversations newest first: the follow-up comes a second later, so that
    # it is the Page's newest message whatever the order of the two conversations created within one second
    time.sleep(1.05)
    again = sandbox.control.simulate_inbound(PAGE, "7000001", "Hello again?")  # swallowed by the stale conversation
    assert again["conversation_sid"] == first and not again["studio_execution_sid"]
    assert trace.trace(client, PAGE).broken_hop == "conversation"

    result = cli("janitor", "--idle", "0s", "--yes", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "cannot be undone" in result.output and "messenger:…0001" in result.output
    assert states(client) == {first: "closed", second: "closed"}
    folder = run_folder.find_run("latest")
    results = json.loads((folder / run_folder.RESULTS).read_text())
    check = results["verify"]
    assert check["states"] == {first: "closed", second: "closed"} and check["all_closed"] and check["ok"]
    traced, = check["traces"]  # one trace for the Page of both: no message since, every hop's configuration passes
    assert traced["target"] == f"messenger:{PAGE}" and traced["verdict"] == "no_message" and traced["ok"]
    assert "send a test message" in traced["note"] and "send a test message" in result.output
    assert results["summary"]["verify_failed"] == 0
    assert {s["conversation_sid"] for s in results["plan"]["stale"]} == {first, second}
    assert closes(folder) == {first: [200], second: [200]}
    assert run_folder.verify_run(folder)[0]

    closed_at = repair_trace.now()
    time.sleep(1)  # a message stamped in the closing's own second is not taken as written after it
    reply = sandbox.control.simulate_inbound(PAGE, "7000001", "Is anyone there now?")
    assert reply["conversation_created"] and reply["conversation_sid"] not in (first, second)
    assert reply["studio_execution_sid"] and reply["task_sid"]
    healed, = repair_trace.trace_pages(client, [PAGE], closed_at)  # the check after closing, with a new message
    assert healed["ok"] and healed["verdict"] in ("reached_flex", "reached_agent"), healed
    assert not healed["note"] and not healed["remedy"]

    rerun = cli("janitor", "--idle", "0s", "--yes", "--no-progress")  # converged: nothing left to close
    assert rerun.exit_code == 0 and "Nothing to do" in rerun.output


def test_a_page_still_broken_after_closing_fails_the_janitor_with_the_trace_remedy(client, sandbox, workdir):
    address(client, sandbox)
    stale, = conversations_with_ended_tasks(client, sandbox, customers(1))
    legacy = client.flex_api.v1.flex_flow.create(  # a second breakage on the same path: a legacy Flex Flow
        friendly_name="Old Messenger", chat_service_sid=sandbox.demo["chat_service_sid"], channel_type="facebook",
        contact_identity=f"messenger:{PAGE}", integration_type="studio",
        integration_flow_sid=sandbox.demo["messaging_flow_sid"], enabled=True)
    result = cli("janitor", "--idle", "0s", "--yes", "--no-progress")
    assert result.exit_code == 1, result.output
    assert states(client)[stale] == "closed"  # the close itself worked
    assert f"flexops legacy retire {legacy.sid}" in result.output  # the trace's remedy
    results = json.loads((run_folder.find_run("latest") / run_folder.RESULTS).read_text())
    traced, = results["verify"]["traces"]
    assert not traced["ok"] and traced["broken_hop"] == "address" and not results["verify"]["ok"]
    assert results["summary"]["status"] == "verify failed" and results["summary"]["verify_failed"] == 1
    assert json.loads((run_folder.find_run("latest") / "manifest.json").read_text())["exit_code"] == 1


def test_a_conversation_that_changed_since_the_plan_is_left_alone(client, sandbox):
    """Closing cannot be undone, so each conversation is looked at again right before: a message since the plan
    or a Flex task opened for it leaves it active (skipped, exit 1), the others are closed."""
    address(client, sandbox)
    wrote, taken, idle_one = conversations_with_ended_tasks(client, sandbox, customers(3))
    plan = janitor.find_stale(client, idle="0s")
    assert {s.conversation_sid for s in plan.stale} == {wrote, taken, idle_one}
    time.sleep(1)  # Twilio stamps to the second
    sandbox.control.simulate_inbound(PAGE, "7000001", "Me again")  # lands in `wrote` (it is still active)
    client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"]).tasks.create(
        workflow_sid=sandbox.demo["workflow_sid"], attributes=json.dumps({"conversationSid": taken}))
    recorded = {}
    result, check = janitor.close_recorded(client, plan, recorded.__setitem__, lock=False)
    by_sid = {o.conversation_sid: o for o in result.outcomes}
    assert by_sid[wrote].status == "skipped" and "a new message since the plan" in by_sid[wrote].result
    assert by_sid[taken].status == "skipped" and "Flex task was opened" in by_sid[taken].result
    assert by_sid[idle_one].status == "ok"
    assert states(client) == {wrote: "active", taken: "active", idle_one: "closed"}
    assert check["states"] == {idle_one: "closed"} and check["all_closed"]  # only the ones it closed
    assert result.exit_code == 1 and recorded["summary"]["skipped"] == 2


def test_rollback_of_a_janitor_run_refuses_even_with_force(client, sandbox, workdir):
    address(client, sandbox)
    closed, = conversations_with_ended_tasks(client, sandbox, customers(1))
    assert cli("janitor", "--idle", "0s", "--yes", "--no-progress").exit_code == 0
    run = run_folder.find_run("latest").name
    for extra in ((), ("--force",)):
        refused = cli("rollback", run, "--yes", *extra)
        assert refused.exit_code == 1, refused.output
        assert "cannot reopen a closed conversation" in refused.output and closed in refused.output
    assert states(client)[closed] == "closed"
    manifest = json.loads((run_folder.find_run("latest") / run_folder.MANIFEST).read_text())
    assert manifest["status"] == "refused" and manifest["command"] == "flexops rollback"


@pytest.mark.parametrize("action", ["commit_then_error", "commit_then_drop", "error"])
def test_failed_closes_are_reconciled_not_sent_twice(client, sandbox, workdir, monkeypatch, action):
    from flexops import retry

    monkeypatch.setattr(retry, "BACKOFF_BASE", 0.01)
    address(client, sandbox)
    made = conversations_with_ended_tasks(client, sandbox, customers(6))
    sandbox.control.add_fault(product="conversations", method="POST", path=r"/Conversations/CH[0-9a-f]{32}$",
                              action=action, status=500, code=20500, times=3)
    sandbox.control.add_fault(product="conversations", method="POST", probability=0.3, seed=2, status=429,
                              code=20429, retry_after=0)
    result = cli("janitor", "--idle", "0s", "--yes", "--no-progress")
    assert result.exit_code == 0, result.output
    assert sandbox.control.faults()[0]["fired"] == 3
    assert states(client) == {sid: "closed" for sid in made}
    answered = closes(run_folder.find_run("latest"))
    committed_twice = {sid: codes for sid, codes in answered.items() if codes.count(200) > 1}
    assert not committed_twice
    if action.startswith("commit"):  # the close did commit: the retry read it back instead of closing again
        assert sum(1 for codes in answered.values() if 200 not in codes) == 3


@pytest.mark.slow  # starts a process
def test_kill_9_mid_close_then_rerun_converges(client, sandbox, workdir):
    address(client, sandbox)
    made = conversations_with_ended_tasks(client, sandbox, customers(40))
    sandbox.control.set_latency(80)
    flexops_stopped_when(["janitor", "--idle", "0s", "--yes", "--no-progress", "--concurrency", "2"],
                         lambda: list(states(client).values()).count("closed") >= 5, workdir, timeout=90, poll=0.05)
    time.sleep(0.5)
    sandbox.control.set_latency(0)
    closed_before = list(states(client).values()).count("closed")
    assert 5 <= closed_before < 40
    rerun = cli("janitor", "--idle", "0s", "--yes", "--no-progress")
    assert rerun.exit_code == 0, rerun.output
    assert "took over a stale lock" in rerun.output
    assert f"{40 - closed_before} stale of {40 - closed_before} active" in rerun.output
    assert states(client) == {sid: "closed" for sid in made}
    assert janitor.find_stale(client, idle="0s").stale == []
