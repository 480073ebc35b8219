"""Verify learns the path (checks.verify's Flex-side rows), on the sandbox through the real SDK."""
import json

from flexops import checks

PAGE = "104738392011234"
CUSTOMER = "7000123"


def address(client, sandbox, flow_sid=None):
    client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{PAGE}", auto_creation_enabled=True, auto_creation_type="studio",
        auto_creation_studio_flow_sid=flow_sid or sandbox.demo["messaging_flow_sid"])


def rows(client):
    return {r.check: r for r in checks.verify(client, [PAGE], require_first_message=False)}


def test_a_healthy_address_passes_the_path_checks(client, sandbox):
    address(client, sandbox)
    found = rows(client)
    assert found["Flex routing"].status == "pass" and "Assign to Anyone" in found["Flex routing"].detail
    assert found["legacy Flex Flow"].status == "pass"
    assert "stale conversations" not in found and "Monitor alert" not in found


def test_send_to_flex_to_a_missing_workflow_fails_flex_routing(client, sandbox):
    definition = client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).fetch().definition
    next(s for s in definition["states"] if s["type"] == "send-to-flex")["properties"]["workflow"] = "WW" + "0" * 32
    flow = client.studio.v2.flows.create(friendly_name="Broken", status="published", definition=definition)
    address(client, sandbox, flow.sid)
    found = rows(client)["Flex routing"]
    assert found.status == "fail" and "WW" + "0" * 32 in found.detail and "workflow" in found.remedy


def test_filters_that_cannot_match_messenger_fail_flex_routing(client, sandbox):
    queue = sandbox.demo["queue_sid"]
    client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"]).workflows(sandbox.demo["workflow_sid"]).update(
        configuration=json.dumps({"task_routing": {"filters": [{
            "filter_friendly_name": "Facebook", "expression": "channelType == 'facebook'",
            "targets": [{"queue": queue}]}]}}))
    address(client, sandbox)
    found = rows(client)["Flex routing"]
    assert found.status == "fail" and "facebook" in found.detail and "routing fix" in found.remedy


def test_a_legacy_flex_flow_holding_the_page_fails(client, sandbox):
    address(client, sandbox)
    legacy = client.flex_api.v1.flex_flow.create(
        friendly_name="Legacy", chat_service_sid=sandbox.demo["chat_service_sid"], channel_type="facebook",
        contact_identity=f"messenger:{PAGE}", integration_type="studio",
        integration_flow_sid=sandbox.demo["messaging_flow_sid"], enabled=True)
    found = rows(client)["legacy Flex Flow"]
    assert found.status == "fail" and legacy.sid in found.detail and "legacy retire" in found.remedy


def test_active_conversations_without_an_open_task_are_a_warning_with_their_count(client, sandbox):
    address(client, sandbox)
    ws = client.taskrouter.v1.workspaces(sandbox.demo["workspace_sid"])
    for sender in ("7000001", "7000002"):
        task = sandbox.control.simulate_inbound(PAGE, sender, "hi")["task_sid"]
        ws.tasks(task).update(assignment_status="canceled", reason="test")
    sandbox.control.simulate_inbound(PAGE, "7000003", "hi")  # its task is still open: not stale
    found = rows(client)["stale conversations"]
    assert found.status == "warn" and found.detail.startswith("2 active conversations") and "janitor" in found.remedy


def test_monitor_alerts_on_the_address_resources_are_warnings(client, sandbox):
    address(client, sandbox, sandbox.demo["draft_flow_sid"])  # Studio will not run a draft: Twilio alerts
    sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hi")
    alerts = [r for r in checks.verify(client, [PAGE], require_first_message=False) if r.check == "Monitor alert"]
    assert alerts and all(r.status == "warn" and "twilio.com/docs/api/errors/" in r.remedy for r in alerts)
