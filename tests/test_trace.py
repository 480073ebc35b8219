"""flexops.trace on the sandbox: a real message walks the real path, and every way it can break is named with its fix."""
import json

import pytest

from flexops import trace
from flexops.exceptions import ValidationError

PAGE = "104738392011234"
CUSTOMER = "7000123"
FACEBOOK_ONLY = {"task_routing": {"filters": [{"filter_friendly_name": "Legacy Facebook",
                                               "expression": "channelType == 'facebook'",
                                               "targets": [{"queue": None}]}]}}


def address(client, sandbox, **auto):
    settings = {"auto_creation_enabled": True, "auto_creation_type": "studio",
                "auto_creation_studio_flow_sid": sandbox.demo["messaging_flow_sid"]}
    settings.update(auto)
    return client.conversations.v1.address_configurations.create(type="messenger", address=f"messenger:{PAGE}",
                                                                 **settings)


def write(sandbox, text="Hello, is anyone there?", sender=CUSTOMER):
    return sandbox.control.simulate_inbound(PAGE, sender, text)


def workspace(client, sandbox):
    return client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"])


def make_agent_available(client, sandbox):
    ws = workspace(client, sandbox)
    available = next(a.sid for a in ws.activities.list() if a.available)
    ws.workers(sandbox.demo["worker_sid"]).update(activity_sid=available)


def accept(client, sandbox, task_sid):
    """The agent accepts the task's offered reservation (the TaskRouter API Flex uses); returns the reservation."""
    reservations = workspace(client, sandbox).tasks(task_sid).reservations
    reservation = reservations.list()[0]
    reservations(reservation.sid).update(reservation_status="accepted")
    return reservation


def flow_with_send_to_flex(client, sandbox, **properties):
    definition = client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).fetch().definition
    widget = next(s for s in definition["states"] if s["type"] == "send-to-flex")
    widget["properties"].update(properties)
    return client.studio.v2.flows.create(friendly_name="Broken Messaging Flow", status="published",
                                         definition=definition).sid


def check(result, verdict, broken_hop, *remedy_words):
    assert (result.verdict, result.broken_hop) == (verdict, broken_hop), [(h.hop, h.status, h.detail)
                                                                           for h in result.hops]
    if broken_hop:
        remedy = next(h.remedy for h in result.hops if h.hop == broken_hop)
        for word in remedy_words:
            assert word in remedy, remedy


def test_the_healthy_path_ends_with_an_accepted_reservation(client, sandbox):
    address(client, sandbox)
    make_agent_available(client, sandbox)
    delivered = write(sandbox)
    reservation = accept(client, sandbox, delivered["task_sid"])

    result = trace.trace(client, PAGE)
    check(result, "reached_agent", None)
    assert result.exit_code == 0 and result.message["sid"] == delivered["message_sid"]
    by_hop = {h.hop: h for h in result.hops}
    assert by_hop["studio"].evidence["execution_sid"] == delivered["studio_execution_sid"]
    assert by_hop["flex"].evidence["task_sid"] == delivered["task_sid"]
    assert by_hop["agent"].evidence["reservation_sid"] == reservation.sid
    json.dumps(result.to_dict())  # the --json document is plain JSON


def test_no_worker_available_is_a_warning_with_the_fix(client, sandbox):
    address(client, sandbox)
    write(sandbox)
    result = trace.trace(client, PAGE)
    check(result, "reached_flex", None)
    agent = result.hops[-1]
    assert agent.status == "warn" and "Available" in agent.remedy and result.exit_code == 0


def test_no_address(client, sandbox):
    write(sandbox)
    result = trace.trace(client, PAGE)
    check(result, "no_message", "address", "10_create_messenger_address", PAGE)
    assert result.exit_code == 1


def test_auto_creation_off(client, sandbox):
    address(client, sandbox, auto_creation_enabled=False)
    write(sandbox)
    check(trace.trace(client, PAGE), "no_message", "address", "auto-creation")


