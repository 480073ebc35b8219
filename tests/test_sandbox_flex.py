"""The Flex side of the path in the sandbox through the real SDK: Monitor alerts, the Flex configuration,
Interactions (Send to Flex) with their channels and TaskRouter tasks, and legacy Flex Flows."""
import json
import time

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from flexops.sandbox.flex.models import FlexBackend
from flexops.sandbox.monitor.models import MonitorBackend


def test_recorded_alerts_are_listed_newest_first_and_filtered(sandbox, client):
    monitor = MonitorBackend(sandbox.store, sandbox.demo["account_sid"])
    first = monitor.record_alert(81009, "Msg=Send to Flex timed out enqueueing&sourceComponent=14100",
                                 resource_sid="FN" + "1" * 32, service_sid="FW" + "2" * 32,
                                 request_url="https://flex-api.twilio.com/v1/Interactions", request_method="post",
                                 response_body='{"code": 20429}')
    time.sleep(1.1)
    warning = monitor.record_alert("45210", "Flex Flow collided", log_level="warning")
    assert first["sid"].startswith("NO") and first["error_code"] == "81009" and first["request_method"] == "POST"
    assert first["more_info"] == "https://www.twilio.com/docs/errors/81009"
    listed = client.monitor.v1.alerts.list()
    assert [a.sid for a in listed] == [warning["sid"], first["sid"]]
    assert [a.sid for a in client.monitor.v1.alerts.list(log_level="warning")] == [warning["sid"]]
    assert [a.sid for a in client.monitor.v1.alerts.list(start_date=warning["date_generated"])] == [warning["sid"]]
    assert client.monitor.v1.alerts.list(end_date="2000-01-01T00:00:00Z") == []
    fetched = client.monitor.v1.alerts(first["sid"]).fetch()
    assert fetched.response_body == '{"code": 20429}' and fetched.resource_sid == "FN" + "1" * 32
    assert fetched.alert_text.startswith("Msg=Send to Flex")
    with pytest.raises(TwilioRestException) as raised:
        client.monitor.v1.alerts("NO" + "0" * 32).fetch()
    assert raised.value.status == 404
    with pytest.raises(TwilioException, match="LogLevel"):
        client.monitor.v1.alerts.list(log_level="fatal")


def test_alerts_belong_to_their_account(sandbox, client):
    other = sandbox.control.create_account("other")["account_sid"]
    MonitorBackend(sandbox.store, other).record_alert(63003, "not yours")
    assert client.monitor.v1.alerts.list() == []
    assert len(sandbox.client(other).monitor.v1.alerts.list()) == 1


def test_record_alert_refuses_what_twilio_never_records(sandbox):
    monitor = MonitorBackend(sandbox.store, sandbox.demo["account_sid"])
    with pytest.raises(ValueError, match="log_level"):
        monitor.record_alert(81009, "x", log_level="fatal")
    with pytest.raises(ValueError, match="request_method"):
        monitor.record_alert(81009, "x", request_method="PUT")


# --- Flex configuration and Interactions -------------------------------------------------------------------

PAGE = "204738392011235"


@pytest.fixture
def flex(sandbox):
    """Flex set up as the seed will (`setup_flex`), and a customer's conversation with a page."""
    backend = FlexBackend(sandbox.store, sandbox.demo["account_sid"])
    config = backend.configuration()
    made = backend.setup_flex(config["flex_service_instance_sid"], config["chat_service_instance_sid"])
    client = sandbox.client()
    client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{PAGE}", auto_creation_enabled=True, auto_creation_type="webhook",
        auto_creation_webhook_url="https://hooks.example.com/flexops", auto_creation_webhook_method="post")
    made["conversation_sid"] = sandbox.control.simulate_inbound(PAGE, "7000123", "Hello!")["conversation_sid"]
    return made


def send_to_flex(client, made, **properties):
    """What Studio's Send to Flex asks of the Interactions API for a conversation."""
    return client.flex_api.v1.interaction.create(
        channel={"type": "messenger", "initiated_by": "customer",
                 "properties": {"media_channel_sid": made["conversation_sid"]}},
        routing={"properties": {"workspace_sid": made["workspace_sid"], "workflow_sid": made["workflow_sid"],
                                "task_channel_unique_name": "chat",
                                "attributes": {"name": "7000123", "channelType": "messenger"}, **properties}})


