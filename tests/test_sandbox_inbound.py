"""A Messenger message walking the whole path in the sandbox, hop by hop and failure by failure, checked through
the real SDK: address -> conversation -> Studio -> Send to Flex (interaction + task) -> agent, webhooks, alerts."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

PAGE, CUSTOMER = "104738392011234", "7712345678901234"
ME = f"messenger:{CUSTOMER}"


def inbound(sandbox, text="hello", customer=CUSTOMER, page=PAGE):
    return sandbox.control.simulate_inbound(page, customer, text)


def address(client, page=PAGE, **auto):
    options = {"auto_creation_enabled": True, "auto_creation_type": "studio", **auto}
    return client.conversations.v1.address_configurations.create(type="messenger", address=f"messenger:{page}",
                                                                  **options)


def studio(client, sandbox, flow_sid=None, **extra):
    return address(client, auto_creation_studio_flow_sid=flow_sid or sandbox.demo["messaging_flow_sid"], **extra)


def alerts(client):
    return client.monitor.v1.alerts.list()


# --- hop 1: the address -------------------------------------------------------------------------------------

def test_without_an_enabled_address_the_message_is_dropped_and_nothing_is_created(client, sandbox):
    dropped = inbound(sandbox)
    assert (dropped["delivered"], dropped.get("conversation_sid")) == (False, None)
    assert "no address configuration" in dropped["reason"]
    studio(client, sandbox, auto_creation_enabled=False)
    off = inbound(sandbox)
    assert off["delivered"] is False and "disabled" in off["reason"]
    assert client.conversations.v1.conversations.list() == []
    assert client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"]).tasks.list() == []


# --- hops 2-5 with Flex's default Messaging Flow ---------------------------------------------------------------

def test_a_first_message_reaches_flex_as_an_interaction_and_a_task_for_the_agent(client, sandbox):
    studio(client, sandbox)
    reply = inbound(sandbox, "Where is my order?")
    assert reply["delivered"] and reply["conversation_created"] and reply["alerts"] == []
    assert [h["hop"] for h in reply["hops"]] == ["address", "conversation", "studio", "flex"]

    flow = client.studio.v2.flows(sandbox.demo["messaging_flow_sid"])
    execution = flow.executions(reply["studio_execution_sid"]).fetch()
    assert execution.status == "ended" and reply["studio_execution_status"] == "ended"
    steps = flow.executions(execution.sid).steps.list()
    assert [(s.name, s.transitioned_from, s.transitioned_to) for s in steps] == [
        ("incomingConversationMessage", "Trigger", "SendMessageToAgent")]
    assert steps[0].sid in reply["studio_step_sids"]

    interaction = client.flex_api.v1.interaction(reply["interaction_sid"]).fetch()
    assert interaction.channel["properties"]["media_channel_sid"] == reply["conversation_sid"]
    ws = client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"])
    task = ws.tasks(reply["task_sid"]).fetch()
    assert (task.workflow_sid, task.task_channel_unique_name) == (sandbox.demo["workflow_sid"], "chat")
    attributes = json.loads(task.attributes)
    assert {k: attributes[k] for k in ("channelType", "conversationSid", "from", "direction", "customerAddress",
                                       "name", "flexInteractionSid")} == {
        "channelType": "messenger", "conversationSid": reply["conversation_sid"], "from": ME,
        "direction": "inbound", "customerAddress": ME, "name": ME, "flexInteractionSid": reply["interaction_sid"]}

    # hop 5, TaskRouter's: the agent becomes available and is offered the task.
    worker = ws.workers(sandbox.demo["worker_sid"])
    available = [a.sid for a in ws.activities.list() if a.friendly_name == "Available"][0]
    worker.update(activity_sid=available)
    [reservation] = ws.tasks(task.sid).reservations.list()
    assert (reservation.worker_sid, reservation.reservation_status) == (sandbox.demo["worker_sid"], "pending")


def test_the_open_conversation_captures_later_messages_without_a_new_execution_or_task(client, sandbox):
    studio(client, sandbox)
    first = inbound(sandbox)
    later = inbound(sandbox, "Hello?")
    assert (later["conversation_sid"], later["conversation_created"]) == (first["conversation_sid"], False)
    assert later["studio_execution_sid"] is None and later["task_sid"] is None
    flow = client.studio.v2.flows(sandbox.demo["messaging_flow_sid"])
    assert len(flow.executions.list()) == 1
    assert len(client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"]).tasks.list()) == 1
    other = inbound(sandbox, customer="7700000000000009")
    assert other["conversation_created"] and other["conversation_sid"] != first["conversation_sid"]


def test_an_inactive_conversation_is_reactivated_and_a_closed_one_never_captures(client, sandbox):
    studio(client, sandbox)
    first = inbound(sandbox)
    conversation = client.conversations.v1.conversations(first["conversation_sid"])
    conversation.update(state="inactive")
    again = inbound(sandbox, "still there?")
    assert again["conversation_sid"] == first["conversation_sid"] and not again["conversation_created"]
    assert conversation.fetch().state == "active"
    conversation.update(state="closed")
    fresh = inbound(sandbox, "new question")
    assert fresh["conversation_created"] and fresh["conversation_sid"] != first["conversation_sid"]
    assert fresh["studio_execution_sid"] and fresh["task_sid"] and fresh["task_sid"] != first["task_sid"]
    assert [m.body for m in conversation.messages.list()] == ["hello", "still there?"]


# --- hop 3's failures -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["draft", "deleted"])
def test_an_unpublished_or_missing_flow_starts_no_execution_and_raises_an_alert(client, sandbox, how):
    flow_sid = sandbox.demo["draft_flow_sid"]
    studio(client, sandbox, flow_sid)
    if how == "deleted":
        client.studio.v2.flows(flow_sid).delete()
    reply = inbound(sandbox)
    assert reply["delivered"] and reply["conversation_created"] and reply["studio_execution_sid"] is None
    [alert] = alerts(client)
    assert reply["alerts"] == [alert.sid]
    assert (alert.error_code, alert.resource_sid, alert.log_level) == ("20404", flow_sid, "error")
    assert ("not published" if how == "draft" else "does not exist") in alert.alert_text
    if how == "draft":
        assert client.studio.v2.flows(flow_sid).executions.list() == []


# --- hop 4's failures -----------------------------------------------------------------------------------------

def flow_with(client, sandbox, **send_to_flex):
    definition = client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).fetch().definition
    for state in definition["states"]:
        if state["type"] == "send-to-flex":
            state["properties"].update(send_to_flex)
            state["transitions"] = [{"event": "callComplete"}, {"event": "failedToEnqueue", "next": "Sorry"},
                                    {"event": "callFailure"}]
    definition["states"].append({"name": "Sorry", "type": "send-message", "properties": {"body": "Sorry!"},
                                 "transitions": [{"event": "sent"}, {"event": "failed"}]})
    return client.studio.v2.flows.create(friendly_name="Broken", status="published", definition=definition).sid


@pytest.mark.parametrize("broken", [{"workflow": "WW" + "0" * 32}, {"channel": "TC" + "0" * 32}])
def test_a_missing_workflow_or_task_channel_fails_the_widget_along_failed_to_enqueue(client, sandbox, broken):
    flow_sid = flow_with(client, sandbox, **broken)
    studio(client, sandbox, flow_sid)
    reply = inbound(sandbox)
    assert reply["interaction_sid"] is None and reply["task_sid"] is None
    flow = client.studio.v2.flows(flow_sid)
    execution = flow.executions(reply["studio_execution_sid"])
    assert execution.fetch().status == "ended"
    assert [(s.name, s.transitioned_from, s.transitioned_to) for s in execution.steps.list()] == [
        ("incomingConversationMessage", "Trigger", "SendMessageToAgent"),
        ("failedToEnqueue", "SendMessageToAgent", "Sorry"), ("sent", "Sorry", "Ended")]
    assert "error" in execution.execution_context().fetch().context["widgets"]["SendMessageToAgent"]
    [alert] = alerts(client)
    assert (alert.error_code, alert.resource_sid) == ("81009", flow_sid)
    assert alert.request_url.endswith(f"/Flows/{flow_sid}") and "SendMessageToAgent" in alert.alert_text
    assert client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"]).tasks.list() == []
    assert [m.body for m in client.conversations.v1.conversations(reply["conversation_sid"]).messages.list()] == \
        ["hello", "Sorry!"]


# --- the widgets of Flex's messaging flows ---------------------------------------------------------------------

def menu_flow(client, sandbox):
    states = [
        {"name": "Trigger", "type": "trigger", "properties": {},
         "transitions": [{"event": "incomingConversationMessage", "next": "Ask"}]},
        {"name": "Ask", "type": "send-and-wait-for-reply", "properties": {"body": "Reply 1 for an agent"},
         "transitions": [{"event": "incomingMessage", "next": "Choice"}, {"event": "timeout"},
                         {"event": "deliveryFailure"}]},
        {"name": "Choice", "type": "split-based-on", "properties": {"input": "{{widgets.Ask.inbound.Body}}"},
         "transitions": [{"event": "noMatch", "next": "Bye"},
                         {"event": "match", "next": "Remember", "conditions": [
                             {"friendly_name": "one", "arguments": ["{{widgets.Ask.inbound.Body}}"],
                              "type": "equal_to", "value": "1"}]}]},
        {"name": "Remember", "type": "set-variables",
         "properties": {"variables": [{"key": "topic", "value": "agent for {{trigger.conversation.Author}}"}]},
         "transitions": [{"event": "next", "next": "Lookup"}]},
        {"name": "Lookup", "type": "make-http-request", "properties": {"url": "https://example.com"},
         "transitions": [{"event": "success", "next": "Agent"}, {"event": "failed"}]},
        {"name": "Agent", "type": "send-to-flex",
         "properties": {"workflow": sandbox.demo["workflow_sid"], "channel": sandbox.demo["chat_channel_sid"],
                        "attributes": '{"topic": "{{flow.variables.topic}}"}'},
         "transitions": [{"event": "callComplete"}, {"event": "failedToEnqueue"}, {"event": "callFailure"}]},
        {"name": "Bye", "type": "send-message", "properties": {"body": "Bye {{trigger.conversation.Body}}"},
         "transitions": [{"event": "sent"}, {"event": "failed"}]},
    ]
    definition = {"description": "menu", "initial_state": "Trigger", "flags": {}, "states": states}
    return client.studio.v2.flows.create(friendly_name="Menu", status="published", definition=definition).sid


def test_send_and_wait_keeps_the_execution_active_until_the_reply_which_routes_it(client, sandbox):
    flow_sid = menu_flow(client, sandbox)
    studio(client, sandbox, flow_sid)
    first = inbound(sandbox, "hi")
    execution = client.studio.v2.flows(flow_sid).executions(first["studio_execution_sid"])
    assert execution.fetch().status == "active" and first["task_sid"] is None
    assert [m.body for m in client.conversations.v1.conversations(first["conversation_sid"]).messages.list()] == \
        ["hi", "Reply 1 for an agent"]

    reply = inbound(sandbox, "1")
    assert reply["studio_execution_sid"] is None and reply["task_sid"]  # the same execution moved on
    assert execution.fetch().status == "ended"
    assert [(s.name, s.transitioned_from, s.transitioned_to) for s in execution.steps.list()] == [
        ("incomingConversationMessage", "Trigger", "Ask"), ("incomingMessage", "Ask", "Choice"),
        ("match", "Choice", "Remember"), ("next", "Remember", "Lookup"), ("success", "Lookup", "Agent")]
    lookup = [s for s in execution.steps.list() if s.transitioned_to == "Lookup"][0]
    assert execution.steps(lookup.sid).step_context().fetch().context == {"simulated": True,
                                                                         "type": "make-http-request"}
    task = client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"]).tasks(reply["task_sid"]).fetch()
    assert json.loads(task.attributes)["topic"] == f"agent for {ME}"


def test_a_reply_matching_no_case_takes_no_match(client, sandbox):
    flow_sid = menu_flow(client, sandbox)
    studio(client, sandbox, flow_sid)
    first = inbound(sandbox, "hi")
    inbound(sandbox, "nope")
    execution = client.studio.v2.flows(flow_sid).executions(first["studio_execution_sid"])
    assert execution.fetch().status == "ended"
    assert [s.transitioned_to for s in execution.steps.list()] == ["Ask", "Choice", "Bye", "Ended"]
    assert client.conversations.v1.conversations(first["conversation_sid"]).messages.list()[-1].body == "Bye hi"


# --- the webhook integration ----------------------------------------------------------------------------------

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.seen.append((self.path, dict(parse_qsl(body)), self.headers["X-Twilio-Signature"]))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    server.seen, server.status = [], 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_webhook_gets_the_events_its_filters_select_signed_by_twilio(client, sandbox, receiver):
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    address(client, auto_creation_type="webhook", auto_creation_webhook_url=url, auto_creation_webhook_method="post",
            auto_creation_webhook_filters=["onParticipantAdded", "onMessageAdd", "onMessageAdded"])
    reply = inbound(sandbox, "hi")
    assert [params["EventType"] for _, params, _ in receiver.seen] == [
        "onParticipantAdded", "onMessageAdd", "onMessageAdded"]
    participant, pre, post = (params for _, params, _ in receiver.seen)
    assert (participant["ParticipantSid"], participant["MessagingBinding.Address"]) == (reply["participant_sid"], ME)
    assert "MessageSid" not in pre and pre["Body"] == "hi"
    assert (post["MessageSid"], post["ConversationSid"], post["Author"], post["Index"]) == (
        reply["message_sid"], reply["conversation_sid"], ME, "0")
    validator = RequestValidator(sandbox.demo["auth_token"])
    assert all(validator.validate(url, params, signature) for _, params, signature in receiver.seen)
    assert len(reply["webhook_delivery_sids"]) == 3 and reply["studio_execution_sid"] is None

    inbound(sandbox, "again")
    assert [params["EventType"] for _, params, _ in receiver.seen[3:]] == ["onMessageAdd", "onMessageAdded"]


def test_a_failing_webhook_raises_a_warning_alert(client, sandbox, receiver):
    receiver.status = 500
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    address(client, auto_creation_type="webhook", auto_creation_webhook_url=url)
    reply = inbound(sandbox)
    [alert] = alerts(client)
    assert (alert.error_code, alert.log_level, alert.request_url) == ("11200", "warning", url)
    assert alert.resource_sid == reply["conversation_sid"] and "HTTP 500" in alert.alert_text


# --- the legacy collision -------------------------------------------------------------------------------------

def test_a_legacy_flex_flow_on_the_page_captures_the_message_and_the_collision_is_alerted(client, sandbox):
    legacy = client.flex_api.v1.flex_flow.create(
        friendly_name="Legacy Messenger", chat_service_sid=sandbox.demo["chat_service_sid"], channel_type="facebook",
        contact_identity=f"messenger:{PAGE}", enabled=True, integration_type="studio",
        integration_flow_sid=sandbox.demo["messaging_flow_sid"])
    studio(client, sandbox)
    reply = inbound(sandbox)
    assert (reply["delivered"], reply["flex_flow_sid"]) == (False, legacy.sid) and "legacy" in reply["reason"]
    assert client.conversations.v1.conversations.list() == []
    [alert] = alerts(client)
    assert (alert.error_code, alert.resource_sid, alert.log_level) == ("45212", legacy.sid, "warning")
    client.flex_api.v1.flex_flow(legacy.sid).update(enabled=False)
    assert inbound(sandbox)["conversation_created"]


# --- the entry the control plane calls ------------------------------------------------------------------------

def test_simulate_checks_its_body_before_anything_changes(sandbox):
    from flexops.sandbox.inbound import simulate

    with pytest.raises(ValueError, match="page_id"):
        simulate(sandbox.app, {"sender": CUSTOMER})
    with pytest.raises(ValueError, match="digits"):
        simulate(sandbox.store, {"page_id": "my-page", "sender": CUSTOMER, "account_sid": sandbox.demo["account_sid"]})
    with pytest.raises(LookupError, match="unknown account"):
        simulate(sandbox.store, {"page_id": PAGE, "sender": CUSTOMER, "account_sid": "AC" + "0" * 32})
    reply = simulate(sandbox.store, {"page_id": PAGE, "sender": CUSTOMER, "account_sid": sandbox.demo["account_sid"]})
    assert reply["delivered"] is False and "no address configuration" in reply["reason"]
