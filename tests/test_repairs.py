"""Repairs on the sandbox, through the CLI: legacy Flex Flows retired (deleted or disabled, optionally replaced by
the Page's Conversations address) and workflows that cannot route Messenger tasks fixed — each planned, confirmed,
applied, verified (the trace shows the hop healthy again), undone exactly by `flexops rollback`, refused on drift,
converging under injected 429/500 faults and after kill -9."""
import json
import signal
import time
from datetime import datetime

import pytest

from flexops import addresses, audit, legacy, repair_trace, repairs, routing, trace
from flexops.address_spec import MessengerAddress

import test_plan
from processes import flexops_stopped_when
from test_plan import cli

workdir = test_plan.workdir  # the fixture: run folders and locks under tmp_path
FACEBOOK_ONLY = "channelType == 'facebook'"


def page_of(sandbox, index=0):
    return sandbox.demo["pages"][index]["page_id"]


def make_legacy_flow(client, demo, page_id, enabled=True, name=None):
    return client.flex_api.v1.flex_flow.create(
        friendly_name=name or f"Legacy Messenger {page_id}", chat_service_sid=demo["chat_service_sid"],
        channel_type="facebook", contact_identity=f"messenger:{page_id}", enabled=enabled,
        integration_type="studio", integration_flow_sid=demo["messaging_flow_sid"], integration_retry_count=2)


def flows(client):
    return {f.sid: repairs.flow_state(repairs.flow_json(f)) for f in client.flex_api.v1.flex_flow.list()}


def make_address(client, demo, page_id):
    return addresses.create(client, MessengerAddress.from_params(
        page_id=page_id, integration="studio", studio_flow_sid=demo["messaging_flow_sid"], retry_count=3))


def facebook_only(client, demo, expression=FACEBOOK_ONLY):
    """Flex's workflow as a legacy Flex Flow setup left it: one filter for facebook, no default filter."""
    config = {"task_routing": {"filters": [{"filter_friendly_name": "Messenger", "expression": expression,
                                            "targets": [{"queue": demo["queue_sid"]}]}]}}
    return client.taskrouter.v1.workspaces(demo["workspace_sid"]).workflows(demo["workflow_sid"]).update(
        configuration=json.dumps(config))


def workflow_config(client, demo):
    workflow = client.taskrouter.v1.workspaces(demo["workspace_sid"]).workflows(demo["workflow_sid"]).fetch()
    return json.loads(workflow.configuration)


def last_run(workdir, command):
    folders = [f for f in (workdir / "runs").iterdir() if f"-{command}-" in f.name]
    return max(folders, key=lambda f: (f / "manifest.json").stat().st_mtime)


def hop(result, name):
    return next(h for h in result.hops if h.hop == name)


# --- expressions --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("before, after", [
    ("channelType == 'facebook'", "channelType IN ['facebook', 'messenger']"),
    ('channelType=="facebook" AND priority > 1', 'channelType IN ["facebook", "messenger"] AND priority > 1'),
    ("channelType IN ['sms', 'facebook']", "channelType IN ['sms', 'facebook', 'messenger']"),
    ("task.channelType == 'facebook'", "task.channelType IN ['facebook', 'messenger']"),
    ("channelType IN ['facebook', 'messenger']", None),
    ("channelType != 'facebook'", None),
    ("mychannelType == 'facebook'", None),
])
def test_rewrite_keeps_the_legacy_channel_and_adds_messenger(before, after):
    assert routing.rewrite(before) == after