def test_a_draft_flow(client, sandbox):
    address(client, sandbox, auto_creation_studio_flow_sid=sandbox.demo["draft_flow_sid"])
    write(sandbox)
    check(trace.trace(client, PAGE), "broken", "studio", "Publish")


def test_a_missing_flow(client, sandbox):
    address(client, sandbox, auto_creation_studio_flow_sid="FW" + "0" * 32)
    write(sandbox)
    check(trace.trace(client, PAGE), "broken", "studio", "studio_flow_sid")


def test_send_to_flex_to_a_missing_workflow(client, sandbox):
    missing = "WW" + "0" * 32
    address(client, sandbox, auto_creation_studio_flow_sid=flow_with_send_to_flex(client, sandbox, workflow=missing))
    write(sandbox)
    result = trace.trace(client, PAGE)
    check(result, "broken", "flex", "workflow")
    assert missing in result.hops[3].detail
    assert any(a["error_code"] == 81009 for a in result.alerts), result.alerts


def test_send_to_flex_to_a_missing_task_channel(client, sandbox):
    missing = "TC" + "0" * 32
    address(client, sandbox, auto_creation_studio_flow_sid=flow_with_send_to_flex(client, sandbox, channel=missing))
    write(sandbox)
    result = trace.trace(client, PAGE)
    check(result, "broken", "flex", "Programmable Chat")
    assert missing in result.hops[3].detail


def test_filters_that_exclude_messenger(client, sandbox):
    configuration = json.loads(json.dumps(FACEBOOK_ONLY))
    configuration["task_routing"]["filters"][0]["targets"][0]["queue"] = sandbox.demo["queue_sid"]
    workspace(client, sandbox).workflows(sandbox.demo["workflow_sid"]).update(
        configuration=json.dumps(configuration))
    address(client, sandbox)
    write(sandbox)
    result = trace.trace(client, PAGE)
    check(result, "broken", "flex", "routing fix")
    assert "facebook" in result.hops[3].detail and result.hops[4].status == "not_reached"


def test_a_stale_conversation_captures_the_message(client, sandbox):
    address(client, sandbox)
    first = write(sandbox)
    workspace(client, sandbox).tasks(first["task_sid"]).update(assignment_status="canceled", reason="test")
    second = write(sandbox, "Hello again?")
    assert second["conversation_sid"] == first["conversation_sid"] and not second["studio_execution_sid"]
    result = trace.trace(client, PAGE)
    check(result, "broken", "conversation", "janitor")
    assert "stale" in result.hops[1].detail and result.message["sid"] == second["message_sid"]


def test_a_follow_up_while_the_task_is_open_reaches_the_agent(client, sandbox):
    address(client, sandbox)
    make_agent_available(client, sandbox)
    first = write(sandbox)
    accept(client, sandbox, first["task_sid"])
    write(sandbox, "One more thing")
    result = trace.trace(client, PAGE)
    check(result, "reached_agent", None)
    assert result.hops[1].evidence["open_task_sid"] == first["task_sid"]


def test_a_conversation_outside_flexs_service(client, sandbox):
    address(client, sandbox, auto_creation_conversation_service_sid=sandbox.demo["chat_service_sid"])
    write(sandbox)
    check(trace.trace(client, PAGE), "broken", "conversation", "ConversationServiceSid")


def test_a_legacy_flex_flow_holding_the_page(client, sandbox):
    legacy = client.flex_api.v1.flex_flow.create(
        friendly_name="Legacy Messenger", chat_service_sid=sandbox.demo["chat_service_sid"], channel_type="facebook",
        contact_identity=f"messenger:{PAGE}", integration_type="studio",
        integration_flow_sid=sandbox.demo["messaging_flow_sid"], enabled=True)
    write(sandbox)
    result = trace.trace(client, PAGE)
    check(result, "no_message", "address", "legacy retire", legacy.sid)


