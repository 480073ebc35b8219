"""Gather the evidence `trace.analyse` needs, for one message, with a bounded number of Twilio requests.

Tracing a known conversation costs at most 12 requests whatever the account's size: the address, the conversation,
its latest messages, Flex's configuration, the conversation's tasks (TaskRouter evaluates the attribute filter),
the task's reservations, the flow, its executions since the conversation started, that execution's steps, Send to
Flex's workflow, the workspace's task channels, and the Monitor alerts of the window. Finding the message for a
Page scans conversations once (bounded, concurrent); waiting for a new one polls once a second.
"""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from . import retry
from .address_spec import address_of
from .evidence import WORKERS, call, conversations_of
from .exceptions import TwilioCallFailed
from .studio import send_to_flex_state

MAX_CONVERSATIONS = 1000
PAGE_SIZE = 100
EXECUTION_WINDOW = timedelta(seconds=30)  # Studio starts the execution this soon after the conversation at most
EXECUTION_PAGES = 10
EVIDENCE_WORKERS = 6  # the independent requests of one trace, at once (see evidence())


def or_none(client, fn, what):
    """The resource, or None when Twilio answers 404."""
    return call(client, retry.none_if_missing(fn), what)


def _stamp(value):
    return value.isoformat() if isinstance(value, datetime) else value


def attributes_of(raw):
    try:
        return json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    except ValueError:
        return {}


# --- finding the message -------------------------------------------------------------------------------------

def page_conversations(client, page_address, since, services=(None,), max_conversations=MAX_CONVERSATIONS,
                       proceed=None):
    """(service, conversation) pairs of `page_address`'s conversations created since `since` or still active (a
    follow-up lands in an active one), found through each conversation's participants (proxy_address is the Page).
    `proceed()` is asked before each request (it may block): False ends the scan, the rest unsent."""
    seen, candidates = {}, []
    proceed = proceed or (lambda: True)
    for service in services:
        conversations = conversations_of(client, service)
        for kwargs in ({"start_date": since.strftime("%Y-%m-%dT%H:%M:%SZ")}, {"state": "active"}):
            if not proceed():
                return []
            found = call(client, lambda: conversations.list(page_size=PAGE_SIZE, limit=max_conversations, **kwargs),
                          "list conversations")
            for conversation in found:
                seen.setdefault(conversation.sid, (service, conversation))
    with ThreadPoolExecutor(WORKERS) as pool:
        pairs = list(seen.values())[:max_conversations]
        proxies = pool.map(lambda pair: _proxies(client, *pair) if proceed() else set(), pairs)
        candidates = [pair for pair, proxy in zip(pairs, proxies) if page_address in proxy]
    return candidates


def _proxies(client, service, conversation):
    conversations = conversations_of(client, service)
    try:
        participants = call(client, lambda: conversations(conversation.sid).participants.list(page_size=PAGE_SIZE),
                             f"list participants of {conversation.sid}")
    except TwilioCallFailed:
        return set()
    return {(p.messaging_binding or {}).get("proxy_address") for p in participants}


def page_of(client, service, conversation):
    """The Messenger Page address a conversation belongs to (its participants' proxy address), or None."""
    return next((p for p in _proxies(client, service, conversation) if str(p).startswith("messenger:")), None)


def latest_inbound(client, conversation_sid, service=None):
    """The conversation's most recent message from the customer (author `messenger:…`), as a dict, or None."""
    conversations = conversations_of(client, service)
    messages = call(client, lambda: conversations(conversation_sid).messages.list(order="desc", page_size=20, limit=20),
                     f"list messages of {conversation_sid}")
    for message in messages:
        if (message.author or "").startswith("messenger:"):
            return {"sid": message.sid, "index": message.index, "author": message.author,
                    "date_created": _stamp(message.date_created), "conversation_sid": conversation_sid}
    return None


def newest_message(client, candidates):
    """(service, conversation, message) of the newest inbound message among the candidate conversations. Twilio
    stamps to the second: within one second an open conversation wins over a closed one (whose messages all came
    before it closed), then the newer conversation."""
    with ThreadPoolExecutor(WORKERS) as pool:
        found = pool.map(lambda pair: (pair, latest_inbound(client, pair[1].sid, pair[0])), candidates)
        found = [(pair, message) for pair, message in found if message]
    if not found:
        return None
    (service, conversation), message = max(found, key=lambda item: (
        item[1]["date_created"] or "", item[0][1].state != "closed", _stamp(item[0][1].date_created) or ""))
    return service, conversation, message