def test_a_legacy_only_filter_is_found_with_its_fix_and_an_unfixable_one_is_left_for_a_person():
    workflow = {"sid": "WW" + "1" * 32, "friendly_name": "Assign", "configuration": json.dumps({"task_routing": {
        "filters": [{"filter_friendly_name": "FB", "expression": FACEBOOK_ONLY, "targets": [{"queue": "WQ1"}]},
                    {"filter_friendly_name": "odd", "expression": "channelType CONTAINS 'faceb'",
                     "targets": [{"queue": "WQ1", "expression": "task.channelType == 'facebook'"}]},
                    {"filter_friendly_name": "all", "expression": "1 == 1", "targets": [{"queue": "WQ1"}]}]}})}
    judged = routing.analyse(workflow, [{"skills": ["x"]}])
    assert judged["routes_messenger"]  # the catch-all filter still takes them ...
    found = {(f["where"], f["fix"]) for f in judged["findings"]}  # ... but not where the legacy filters meant
    assert found == {("filter 'FB'", "channelType IN ['facebook', 'messenger']"), ("filter 'odd'", None),
                     ("filter 'odd' target 1", "task.channelType IN ['facebook', 'messenger']")}
    fixed = routing.fixed_configuration(workflow["configuration"], judged["findings"])
    assert not routing.analyse({**workflow, "configuration": fixed}, [{}])["findings"][1:]


# --- legacy Flex Flows ---------------------------------------------------------------------------------------

def test_list_shows_each_flex_flow_with_the_address_for_its_page_and_the_collision(sandbox, client):
    page, other = page_of(sandbox), page_of(sandbox, 1)
    held = make_legacy_flow(client, sandbox.demo, page)
    make_address(client, sandbox.demo, page)
    quiet = make_legacy_flow(client, sandbox.demo, other, enabled=False)
    result = cli("legacy", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["sid"]: r for r in json.loads(result.output)}
    assert rows[held.sid]["address"] == f"messenger:{page}" and rows[held.sid]["address_sid"].startswith("IG")
    assert rows[held.sid]["collides"] is True
    assert rows[quiet.sid]["collides"] is False and rows[quiet.sid]["address_sid"] is None
    table = cli("legacy", "list")
    assert held.sid in table.output and "collides" in table.output


def test_retire_with_replace_moves_the_page_and_rollback_puts_the_flex_flow_back_exactly(sandbox, client, workdir):
    page = page_of(sandbox)
    flow = make_legacy_flow(client, sandbox.demo, page)
    before = flows(client)[flow.sid]
    assert hop(trace.trace(client, page), "address").status == "fail"  # no address, the Flex Flow holds the Page
    dry = cli("legacy", "retire", flow.sid, "--replace", "--dry-run")
    assert dry.exit_code == 0 and "1 to create, 0 to update, 1 to delete" in dry.output
    assert flow.sid in flows(client) and not (workdir / "runs").exists()

    done = cli("legacy", "retire", flow.sid, "--replace", "--yes")
    assert done.exit_code == 0, done.output
    assert "s between retiring the Flex Flow and creating the address" in done.output
    assert f"verified messenger:{page}: as the repair made it" in done.output
    assert f"verified messenger:{page}: trace: No inbound message" in done.output  # the Page traced after it
    assert "note: no message since the repair" in done.output
    assert flow.sid not in flows(client)
    config = addresses.find(client, page)
    assert config.auto_creation["studio_flow_sid"] == sandbox.demo["messaging_flow_sid"]
    assert hop(trace.trace(client, page), "address").status == "pass"
    assert sandbox.control.simulate_inbound(page, "messenger:777001", "hi")["delivered"]
    run = last_run(workdir, "legacy-retire")
    results = json.loads((run / "results.json").read_text())
    assert results["repair"]["steps"][0]["before"]["integration"]["retry_count"] == 2  # the full configuration
    traced = [r for r in results["verify"] if r["kind"] == "trace"]
    assert [(r["target"], r["verdict"], r["ok"]) for r in traced] == [(f"messenger:{page}", "no_message", True)]
    assert results["gaps"][0]["gap_s"] >= 0
    audit_lines = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    assert [(r["method"], r["product"]) for r in audit_lines if r["event"] == "answered"] == [
        ("DELETE", "flex-api"), ("POST", "conversations")]
    assert cli("legacy", "retire", flow.sid, "--replace", "--yes").exit_code == 0  # again: nothing to do

    undo = cli("rollback", run.name, "--yes")
    assert undo.exit_code == 0, undo.output
    assert "1 to create, 0 to update, 1 to delete" in undo.output
    assert addresses.find(client, page) is None
    (recreated,) = flows(client).values()
    assert recreated == before  # the same configuration (Twilio gives it a new SID)
    again = cli("rollback", run.name, "--yes")
    assert again.exit_code == 0 and "Nothing to do" in again.output


