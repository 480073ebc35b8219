"""TaskRouter's rules: a workflow routes a task to a queue, available workers get reservations, timeouts cancel.

All functions run inside the caller's write transaction (`db`) and record Twilio's events as they go. Timeouts
are evaluated lazily (`expire`, called before every read or change of a workspace's tasks), so nothing runs in
the background and tests can use timeouts of a second.
"""
import json
import time

from flexops.task_expressions import matches

from ..core import new_sid, now
from . import records
from .records import BASE, KIND

RESOURCE_TYPES = {"task": "task", "reservation": "reservation", "worker": "worker", "workflow": "workflow",
                  "queue": "task_queue", "workspace": "workspace"}
RESOURCE_PATHS = {"task": "Tasks", "worker": "Workers", "workflow": "Workflows", "queue": "TaskQueues"}


def task_data(task):
    return {"task_sid": task["sid"], "task_attributes": task["attributes"], "task_age": records.render(task)["age"],
            "task_priority": task["priority"], "task_assignment_status": task["assignment_status"],
            "task_channel_sid": task["task_channel_sid"], "task_channel_unique_name": task["task_channel_unique_name"],
            "task_queue_sid": task["task_queue_sid"], "task_queue_name": task["task_queue_friendly_name"],
            "task_queue_entered_date": task["task_queue_entered_date"], "workflow_sid": task["workflow_sid"],
            "workflow_name": task["workflow_friendly_name"], "task_date_created": task["date_created"],
            "task_timeout": task["timeout"]}


def worker_data(worker):
    return {"worker_sid": worker["sid"], "worker_name": worker["friendly_name"],
            "worker_attributes": worker["attributes"], "worker_activity_sid": worker["activity_sid"],
            "worker_activity_name": worker["activity_name"], "worker_available": worker["available"]}


def record_event(store, db, account_sid, workspace_sid, event_type, name, resource, description, data,
                 actor_sid=None):
    """An Event (EV…) as the Events API lists it; `actor_sid` is the account for API calls, else the workspace."""
    sid, stamp, moment = new_sid("EV"), now(), time.time()
    actor_sid = actor_sid or workspace_sid
    actor_is_account = actor_sid.startswith("AC")
    resource_url = (f"{BASE}/{workspace_sid}/{RESOURCE_PATHS[name]}/{resource['sid']}" if name in RESOURCE_PATHS
                    else resource.get("url"))
    workspace = records.load(store, account_sid, "workspace", workspace_sid)
    event = {"account_sid": account_sid, "sid": sid, "workspace_sid": workspace_sid, "event_type": event_type,
             "description": description, "event_date": stamp, "event_date_ms": int(moment * 1000),
             "resource_type": RESOURCE_TYPES[name], "resource_sid": resource["sid"], "resource_url": resource_url,
             "actor_type": "account" if actor_is_account else "workspace", "actor_sid": actor_sid,
             "actor_url": (f"https://api.twilio.com/2010-04-01/Accounts/{actor_sid}" if actor_is_account
                           else f"{BASE}/{workspace_sid}"),
             "source": "twilio", "source_ip_address": None, "url": f"{BASE}/{workspace_sid}/Events/{sid}",
             "event_data": {"account_sid": account_sid, "workspace_sid": workspace_sid,
                            "workspace_name": workspace["friendly_name"] if workspace else None, **data},
             "_at": moment}
    store.insert(db, account_sid, KIND["event"], sid, event, parent=workspace_sid)
    return event


def route(store, db, account_sid, task, workflow, actor_sid=None):
    """Put a new task in the queue of the first filter whose expression matches its attributes (else the
    default_filter's); a task no filter routes stays pending with no queue until its timeout."""
    routing = json.loads(workflow["configuration"]).get("task_routing", {})
    attributes = json.loads(task["attributes"])
    target, filter_name = None, None
    for candidate in routing.get("filters") or []:
        if matches(candidate.get("expression", "1==1"), attributes):
            filter_name = candidate.get("filter_friendly_name")
            target = next((t for t in candidate.get("targets") or [] if t.get("queue")), None)
            break
    if filter_name is None and (routing.get("default_filter") or {}).get("queue"):
        target, filter_name = routing["default_filter"], "Default Filter"
    if target is None:
        return task
    queue = records.load(store, account_sid, "queue", target["queue"])
    if queue is None:
        return task
    if target.get("priority") is not None:
        task["priority"] = int(target["priority"])
    task.update(task_queue_sid=queue["sid"], task_queue_friendly_name=queue["friendly_name"],
                task_queue_entered_date=now(), _target=target)
    task["links"]["task_queue"] = queue["url"]
    records.save(store, db, account_sid, "task", task)
    matched = {**task_data(task), "workflow_filter_name": filter_name,
               "workflow_filter_target_expression": target.get("expression")}
    record_event(store, db, account_sid, task["workspace_sid"], "workflow.target-matched", "task", task,
                 f"Task {task['sid']} matched a workflow target", matched, actor_sid)
    record_event(store, db, account_sid, task["workspace_sid"], "task-queue.entered", "task", task,
                 f"Task {task['sid']} entered TaskQueue {queue['friendly_name']}", task_data(task), actor_sid)
    return task


