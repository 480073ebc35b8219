"""Contract steps for the path into Flex: TaskRouter, Flex (interactions, legacy Flex Flows) and Monitor, run by
test_contract.py after its own SCENARIO steps (same results dict, same `Step` shape)."""
import json
from collections import namedtuple

from flexops.sandbox.monitor.models import MonitorBackend
from flexops.sandbox.taskrouter.models import TaskRouterBackend

Step = namedtuple("Step", "name operation call")  # the shape of test_contract.Step (importing it would be a cycle)

WORKSPACE = "the flex workspace (backend)"


def provision(results):
    """A Flex workspace of its own (the seed's, if any, is left alone)."""
    return TaskRouterBackend(results["sandbox"].store, results["demo"]["account_sid"]).create_flex_workspace()


def alert(results):
    """An alert as the inbound path records one when Send to Flex fails."""
    return MonitorBackend(results["sandbox"].store, results["demo"]["account_sid"]).record_alert(
        81009, "Msg=Send to Flex failed to enqueue&sourceComponent=14100", resource_sid="FN" + "0" * 32,
        request_url="https://flex-api.twilio.com/v1/Interactions", request_method="POST", response_body="{}")


def interaction(client, results):
    """Send to Flex for the conversation SCENARIO's inbound step opened."""
    conversation = results["a customer writes to the page (control plane)"]["conversation_sid"]
    return client.flex_api.v1.interaction.create(
        channel={"type": "messenger", "initiated_by": "customer", "properties": {"media_channel_sid": conversation}},
        routing={"properties": {"workspace_sid": made(results, "workspace_sid"),
                                "workflow_sid": made(results, "workflow_sid"), "task_channel_unique_name": "chat",
                                "attributes": {"channelType": "messenger", "from": "7000123"}}})


def channels(client, results):
    return client.flex_api.v1.interaction(results["send to flex"].sid).channels


def tr(client, results):
    return client.taskrouter.v1.workspaces(results[WORKSPACE]["workspace_sid"])


def made(results, key):
    return results[WORKSPACE][key]


TIERED = {"task_routing": {"filters": [{"filter_friendly_name": "messenger", "expression": "channelType == 'messenger'",
                                        "targets": [{"queue": "<queue>", "priority": 5}]}],
                           "default_filter": {"queue": "<queue>"}}}


def tiered(queue_sid):
    return json.dumps(TIERED).replace("<queue>", queue_sid)