def test_disable_then_rollback_re_enables_pacing_the_flex_flow_calls(sandbox, client, workdir):
    made = [make_legacy_flow(client, sandbox.demo, page_of(sandbox, i)).sid for i in (0, 1)]
    done = cli("legacy", "retire", "--all-facebook", "--disable", "--yes")
    assert done.exit_code == 0, done.output
    assert [flows(client)[sid]["enabled"] for sid in made] == [False, False]
    assert [r["collides"] for r in legacy.inventory(client)] == [False, False]
    sent = [datetime.fromisoformat(r["time"]) for r in audit.read(last_run(workdir, "legacy-retire") / "audit.jsonl")
            if r["event"] == "sent"]
    assert len(sent) == 2 and (sent[1] - sent[0]).total_seconds() >= 0.95  # Twilio: about 1 update a second
    assert cli("rollback", "latest", "--yes").exit_code == 0
    assert [flows(client)[sid]["enabled"] for sid in made] == [True, True]


def test_rollback_refuses_when_the_page_changed_since_unless_forced(sandbox, client, workdir):
    page = page_of(sandbox)
    flow = make_legacy_flow(client, sandbox.demo, page)
    assert cli("legacy", "retire", flow.sid, "--replace", "--yes").exit_code == 0
    run = last_run(workdir, "legacy-retire").name
    addresses.update(client, addresses.find(client, page).sid, MessengerAddress.from_params(
        page_id=page, integration="studio", studio_flow_sid=sandbox.demo["messaging_flow_sid"], retry_count=1))
    refused = cli("rollback", run, "--yes")
    assert refused.exit_code == 1 and f"messenger:{page}: address was changed since run" in refused.output
    assert addresses.find(client, page) is not None and not flows(client)  # nothing was changed
    forced = cli("rollback", run, "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert addresses.find(client, page) is None and len(flows(client)) == 1


def test_bad_arguments_are_refused_before_any_change(sandbox, client, workdir):
    flow = make_legacy_flow(client, sandbox.demo, page_of(sandbox))
    for args, text in [((), "name the Flex Flows"), (("FO123",), "FO SIDs"),
                       (("FO" + "0" * 32,), "no such Flex Flow")]:
        result = cli("legacy", "retire", *args, "--yes")
        assert result.exit_code == 2 and text in result.output, result.output
    assert cli("routing", "fix", "WW" + "0" * 32, "--yes").exit_code == 2
    facebook_only(client, sandbox.demo)
    for args in (("legacy", "retire", flow.sid), ("routing", "fix")):  # no --yes and no terminal to ask on
        refused = cli(*args)
        assert refused.exit_code == 2 and "without confirmation" in refused.output, refused.output
    assert flow.sid in flows(client)
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] == FACEBOOK_ONLY


def test_faults_on_the_flex_flow_and_address_calls_converge_without_duplicates(sandbox, client, workdir):
    page = page_of(sandbox)
    flow = make_legacy_flow(client, sandbox.demo, page)
    sandbox.control.add_fault(product="flex-api", method="DELETE", status=429, retry_after=0, times=1)
    sandbox.control.add_fault(product="flex-api", method="DELETE", action="commit_then_error", status=500, times=1)
    sandbox.control.add_fault(product="conversations", method="POST", action="commit_then_error", status=500,
                              times=1)
    done = cli("legacy", "retire", flow.sid, "--replace", "--yes")
    assert done.exit_code == 0, done.output
    assert all(f["fired"] for f in sandbox.control.faults())
    assert not flows(client)
    assert [c.address for c in addresses.list_messenger(client)] == [f"messenger:{page}"]