def test_the_webhook_integration(client, sandbox):
    address(client, sandbox, auto_creation_type="webhook",
            auto_creation_webhook_url="https://hooks.example.com/flexops", auto_creation_webhook_method="post")
    write(sandbox)
    result = trace.trace(client, PAGE)
    check(result, "handed_to_webhook", None)
    assert [h.hop for h in result.hops][2] == "webhook" and result.exit_code == 0


def test_a_known_conversation_costs_at_most_12_requests(client, sandbox):
    address(client, sandbox)
    make_agent_available(client, sandbox)
    delivered = write(sandbox)
    sandbox.control.reset_stats()
    result = trace.trace(client, PAGE, conversation_sid=delivered["conversation_sid"])
    assert result.verdict == "reached_flex"
    assert sandbox.control.stats()["total"] <= 12


def test_bad_input_is_named_before_any_request(client, sandbox):
    sandbox.control.reset_stats()
    for kwargs, parameter in (({"page_id": "+15551234567"}, "page_id"), ({"since": "a week"}, "since"),
                              ({"conversation_sid": "CH123"}, "conversation")):
        with pytest.raises(ValidationError, match=parameter):
            trace.trace(client, **{"page_id": PAGE, **kwargs})
    assert sandbox.control.stats()["total"] == 0


def test_wait_reports_a_message_written_while_waiting(client, sandbox):
    import threading

    address(client, sandbox)
    write(sandbox, "an old message", sender="7000999")
    ticks = []
    writer = threading.Timer(1.2, lambda: write(sandbox, "my test message"))
    writer.start()
    try:
        result = trace.trace(client, PAGE, wait_seconds=10, on_tick=ticks.append)
    finally:
        writer.join()
    assert result.message and result.message["author"] == f"messenger:{CUSTOMER}"
    assert result.verdict == "reached_flex" and 1 <= len(ticks) <= 4


def test_wait_without_a_message_says_so(client, sandbox):
    address(client, sandbox)
    result = trace.trace(client, PAGE, wait_seconds=1.5)
    assert (result.verdict, result.broken_hop, result.message) == ("no_message", None, None)


OTHER_PAGE = "204738392011235"


def other_address(client, sandbox):
    return client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{OTHER_PAGE}", auto_creation_enabled=True,
        auto_creation_type="studio", auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"])


def test_wait_stops_its_background_scan_once_it_answers(client, sandbox):
    """The scan of the account's active conversations (one participants request each) must not go on competing
    with the trace, and whatever runs after it, once the message is found."""
    import threading
    import time

    from flexops.sandbox import inbound

    address(client, sandbox)
    other_address(client, sandbox)
    for i in range(300):  # a busy account: 300 active conversations on another Page
        inbound.deliver(sandbox.store, sandbox.demo["account_sid"], OTHER_PAGE, str(7_100_000 + i), "hi")
    sandbox.control.set_latency(50)
    writer = threading.Timer(0.3, lambda: write(sandbox, "my test message"))  # within the start's second, often
    writer.start()
    try:
        result = trace.trace(client, PAGE, wait_seconds=20)
    finally:
        writer.join()
    answered = sandbox.control.stats()["total"]
    time.sleep(1.0)  # the scan alone would send ~8 requests every 50 ms
    assert result.message and result.message["author"] == f"messenger:{CUSTOMER}"
    assert sandbox.control.stats()["total"] - answered <= 8  # at most the ones already in flight


def test_wait_looks_at_a_new_conversation_of_another_page_once(client, sandbox):
    import threading

    address(client, sandbox)
    other_address(client, sandbox)
    urls = []
    client.http_client.listeners.append(lambda **call: urls.append(call["url"]))
    writer = threading.Timer(0.2, lambda: sandbox.control.simulate_inbound(OTHER_PAGE, "7000555", "not for you"))
    writer.start()
    try:
        result = trace.trace(client, PAGE, wait_seconds=3.5)
    finally:
        writer.join()
    participants = [u for u in urls if u.endswith("/Participants") or "/Participants?" in u]
    assert result.verdict == "no_message"
    # one look from the polls (then remembered as another Page's) and at most one from the background scan
    assert 1 <= len(participants) <= 2, participants