STEPS = [
    Step(WORKSPACE, None, lambda c, r: provision(r)),
    Step("list workspaces", "taskrouter ListWorkspace", lambda c, r: c.taskrouter.v1.workspaces.list()),
    Step("fetch a workspace", "taskrouter FetchWorkspace", lambda c, r: tr(c, r).fetch()),
    Step("list activities", "taskrouter ListActivity", lambda c, r: tr(c, r).activities.list(available="true")),
    Step("list task channels two a page (PageToken)", "taskrouter ListTaskChannel",
         lambda c, r: list(tr(c, r).task_channels.stream(page_size=2))),
    Step("create a task queue", "taskrouter CreateTaskQueue",
         lambda c, r: tr(c, r).task_queues.create(friendly_name="Messenger", target_workers="routing.skills HAS 'fb'",
                                                  task_order="FIFO", max_reserved_workers=1)),
    Step("list task queues", "taskrouter ListTaskQueue", lambda c, r: tr(c, r).task_queues.list()),
    Step("fetch a task queue", "taskrouter FetchTaskQueue",
         lambda c, r: tr(c, r).task_queues(r["create a task queue"].sid).fetch()),
    Step("create a workflow", "taskrouter CreateWorkflow",
         lambda c, r: tr(c, r).workflows.create(friendly_name="Messenger first",
                                                configuration=tiered(made(r, "queue_sid")),
                                                task_reservation_timeout=60)),
    Step("update a workflow", "taskrouter UpdateWorkflow",
         lambda c, r: tr(c, r).workflows(r["create a workflow"].sid).update(
             friendly_name="Messenger first (v2)", configuration=tiered(made(r, "queue_sid")))),
    Step("list workflows", "taskrouter ListWorkflow", lambda c, r: tr(c, r).workflows.list()),
    Step("fetch a workflow", "taskrouter FetchWorkflow",
         lambda c, r: tr(c, r).workflows(r["create a workflow"].sid).fetch()),
    Step("create a worker", "taskrouter CreateWorker",
         lambda c, r: tr(c, r).workers.create(friendly_name="contract-agent",
                                              attributes=json.dumps({"routing": {"skills": ["fb"]}}))),
    Step("make a worker available", "taskrouter UpdateWorker",
         lambda c, r: tr(c, r).workers(r["create a worker"].sid).update(
             activity_sid=made(r, "activities")["Available"])),
    Step("list workers", "taskrouter ListWorker", lambda c, r: tr(c, r).workers.list(available="true")),
    Step("fetch a worker", "taskrouter FetchWorker", lambda c, r: tr(c, r).workers(r["create a worker"].sid).fetch()),
    Step("create a task", "taskrouter CreateTask",
         lambda c, r: tr(c, r).tasks.create(workflow_sid=r["create a workflow"].sid, task_channel="chat",
                                            attributes=json.dumps({"channelType": "messenger"}), timeout=3600)),
    Step("list tasks", "taskrouter ListTask",
         lambda c, r: tr(c, r).tasks.list(assignment_status=["pending", "reserved"], ordering="DateCreated:desc",
                                          evaluate_task_attributes="channelType == 'messenger'")),
    Step("fetch a task", "taskrouter FetchTask", lambda c, r: tr(c, r).tasks(r["create a task"].sid).fetch()),
    Step("list a task's reservations", "taskrouter ListTaskReservation",
         lambda c, r: tr(c, r).tasks(r["create a task"].sid).reservations.list()),
    Step("fetch a reservation", "taskrouter FetchTaskReservation",
         lambda c, r: tr(c, r).tasks(r["create a task"].sid).reservations(
             r["list a task's reservations"][0].sid).fetch()),
    Step("accept a reservation", "taskrouter UpdateTaskReservation",
         lambda c, r: tr(c, r).tasks(r["create a task"].sid).reservations(
             r["list a task's reservations"][0].sid).update(reservation_status="accepted")),
    Step("complete a task", "taskrouter UpdateTask",
         lambda c, r: tr(c, r).tasks(r["create a task"].sid).update(assignment_status="completed", reason="done")),
    Step("list events", "taskrouter ListEvent",
         lambda c, r: tr(c, r).events.list(task_sid=r["create a task"].sid, minutes=60)),
    Step("an alert is recorded (backend)", None, lambda c, r: alert(r)),
    Step("list alerts", "monitor ListAlert",
         lambda c, r: c.monitor.v1.alerts.list(log_level="error", start_date="2000-01-01T00:00:00Z")),
    Step("fetch an alert", "monitor FetchAlert",
         lambda c, r: c.monitor.v1.alerts(r["an alert is recorded (backend)"]["sid"]).fetch()),
    Step("send to flex", "flex-api CreateInteraction", interaction),
    Step("fetch an interaction", "flex-api FetchInteraction",
         lambda c, r: c.flex_api.v1.interaction(r["send to flex"].sid).fetch()),
    Step("list an interaction's channels", "flex-api ListInteractionChannel", lambda c, r: channels(c, r).list()),
    Step("fetch an interaction channel", "flex-api FetchInteractionChannel",
         lambda c, r: channels(c, r)(r["send to flex"].channel["sid"]).fetch()),
    Step("close an interaction channel", "flex-api UpdateInteractionChannel",
         lambda c, r: channels(c, r)(r["send to flex"].channel["sid"]).update(status="closed")),
    Step("create a legacy flex flow", "flex-api CreateFlexFlow",
         lambda c, r: c.flex_api.v1.flex_flow.create(
             friendly_name="Legacy Messenger", chat_service_sid=r["demo"]["flex_service_sid"], channel_type="facebook",
             contact_identity="messenger:304738392011236", enabled=True, integration_type="studio",
             integration_flow_sid=r["demo"]["messaging_flow_sid"], integration_retry_count=1, long_lived=False)),
    Step("list flex flows", "flex-api ListFlexFlow", lambda c, r: c.flex_api.v1.flex_flow.list()),
    Step("fetch a flex flow", "flex-api FetchFlexFlow",
         lambda c, r: c.flex_api.v1.flex_flow(r["create a legacy flex flow"].sid).fetch()),
    Step("disable a flex flow", "flex-api UpdateFlexFlow",
         lambda c, r: c.flex_api.v1.flex_flow(r["create a legacy flex flow"].sid).update(enabled=False)),
    Step("delete a flex flow", "flex-api DeleteFlexFlow",
         lambda c, r: c.flex_api.v1.flex_flow(r["create a legacy flex flow"].sid).delete()),
]
