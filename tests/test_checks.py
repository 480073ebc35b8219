"""Preflight and verification checks, and the sandbox's inbound Messenger simulation they rely on."""
import pytest

from flexops import addresses, checks, evidence
from flexops.addresses import MessengerAddress
from flexops.client import connect
from flexops.exceptions import CheckFailed, ValidationError
from flexops.sandbox import seed
from flexops.settings import Secret, Target
from flexops.studio import FlowCache

PAGE, OTHER = "104738392011234", "204738392011235"
CUSTOMER = "7712345678901234"
HOOK = "https://hooks.example.com/flexops"


def by_check(rows, subject=None):
    return {r.check: r for r in rows if subject is None or r.subject == subject}


def add_studio(client, sandbox, page=PAGE, flow_sid=None, **extra):
    spec = MessengerAddress.from_params(page_id=page, studio_flow_sid=flow_sid or sandbox.demo["messaging_flow_sid"],
                                        **extra)
    return addresses.create(client, spec)


# --- result helpers ------------------------------------------------------------------------------------------

def test_results_table_summary_and_failures():
    rows = [checks.CheckResult("a", "one", "pass", "fine"), checks.CheckResult("a", "two", "fail", "bad", "fix it"),
            checks.CheckResult("b", "one", "warn", "hmm")]
    assert [r.symbol for r in rows] == ["✓", "✗", "!"]
    frame = checks.table(rows)
    assert list(frame.columns) == ["subject", "check", "status", "detail", "remedy"]
    assert list(frame["status"]) == ["✓", "✗", "!"]
    assert checks.summary(rows) == {"passed": 1, "failed": 1, "warnings": 1, "total": 3, "unreachable": False}
    assert checks.failed(rows) == [rows[1]] and checks.failed(rows, required=["one"]) == []
    assert checks.failed(rows, strict=True) == rows[1:]
    assert rows[1].to_dict() == {"subject": "a", "check": "two", "status": "fail", "symbol": "✗", "detail": "bad",
                                 "remedy": "fix it"}
    with pytest.raises(CheckFailed, match="1 check failed: a: two"):
        checks.require(rows)
    assert checks.require(rows, required=["one"]) == rows
    with pytest.raises(ValueError):
        checks.CheckResult("a", "b", "ok")


def test_subject_table_has_one_row_per_address_with_its_worst_status():
    rows = [checks.CheckResult("a", "one", "pass"), checks.CheckResult("a", "two", "fail", "bad", "fix it"),
            checks.CheckResult("b", "one", "warn"), checks.CheckResult("b", "two", "pass")]
    assert checks.subject_table(rows).to_dict("records") == [
        {"subject": "a", "status": "✗", "passed": 1, "failed": 1, "warnings": 0, "failed checks": "two"},
        {"subject": "b", "status": "!", "passed": 1, "failed": 0, "warnings": 1, "failed checks": ""}]


# --- preflight -----------------------------------------------------------------------------------------------

def test_preflight_passes_on_the_demo_account(sandbox, client):
    rows = checks.preflight(client)
    assert [r.check for r in rows] == ["credentials", "Flex configured", "default Conversations service",
                                       "Studio Flex flow", "Messenger addresses"]
    assert all(r.status == "pass" for r in rows), checks.table(rows).to_string()
    found = by_check(rows)
    assert "'Messaging Flow'" in found["Studio Flex flow"].detail
    assert sandbox.demo["flex_service_sid"] in found["Flex configured"].detail
    assert found["Messenger addresses"].detail.startswith("0 Messenger address configurations")
    assert sandbox.demo["auth_token"] not in repr(rows) + checks.table(rows).to_string()


def test_preflight_fails_the_flow_check_when_the_flow_is_unpublished(sandbox, client):
    client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).update(status="draft")
    found = by_check(checks.preflight(client))
    assert found["Studio Flex flow"].status == "fail"
    assert "Console > Studio" in found["Studio Flex flow"].remedy
    assert found["credentials"].status == "pass"