def test_setup_flex_writes_the_configuration_with_real_taskrouter_sids(sandbox, client, flex):
    config = client.flex_api.v1.configuration().fetch()
    assert config.taskrouter_workspace_sid == flex["workspace_sid"]
    assert config.taskrouter_target_workflow_sid == flex["workflow_sid"]
    assert config.taskrouter_target_taskqueue_sid == flex["queue_sid"]
    assert config.taskrouter_offline_activity_sid == flex["activities"]["Offline"]
    assert config.status == "ok" and config.chat_service_instance_sid.startswith("IS")
    workspace = client.taskrouter.v1.workspaces(flex["workspace_sid"]).fetch()
    assert workspace.friendly_name == "Flex Task Assignment"
    channel = client.taskrouter.v1.workspaces(flex["workspace_sid"]).task_channels.list()
    assert flex["chat_channel_sid"] in [c.sid for c in channel if c.unique_name == "chat"]


def test_send_to_flex_creates_an_interaction_its_channel_and_a_routed_task(sandbox, client, flex):
    ws = client.taskrouter.v1.workspaces(flex["workspace_sid"])
    ws.workers(flex["worker_sid"]).update(activity_sid=flex["activities"]["Available"])
    interaction = send_to_flex(client, flex)
    assert interaction.sid.startswith("KD") and interaction.channel["sid"].startswith("UO")
    task = interaction.routing["properties"]
    assert task["sid"].startswith("WT") and task["task_queue_sid"] == flex["queue_sid"]
    attributes = json.loads(ws.tasks(task["sid"]).fetch().attributes)
    assert attributes["conversationSid"] == flex["conversation_sid"] and attributes["name"] == "7000123"
    assert attributes["flexInteractionSid"] == interaction.sid
    assert attributes["flexInteractionChannelSid"] == interaction.channel["sid"]
    assert ws.tasks(task["sid"]).fetch().assignment_status == "reserved"  # the available agent got it
    [channel] = client.flex_api.v1.interaction(interaction.sid).channels.list()
    assert (channel.sid, channel.type, channel.status) == (interaction.channel["sid"], "messenger", "active")
    assert client.flex_api.v1.interaction(interaction.sid).fetch().channel["sid"] == channel.sid


def test_closing_the_interaction_channel_ends_its_task(sandbox, client, flex):
    ws = client.taskrouter.v1.workspaces(flex["workspace_sid"])
    ws.workers(flex["worker_sid"]).update(activity_sid=flex["activities"]["Available"])
    interaction = send_to_flex(client, flex)
    task_sid = interaction.routing["properties"]["sid"]
    [reservation] = ws.tasks(task_sid).reservations.list()
    ws.tasks(task_sid).reservations(reservation.sid).update(reservation_status="accepted")
    channel = client.flex_api.v1.interaction(interaction.sid).channels(interaction.channel["sid"])
    assert channel.update(status="closed").status == "closed"
    assert ws.tasks(task_sid).fetch().assignment_status == "completed"
    assert client.conversations.v1.conversations(flex["conversation_sid"]).fetch().state == "active"
    with pytest.raises(TwilioRestException) as raised:
        channel.update(status="closed")
    assert (raised.value.status, raised.value.code) == (400, 80906)
    pending = send_to_flex(client, flex)  # the agent is free again: reserved, then canceled on close
    client.flex_api.v1.interaction(pending.sid).channels(pending.channel["sid"]).update(status="inactive")
    assert ws.tasks(pending.routing["properties"]["sid"]).fetch().assignment_status == "canceled"


def test_interactions_refuse_what_cannot_reach_flex(sandbox, client, flex):
    def fails(status, code, **overrides):
        channel = {"type": "messenger", "initiated_by": "customer",
                   "properties": {"media_channel_sid": flex["conversation_sid"]}}
        channel.update(overrides.pop("channel", {}))
        properties = {"workspace_sid": flex["workspace_sid"], "workflow_sid": flex["workflow_sid"],
                      "task_channel_unique_name": "chat", **overrides}
        with pytest.raises(TwilioRestException) as raised:
            client.flex_api.v1.interaction.create(channel=channel, routing={"properties": properties})
        assert (raised.value.status, raised.value.code) == (status, code), raised.value.msg
        return raised.value.msg

    assert "CH" + "0" * 32 in fails(400, 20001, channel={"properties": {"media_channel_sid": "CH" + "0" * 32}})
    assert "type" in fails(400, 20001, channel={"type": "fax"})
    fails(404, 20404, workspace_sid="WS" + "0" * 32)
    fails(404, 20404, workflow_sid="WW" + "0" * 32)
    assert "'fax'" in fails(400, 20001, task_channel_unique_name="fax")
    assert "priority" in fails(400, 20001, priority="high")
    tasks = client.taskrouter.v1.workspaces(flex["workspace_sid"]).tasks.list()
    assert tasks == []  # nothing was created by the failures
    with pytest.raises(TwilioRestException) as raised:
        client.flex_api.v1.interaction("KD" + "0" * 32).fetch()
    assert raised.value.status == 404


