"""How well does each Page reach Flex? Every inbound Messenger conversation in a window, counted per Page.

Built from bulk lists, not one trace per conversation: the window's conversations (one participants request each,
concurrent, for the Page and the customer), each Studio flow's executions, and TaskRouter's Events (task.created
carries the task's attributes, so its conversation; reservation.accepted says when an agent took it). Tasks
themselves are not listed: TaskRouter removes finished tasks, its events stay for 30 days.
"""
import statistics
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone


from . import addresses, trace_collect
from .coerce import as_duration
from .evidence import conversations_of
from .progress import bar as progress_bar

PREFIX = "messenger:"
WORKERS = 8
EVENT_TYPES = ("task.created", "task-queue.entered", "reservation.accepted")


@dataclass
class PageReach:
    page_id: str
    integration: str = ""
    conversations: int = 0
    reached_flex: int = 0
    reached_agent: int = 0
    broken: dict = field(default_factory=Counter)  # hop -> count
    seconds_to_task: list = field(default_factory=list)
    seconds_to_accept: list = field(default_factory=list)

    def row(self):
        data = asdict(self)
        data["broken"] = dict(self.broken)
        data["median_seconds_to_task"] = _median(data.pop("seconds_to_task"))
        data["median_seconds_to_accept"] = _median(data.pop("seconds_to_accept"))
        return data


def _median(values):
    return round(statistics.median(values), 1) if values else None


def _time(value):
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def trace_all(client, since="7d", progress=None, workers=WORKERS):
    """[PageReach] for every Page with a Messenger address or an inbound conversation in the window."""
    window = as_duration("since", since)
    start = datetime.now(timezone.utc) - window
    configs = {c.address: c for c in addresses.list_messenger(client, progress=progress)}
    services = sorted({(c.auto_creation or {}).get("conversation_service_sid") for c in configs.values()},
                      key=lambda s: s or "")
    with ThreadPoolExecutor(workers) as pool:
        conversations = _conversations(client, services, start)
        with progress_bar(progress, total=len(conversations), desc="conversations traced", unit=" conv",
                          leave=False) as bar:
            def who(pair):
                found = _binding(client, *pair)
                bar.update(1)
                return found
            bindings = list(pool.map(who, conversations))
        flows = sorted({(c.auto_creation or {}).get("studio_flow_sid") for c in configs.values()} - {None})
        executions = {key for keys in pool.map(lambda f: _executions(client, f, start), flows) for key in keys}
        events = _events(client, start)
    pages = {a[len(PREFIX):]: PageReach(a[len(PREFIX):], (c.auto_creation or {}).get("type") or "")
             for a, c in configs.items()}
    for (service, conversation), binding in zip(conversations, bindings):
        if binding is None:
            continue
        page_address, customer = binding
        page = pages.setdefault(page_address[len(PREFIX):], PageReach(page_address[len(PREFIX):]))
        _count(page, conversation, customer, configs.get(page_address), executions, events)
    return sorted(pages.values(), key=lambda p: p.page_id)


def _count(page, conversation, customer, config, executions, events):
    page.conversations += 1
    task = events["tasks"].get(conversation.sid)
    integration = ((config.auto_creation or {}).get("type") if config else None) or "none"
    created = _time(conversation.date_created)
    if task is None:
        if integration == "webhook":
            return
        started = (customer, created.replace(second=0, microsecond=0)) in executions if created else False
        page.broken["address" if config is None else "flex" if started else "studio"] += 1
        return
    if task["sid"] not in events["queued"]:
        page.broken["flex"] += 1
        return
    page.reached_flex += 1
    if created and task["date"]:
        page.seconds_to_task.append((task["date"] - created).total_seconds())
    accepted = events["accepted"].get(task["sid"])
    if accepted:
        page.reached_agent += 1
        if created:
            page.seconds_to_accept.append((accepted - created).total_seconds())


def _conversations(client, services, start):
    found = []
    for service in services:
        listing = conversations_of(client, service)
        found += [(service, c) for c in trace_collect.call(
            client, lambda: listing.list(start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"), page_size=100),
            "list conversations")]
    return found


def _binding(client, service, conversation):
    """(page address, customer address) of a Messenger conversation, or None."""
    listing = conversations_of(client, service)
    participants = trace_collect.call(client, lambda: listing(conversation.sid).participants.list(page_size=100),
                                       f"list participants of {conversation.sid}")
    for p in participants:
        binding = p.messaging_binding or {}
        if str(binding.get("proxy_address", "")).startswith(PREFIX):
            return binding["proxy_address"], binding.get("address")
    return None


def _executions(client, flow_sid, start):
    """{(customer address, minute started)} of the flow's executions since `start`."""
    found = trace_collect.call(client, lambda: client.studio.v2.flows(flow_sid).executions.list(
        date_created_from=start - timedelta(minutes=1), page_size=50), f"list executions of {flow_sid}")
    keys = set()
    for execution in found:
        stamp = _time(execution.date_created)
        if stamp:  # the execution may start in the minute after the conversation
            for minute in (stamp, stamp - timedelta(minutes=1)):
                keys.add((execution.contact_channel_address, minute.replace(second=0, microsecond=0)))
    return keys


def _events(client, start):
    """Tasks by conversation, queued task SIDs and acceptance times, from Flex's workspace's TaskRouter events."""
    flex = trace_collect.or_none(client, lambda: client.flex_api.v1.configuration().fetch(),
                                  "fetch the Flex configuration")
    result = {"tasks": {}, "queued": set(), "accepted": {}}
    if flex is None or not flex.taskrouter_workspace_sid:
        return result
    events = client.taskrouter.v1.workspaces(flex.taskrouter_workspace_sid).events
    by_type = defaultdict(list)
    for event_type in EVENT_TYPES:
        by_type[event_type] = trace_collect.call(client, lambda: events.list(
            event_type=event_type, start_date=start, page_size=1000), f"list {event_type} events")
    for event in by_type["task.created"]:
        data = event.event_data or {}
        conversation = trace_collect.attributes_of(data.get("task_attributes")).get("conversationSid")
        if conversation:
            result["tasks"][conversation] = {"sid": data.get("task_sid") or event.resource_sid,
                                             "date": _time(event.event_date)}
    result["queued"] = {(e.event_data or {}).get("task_sid") for e in by_type["task-queue.entered"]}
    for event in by_type["reservation.accepted"]:
        task_sid = (event.event_data or {}).get("task_sid")
        result["accepted"].setdefault(task_sid, _time(event.event_date))
    return result


def table(pages):
    """A pandas DataFrame, one row per Page (broken counts spread into broken_<hop> columns)."""
    import pandas as pd
    rows = []
    for page in pages:
        row = page.row()
        for hop, count in row.pop("broken").items():
            row[f"broken_{hop}"] = count
        rows.append(row)
    return pd.DataFrame(rows).fillna({c: 0 for c in ("broken_address", "broken_studio", "broken_flex")})