def test_preflight_with_bad_credentials_is_a_row_not_a_traceback(sandbox):
    demo = sandbox.demo
    bad = connect(Target("sandbox", demo["account_sid"], demo["account_sid"], Secret("wrong-token"),
                         sandbox_url=sandbox.url))
    rows = checks.preflight(bad)
    assert rows[0].check == "credentials" and rows[0].status == "fail" and "20003" in rows[0].detail
    assert rows[0].remedy
    assert all(r.status == "warn" and r.detail.startswith("skipped") for r in rows[1:]) and len(rows) == 5


def test_preflight_reports_a_suspended_account_and_a_wrong_default_service(sandbox, client):
    sandbox.control.set_account_status(sandbox.demo["account_sid"], "suspended")
    with sandbox.store.tx() as db:
        stored = f"{sandbox.demo['account_sid']}:configuration"  # each account's configuration has its own SID
        config = sandbox.store.get(sandbox.demo["account_sid"], "conversations_configuration", sid=stored)
        config["default_chat_service_sid"] = "IS" + "9" * 32
        sandbox.store.replace(db, sandbox.demo["account_sid"], "conversations_configuration", stored, config)
    found = by_check(checks.preflight(client))
    assert found["credentials"].status == "fail" and "suspended" in found["credentials"].detail
    assert found["default Conversations service"].status == "fail"
    assert sandbox.demo["flex_service_sid"] in found["default Conversations service"].remedy


def test_preflight_without_flex(sandbox):
    client = sandbox.client(sandbox.control.create_account("no flex")["account_sid"])
    found = by_check(checks.preflight(client))
    assert found["credentials"].status == "pass"
    assert found["Flex configured"].status == "fail" and "Flex > Overview" in found["Flex configured"].remedy
    assert found["default Conversations service"].status == "warn"
    assert found["Studio Flex flow"].status == "fail"


# --- inbound simulation --------------------------------------------------------------------------------------

def test_inbound_messages_need_an_enabled_address(sandbox, client):
    dropped = sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hello")
    assert dropped["delivered"] is False and "no address configuration" in dropped["reason"]
    addresses.create(client, MessengerAddress(PAGE, studio_flow_sid=sandbox.demo["messaging_flow_sid"],
                                              auto_creation_enabled=False))
    off = sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hello")
    assert off["delivered"] is False and "disabled" in off["reason"]
    assert client.conversations.v1.conversations.list() == []


def test_inbound_message_creates_twilio_shaped_resources(sandbox, client):
    add_studio(client, sandbox)
    first = sandbox.control.simulate_inbound(PAGE, CUSTOMER, "Hi, where is my order?")
    assert first["delivered"] and first["conversation_created"] and first["studio_execution_sid"].startswith("FN")
    conversation = client.conversations.v1.conversations(first["conversation_sid"]).fetch()
    assert conversation.chat_service_sid == sandbox.demo["flex_service_sid"] and conversation.state == "active"
    [participant] = conversation.participants.list()
    assert participant.messaging_binding == {"type": "messenger", "address": "messenger:" + CUSTOMER,
                                             "proxy_address": "messenger:" + PAGE}
    [message] = conversation.messages.list()
    assert (message.body, message.author, message.participant_sid, message.index) == \
        ("Hi, where is my order?", "messenger:" + CUSTOMER, participant.sid, 0)
    second = sandbox.control.simulate_inbound(PAGE, CUSTOMER, "Hello?")
    assert second["conversation_sid"] == first["conversation_sid"] and not second["conversation_created"]
    assert second["studio_execution_sid"] is None, "the active conversation is already in the flow"
    assert [m.index for m in conversation.messages.list()] == [0, 1]
    execution = sandbox.store.get(sandbox.demo["account_sid"], "studio_execution", sid=first["studio_execution_sid"])
    assert execution["flow_sid"] == sandbox.demo["messaging_flow_sid"]