def test_the_workflow_may_be_left_out_when_the_workspace_has_one(sandbox, client, flex):
    interaction = client.flex_api.v1.interaction.create(
        channel={"type": "messenger", "properties": {"media_channel_sid": flex["conversation_sid"]}},
        routing={"properties": {"workspace_sid": flex["workspace_sid"], "task_channel_sid": flex["chat_channel_sid"],
                                "attributes": json.dumps({"from": "7000123"})}})
    task = interaction.routing["properties"]
    assert task["workflow_sid"] == flex["workflow_sid"] and task["task_channel_unique_name"] == "chat"


# --- legacy Flex Flows -----------------------------------------------------------------------------------

def test_legacy_flex_flows_lifecycle_and_lookup(sandbox, client):
    flows = client.flex_api.v1.flex_flow
    chat = FlexBackend(sandbox.store, sandbox.demo["account_sid"]).configuration()["chat_service_instance_sid"]
    studio = sandbox.demo["messaging_flow_sid"]
    flow = flows.create(friendly_name="Facebook (legacy)", chat_service_sid=chat, channel_type="facebook",
                        contact_identity=f"messenger:{PAGE}", integration_type="studio", integration_flow_sid=studio,
                        enabled=True)
    assert flow.sid.startswith("FO") and flow.integration == {"flow_sid": studio} and flow.enabled is True
    assert [f.sid for f in flows.list()] == [flow.sid]
    assert [f.sid for f in flows.list(friendly_name="nope")] == []
    backend = FlexBackend(sandbox.store, sandbox.demo["account_sid"])
    assert backend.legacy_flow_for(f"messenger:{PAGE}")["sid"] == flow.sid
    updated = client.flex_api.v1.flex_flow(flow.sid).update(enabled=False, integration_retry_count=2)
    assert updated.enabled is False and updated.integration == {"flow_sid": studio, "retry_count": 2}
    assert backend.legacy_flow_for(f"messenger:{PAGE}") is None  # disabled flows hold nothing live
    assert client.flex_api.v1.flex_flow(flow.sid).fetch().friendly_name == "Facebook (legacy)"
    assert client.flex_api.v1.flex_flow(flow.sid).delete() is True
    assert flows.list() == []


def test_two_flex_flows_cannot_hold_one_contact_identity(sandbox, client):
    flows = client.flex_api.v1.flex_flow
    chat = "IS" + "1" * 32
    first = flows.create(friendly_name="A", chat_service_sid=chat, channel_type="facebook",
                         contact_identity="messenger:1", integration_type="external",
                         integration_url="https://example.com/hook")
    with pytest.raises(TwilioRestException) as raised:
        flows.create(friendly_name="B", chat_service_sid=chat, channel_type="facebook",
                     contact_identity="messenger:1", integration_flow_sid="FW" + "2" * 32)
    assert raised.value.code == 45210 and first.sid in raised.value.msg
    second = flows.create(friendly_name="B", chat_service_sid=chat, channel_type="sms", contact_identity="+15550001",
                          integration_flow_sid="FW" + "2" * 32)
    assert second.integration_type == "studio"
    with pytest.raises(TwilioRestException) as raised:
        client.flex_api.v1.flex_flow(second.sid).update(contact_identity="messenger:1")
    assert raised.value.code == 45212
    assert client.flex_api.v1.flex_flow(second.sid).fetch().contact_identity == "+15550001"
    with pytest.raises(TwilioRestException) as raised:
        flows.create(friendly_name="C", chat_service_sid=chat, channel_type="web", integration_type="studio")
    assert raised.value.code == 45212 and "Integration.FlowSid" in raised.value.msg
    with pytest.raises(TwilioRestException) as raised:
        flows.create(friendly_name="D", chat_service_sid=chat, channel_type="telegram",
                     integration_flow_sid="FW" + "2" * 32)
    assert raised.value.status == 400 and "telegram" in raised.value.msg
