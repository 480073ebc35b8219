"""TaskRouter v1 state and Twilio's rules: workspaces, activities, task channels, queues, workflows, workers,
tasks, reservations and events (no HTTP here; `responses.py` parses and renders).

Every method returns resources as Twilio renders them and takes an optional `db` to join the caller's
transaction. Errors are Twilio's (TwilioError): unknown resources 404 20404, bad input 400 20001.
"""
import json
import re

from flexops.task_expressions import ExpressionError, Key, Logical, matches, parse

from ..errors import TwilioError, invalid
from . import records, routing
from .records import KIND, render, transaction

FLEX_CHANNELS = (("default", "Default"), ("voice", "Voice"), ("chat", "Programmable Chat"), ("sms", "SMS"),
                 ("video", "Video"), ("email", "Email"))
FLEX_ACTIVITIES = (("Offline", False), ("Available", True), ("Unavailable", False), ("Break", False))
TASK_UPDATES = {"canceled": ("pending", "reserved"), "wrapping": ("assigned",), "completed": ("assigned", "wrapping")}
RESERVATION_UPDATES = ("accepted", "rejected")
LABELS = {"workspace": "Workspace", "activity": "Activity", "channel": "TaskChannel", "queue": "TaskQueue",
          "workflow": "Workflow", "worker": "Worker", "task": "Task", "reservation": "Reservation"}


def _not_found(what, sid):
    return TwilioError(404, 20404, f"The requested resource {what} {sid} was not found")


PLAIN_TEXT = re.compile(r"[A-Za-z0-9_]+")  # stored verbatim in the task's JSON, whatever escaping json.dumps does


def required_texts(tree):
    """Texts a task's stored JSON must contain to match an expression: the plain string constants a key is
    compared to with == in an AND of comparisons (`conversationSid == 'CH…'`, the trace's lookup). A prefilter
    only: matching tasks are still evaluated."""
    if isinstance(tree, Logical):
        return [text for term in tree.terms for text in required_texts(term)] if tree.op == "AND" else []
    if tree.op == "==":
        for key, constant in ((tree.left, tree.right), (tree.right, tree.left)):
            if isinstance(key, Key) and isinstance(constant, str) and PLAIN_TEXT.fullmatch(constant):
                return [constant]
    return []


def check_expression(expression, where):
    """An expression TaskRouter cannot parse is a 400 naming it, before anything is stored."""
    try:
        parse(expression)
    except ExpressionError as exc:
        raise invalid(f"Invalid {where}: {exc}") from None


def check_configuration(store, account_sid, workspace_sid, configuration):
    """A workflow Configuration: JSON with task_routing.filters[] (expression, targets[] with known queues) and an
    optional default_filter; returns it parsed."""
    if isinstance(configuration, str):
        try:
            configuration = json.loads(configuration)
        except ValueError:
            raise invalid("Invalid Configuration: must be a JSON document") from None
    routing_ = configuration.get("task_routing") if isinstance(configuration, dict) else None
    if not isinstance(routing_, dict):
        raise invalid("Invalid Configuration: must be a JSON object with task_routing")
    filters = routing_.get("filters", [])
    if not isinstance(filters, list):
        raise invalid("Invalid Configuration: task_routing.filters must be a list")
    queues = {q["sid"] for q in records.children(store, account_sid, "queue", workspace_sid)}

    def check_queue(queue, where):
        if queue not in queues:
            raise invalid(f"Invalid Configuration: {where} queue {queue!r} is not a TaskQueue of workspace "
                          f"{workspace_sid}")

    for n, item in enumerate(filters):
        if not isinstance(item, dict) or not isinstance(item.get("expression"), str):
            raise invalid(f"Invalid Configuration: filter {n} must be an object with an expression")
        name = item.get("filter_friendly_name") or f"filter {n}"
        check_expression(item["expression"], f"Configuration: filter {name!r} expression")
        targets = item.get("targets", [])
        if not isinstance(targets, list) or not targets:
            raise invalid(f"Invalid Configuration: filter {name!r} needs a list of targets")
        for m, target in enumerate(targets):
            if not isinstance(target, dict) or "queue" not in target:
                raise invalid(f"Invalid Configuration: filter {name!r} target {m} must name a queue")
            check_queue(target["queue"], f"filter {name!r} target {m}")
            if target.get("expression") is not None:
                check_expression(target["expression"], f"Configuration: filter {name!r} target {m} expression")
            if target.get("priority") is not None and not isinstance(target["priority"], int):
                raise invalid(f"Invalid Configuration: filter {name!r} target {m} priority must be an integer")
    default = routing_.get("default_filter")
    if default is not None:
        if not isinstance(default, dict) or "queue" not in default:
            raise invalid("Invalid Configuration: default_filter must name a queue")
        check_queue(default["queue"], "default_filter")
    return configuration


