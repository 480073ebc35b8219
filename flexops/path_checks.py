"""Verify learns the path: static checks of the Flex side for each Messenger address, with the trace's own rules.

Per address: Send to Flex's workflow and task channel exist in Flex's workspace and the workflow routes a
representative Messenger task (the shared expression evaluator, `trace_hops.routing_problem`); no legacy Flex Flow
holds the Page; active conversations of the Page without an open task (they swallow new messages) as a warning
with their count; Monitor alerts on the address's resources in the last 24 hours as warnings. A fixed handful of
requests for the whole account (Flex configuration, each distinct workflow, the task channels, the Flex Flows, the
open tasks, the active conversations with their participants, the alerts), never one per address.
"""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from . import trace_collect, trace_hops, twilio_errors
from .evidence import WORKERS, conversations_of
from .exceptions import TwilioCallFailed
from .studio import send_to_flex_state

PASS, FAIL, WARN = "pass", "fail", "warn"
ALERT_WINDOW = timedelta(hours=24)
MAX_ACTIVE = 1000  # active conversations looked at for stale ones (one participants request each)


def with_path_rows(client, configs, flows, address_rows, row, known_pages=None):
    """verify's rows with each address's path rows right after its own (the table stays grouped by address).
    `known_pages`: optional callable([conversation SID]) -> {SID: page or None} for conversations whose page is
    already known (the state store): those need no participants request."""
    found = address_rows + rows(client, configs, flows, row, known_pages)
    first = {}
    for index, result in enumerate(found):
        first.setdefault(result.subject, index)
    return sorted(found, key=lambda result: first[result.subject])


def rows(client, configs, flows, row, known_pages=None):
    """CheckResult rows (made by `row(subject, check, status, detail, remedy)`) for the present addresses."""
    present = {a: c for a, c in configs.items() if c is not None}
    if not present:
        return []
    flex = trace_collect.or_none(client, lambda: client.flex_api.v1.configuration().fetch(),
                                 "fetch the Flex configuration")
    workspace = flex.taskrouter_workspace_sid if flex is not None and flex.status == "ok" else None
    widgets = {a: _widget(flows, c) for a, c in present.items()}
    routing = {"workflows": {}, "task_channels": {}}
    stale, alerts = {}, []
    if workspace:
        routing = trace_collect.routing_evidence(
            client, workspace, [(w or {}).get("workflow") for w in widgets.values()])
        stale = _stale_counts(client, workspace, {(c.auto_creation or {}).get("conversation_service_sid")
                                                  for c in present.values()}, known_pages)
    legacy = trace_collect.legacy_flows(client)
    alerts = trace_collect.alerts(client, datetime.now(timezone.utc) - ALERT_WINDOW)
    found = []
    for address, config in present.items():
        add = lambda *args, address=address: found.append(row(address, *args))  # noqa: E731
        _routing_row(add, config, widgets[address], workspace, routing)
        _legacy_row(add, legacy.get(address.split(":", 1)[1]))
        _stale_row(add, address, stale.get(address, 0))
        _alert_rows(add, config, alerts)
    return found


def _widget(flows, config):
    auto = config.auto_creation or {}
    if auto.get("type") != "studio" or not auto.get("studio_flow_sid"):
        return None
    flow = flows.get(auto["studio_flow_sid"])  # a FlowCache: already fetched by verify's Studio rows
    state = send_to_flex_state(flow.definition) if flow is not None and flow.definition else None
    return (state or {}).get("properties") or None


def _routing_row(add, config, widget, workspace, routing):
    if (config.auto_creation or {}).get("type") != "studio":
        return
    if workspace is None:
        add("Flex routing", FAIL, "Flex is not set up (no TaskRouter workspace in the Flex configuration)",
            "Set up Flex (Console > Flex) before routing Messenger to it.")
        return
    if widget is None:
        return  # the Studio rows already say the flow does not reach Send to Flex
    problem = trace_hops.routing_problem({"widget": widget, **routing})
    if problem:
        add("Flex routing", FAIL, *problem)
    else:
        name = routing["workflows"][widget["workflow"]].get("friendly_name") or widget["workflow"]
        add("Flex routing", PASS, f"Send to Flex's workflow '{name}' routes a Messenger task to a queue")


def _legacy_row(add, flow):
    if flow is None:
        add("legacy Flex Flow", PASS, "no legacy Flex Flow holds the Page")
    else:
        add("legacy Flex Flow", FAIL, f"legacy Flex Flow {flow['sid']} ({flow.get('friendly_name')}) still holds "
            "the Page and takes its messages", f"Retire it: flexops legacy retire {flow['sid']} (add --replace "
            "to recreate the Conversations address in the same run).")


def _stale_row(add, address, count):
    if count:
        add("stale conversations", WARN, f"{count} active conversation{'s' if count != 1 else ''} without an open "
            "Flex task: a customer who wrote there before is not seen by any agent when they write again",
            f"Close them: flexops janitor --page {address.split(':', 1)[1]} (and set Conversations close timers).")


def _alert_rows(add, config, alerts):
    auto = config.auto_creation or {}
    mine = {config.sid, auto.get("studio_flow_sid"), auto.get("conversation_service_sid")} - {None}
    for alert in alerts:
        if alert["resource_sid"] in mine:
            info = twilio_errors.describe(alert["error_code"])
            add("Monitor alert", WARN, f"{info.code} {info.title} on {alert['resource_sid']} "
                f"({alert['date_created']}): {alert['alert_text'][:200]}", f"{info.remedy} {info.link}")


def _stale_counts(client, workspace, services, known_pages=None):
    """{page address: active conversations of that Page with no open task} (bounded by MAX_ACTIVE)."""
    try:
        open_ones = trace_collect.open_task_conversations(client, workspace)
        active = []
        for service in sorted(services, key=lambda s: s or ""):
            listing = conversations_of(client, service)
            active += [(service, c) for c in trace_collect.call(
                client, lambda: listing.list(state="active", page_size=100, limit=MAX_ACTIVE),
                "list active conversations") if c.sid not in open_ones]
        known = known_pages([c.sid for _, c in active[:MAX_ACTIVE]]) if known_pages else {}
        unknown = [pair for pair in active[:MAX_ACTIVE] if pair[1].sid not in known]
        with ThreadPoolExecutor(WORKERS) as pool:
            pages = [*known.values(), *pool.map(lambda pair: trace_collect.page_of(client, *pair), unknown)]
            counts = {}
            for page in pages:
                if page:
                    counts[page] = counts.get(page, 0) + 1
        return counts
    except TwilioCallFailed:
        return {}