# --- the evidence for one conversation -----------------------------------------------------------------------

def address_config(client, address):
    """The address configuration as a dict, or None."""
    config = or_none(client, lambda: client.conversations.v1.address_configurations(address).fetch(),
                      f"fetch the address configuration {address}")
    return config and {"sid": config.sid, "auto_creation": config.auto_creation or {}, "address": config.address}


def evidence(client, page_id, config, conversation_sid=None, since=None, service=None, message=None):
    """Everything `trace.analyse` reads, for the conversation (None: configuration only).

    Requests that do not wait for each other's answer go out together: the Flex configuration, the conversation,
    the flow and the alerts first; then the conversation's tasks, Send to Flex's workflow and task channels, and the
    flow's executions; then the task's reservations and the execution's steps. Three or four round trips instead of
    a dozen, the same requests."""
    since = since or datetime.now(timezone.utc) - timedelta(days=7)
    address = address_of(page_id)
    ev = {"page_id": str(page_id), "address_name": address, "message": message, "alerts": [], "address": config}
    auto = (config or {}).get("auto_creation") or {}
    flow_sid = auto.get("studio_flow_sid") if auto.get("type") == "studio" else None
    with ThreadPoolExecutor(EVIDENCE_WORKERS) as pool:
        found_alerts = pool.submit(alerts, client, since)
        flow = pool.submit(or_none, client, lambda: client.studio.v2.flows(flow_sid).fetch(),
                           f"fetch flow {flow_sid}") if flow_sid else None
        conversation = pool.submit(_conversation_evidence, client, ev, conversation_sid, service) \
            if conversation_sid else None
        legacy = None if conversation_sid else pool.submit(legacy_flow, client, address)
        flex = or_none(client, lambda: client.flex_api.v1.configuration().fetch(), "fetch the Flex configuration")
        flex_config = flex and {"status": flex.status, "taskrouter_workspace_sid": flex.taskrouter_workspace_sid,
                                "flex_service_instance_sid": flex.flex_service_instance_sid}
        ev["flex"] = {"configuration": flex_config}
        ev["flex_service_sid"] = flex_config and flex_config["flex_service_instance_sid"]
        workspace = flex_config and flex_config["taskrouter_workspace_sid"]
        tasks = pool.submit(_task_evidence, client, ev, conversation_sid, workspace, conversation) \
            if conversation and workspace else None
        if flow is not None:
            _studio_evidence(client, ev, workspace, flow_sid, flow.result(), conversation, pool)
        for pending in (conversation, tasks):
            if pending is not None:
                pending.result()
        if legacy is not None:
            ev["legacy_flow"] = legacy.result()
        ev["alerts"] = found_alerts.result()
    return ev


def _conversation_evidence(client, ev, conversation_sid, service):
    """The conversation and, when the caller has none, its latest inbound message; False when it is gone."""
    conversations = conversations_of(client, service)
    conversation = or_none(client, lambda: conversations(conversation_sid).fetch(), f"fetch {conversation_sid}")
    if conversation is None:
        return False
    ev["conversation"] = {"sid": conversation.sid, "state": conversation.state,
                          "chat_service_sid": conversation.chat_service_sid,
                          "date_created": _stamp(conversation.date_created)}
    if ev.get("message") is None:
        ev["message"] = latest_inbound(client, conversation_sid, service)
    return True


def _task_evidence(client, ev, conversation_sid, workspace, conversation):
    """The conversation's tasks (the open one first) and that task's reservations, once the conversation exists."""
    if not conversation.result():
        return
    tasks = call(client, lambda: client.taskrouter.v1.workspaces(workspace).tasks.list(
        evaluate_task_attributes=f"conversationSid == '{conversation_sid}'", ordering="DateCreated:desc",
        page_size=20, limit=20), f"list the tasks of {conversation_sid}")
    tasks = [_task(t) for t in tasks]
    ev["open_task"] = next((t for t in tasks if t["assignment_status"] in ("pending", "reserved", "assigned",
                                                                          "wrapping")), None)
    task = ev["open_task"] or (tasks[0] if tasks else None)
    ev["task"] = task
    if task:
        reservations = call(client, lambda: client.taskrouter.v1.workspaces(workspace).tasks(task["sid"])
                             .reservations.list(page_size=50, limit=50), f"list reservations of {task['sid']}")
        ev["reservations"] = [{"sid": r.sid, "reservation_status": r.reservation_status, "worker_sid": r.worker_sid,
                               "worker_name": r.worker_name, "date_updated": _stamp(r.date_updated)}
                              for r in reservations]