class TaskRouterBackend:
    def __init__(self, store, account_sid):
        self.store = store
        self.account_sid = account_sid

    # --- lookups -----------------------------------------------------------------------------------------

    def _get(self, name, sid, parent=None):
        """The stored record, or Twilio's 404 (also when it belongs to another workspace or task)."""
        found = records.load(self.store, self.account_sid, name, sid) if sid else None
        owner = found and (found.get("task_sid") if name == "reservation" else found.get("workspace_sid"))
        if found is None or (parent is not None and owner != parent):
            raise _not_found(LABELS[name], sid)
        return found

    def fetch(self, name, workspace_sid, sid, parent=None):
        if name != "workspace":
            self._get("workspace", workspace_sid)
        return render(self._get(name, sid, parent or (None if name == "workspace" else workspace_sid)))

    def channel_by_name(self, workspace_sid, unique_name):
        found = self.store.get(self.account_sid, KIND["channel"], key=f"{workspace_sid}:{unique_name}")
        if found is None:
            raise invalid(f"Invalid TaskChannel {unique_name!r}: not a task channel of workspace {workspace_sid}")
        return found

    # --- workspace setup ---------------------------------------------------------------------------------

    def create_flex_workspace(self, db=None):
        """What Flex provisions: "Flex Task Assignment", its activities and task channels, queue "Everyone",
        workflow "Assign to Anyone" routing everything there, and one worker in Offline."""
        store, account = self.store, self.account_sid
        with transaction(store, db) as db:
            workspace = records.workspace(account, "Flex Task Assignment")
            ws = workspace["sid"]
            activities = {}
            for name, available in FLEX_ACTIVITIES:
                activities[name] = records.activity(account, ws, name, available)
                store.insert(db, account, KIND["activity"], activities[name]["sid"], activities[name], parent=ws)
            workspace.update(default_activity_sid=activities["Offline"]["sid"], default_activity_name="Offline",
                             timeout_activity_sid=activities["Offline"]["sid"], timeout_activity_name="Offline")
            store.insert(db, account, KIND["workspace"], ws, workspace)
            channels = {}
            for unique_name, friendly_name in FLEX_CHANNELS:
                channel = records.task_channel(account, ws, unique_name, friendly_name)
                store.insert(db, account, KIND["channel"], channel["sid"], channel, key=f"{ws}:{unique_name}",
                             parent=ws)
                channels[unique_name] = channel["sid"]
            queue = self.create_queue(ws, "Everyone", db=db)
            workflow = self.create_workflow(ws, "Assign to Anyone",
                                            {"task_routing": {"filters": [],
                                                              "default_filter": {"queue": queue["sid"]}}}, db=db)
            worker = self.create_worker(ws, "flex-agent", {"contact_uri": "client:flex-agent",
                                                           "full_name": "Flex Agent", "routing": {"skills": []}},
                                        activities["Offline"]["sid"], db=db)
        return {"workspace_sid": ws, "workflow_sid": workflow["sid"], "queue_sid": queue["sid"],
                "task_channels": channels, "activities": {n: a["sid"] for n, a in activities.items()},
                "worker_sid": worker["sid"]}

    def create_workspace(self, friendly_name, sid=None, activities=(), channels=(), default_activity=None,
                         timeout_activity=None):
        """A workspace with its activities [(sid, name, available)] and task channels [(sid, unique_name,
        friendly_name)], the named defaults set: how `flexops sandbox import` copies one, SIDs kept."""
        store, account = self.store, self.account_sid
        with store.tx() as db:
            workspace = records.workspace(account, friendly_name, sid=sid)
            ws, names = workspace["sid"], {}
            for activity_sid, name, available in activities:
                found = records.activity(account, ws, name, available, sid=activity_sid)
                names[name] = found["sid"]
                store.insert(db, account, KIND["activity"], found["sid"], found, parent=ws)
            for which, name in (("default", default_activity), ("timeout", timeout_activity)):
                if name in names:
                    workspace.update({f"{which}_activity_sid": names[name], f"{which}_activity_name": name})
            store.insert(db, account, KIND["workspace"], ws, workspace)
            for channel_sid, unique_name, channel_name in channels:
                channel = records.task_channel(account, ws, unique_name, channel_name, sid=channel_sid)
                store.insert(db, account, KIND["channel"], channel["sid"], channel, key=f"{ws}:{unique_name}",
                             parent=ws)
        return render(workspace)

    def create_queue(self, workspace_sid, friendly_name, target_workers=None, max_reserved_workers=None,
                     task_order=None, db=None, sid=None):
        self._get("workspace", workspace_sid)
        if not friendly_name:
            raise invalid("Missing required parameter FriendlyName in the post body")
        target_workers = target_workers or "1==1"
        check_expression(target_workers, "TargetWorkers")
        if task_order is not None and task_order not in ("FIFO", "LIFO"):
            raise invalid(f"Invalid TaskOrder {task_order!r}: must be FIFO or LIFO")
        if max_reserved_workers is not None and not 1 <= max_reserved_workers <= 50:
            raise invalid(f"Invalid MaxReservedWorkers {max_reserved_workers}: must be between 1 and 50")
        queue = records.task_queue(self.account_sid, workspace_sid, friendly_name, target_workers,
                                   max_reserved_workers or 1, task_order or "FIFO", sid=sid)
        with transaction(self.store, db) as db:
            self.store.insert(db, self.account_sid, KIND["queue"], queue["sid"], queue, parent=workspace_sid)
        return render(queue)

    def create_workflow(self, workspace_sid, friendly_name, configuration, task_reservation_timeout=None,
                        assignment_callback_url=None, fallback_assignment_callback_url=None, db=None, sid=None):
        self._get("workspace", workspace_sid)
        if not friendly_name:
            raise invalid("Missing required parameter FriendlyName in the post body")
        configuration = check_configuration(self.store, self.account_sid, workspace_sid, configuration)
        timeout = 120 if task_reservation_timeout is None else task_reservation_timeout
        if not 1 <= timeout <= 86400:
            raise invalid(f"Invalid TaskReservationTimeout {timeout}: must be between 1 and 86400")
        workflow = records.workflow(self.account_sid, workspace_sid, friendly_name, configuration, timeout,
                                    assignment_callback_url, fallback_assignment_callback_url, sid=sid)
        with transaction(self.store, db) as db:
            self.store.insert(db, self.account_sid, KIND["workflow"], workflow["sid"], workflow, parent=workspace_sid)
        return render(workflow)

    def update_workflow(self, workspace_sid, sid, friendly_name=None, configuration=None,
                        task_reservation_timeout=None, assignment_callback_url=None,
                        fallback_assignment_callback_url=None):
        workflow = self._get("workflow", sid, workspace_sid)
        if configuration is not None:
            workflow["configuration"] = json.dumps(
                check_configuration(self.store, self.account_sid, workspace_sid, configuration))
        if task_reservation_timeout is not None:
            if not 1 <= task_reservation_timeout <= 86400:
                raise invalid(f"Invalid TaskReservationTimeout {task_reservation_timeout}: must be between 1 and 86400")
            workflow["task_reservation_timeout"] = task_reservation_timeout
        for field, value in (("friendly_name", friendly_name), ("assignment_callback_url", assignment_callback_url),
                             ("fallback_assignment_callback_url", fallback_assignment_callback_url)):
            if value is not None:
                workflow[field] = value
        with self.store.tx() as db:
            records.save(self.store, db, self.account_sid, "workflow", workflow)
        return render(workflow)

    # --- workers -----------------------------------------------------------------------------------------

    def _attributes(self, raw, name="Attributes"):
        if isinstance(raw, dict):
            return raw
        try:
            value = json.loads(raw)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            raise invalid(f"Invalid {name}: must be a JSON object")
        return value

    def create_worker(self, workspace_sid, friendly_name, attributes=None, activity_sid=None, db=None):
        workspace = self._get("workspace", workspace_sid)
        if not friendly_name:
            raise invalid("Missing required parameter FriendlyName in the post body")
        activity = self._get("activity", activity_sid or workspace["default_activity_sid"], workspace_sid)
        worker = records.worker(self.account_sid, workspace_sid, friendly_name,
                                self._attributes(attributes if attributes is not None else "{}"), activity)
        with transaction(self.store, db) as db:
            self.store.insert(db, self.account_sid, KIND["worker"], worker["sid"], worker, parent=workspace_sid)
            routing.offer(self.store, db, self.account_sid, workspace_sid)
        return render(worker)

    def update_worker(self, workspace_sid, sid, activity_sid=None, attributes=None, friendly_name=None):
        with self.store.tx() as db:
            routing.expire(self.store, db, self.account_sid, workspace_sid)
            worker = self._get("worker", sid, workspace_sid)
            if attributes is not None:
                worker["attributes"] = json.dumps(self._attributes(attributes))
            if friendly_name is not None:
                worker["friendly_name"] = friendly_name
            if activity_sid is not None and activity_sid != worker["activity_sid"]:
                activity = self._get("activity", activity_sid, workspace_sid)
                routing.set_activity(self.store, db, self.account_sid, worker, activity, self.account_sid)
            records.save(self.store, db, self.account_sid, "worker", worker)
            routing.offer(self.store, db, self.account_sid, workspace_sid)
        return self.fetch("worker", workspace_sid, sid)

    # --- tasks -------------------------------------------------------------------------------------------

    def create_task(self, workspace_sid, workflow_sid, task_channel="default", attributes=None, timeout=86400,
                    priority=0, db=None, actor_sid=None, sid=None):
        """A task routed at once by its workflow (and offered to a free matching worker); `sid` keeps a copied
        task's (a twin)."""
        self._get("workspace", workspace_sid)
        workflow = self._get("workflow", workflow_sid, workspace_sid)
        channel = self.channel_by_name(workspace_sid, task_channel or "default")
        attributes = self._attributes(attributes if attributes is not None else "{}")
        if not 1 <= timeout <= 2592000:
            raise invalid(f"Invalid Timeout {timeout}: must be between 1 and 2592000 seconds")
        task = records.task(self.account_sid, workspace_sid, workflow, channel, attributes, timeout, priority or 0,
                            sid=sid)
        with transaction(self.store, db) as db:
            self.store.insert(db, self.account_sid, KIND["task"], task["sid"], task, parent=workspace_sid)
            routing.record_event(self.store, db, self.account_sid, workspace_sid, "task.created", "task", task,
                                 f"Task {task['sid']} created", routing.task_data(task), actor_sid)
            routing.route(self.store, db, self.account_sid, task, workflow, actor_sid)
            routing.offer(self.store, db, self.account_sid, workspace_sid)
            return render(self._get("task", task["sid"]))

    def expire(self, workspace_sid):
        self._get("workspace", workspace_sid)
        with self.store.tx() as db:
            routing.expire(self.store, db, self.account_sid, workspace_sid)

    def tasks(self, workspace_sid, **filters):
        """The workspace's tasks (timeouts applied first), filtered as the Tasks list filters them."""
        return [task for _, task in self.task_rows(workspace_sid, **filters)]

    def task_rows(self, workspace_sid, assignment_status=None, task_queue_sid=None, workflow_sid=None,
                  evaluate_task_attributes=None, ordering=None, **equal):
        """(seq, task) pairs for `tasks`; `equal` compares other task fields (priority, task_queue_friendly_name...)."""
        self.expire(workspace_sid)
        if evaluate_task_attributes:
            check_expression(evaluate_task_attributes, "EvaluateTaskAttributes")
        statuses = [assignment_status] if isinstance(assignment_status, str) else list(assignment_status or [])
        texts = required_texts(parse(evaluate_task_attributes)) if evaluate_task_attributes else []
        rows = [(seq, data) for seq, data in self.store.page(self.account_sid, KIND["task"], 0, records.ALL,
                                                             parent=workspace_sid, containing=texts)
                if (not statuses or data["assignment_status"] in statuses)
                and (task_queue_sid is None or data["task_queue_sid"] == task_queue_sid)
                and (workflow_sid is None or data["workflow_sid"] == workflow_sid)
                and all(data.get(field) == value for field, value in equal.items())
                and (not evaluate_task_attributes
                     or matches(evaluate_task_attributes, json.loads(data["attributes"])))]
        for field, direction in reversed(parse_ordering(ordering)):
            rows.sort(key=lambda row: row[1]["_created_at" if field == "DateCreated" else "priority"],
                      reverse=direction == "desc")
        return [(seq, render(data)) for seq, data in rows]

    def update_task(self, workspace_sid, sid, assignment_status=None, reason=None, attributes=None, priority=None,
                    db=None):
        """`db`: the caller's transaction, when the update is one step of a larger change."""
        with transaction(self.store, db) as db:
            routing.expire(self.store, db, self.account_sid, workspace_sid)
            task = self._get("task", sid, workspace_sid)
            if attributes is not None:
                task["attributes"] = json.dumps(self._attributes(attributes))
            if priority is not None:
                task["priority"] = priority
            if attributes is not None or priority is not None:
                records.save(self.store, db, self.account_sid, "task", task)
            if assignment_status is not None:
                allowed = TASK_UPDATES.get(assignment_status)
                if allowed is None:
                    raise invalid(f"Invalid AssignmentStatus {assignment_status!r}: must be canceled, wrapping or "
                                  "completed")
                if task["assignment_status"] not in allowed:
                    raise invalid(f"Cannot set task {sid} to {assignment_status}: it is {task['assignment_status']} "
                                  f"(must be {' or '.join(allowed)})")
                routing.finish_task(self.store, db, self.account_sid, task, assignment_status, reason,
                                    self.account_sid)
        return self.fetch("task", workspace_sid, sid)

    # --- reservations ------------------------------------------------------------------------------------

    def update_reservation(self, workspace_sid, task_sid, sid, reservation_status):
        if reservation_status not in RESERVATION_UPDATES:
            raise invalid(f"Invalid ReservationStatus {reservation_status!r}: must be accepted or rejected")
        with self.store.tx() as db:
            routing.expire(self.store, db, self.account_sid, workspace_sid)
            task = self._get("task", task_sid, workspace_sid)
            reservation = self._get("reservation", sid, task_sid)
            if reservation["reservation_status"] != "pending":
                raise invalid(f"Cannot set reservation {sid} to {reservation_status}: it is "
                              f"{reservation['reservation_status']}, not pending")
            if reservation_status == "accepted":
                task["assignment_status"] = "assigned"
                records.save(self.store, db, self.account_sid, "task", task)
                routing.close_reservation(self.store, db, self.account_sid, task, reservation, "accepted",
                                          "reservation.accepted", self.account_sid)
            else:
                task["assignment_status"] = "pending"
                task["_rejected_by"].append(reservation["worker_sid"])
                records.save(self.store, db, self.account_sid, "task", task)
                routing.close_reservation(self.store, db, self.account_sid, task, reservation, "rejected",
                                          "reservation.rejected", self.account_sid)
                routing.offer(self.store, db, self.account_sid, workspace_sid)
        return self.fetch("reservation", workspace_sid, sid, parent=task_sid)

    # --- events ------------------------------------------------------------------------------------------

    def events(self, workspace_sid, start=None, end=None, **equal):
        """(seq, event) of the workspace between `start` and `end` (epoch seconds), filtered on fields: event_type,
        resource_sid, or event_data's task_sid / worker_sid / reservation_sid / task_queue_sid / workflow_sid."""
        self.expire(workspace_sid)
        rows = []
        for seq, event in self.store.page(self.account_sid, KIND["event"], 0, records.ALL, parent=workspace_sid):
            if (start is not None and event["_at"] < start) or (end is not None and event["_at"] > end):
                continue
            if all(event.get(field, event["event_data"].get(field)) == value for field, value in equal.items()):
                rows.append((seq, render(event)))
        return rows


def parse_ordering(ordering):
    """Twilio's Ordering: `DateCreated:asc`, `Priority:desc,DateCreated:asc`, ... as [(field, direction)]."""
    result = []
    for part in (ordering or "").split(","):
        if not part.strip():
            continue
        field, _, direction = part.strip().partition(":")
        if field not in ("DateCreated", "Priority") or direction.lower() not in ("asc", "desc"):
            raise invalid(f"Invalid Ordering {ordering!r}: use DateCreated or Priority with :asc or :desc")
        result.append((field, direction.lower()))
    return result