# --- routing ---------------------------------------------------------------------------------------------------

def test_routing_fix_makes_the_trace_healthy_and_rollback_restores_the_filter(sandbox, client, workdir):
    page = page_of(sandbox)
    make_address(client, sandbox.demo, page)
    facebook_only(client, sandbox.demo)
    reply = sandbox.control.simulate_inbound(page, "messenger:900001", "hello")
    broken = trace.trace(client, page, conversation_sid=reply["conversation_sid"])
    assert broken.broken_hop == "flex" and "never routed" in hop(broken, "flex").detail

    check = cli("routing", "check", "--json")
    assert check.exit_code == 1
    (workflow,) = json.loads(check.output)["workflows"]
    assert not workflow["routes_messenger"]
    assert workflow["findings"][0]["fix"] == "channelType IN ['facebook', 'messenger']"

    done = cli("routing", "fix", "--yes")
    assert done.exit_code == 0, done.output
    assert "-        \"expression\": \"channelType == 'facebook'\"" in done.output  # the before/after diff
    assert f"verified {sandbox.demo['workflow_sid']}: as the repair made it" in done.output
    assert f"verified messenger:{page}: trace: No inbound message" in done.output  # the old message set aside
    fixed_at = repair_trace.now()
    run = last_run(workdir, "routing-fix").name
    results = json.loads((workdir / "runs" / run / "results.json").read_text())
    assert [(r["target"], r["ok"]) for r in results["verify"] if r["kind"] == "trace"] == [(f"messenger:{page}", True)]
    assert cli("routing", "check").exit_code == 0
    time.sleep(1)  # a message stamped in the fix's own second is not taken as written after it
    reply = sandbox.control.simulate_inbound(page, "messenger:900002", "hello again")
    healthy = trace.trace(client, page, conversation_sid=reply["conversation_sid"])
    assert hop(healthy, "flex").status == "pass" and healthy.reached_flex
    after, = repair_trace.trace_pages(client, [page], fixed_at)  # the verify's trace, now with a new message
    assert after["ok"] and after["verdict"] in ("reached_flex", "reached_agent") and not after["note"], after
    assert cli("routing", "fix", "--yes").output.count("Nothing to do") == 1

    undo = cli("rollback", run, "--yes")
    assert undo.exit_code == 0, undo.output
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] == FACEBOOK_ONLY


def test_a_routing_fix_on_a_path_still_broken_fails_its_verify_with_the_trace_remedy(sandbox, client, workdir):
    page = page_of(sandbox)
    make_address(client, sandbox.demo, page)
    facebook_only(client, sandbox.demo)
    legacy_flow = make_legacy_flow(client, sandbox.demo, page)  # a second breakage on the Page's path
    done = cli("routing", "fix", "--yes")
    assert done.exit_code == 1, done.output
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] != FACEBOOK_ONLY
    assert f"remedy: Retire the legacy Flex Flow: flexops legacy retire {legacy_flow.sid}" in done.output
    run = last_run(workdir, "routing-fix")
    results = json.loads((run / "results.json").read_text())
    traced, = [r for r in results["verify"] if r["kind"] == "trace"]
    assert traced["broken_hop"] == "address" and not traced["ok"]
    assert results["summary"]["status"] == "verify failed" and results["summary"]["verify_failed"] == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["exit_code"] == 1 and manifest["status"] == "failed"
    undo = cli("rollback", run.name, "--yes")  # a run whose verify failed is undone like any other
    assert undo.exit_code == 0, undo.output
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] == FACEBOOK_ONLY