def test_a_studio_execution_is_recorded_only_for_a_published_flow(sandbox, client):
    account = sandbox.demo["account_sid"]
    executions = lambda: sandbox.store.read(  # noqa: E731
        "SELECT data FROM resources WHERE account_sid = ? AND kind = 'studio_execution'", (account,))
    add_studio(client, sandbox, page=PAGE, flow_sid=sandbox.demo["draft_flow_sid"])
    addresses.create(client, MessengerAddress.from_params(page_id=OTHER, integration="webhook", webhook_url=HOOK))
    for page in (PAGE, OTHER):
        reply = sandbox.control.simulate_inbound(page, CUSTOMER, "hi")
        assert reply["delivered"] and reply["conversation_created"] and reply["studio_execution_sid"] is None, page
    assert reply["webhook_url"] == HOOK and executions() == []
    client.studio.v2.flows(sandbox.demo["draft_flow_sid"]).update(status="published")
    late = sandbox.control.simulate_inbound(PAGE, CUSTOMER, "still there?")
    assert not late["conversation_created"] and late["studio_execution_sid"] is None, "only a new conversation"
    fresh = sandbox.control.simulate_inbound(PAGE, "7712345678900000", "hello")
    assert fresh["studio_execution_sid"].startswith("FN") and len(executions()) == 1


def test_inbound_resources_follow_twilios_schemas(sandbox, client):
    """Every property Twilio's OpenAPI documents is present, and nothing else (the contract suite's rule)."""
    pytest.importorskip("openapi_core")
    from tests.contract.openapi_specs import SpecUnavailable, spec_path
    import json
    try:
        schemas = json.loads(spec_path("conversations").read_text())["components"]["schemas"]
    except SpecUnavailable as exc:
        pytest.fail(f"Twilio's OpenAPI definitions are unavailable: {exc}")
    try:
        studio_schemas = json.loads(spec_path("studio").read_text())["components"]["schemas"]
    except SpecUnavailable as exc:
        pytest.fail(f"Twilio's OpenAPI definitions are unavailable: {exc}")
    add_studio(client, sandbox, conversation_service_sid=sandbox.demo["flex_service_sid"])
    result = sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hi")
    account = sandbox.demo["account_sid"]
    for kind, schema in (("conversation", schemas["conversations.v1.conversation"]),
                         ("participant", schemas["conversations.v1.conversation.conversation_participant"]),
                         ("message", schemas["conversations.v1.conversation.conversation_message"]),
                         ("studio_execution", studio_schemas["studio.v2.flow.execution"])):
        data = sandbox.store.get(account, kind, sid=result[f"{kind}_sid"])
        assert set(data) == set(schema["properties"]), kind


# --- verify --------------------------------------------------------------------------------------------------

def test_verify_all_on_an_account_without_messenger_addresses_fails(sandbox, client):
    [row] = checks.verify(client)
    assert (row.check, row.status) == ("Messenger addresses", "fail") and "10_create_messenger_address" in row.remedy
    assert row.subject.startswith("AC…") and sandbox.demo["account_sid"] not in row.subject


def test_verify_passes_after_a_first_message(sandbox, client):
    add_studio(client, sandbox, friendly_name="Acme Outdoor Gear")
    before = by_check(checks.verify(client, [PAGE]))
    assert before["first message"].status == "fail" and "Send a message" in before["first message"].remedy
    assert all(r.status == "pass" for name, r in before.items() if name != "first message")
    assert by_check(checks.verify(client, [PAGE], require_first_message=False))["first message"].status == "warn"
    sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hello")
    rows = checks.verify(client, [PAGE])
    assert [r.check for r in rows] == ["exists", "type", "auto-creation", "flow exists", "flow published",
                                       "flow valid", "flow reaches Send to Flex", "retry count", "first message",
                                       "Flex routing", "legacy Flex Flow"]
    assert all(r.status == "pass" for r in rows), checks.table(rows).to_string()
    assert rows[0].subject == "messenger:" + PAGE