def _worker_scopes(worker, task):
    attributes = json.loads(worker["attributes"] or "{}")
    own = {**attributes, "sid": worker["sid"], "friendly_name": worker["friendly_name"],
           "activity_sid": worker["activity_sid"], "activity_name": worker["activity_name"]}
    return attributes, {"worker": own, "task": json.loads(task["attributes"])}


def eligible(worker, task, queue):
    """A worker may get the task: the queue's target_workers and the workflow target's expression match."""
    attributes, scopes = _worker_scopes(worker, task)
    expressions = [queue["target_workers"] or "1==1", (task.get("_target") or {}).get("expression") or "1==1"]
    return all(matches(expression, attributes, scopes) for expression in expressions)


def offer(store, db, account_sid, workspace_sid):
    """Reserve free available workers for pending queued tasks, highest priority then oldest first; a worker holds
    one task at a time (a pending reservation, or an assigned or wrapping task)."""
    free = sorted((w for w in records.children(store, account_sid, "worker", workspace_sid, {"available": True})
                   if not w.get("_busy_with")), key=lambda w: w["_status_changed_at"])
    if not free:
        return
    pending = [t for t in records.children(store, account_sid, "task", workspace_sid,
                                           {"assignment_status": "pending"}) if t["task_queue_sid"]]
    queues = {}
    for task in sorted(pending, key=lambda t: (-t["priority"], t["_created_at"])):
        queue = queues.get(task["task_queue_sid"]) or records.load(store, account_sid, "queue", task["task_queue_sid"])
        queues[task["task_queue_sid"]] = queue
        chosen = next((w for w in free if w["sid"] not in task["_rejected_by"] and eligible(w, task, queue)), None)
        if chosen is None:
            continue
        free.remove(chosen)
        reserve(store, db, account_sid, task, chosen)
        if not free:
            return


def reserve(store, db, account_sid, task, worker):
    reservation = records.reservation(account_sid, task, worker)
    reservation["_created_at"] = time.time()
    store.insert(db, account_sid, KIND["reservation"], reservation["sid"], reservation, parent=task["sid"])
    task["assignment_status"] = "reserved"
    records.save(store, db, account_sid, "task", task)
    worker["_busy_with"] = task["sid"]
    records.save(store, db, account_sid, "worker", worker)
    record_event(store, db, account_sid, task["workspace_sid"], "reservation.created", "reservation", reservation,
                 f"Reservation {reservation['sid']} created for Worker {worker['friendly_name']}",
                 {**task_data(task), **worker_data(worker), "reservation_sid": reservation["sid"]})
    return reservation


def free_worker(store, db, account_sid, worker_sid, activity=None):
    """The worker holds no task any more (and, for a reservation timeout, moves to `activity`)."""
    worker = records.load(store, account_sid, "worker", worker_sid)
    if worker is None:
        return
    worker["_busy_with"] = None
    if activity is not None and activity["sid"] != worker["activity_sid"]:
        set_activity(store, db, account_sid, worker, activity)
    records.save(store, db, account_sid, "worker", worker)


def set_activity(store, db, account_sid, worker, activity, actor_sid=None):
    previous = worker["activity_name"]
    worker.update(activity_sid=activity["sid"], activity_name=activity["friendly_name"],
                  available=activity["available"], date_status_changed=now(), _status_changed_at=time.time())
    worker["links"]["activity"] = activity["url"]
    record_event(store, db, account_sid, worker["workspace_sid"], "worker.activity.update", "worker", worker,
                 f"Worker {worker['friendly_name']} updated to {activity['friendly_name']} Activity",
                 {**worker_data(worker), "worker_previous_activity_name": previous}, actor_sid)


def reservations(store, account_sid, task_sid, status=None):
    return records.children(store, account_sid, "reservation", task_sid,
                            {"reservation_status": status} if status else None)


def close_reservation(store, db, account_sid, task, reservation, status, event_type, actor_sid=None,
                      worker_activity=None):
    reservation["reservation_status"] = status
    records.save(store, db, account_sid, "reservation", reservation)
    worker = records.load(store, account_sid, "worker", reservation["worker_sid"]) or {}
    data = {**task_data(task), "reservation_sid": reservation["sid"]}
    if worker:
        data.update(worker_data(worker))
    record_event(store, db, account_sid, task["workspace_sid"], event_type, "reservation", reservation,
                 f"Reservation {reservation['sid']} {status}", data, actor_sid)
    if status in ("rejected", "timeout", "canceled", "completed", "rescinded"):
        free_worker(store, db, account_sid, reservation["worker_sid"], worker_activity)