def test_the_pages_a_routing_fix_traces_are_those_reaching_the_workflow_and_at_most_max_pages(sandbox, client,
                                                                                                monkeypatch):
    first, second, third = (page_of(sandbox, i) for i in range(3))
    make_address(client, sandbox.demo, first)
    make_address(client, sandbox.demo, second)
    addresses.create(client, MessengerAddress.from_params(  # the draft flow has no Send to Flex: not this path
        page_id=third, integration="studio", studio_flow_sid=sandbox.demo["draft_flow_sid"], retry_count=3))
    assert sorted(repair_trace.pages_through(client, [sandbox.demo["workflow_sid"]])) == sorted([first, second])
    assert repair_trace.pages_through(client, ["WW" + "0" * 32]) == []
    monkeypatch.setattr(repair_trace, "MAX_PAGES", 1)
    rows = repair_trace.trace_pages(client, [first, second, first], repair_trace.now())
    assert [(r["target"], r["verdict"], r["ok"]) for r in rows] == [
        (f"messenger:{first}", "no_message", True), ("1 more Page(s)", "not traced", True)]
    assert f"flexops trace {first} --wait 120" in rows[0]["note"]


def test_routing_rollback_is_refused_when_the_workflow_changed_since_unless_forced(sandbox, client, workdir):
    facebook_only(client, sandbox.demo)
    sandbox.control.add_fault(product="taskrouter", method="POST", action="commit_then_error", status=500, times=1)
    assert cli("routing", "fix", "--yes").exit_code == 0  # the lost answer is settled, no second update needed
    run = last_run(workdir, "routing-fix").name
    facebook_only(client, sandbox.demo, "channelType == 'messenger'")  # someone edits the workflow meanwhile
    refused = cli("rollback", run, "--yes")
    assert refused.exit_code == 1 and "workflow was changed since run" in refused.output
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] == \
        "channelType == 'messenger'"
    assert cli("rollback", run, "--yes", "--force").exit_code == 0
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] == FACEBOOK_ONLY


def test_a_repair_waits_for_no_one_while_the_account_is_locked(sandbox, client, workdir):
    """One change at a time per account: a running apply / janitor / repair holds the lock; a repair (CLI or
    runbook) started meanwhile changes nothing and says who holds it."""
    from flexops.exceptions import LockHeld
    from flexops.lock import AccountLock

    facebook_only(client, sandbox.demo)
    flow = make_legacy_flow(client, sandbox.demo, page_of(sandbox))
    with AccountLock(client.account_sid, "20260101T000000Z-apply-other").acquire():
        for args in (["routing", "fix", "--yes"], ["legacy", "retire", flow.sid, "--yes"],
                     ["janitor", "--idle", "0s", "--yes"]):
            refused = cli(*args)
            assert refused.exit_code == 1 and "20260101T000000Z-apply-other" in refused.output, refused.output
        with pytest.raises(LockHeld):
            routing.plan_fix(client).apply_recorded(client, lambda key, value: None)
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] == FACEBOOK_ONLY
    assert flow.sid in flows(client)
    assert cli("routing", "fix", "--yes").exit_code == 0  # released: the repair runs


# --- kill -9 ---------------------------------------------------------------------------------------------------