def test_verify_catches_an_unpublished_flow_and_a_flow_that_does_not_reach_flex(sandbox, client):
    flows = client.studio.v2.flows
    survey = seed.survey_flow_definition()
    published_survey = flows.create(friendly_name="Survey", status="published", definition=survey)
    add_studio(client, sandbox, page=PAGE)
    add_studio(client, sandbox, page=OTHER, flow_sid=published_survey.sid)
    flows(sandbox.demo["messaging_flow_sid"]).update(status="draft")
    rows = checks.verify(client)
    first, other = by_check(rows, "messenger:" + PAGE), by_check(rows, "messenger:" + OTHER)
    assert first["flow published"].status == "fail" and "Publish" in first["flow published"].remedy
    assert first["flow reaches Send to Flex"].status == "pass"
    assert other["flow published"].status == "pass"
    assert other["flow reaches Send to Flex"].status == "fail"
    assert "no Send to Flex" in other["flow reaches Send to Flex"].detail


def test_verify_missing_address_missing_flow_and_disabled_auto_creation(sandbox, client):
    gone = "FW" + "0" * 32
    addresses.create(client, MessengerAddress(PAGE, studio_flow_sid=gone, auto_creation_enabled=False))
    rows = checks.verify(client, [PAGE, OTHER], require_first_message=False)
    first, other = by_check(rows, "messenger:" + PAGE), by_check(rows, "messenger:" + OTHER)
    assert list(other) == ["exists"] and other["exists"].status == "fail" and other["exists"].remedy
    assert first["auto-creation"].status == "fail"
    assert first["flow exists"].status == "fail" and gone in first["flow exists"].detail
    assert "flow published" not in first


def test_verify_webhook_addresses_and_conversation_services(sandbox, client):
    chat_service = sandbox.store.get(sandbox.demo["account_sid"], "flex_configuration",
                                     sid=f"{sandbox.demo['account_sid']}:configuration")["chat_service_instance_sid"]
    addresses.create(client, MessengerAddress.from_params(page_id=PAGE, integration="webhook", webhook_url=HOOK,
                                                          webhook_filters="onParticipantAdded",
                                                          conversation_service_sid=chat_service))
    addresses.create(client, MessengerAddress.from_params(page_id=OTHER, integration="webhook", webhook_url=HOOK,
                                                          webhook_filters="onMessageAdded",
                                                          conversation_service_sid="IS" + "0" * 32))
    sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hi")
    assert client.conversations.v1.conversations.list() == [], "not in the default service: found in its own"
    rows = checks.verify(client)
    first, other = by_check(rows, "messenger:" + PAGE), by_check(rows, "messenger:" + OTHER)
    assert first["webhook https"].status == "pass" and first["webhook method"].detail == "POST"
    assert first["webhook filters"].status == "warn" and "onMessageAdded" in first["webhook filters"].remedy
    assert other["webhook filters"].status == "pass"
    assert first["conversation service"].status == "pass"
    assert other["conversation service"].status == "fail"
    assert first["first message"].status == "pass"
    assert other["first message"].status == "fail"


def test_verify_validates_page_ids_before_any_call(client):
    before = client.http_client.request_count
    with pytest.raises(ValidationError) as caught:
        checks.verify(client, [PAGE, "+15550001111"])
    assert caught.value.parameter == "page_ids" and client.http_client.request_count == before
    assert checks.validate_page_ids("104738392011234, 204738392011235") == [PAGE, OTHER]


