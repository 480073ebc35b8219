"""TaskRouter in the sandbox through the real SDK: routing by workflow filters, reservations to available matching
workers, accept/reject, task lifecycle, lazy timeouts, events, and clear errors for bad expressions."""
import json
import time

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from flexops.sandbox.errors import TwilioError
from flexops.sandbox.taskrouter.models import TaskRouterBackend


@pytest.fixture
def account(sandbox):
    """An account of its own (the demo seed already has Flex's workspace), where each test provisions one."""
    return sandbox.control.create_account("taskrouter tests")["account_sid"]


@pytest.fixture
def client(sandbox, account):
    return sandbox.client(account)


@pytest.fixture
def flex(sandbox, account, client):
    """A Flex workspace (as Flex provisions it) and the SDK's handle on it."""
    made = TaskRouterBackend(sandbox.store, account).create_flex_workspace()
    return made, client.taskrouter.v1.workspaces(made["workspace_sid"])


def available(ws, made, worker_sid=None):
    return ws.workers(worker_sid or made["worker_sid"]).update(activity_sid=made["activities"]["Available"])


def test_the_flex_workspace_is_provisioned_like_flex(flex, client):
    made, ws = flex
    assert [w.friendly_name for w in client.taskrouter.v1.workspaces.list()] == ["Flex Task Assignment"]
    workspace = ws.fetch()
    assert workspace.default_activity_name == "Offline"
    assert workspace.timeout_activity_sid == made["activities"]["Offline"]
    assert sorted(c.unique_name for c in ws.task_channels.list()) == [
        "chat", "default", "email", "sms", "video", "voice"]
    assert {a.friendly_name: a.available for a in ws.activities.list()} == {
        "Offline": False, "Available": True, "Unavailable": False, "Break": False}
    assert [a.friendly_name for a in ws.activities.list(available="true")] == ["Available"]
    workflow = ws.workflows(made["workflow_sid"]).fetch()
    assert workflow.friendly_name == "Assign to Anyone"
    assert json.loads(workflow.configuration)["task_routing"]["default_filter"] == {"queue": made["queue_sid"]}
    assert ws.task_queues(made["queue_sid"]).fetch().target_workers == "1==1"
    worker = ws.workers(made["worker_sid"]).fetch()
    assert worker.activity_name == "Offline" and worker.available is False


def test_a_task_routes_by_the_first_matching_filter_then_the_default(flex):
    made, ws = flex
    vip = ws.task_queues.create(friendly_name="VIP", target_workers="routing.skills HAS 'vip'")
    config = {"task_routing": {"filters": [
        {"filter_friendly_name": "facebook", "expression": "channelType == 'facebook'",
         "targets": [{"queue": made["queue_sid"]}]},
        {"filter_friendly_name": "vip", "expression": "customer.tier IN ['gold', 'platinum']",
         "targets": [{"queue": vip.sid, "priority": 10}]}],
        "default_filter": {"queue": made["queue_sid"]}}}
    workflow = ws.workflows.create(friendly_name="Tiered", configuration=json.dumps(config))
    gold = ws.tasks.create(workflow_sid=workflow.sid, task_channel="chat",
                           attributes=json.dumps({"channelType": "messenger", "customer": {"tier": "gold"}}))
    plain = ws.tasks.create(workflow_sid=workflow.sid, attributes=json.dumps({"channelType": "messenger"}))
    assert (gold.task_queue_sid, gold.task_queue_friendly_name, gold.priority) == (vip.sid, "VIP", 10)
    assert gold.assignment_status == "pending" and gold.task_channel_unique_name == "chat"
    assert plain.task_queue_sid == made["queue_sid"] and plain.priority == 0
    assert [t.sid for t in ws.tasks.list(task_queue_sid=vip.sid)] == [gold.sid]
    assert [t.sid for t in ws.tasks.list(evaluate_task_attributes="customer.tier == 'gold'")] == [gold.sid]
    assert [t.sid for t in ws.tasks.list(ordering="Priority:desc")] == [gold.sid, plain.sid]
    assert [t.sid for t in ws.tasks.list(ordering="DateCreated:desc")] == [plain.sid, gold.sid]