def finish_task(store, db, account_sid, task, status, reason=None, actor_sid=None):
    """Cancel, wrap up or complete a task, closing its reservations as Twilio does."""
    event_type = {"canceled": "task.canceled", "wrapping": "task.wrapup", "completed": "task.completed"}[status]
    task.update(assignment_status=status, reason=reason if reason is not None else task["reason"])
    records.save(store, db, account_sid, "task", task)
    for reservation in reservations(store, account_sid, task["sid"]):
        current = reservation["reservation_status"]
        if status == "canceled" and current == "pending":
            close_reservation(store, db, account_sid, task, reservation, "canceled", "reservation.canceled",
                              actor_sid)
        elif status == "wrapping" and current == "accepted":
            close_reservation(store, db, account_sid, task, reservation, "wrapping", "reservation.wrapup", actor_sid)
        elif status in ("completed", "canceled") and current in ("accepted", "wrapping"):
            close_reservation(store, db, account_sid, task, reservation, "completed", "reservation.completed",
                              actor_sid)
    data = task_data(task)
    if status == "canceled":
        data["task_canceled_reason"] = task["reason"]
    elif status == "completed":
        data["task_completed_reason"] = task["reason"]
    record_event(store, db, account_sid, task["workspace_sid"], event_type, "task", task,
                 f"Task {task['sid']} {status}", data, actor_sid)
    offer(store, db, account_sid, task["workspace_sid"])


DEADLINE = "json_extract(data, '$._created_at') + json_extract(data, '$.timeout')"
STATUS = "json_extract(data, '$.assignment_status')"


def _timeout_candidates(store, account_sid, workspace_sid, moment):
    """The tasks a timeout may change now, pending ones first, each in creation order: the pending ones past their
    own timeout and every reserved task (its reservation may time out). The index `taskrouter_task_deadlines` (see
    store.SCHEMA; these expressions are its) finds them, so a workspace holding thousands of waiting tasks does not
    decode every one of them on every TaskRouter request."""
    where = f"kind = '{KIND['task']}' AND account_sid = ? AND parent = ? AND {STATUS} = ?"  # no ORDER BY: the
    pending = store.read(f"SELECT seq, data FROM resources WHERE {where} AND {DEADLINE} <= ?",  # planner would
                         (account_sid, workspace_sid, "pending", moment + 1))  # take the seq index and scan
    reserved = store.read(f"SELECT seq, data FROM resources WHERE {where}", (account_sid, workspace_sid, "reserved"))
    return [json.loads(row["data"]) for rows in (pending, reserved)  # pending: a superset, expire() tests each
            for row in sorted(rows, key=lambda row: row["seq"])]


def expire(store, db, account_sid, workspace_sid):
    """Twilio's timeouts, as of now: a reservation not answered within its workflow's task_reservation_timeout
    times out (its worker moves to the workspace's timeout activity, the task is offered again); a task still
    pending or reserved after its `timeout` is canceled — a task no filter routed with a workflow.timeout event."""
    moment = time.time()
    workspace = records.load(store, account_sid, "workspace", workspace_sid)
    open_tasks = _timeout_candidates(store, account_sid, workspace_sid, moment)
    changed = False
    for task in open_tasks:
        if moment >= task["_created_at"] + task["timeout"]:
            if task["task_queue_sid"] is None:
                record_event(store, db, account_sid, workspace_sid, "workflow.timeout", "task", task,
                             f"Task {task['sid']} timed out of Workflow {task['workflow_friendly_name']}",
                             task_data(task))
                finish_task(store, db, account_sid, task, "canceled", "Workflow Timeout")
            else:
                finish_task(store, db, account_sid, task, "canceled", "Task TTL Exceeded")
            changed = True
        elif task["assignment_status"] == "reserved":
            workflow = records.load(store, account_sid, "workflow", task["workflow_sid"]) or {}
            limit = workflow.get("task_reservation_timeout") or 120
            for reservation in reservations(store, account_sid, task["sid"], "pending"):
                if moment >= reservation["_created_at"] + limit:
                    task["assignment_status"] = "pending"
                    records.save(store, db, account_sid, "task", task)
                    timeout_activity = records.load(store, account_sid, "activity",
                                                    workspace["timeout_activity_sid"] or "")
                    close_reservation(store, db, account_sid, task, reservation, "timeout", "reservation.timeout",
                                      worker_activity=timeout_activity)
                    changed = True
    if changed:
        offer(store, db, account_sid, workspace_sid)
