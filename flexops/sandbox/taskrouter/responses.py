"""TaskRouter v1 handlers: parse the request, call TaskRouterBackend, render Twilio's JSON."""
import time

from ..context import json_response
from ..errors import invalid, missing
from .models import TaskRouterBackend
from .records import KIND, render

BASE = "/v1/Workspaces"


def _backend(ctx):
    return TaskRouterBackend(ctx.store, ctx.account_sid)


def _workspace(ctx, workspace_sid):
    return _backend(ctx).fetch("workspace", None, workspace_sid)


def _listing(ctx, name, key, path, parent, where=None, extra=()):
    where = {field: value for field, value in (where or {}).items() if value is not None}
    return ctx.list_page(KIND[name], key, path, maximum=1000, parent=parent, where=where, render=render,
                         extra_query=extra)


# --- workspaces and their settings -----------------------------------------------------------------------

def list_workspaces(ctx):
    name = ctx.request.args.get("FriendlyName")
    return _listing(ctx, "workspace", "workspaces", BASE, "", {"friendly_name": name}, [("FriendlyName", name)])


def fetch_workspace(ctx, sid):
    return json_response(_workspace(ctx, sid))


def list_activities(ctx, workspace_sid):
    _workspace(ctx, workspace_sid)
    name, available = ctx.request.args.get("FriendlyName"), ctx.request.args.get("Available")
    if available is not None and available.lower() not in ("true", "false", "1", "0"):
        raise invalid("Invalid Available: must be true or false")
    flag = None if available is None else available.lower() in ("true", "1")
    return _listing(ctx, "activity", "activities", f"{BASE}/{workspace_sid}/Activities", workspace_sid,
                    {"friendly_name": name, "available": flag}, [("FriendlyName", name), ("Available", available)])


def list_task_channels(ctx, workspace_sid):
    _workspace(ctx, workspace_sid)
    return _listing(ctx, "channel", "channels", f"{BASE}/{workspace_sid}/TaskChannels", workspace_sid)


# --- queues and workflows --------------------------------------------------------------------------------

def list_task_queues(ctx, workspace_sid):
    _workspace(ctx, workspace_sid)
    name = ctx.request.args.get("FriendlyName")
    return _listing(ctx, "queue", "task_queues", f"{BASE}/{workspace_sid}/TaskQueues", workspace_sid,
                    {"friendly_name": name}, [("FriendlyName", name)])


def fetch_task_queue(ctx, workspace_sid, sid):
    return json_response(_backend(ctx).fetch("queue", workspace_sid, sid))


def create_task_queue(ctx, workspace_sid):
    if not ctx.form("FriendlyName"):
        raise missing("FriendlyName")
    queue = _backend(ctx).create_queue(workspace_sid, ctx.form("FriendlyName"), ctx.form("TargetWorkers"),
                                       ctx.form_int("MaxReservedWorkers"), ctx.form("TaskOrder"))
    return json_response(queue, 201)


def list_workflows(ctx, workspace_sid):
    _workspace(ctx, workspace_sid)
    name = ctx.request.args.get("FriendlyName")
    return _listing(ctx, "workflow", "workflows", f"{BASE}/{workspace_sid}/Workflows", workspace_sid,
                    {"friendly_name": name}, [("FriendlyName", name)])


def fetch_workflow(ctx, workspace_sid, sid):
    return json_response(_backend(ctx).fetch("workflow", workspace_sid, sid))


def create_workflow(ctx, workspace_sid):
    for name in ("FriendlyName", "Configuration"):
        if not ctx.form(name):
            raise missing(name)
    workflow = _backend(ctx).create_workflow(
        workspace_sid, ctx.form("FriendlyName"), ctx.form("Configuration"), ctx.form_int("TaskReservationTimeout"),
        ctx.form("AssignmentCallbackUrl"), ctx.form("FallbackAssignmentCallbackUrl"))
    return json_response(workflow, 201)


def update_workflow(ctx, workspace_sid, sid):
    workflow = _backend(ctx).update_workflow(
        workspace_sid, sid, ctx.form("FriendlyName"), ctx.form("Configuration"), ctx.form_int("TaskReservationTimeout"),
        ctx.form("AssignmentCallbackUrl"), ctx.form("FallbackAssignmentCallbackUrl"))
    return json_response(workflow)


# --- workers ---------------------------------------------------------------------------------------------

def list_workers(ctx, workspace_sid):
    _backend(ctx).expire(workspace_sid)  # a reservation timeout moves its worker to the timeout activity
    args = ctx.request.args
    available = args.get("Available")
    flag = None if available is None else available.lower() in ("true", "1")
    where = {"activity_sid": args.get("ActivitySid"), "activity_name": args.get("ActivityName"),
             "friendly_name": args.get("FriendlyName"), "available": flag}
    extra = [(name, args.get(name)) for name in ("ActivitySid", "ActivityName", "FriendlyName", "Available")]
    return _listing(ctx, "worker", "workers", f"{BASE}/{workspace_sid}/Workers", workspace_sid, where, extra)


def fetch_worker(ctx, workspace_sid, sid):
    backend = _backend(ctx)
    backend.expire(workspace_sid)
    return json_response(backend.fetch("worker", workspace_sid, sid))