def test_an_available_matching_worker_gets_a_reservation_and_accepting_assigns(flex):
    made, ws = flex
    task = ws.tasks.create(workflow_sid=made["workflow_sid"], attributes=json.dumps({"channelType": "messenger"}))
    assert task.assignment_status == "pending" and ws.tasks(task.sid).reservations.list() == []  # agent offline
    worker = available(ws, made)
    assert worker.available is True and worker.activity_name == "Available"
    [reservation] = ws.tasks(task.sid).reservations.list()
    assert (reservation.reservation_status, reservation.worker_sid) == ("pending", made["worker_sid"])
    assert ws.tasks(task.sid).fetch().assignment_status == "reserved"

    accepted = ws.tasks(task.sid).reservations(reservation.sid).update(reservation_status="accepted")
    assert accepted.reservation_status == "accepted" and ws.tasks(task.sid).fetch().assignment_status == "assigned"
    second = ws.tasks.create(workflow_sid=made["workflow_sid"], attributes="{}")
    assert ws.tasks(second.sid).reservations.list() == []  # the worker is busy with the first
    ws.tasks(task.sid).update(assignment_status="wrapping")
    assert ws.tasks(task.sid).reservations(reservation.sid).fetch().reservation_status == "wrapping"
    ws.tasks(task.sid).update(assignment_status="completed", reason="resolved")
    done = ws.tasks(task.sid).fetch()
    assert (done.assignment_status, done.reason) == ("completed", "resolved")
    assert ws.tasks(task.sid).reservations(reservation.sid).fetch().reservation_status == "completed"
    [next_one] = ws.tasks(second.sid).reservations.list()  # freed: the waiting task is offered
    assert next_one.reservation_status == "pending"
    assert [t.sid for t in ws.tasks.list(assignment_status=["completed"])] == [task.sid]


def test_workers_only_get_tasks_of_queues_whose_target_workers_match(flex):
    made, ws = flex
    french = ws.task_queues.create(friendly_name="French", target_workers="languages HAS 'fr'")
    config = {"task_routing": {"filters": [{"filter_friendly_name": "fr", "expression": "language == 'fr'",
                                            "targets": [{"queue": french.sid}]}]}}
    workflow = ws.workflows.create(friendly_name="Languages", configuration=json.dumps(config))
    amelie = ws.workers.create(friendly_name="amelie", attributes=json.dumps({"languages": ["fr"]}))
    available(ws, made)  # the default agent speaks no French
    task = ws.tasks.create(workflow_sid=workflow.sid, attributes=json.dumps({"language": "fr"}))
    assert ws.tasks(task.sid).reservations.list() == []
    available(ws, made, amelie.sid)
    assert [r.worker_name for r in ws.tasks(task.sid).reservations.list()] == ["amelie"]
    assert [w.friendly_name for w in ws.workers.list(available="true")] == ["flex-agent", "amelie"]


def test_rejecting_reoffers_to_another_worker_or_leaves_the_task_pending(flex):
    made, ws = flex
    other = ws.workers.create(friendly_name="bob", activity_sid=made["activities"]["Available"])
    task = ws.tasks.create(workflow_sid=made["workflow_sid"], attributes="{}")
    [first] = ws.tasks(task.sid).reservations.list()
    assert first.worker_sid == other.sid
    available(ws, made)
    ws.tasks(task.sid).reservations(first.sid).update(reservation_status="rejected")
    pending = ws.tasks(task.sid).reservations.list(reservation_status="pending")
    assert [r.worker_sid for r in pending] == [made["worker_sid"]]
    ws.tasks(task.sid).reservations(pending[0].sid).update(reservation_status="rejected")
    assert ws.tasks(task.sid).fetch().assignment_status == "pending"
    assert ws.tasks(task.sid).reservations.list(reservation_status="pending") == []
    with pytest.raises(TwilioRestException) as raised:
        ws.tasks(task.sid).reservations(first.sid).update(reservation_status="accepted")
    assert raised.value.status == 400 and "not pending" in raised.value.msg