def test_verify_is_cheap_for_many_addresses(sandbox, client):
    """60 addresses over 3 flows: list pages + one fetch per flow + the conversation scan, nothing per address."""
    flow_sids = [sandbox.demo["messaging_flow_sid"]] + [
        client.studio.v2.flows.create(friendly_name=f"Flex {n}", status="published",
                                      definition=seed.messaging_flow_definition(sandbox.demo["workflow_sid"],
                                                                                sandbox.demo["chat_channel_sid"])).sid
        for n in range(2)]
    pages = [f"90000000000{n:02d}" for n in range(60)]
    for n, page in enumerate(pages):
        add_studio(client, sandbox, page=page, flow_sid=flow_sids[n % 3])
    for page in pages[:3]:
        sandbox.control.simulate_inbound(page, CUSTOMER, "hi")
    cache = FlowCache(client)
    for ids in (None, pages):
        sandbox.control.reset_stats()
        rows = checks.verify(client, ids, require_first_message=False, flows=cache)
        requests = sandbox.control.stats()["requests"]
        assert len(rows) == 60 * 11
        list_pages = 2  # 60 addresses, 50 a page
        flow_fetches = 3 if ids is None else 0  # the second run reuses the cache
        # one page of conversations, participants of each of the 3 conversations; the second run knows them (the
        # state store) and asks only for the page
        conversation_scan = 1 + (3 if ids is None else 0)
        # the path: Flex configuration, the one workflow, task channels, open tasks, active conversations (the 3
        # have open tasks: no participants asked), legacy Flex Flows, Monitor alerts
        path = 7
        assert sum(requests.values()) == list_pages + flow_fetches + conversation_scan + path, requests
    summary = checks.summary(rows)
    assert summary["failed"] == 0 and summary["warnings"] == 57


def test_verify_inventory_gives_one_status_per_address(sandbox, client):
    import pandas as pd

    add_studio(client, sandbox)
    sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hi")
    addresses.create(client, MessengerAddress(OTHER, studio_flow_sid="FW" + "0" * 32))
    frame = pd.DataFrame({"address": ["messenger:" + PAGE, "messenger:" + OTHER, "+15550001111"]})
    verdicts = checks.verify_inventory(client, frame)
    assert {a: status for a, (status, _) in verdicts.items()} == {"messenger:" + PAGE: "pass",
                                                                 "messenger:" + OTHER: "fail"}
    assert verdicts["messenger:" + PAGE][1] is None and "flow exists: no Studio flow" in verdicts["messenger:" + OTHER][1]
    assert checks.verify_inventory(client, frame.iloc[2:]) == {}


def test_the_evidence_scan_is_bounded_and_says_so(sandbox, client):
    for page in (PAGE, OTHER):
        add_studio(client, sandbox, page=page)
    sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hi")
    sandbox.control.simulate_inbound(PAGE, "8812345678901234", "hi")
    found, notes = evidence.first_messages(client, ["messenger:" + PAGE, "messenger:" + OTHER], max_conversations=1)
    assert list(found) == ["messenger:" + PAGE]
    assert notes == ["stopped after the 1 most recent conversations"]
    rows = by_check(checks.verify(client, [OTHER], max_conversations=1, state_dir="off"), "messenger:" + OTHER)
    assert "stopped after the 1 most recent" in rows["first message"].detail
    assert rows["first message"].status == "fail"
    # with the state store the capped first run says so, and does not fail the page it could not reach yet
    rows = by_check(checks.verify(client, [OTHER], max_conversations=1), "messenger:" + OTHER)
    assert rows["first message"].status == "warn" and "cap of 1 conversations" in rows["first message"].detail


def test_refused_credentials_mark_the_target_unreachable(sandbox):
    from flexops.client import connect
    from flexops.settings import Secret, Target

    sid = sandbox.demo["account_sid"]
    client = connect(Target("sandbox", sid, sid, Secret("not-the-token"), sandbox_url=sandbox.url))
    rows = checks.preflight(client)
    assert rows[0].check == "credentials" and rows[0].status == "fail" and "20003" in rows[0].detail
    assert checks.summary(rows)["unreachable"] is True
    assert checks.summary(checks.preflight(sandbox.client()))["unreachable"] is False