def _task(task):
    return {"sid": task.sid, "assignment_status": task.assignment_status, "task_queue_sid": task.task_queue_sid,
            "task_queue_friendly_name": task.task_queue_friendly_name, "workflow_sid": task.workflow_sid,
            "reason": task.reason, "attributes": attributes_of(task.attributes),
            "date_created": _stamp(task.date_created)}


def _studio_evidence(client, ev, workspace, flow_sid, flow, conversation, pool):
    """The flow, Send to Flex's routing (in `pool`, meanwhile) and, for a conversation's first message, the
    execution it started and its steps."""
    ev["flow"] = flow and {"sid": flow.sid, "status": flow.status, "definition": flow.definition}
    widget = send_to_flex_state(flow.definition) if flow else None
    props = (widget or {}).get("properties") or {}
    ev["flex"]["widget"] = {"name": (widget or {}).get("name"), "workflow": props.get("workflow"),
                            "channel": props.get("channel")} if widget else None
    routing = pool.submit(routing_evidence, client, workspace, [props.get("workflow")]) \
        if workspace and widget else None
    if conversation is not None:
        conversation.result()
    found = ev.get("conversation")
    if flow and found and (ev.get("message") or {}).get("index", 1) == 0:
        customer = (ev.get("message") or {}).get("author")
        mine = _executions_of(client, flow_sid, customer, datetime.fromisoformat(found["date_created"]))
        if mine:
            first = min(mine, key=lambda e: e.date_created)
            ev["execution"] = {"sid": first.sid, "status": first.status, "date_created": _stamp(first.date_created)}
            steps = call(client, lambda: client.studio.v2.flows(flow_sid).executions(first.sid).steps.list(
                page_size=50, limit=50), f"list steps of {first.sid}")
            ev["steps"] = [{"sid": s.sid, "name": s.name, "type": s.type, "transitioned_from": s.transitioned_from,
                            "transitioned_to": s.transitioned_to, "context": s.context} for s in steps]
    if routing is not None:
        ev["flex"].update(routing.result())


def _executions_of(client, flow_sid, customer, created):
    """The flow's executions for `customer` that started with the conversation: a narrow window (Studio starts the
    execution within seconds), paged until one is found, so a busy flow (Studio runs up to ~100 a second) costs
    more requests only when the window itself is crowded (at most EXECUTION_PAGES pages)."""
    executions = client.studio.v2.flows(flow_sid).executions
    page = call(client, lambda: executions.page(date_created_from=created - timedelta(seconds=2),
                                                date_created_to=created + EXECUTION_WINDOW, page_size=50),
                f"list executions of {flow_sid}")
    for _ in range(EXECUTION_PAGES):
        mine = [e for e in page if e.contact_channel_address == customer]
        if mine or not page.next_page_url:
            return mine
        page = call(client, page.next_page, f"list executions of {flow_sid}")
    return []


def routing_evidence(client, workspace, workflow_sids):
    """{"workflows": {WW: {sid, friendly_name, configuration}}, "task_channels": {unique_name: TC}} of Flex's
    workspace: the named workflows (a missing one is simply absent) and every task channel."""
    workflows = {}
    for sid in sorted({s for s in workflow_sids if s}):
        workflow = or_none(client, lambda sid=sid: client.taskrouter.v1.workspaces(workspace).workflows(sid).fetch(),
                           f"fetch workflow {sid}")
        if workflow:
            workflows[workflow.sid] = {"sid": workflow.sid, "friendly_name": workflow.friendly_name,
                                       "configuration": workflow.configuration}
    channels = call(client, lambda: client.taskrouter.v1.workspaces(workspace).task_channels.list(page_size=50),
                    "list task channels")
    return {"workflows": workflows, "task_channels": {c.unique_name: c.sid for c in channels}}


def legacy_flows(client):
    """{page id: flow dict} of the enabled legacy Flex Flows (channel type facebook) holding a Page."""
    try:
        flows = call(client, lambda: client.flex_api.v1.flex_flow.list(page_size=50), "list legacy Flex Flows")
    except TwilioCallFailed:
        return {}
    return {(flow.contact_identity or "").split(":", 1)[-1]: {
        "sid": flow.sid, "contact_identity": flow.contact_identity, "friendly_name": flow.friendly_name}
        for flow in flows if flow.channel_type == "facebook" and flow.enabled}