def test_an_unrouted_task_is_canceled_at_its_timeout_with_a_workflow_timeout_event(flex):
    made, ws = flex
    config = {"task_routing": {"filters": [{"filter_friendly_name": "sms only", "expression": "channelType == 'sms'",
                                            "targets": [{"queue": made["queue_sid"]}]}]}}
    workflow = ws.workflows.create(friendly_name="No default", configuration=json.dumps(config))
    task = ws.tasks.create(workflow_sid=workflow.sid, attributes=json.dumps({"channelType": "messenger"}), timeout=1)
    assert task.task_queue_sid is None and task.assignment_status == "pending"
    time.sleep(1.2)
    canceled = ws.tasks(task.sid).fetch()
    assert (canceled.assignment_status, canceled.reason) == ("canceled", "Workflow Timeout")
    types = [e.event_type for e in ws.events.list(task_sid=task.sid)]
    assert types == ["task.created", "workflow.timeout", "task.canceled"]
    [timeout] = ws.events.list(event_type="workflow.timeout")
    assert timeout.event_data["task_sid"] == task.sid and timeout.event_data["workflow_sid"] == workflow.sid


def test_events_record_the_path_with_event_data(flex):
    made, ws = flex
    available(ws, made)
    task = ws.tasks.create(workflow_sid=made["workflow_sid"], attributes=json.dumps({"channelType": "messenger"}))
    [reservation] = ws.tasks(task.sid).reservations.list()
    ws.tasks(task.sid).reservations(reservation.sid).update(reservation_status="accepted")
    ws.tasks(task.sid).update(assignment_status="completed")
    types = [e.event_type for e in ws.events.list(task_sid=task.sid)]
    assert types == ["task.created", "workflow.target-matched", "task-queue.entered", "reservation.created",
                     "reservation.accepted", "reservation.completed", "task.completed"]
    [entered] = ws.events.list(event_type="task-queue.entered")
    assert entered.event_data["task_queue_name"] == "Everyone" and entered.resource_sid == task.sid
    assert json.loads(entered.event_data["task_attributes"]) == {"channelType": "messenger"}
    [update] = ws.events.list(event_type="worker.activity.update")
    assert update.event_data["worker_activity_name"] == "Available" and update.actor_type == "account"
    assert ws.events.list(start_date="2999-01-01T00:00:00Z") == []
    assert len(ws.events.list(minutes=5)) == len(ws.events.list())


def test_a_canceled_task_cancels_its_pending_reservation_and_frees_the_worker(flex):
    made, ws = flex
    available(ws, made)
    task = ws.tasks.create(workflow_sid=made["workflow_sid"], attributes="{}")
    [reservation] = ws.tasks(task.sid).reservations.list()
    ws.tasks(task.sid).update(assignment_status="canceled", reason="customer left")
    assert ws.tasks(task.sid).reservations(reservation.sid).fetch().reservation_status == "canceled"
    after = ws.tasks.create(workflow_sid=made["workflow_sid"], attributes="{}")
    assert len(ws.tasks(after.sid).reservations.list()) == 1
    with pytest.raises(TwilioRestException) as raised:
        ws.tasks(task.sid).update(assignment_status="completed")
    assert raised.value.status == 400 and "it is canceled" in raised.value.msg


def test_bad_expressions_and_configurations_are_400s_naming_them(flex):
    made, ws = flex
    with pytest.raises(TwilioRestException) as raised:
        ws.task_queues.create(friendly_name="Broken", target_workers="skills HAS")
    assert raised.value.status == 400 and "'skills HAS'" in raised.value.msg and "TargetWorkers" in raised.value.msg
    bad = {"task_routing": {"filters": [{"filter_friendly_name": "oops", "expression": "customer-tier == 'gold'",
                                         "targets": [{"queue": made["queue_sid"]}]}]}}
    with pytest.raises(TwilioRestException) as raised:
        ws.workflows.create(friendly_name="Bad", configuration=json.dumps(bad))
    assert "customer-tier == 'gold'" in raised.value.msg and "'oops'" in raised.value.msg
    with pytest.raises(TwilioRestException) as raised:
        ws.workflows(made["workflow_sid"]).update(configuration=json.dumps(
            {"task_routing": {"filters": [], "default_filter": {"queue": "WQ" + "0" * 32}}}))
    assert "default_filter" in raised.value.msg
    assert json.loads(ws.workflows(made["workflow_sid"]).fetch().configuration)["task_routing"]["default_filter"] == {
        "queue": made["queue_sid"]}  # nothing changed
    with pytest.raises(TwilioException, match="EvaluateTaskAttributes.*'a =='"):
        ws.tasks.list(evaluate_task_attributes="a ==")  # lists raise the SDK's bare TwilioException
    with pytest.raises(TwilioRestException) as raised:
        ws.tasks("WT" + "0" * 32).fetch()
    assert raised.value.status == 404