@pytest.mark.slow  # starts a process
def test_kill_9_mid_retire_then_rerun_converges(sandbox, client, workdir):
    pages = [p["page_id"] for p in sandbox.demo["pages"]][:3]
    made = [make_legacy_flow(client, sandbox.demo, p).sid for p in pages]
    sandbox.control.set_latency(300)
    # killed once the first Flex Flow is gone: the repair is under way
    proc = flexops_stopped_when(["legacy", "retire", *made, "--replace", "--yes"],
                                lambda: len(flows(client)) != len(made), workdir, poll=0.05)
    assert proc.returncode == -signal.SIGKILL
    sandbox.control.set_latency(0)
    assert flows(client)  # killed half-way
    rerun = cli("legacy", "retire", *made, "--replace", "--yes")
    assert rerun.exit_code == 0, rerun.output
    assert "took over a stale lock" in rerun.output
    assert not flows(client)
    assert sorted(c.address for c in addresses.list_messenger(client)) == sorted(f"messenger:{p}" for p in pages)


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill -9", "ctrl-c"])
def test_kill_9_or_ctrl_c_mid_routing_fix_then_rerun_converges(sandbox, client, workdir, sig):
    facebook_only(client, sandbox.demo)
    space = client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"])
    second = space.workflows.create(friendly_name="VIP", configuration=json.dumps({"task_routing": {"filters": [{
        "expression": FACEBOOK_ONLY, "targets": [{"queue": sandbox.demo["queue_sid"]}]}]}}))
    sids = [sandbox.demo["workflow_sid"], second.sid]

    def fixed():  # read in the sandbox's database: no request, no latency
        acct = sandbox.demo["account_sid"]
        return [FACEBOOK_ONLY not in sandbox.store.get(acct, "taskrouter_workflow", sid)["configuration"]
                for sid in sids]
    sandbox.control.set_latency(500)
    # stopped once the first workflow is fixed: the repair is under way
    proc = flexops_stopped_when(["routing", "fix", "--yes"], lambda: any(fixed()), workdir, sig=sig, poll=0.01)
    sandbox.control.set_latency(0)
    assert fixed() == [True, False]  # stopped half-way
    if sig == signal.SIGINT:  # exit codes as for runs: 130, the run folder says interrupted
        assert proc.returncode == 130
        manifest = json.loads((last_run(workdir, "routing-fix") / "manifest.json").read_text())
        assert (manifest["status"], manifest["exit_code"]) == ("interrupted", 130)
    else:
        assert proc.returncode == -signal.SIGKILL
    rerun = cli("routing", "fix", "--yes")
    assert rerun.exit_code == 0, rerun.output
    assert "1 to update" in rerun.output  # only what is left
    assert ("took over a stale lock" in rerun.output) == (sig == signal.SIGKILL)
    assert fixed() == [True, True]
    assert cli("routing", "check").exit_code == 0


def test_an_unreachable_target_is_exit_3_for_every_repair(sandbox, workdir, monkeypatch):
    monkeypatch.setenv("FLEXOPS_SANDBOX_URL", "http://127.0.0.1:9")  # nothing listens there
    for args in (["routing", "fix", "--yes"], ["routing", "check"], ["legacy", "list"],
                 ["legacy", "retire", "--all-facebook", "--yes"], ["janitor", "--yes"],
                 ["sandbox", "import", "--db", "twin.db", "--accounts", "all"]):
        result = cli(*args)
        assert result.exit_code == 3, (args, result.output)


def test_a_failed_retire_stops_its_page_and_the_run_says_so(sandbox, client, workdir):
    page = page_of(sandbox)
    flow = make_legacy_flow(client, sandbox.demo, page)
    sandbox.control.add_fault(product="flex-api", method="DELETE", status=403, code=20403, times=1)
    failed = cli("legacy", "retire", flow.sid, "--replace", "--yes")
    assert failed.exit_code == 1 and "FAILED delete" in failed.output and "20403" in failed.output
    assert addresses.find(client, page) is None  # never both, never neither by our doing: the address waits
    results = json.loads((last_run(workdir, "legacy-retire") / "results.json").read_text())
    assert [o["status"] for o in results["apply"]["outcomes"]] == ["failed", "skipped"]
    assert cli("legacy", "retire", flow.sid, "--replace", "--yes").exit_code == 0  # run again: finished
    assert addresses.find(client, page) is not None and not flows(client)


def test_the_runbook_apply_button_runs_a_repair_plan(sandbox, client):
    from flexops import ui

    facebook_only(client, sandbox.demo)
    button = ui.confirm_panel(client, routing.plan_fix(client))
    assert button.description == "Apply 1 change(s)"
    button.click()
    assert button.result.ok
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] != FACEBOOK_ONLY