def legacy_flow(client, address):
    """An enabled legacy Flex Flow that holds the Page (contact identity), or None."""
    return legacy_flows(client).get(address.split(":", 1)[1])


def open_task_conversations(client, workspace):
    """The conversation SIDs that have an open Flex task (pending, reserved, assigned or wrapping)."""
    tasks = call(client, lambda: client.taskrouter.v1.workspaces(workspace).tasks.list(
        assignment_status=["pending", "reserved", "assigned", "wrapping"], page_size=1000), "list open tasks")
    return {attributes_of(t.attributes).get("conversationSid") for t in tasks} - {None}


def alerts(client, since):
    try:
        found = call(client, lambda: client.monitor.v1.alerts.list(start_date=since, page_size=100, limit=100),
                      "list Monitor alerts")
    except TwilioCallFailed:
        return []
    return [{"sid": a.sid, "error_code": a.error_code, "log_level": a.log_level, "alert_text": a.alert_text,
             "resource_sid": a.resource_sid, "date_created": _stamp(a.date_created)} for a in found]


def wait_for_message(client, page_address, services, seconds, on_tick=None, interval=1.0,
                     max_conversations=MAX_CONVERSATIONS):
    """The first inbound message to the Page after now, within `seconds`: (service, conversation_sid, message).

    Polls at most once per `interval` from the first second: conversations created since the start (a first message
    makes one, the usual test) and, once a background scan has found the Page's active conversations (a follow-up
    lands in one of them), their latest message. A message is new when its conversation was made after the first
    poll, is stamped after the start's second, or differs from what the conversation held when it was first looked
    at (Twilio stamps to the second). A new conversation of another Page is looked at once.
    """
    start = datetime.now(timezone.utc).replace(microsecond=0)
    stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    watched, others, baseline = [], set(), {}  # others: new conversations of other Pages (a Page never changes)
    background = ThreadPoolExecutor(1)  # not a `with`: answering must not wait for the scan to finish
    pace = ScanPace()
    try:
        scan = background.submit(lambda: [(s, c.sid) for s, c in page_conversations(
            client, page_address, start, services, max_conversations, proceed=pace.proceed) if c.state == "active"])
        deadline, first = time.monotonic() + seconds, True
        with ThreadPoolExecutor(WORKERS) as pool:  # a poll's own lookups, at once
            while True:
                polled = time.monotonic()
                pace.polling.set()
                if on_tick:
                    on_tick(seconds - max(0.0, deadline - polled))
                for service in services:
                    fresh = [(service, c) for c in call(
                        client, lambda: conversations_of(client, service).list(start_date=stamp, page_size=PAGE_SIZE),
                        "list new conversations") if (service, c.sid) not in others]
                    fresh = [(s, c) for s, c in fresh if (s, c.sid) not in watched]
                    for (s, c), proxies in zip(fresh, pool.map(lambda pair: _proxies(client, *pair), fresh)):
                        (watched.append if page_address in proxies else others.add)((s, c.sid))
                        if page_address in proxies and not first:
                            baseline[c.sid] = None  # made after the first poll looked: all of it is new
                first = False
                if scan is not None and scan.done():
                    watched += [pair for pair in scan.result() if pair not in watched]
                    scan = None
                latest = pool.map(lambda pair: latest_inbound(client, pair[1], pair[0]), watched)
                for (service, sid), message in zip(list(watched), latest):
                    if message is None:
                        continue
                    if sid not in baseline:
                        baseline[sid] = None if _stamped_after(message["date_created"], start) else message["sid"]
                    if message["sid"] != baseline[sid]:
                        return service, sid, message
                if polled + interval >= deadline:
                    return None
                pace.polling.clear()
                time.sleep(max(0.0, polled + interval - time.monotonic()))
    finally:
        pace.done.set()
        background.shutdown(wait=False, cancel_futures=True)


class ScanPace:
    """The background scan gives way: it holds its next requests while a poll runs (a poll's few requests decide
    how soon a message is reported) and ends once the wait answers (its requests would slow the trace after)."""

    def __init__(self):
        self.polling, self.done = threading.Event(), threading.Event()

    def proceed(self):
        while self.polling.is_set() and not self.done.is_set():
            time.sleep(0.02)
        return not self.done.is_set()


def _stamped_after(stamp, start):
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) > start
    except ValueError:
        return False