def test_the_backend_interface_for_the_inbound_path(sandbox, account, flex):
    made, _ = flex
    backend = TaskRouterBackend(sandbox.store, account)
    task = backend.create_task(made["workspace_sid"], made["workflow_sid"], "chat", {"channelType": "messenger"})
    assert task["assignment_status"] == "pending" and task["task_queue_sid"] == made["queue_sid"]
    assert [t["sid"] for t in backend.tasks(made["workspace_sid"], assignment_status="pending")] == [task["sid"]]
    assert not any(key.startswith("_") for key in task)
    for call, status in ((lambda: backend.create_task("WS" + "0" * 32, made["workflow_sid"], "chat", {}), 404),
                         (lambda: backend.create_task(made["workspace_sid"], "WW" + "0" * 32, "chat", {}), 404),
                         (lambda: backend.create_task(made["workspace_sid"], made["workflow_sid"], "fax", {}), 400)):
        with pytest.raises(TwilioError) as raised:
            call()
        assert raised.value.status == status


def test_an_unanswered_reservation_times_out_and_its_worker_goes_offline(flex):
    made, ws = flex
    config = {"task_routing": {"filters": [], "default_filter": {"queue": made["queue_sid"]}}}
    workflow = ws.workflows.create(friendly_name="Quick", configuration=json.dumps(config), task_reservation_timeout=1)
    other = ws.workers.create(friendly_name="bob")
    available(ws, made)
    task = ws.tasks.create(workflow_sid=workflow.sid, attributes="{}")
    [first] = ws.tasks(task.sid).reservations.list()
    available(ws, made, other.sid)  # busy with nothing: waits for the next task
    time.sleep(1.2)
    assert ws.workers(made["worker_sid"]).fetch().activity_name == "Offline"  # Twilio's timeout activity
    assert ws.tasks(task.sid).reservations(first.sid).fetch().reservation_status == "timeout"
    [second] = ws.tasks(task.sid).reservations.list(reservation_status="pending")
    assert second.worker_sid == other.sid and ws.tasks(task.sid).fetch().assignment_status == "reserved"
    assert [e.event_type for e in ws.events.list(event_type="reservation.timeout")] == ["reservation.timeout"]
    with pytest.raises(TwilioRestException) as raised:
        ws.task_queues("WQ" + "0" * 32).fetch()
    assert raised.value.status == 404 and "TaskQueue WQ" in raised.value.msg


def test_attribute_filters_answer_the_same_through_the_text_prefilter(flex):
    """EvaluateTaskAttributes `key == 'plain'` is narrowed by SQLite before any task is decoded: the answers stay
    TaskRouter's (equality, not substrings; OR and escaped text evaluated in full)."""
    from flexops.sandbox.taskrouter.models import required_texts
    from flexops.task_expressions import parse

    made, ws = flex
    first = ws.tasks.create(workflow_sid=made["workflow_sid"], attributes=json.dumps(
        {"conversationSid": "CH0001", "name": "Zoë"})).sid
    second = ws.tasks.create(workflow_sid=made["workflow_sid"], attributes=json.dumps(
        {"conversationSid": "CH0002", "tier": "gold"})).sid

    def found(expression):
        return [t.sid for t in ws.tasks.list(evaluate_task_attributes=expression, ordering="DateCreated:asc")]

    assert found("conversationSid == 'CH0001'") == [first]
    assert found("conversationSid == 'CH000'") == []  # a substring of the stored text is not equality
    assert found("conversationSid == 'CH0001' OR tier == 'gold'") == [first, second]
    assert found("tier == 'gold' AND conversationSid == 'CH0002'") == [second]
    assert found("name == 'Zoë'") == [first]  # stored escaped (\u00eb): compared in full, never prefiltered
    assert required_texts(parse("a == 'x' AND (b == 'y' AND 'z' == c)")) == ["x", "y", "z"]
    assert required_texts(parse("a == 'x' OR b == 'y'")) == required_texts(parse("name == 'Zoë'")) == []