def create_worker(ctx, workspace_sid):
    if not ctx.form("FriendlyName"):
        raise missing("FriendlyName")
    worker = _backend(ctx).create_worker(workspace_sid, ctx.form("FriendlyName"), ctx.form("Attributes"),
                                         ctx.form("ActivitySid"))
    return json_response(worker, 201)


def update_worker(ctx, workspace_sid, sid):
    worker = _backend(ctx).update_worker(workspace_sid, sid, ctx.form("ActivitySid"), ctx.form("Attributes"),
                                         ctx.form("FriendlyName"))
    return json_response(worker)


# --- tasks and reservations ------------------------------------------------------------------------------

def list_tasks(ctx, workspace_sid):
    args = ctx.request.args
    statuses = [s for value in args.getlist("AssignmentStatus") for s in value.split(",") if s]
    equal = {}
    if args.get("Priority") is not None:
        try:
            equal["priority"] = int(args["Priority"])
        except ValueError:
            raise invalid("Invalid Priority: must be an integer") from None
    for name, field in (("WorkflowName", "workflow_friendly_name"), ("TaskQueueName", "task_queue_friendly_name")):
        if args.get(name) is not None:
            equal[field] = args[name]
    rows = _backend(ctx).task_rows(workspace_sid, statuses, args.get("TaskQueueSid"), args.get("WorkflowSid"),
                                   args.get("EvaluateTaskAttributes"), args.get("Ordering"), **equal)
    extra = [("AssignmentStatus", statuses or None)] + [
        (name, args.get(name)) for name in ("Priority", "WorkflowSid", "WorkflowName", "TaskQueueSid", "TaskQueueName",
                                            "EvaluateTaskAttributes", "Ordering")]
    return ctx.filtered_page(rows, "tasks", f"{BASE}/{workspace_sid}/Tasks", extra_query=extra)


def fetch_task(ctx, workspace_sid, sid):
    backend = _backend(ctx)
    backend.expire(workspace_sid)
    return json_response(backend.fetch("task", workspace_sid, sid))


def create_task(ctx, workspace_sid):
    if not ctx.form("WorkflowSid"):
        raise missing("WorkflowSid")
    task = _backend(ctx).create_task(workspace_sid, ctx.form("WorkflowSid"), ctx.form("TaskChannel", "default"),
                                     ctx.form("Attributes"), ctx.form_int("Timeout", 86400),
                                     ctx.form_int("Priority", 0), actor_sid=ctx.account_sid)
    return json_response(task, 201)


def update_task(ctx, workspace_sid, sid):
    task = _backend(ctx).update_task(workspace_sid, sid, ctx.form("AssignmentStatus"), ctx.form("Reason"),
                                     ctx.form("Attributes"), ctx.form_int("Priority"))
    return json_response(task)


def list_task_reservations(ctx, workspace_sid, task_sid):
    backend = _backend(ctx)
    backend.expire(workspace_sid)
    backend.fetch("task", workspace_sid, task_sid)
    args = ctx.request.args
    where = {"reservation_status": args.get("ReservationStatus"), "worker_sid": args.get("WorkerSid")}
    return _listing(ctx, "reservation", "reservations", f"{BASE}/{workspace_sid}/Tasks/{task_sid}/Reservations",
                    task_sid, where, [("ReservationStatus", args.get("ReservationStatus")),
                                      ("WorkerSid", args.get("WorkerSid"))])


def fetch_task_reservation(ctx, workspace_sid, task_sid, sid):
    backend = _backend(ctx)
    backend.expire(workspace_sid)
    backend.fetch("task", workspace_sid, task_sid)
    return json_response(backend.fetch("reservation", workspace_sid, sid, parent=task_sid))


def update_task_reservation(ctx, workspace_sid, task_sid, sid):
    if not ctx.form("ReservationStatus"):
        raise missing("ReservationStatus")
    return json_response(_backend(ctx).update_reservation(workspace_sid, task_sid, sid, ctx.form("ReservationStatus")))


# --- events ----------------------------------------------------------------------------------------------

EVENT_FILTERS = (("EventType", "event_type"), ("TaskSid", "task_sid"), ("WorkerSid", "worker_sid"),
                 ("ReservationSid", "reservation_sid"), ("TaskQueueSid", "task_queue_sid"),
                 ("WorkflowSid", "workflow_sid"), ("TaskChannel", "task_channel_unique_name"), ("Sid", "sid"))


def list_events(ctx, workspace_sid):
    args = ctx.request.args
    start, end = ctx.date_arg("StartDate"), ctx.date_arg("EndDate")
    minutes = args.get("Minutes")
    if minutes is not None:
        try:
            minutes = int(minutes)
        except ValueError:
            raise invalid("Invalid Minutes: must be an integer") from None
        start = max(start or 0, time.time() - minutes * 60)
    equal = {field: args[name] for name, field in EVENT_FILTERS if args.get(name) is not None}
    rows = _backend(ctx).events(workspace_sid, start, end, **equal)
    extra = [(name, args.get(name)) for name in ("StartDate", "EndDate", "Minutes")] + [
        (name, args.get(name)) for name, _ in EVENT_FILTERS]
    return ctx.filtered_page(rows, "events", f"{BASE}/{workspace_sid}/Events", extra_query=extra)
