"""The hops a Messenger message takes into Flex, each judged from the evidence `trace_collect` gathered.

address → conversation → studio (or webhook) → flex → agent: one function per hop, each returning a `Hop` that is
pass / fail / warn / not reached with its detail, evidence (SIDs, times) and a one-sentence remedy. Nothing here
calls Twilio, so every verdict can be tested from evidence alone.
"""
import json
from dataclasses import dataclass, field

from . import task_expressions, twilio_errors
from .studio import SEND_TO_FLEX, send_to_flex_state

PASS, FAIL, WARN, NOT_REACHED = "pass", "fail", "warn", "not_reached"
SYMBOLS = {PASS: "✓", FAIL: "✗", WARN: "!", NOT_REACHED: "·"}
# What Flex Conversations puts on a Messenger task (Interactions API): used to ask "would this workflow route it?"
MESSENGER_TASK = {"channelType": "messenger", "direction": "inbound", "initiatedBy": "customer",
                  "from": "messenger:0000000000", "customerAddress": "messenger:0000000000",
                  "conversationSid": "CH" + "0" * 32, "conversations": {"communication_channel": "messenger"}}
REMEDY_CREATE = ("Create the address configuration: flexops run notebooks/10_create_messenger_address.ipynb "
                 "-r page_id PAGE (integration studio, your Flex messaging flow).")


@dataclass
class Hop:
    hop: str
    status: str = NOT_REACHED
    detail: str = ""
    evidence: dict = field(default_factory=dict)
    remedy: str = ""
    alerts: list = field(default_factory=list)

    @property
    def symbol(self):
        return SYMBOLS[self.status]


def workflow_problems(configuration, attributes=MESSENGER_TASK):
    """Why a workflow configuration would not route a task with `attributes` to a queue ([] when it would)."""
    try:
        routing = (json.loads(configuration) if isinstance(configuration, str) else configuration)["task_routing"]
    except (TypeError, ValueError, KeyError):
        return ["its configuration has no task_routing"]
    for rule in routing.get("filters") or []:
        try:
            if task_expressions.matches(rule.get("expression") or "", attributes):
                return [] if rule.get("targets") else [f"filter {rule.get('filter_friendly_name')!r} has no target"]
        except task_expressions.ExpressionError as exc:
            return [f"filter {rule.get('filter_friendly_name')!r}: {exc}"]
    if (routing.get("default_filter") or {}).get("queue"):
        return []
    expressions = ", ".join(repr(r.get("expression")) for r in routing.get("filters") or []) or "none"
    return [f"no filter matches channelType == {attributes.get('channelType')!r} (filters: {expressions}) and there "
            "is no default_filter"]


def address_hop(ev):
    hop, config = Hop("address"), ev.get("address")
    legacy = ev.get("legacy_flow")
    if legacy:
        hop.evidence["legacy_flex_flow"] = legacy.get("sid")
    if config is None:
        hop.status, hop.detail = FAIL, f"no address configuration for {ev.get('address_name')}"
        hop.remedy = REMEDY_CREATE.replace("PAGE", str(ev.get("page_id")))
        if legacy:
            hop.detail += f"; legacy Flex Flow {legacy.get('sid')} still holds the Page"
            hop.remedy = (f"Retire the legacy Flex Flow {legacy.get('sid')} and create the Conversations address "
                          f"in the same step: flexops legacy retire {legacy.get('sid')} --replace.")
        return hop
    auto = config.get("auto_creation") or {}
    hop.evidence.update(address_sid=config.get("sid"), integration=auto.get("type"))
    if not auto.get("enabled"):
        hop.status, hop.detail = FAIL, "auto-creation is off: Twilio drops the Page's messages"
        hop.remedy = "Turn auto-creation on for the address (runbook 10 with the same page_id updates it)."
    elif legacy:
        hop.status = FAIL
        hop.detail = f"legacy Flex Flow {legacy.get('sid')} holds the same Page ({legacy.get('contact_identity')})"
        hop.remedy = f"Retire the legacy Flex Flow: flexops legacy retire {legacy.get('sid')}."
    else:
        target = auto.get("studio_flow_sid") or auto.get("webhook_url") or "the default service"
        hop.status, hop.detail = PASS, f"auto-creation on, integration {auto.get('type')} ({target})"
    return hop


def conversation_hop(ev):
    hop, message, conversation = Hop("conversation"), ev.get("message"), ev.get("conversation")
    flex_service = ev.get("flex_service_sid")
    if message is None or conversation is None:
        hop.detail = "no inbound message found" if message is None else "the message's conversation is gone"
        return hop
    hop.evidence.update(conversation_sid=conversation["sid"], message_sid=message.get("sid"),
                        message_date=message.get("date_created"), state=conversation.get("state"))
    service = conversation.get("chat_service_sid")
    if flex_service and service and service != flex_service:
        hop.status = FAIL
        hop.detail = f"conversation {conversation['sid']} is in service {service}, not Flex's ({flex_service})"
        hop.remedy = ("Clear the address's AutoCreation.ConversationServiceSid or set it to Flex's Conversations "
                      "service, so Flex sees the conversations.")
        return hop
    if message.get("index", 0) == 0:
        hop.status, hop.detail = PASS, f"new conversation {conversation['sid']}"
        return hop
    open_task = ev.get("open_task")
    hop.evidence["captured"] = True
    if open_task:
        hop.status = PASS
        hop.detail = (f"follow-up in the customer's active conversation {conversation['sid']}; its Flex task "
                      f"{open_task['sid']} is {open_task['assignment_status']}, so the agent sees it")
        hop.evidence["open_task_sid"] = open_task["sid"]
    else:
        hop.status = FAIL
        hop.detail = (f"captured by the customer's active conversation {conversation['sid']}, which has no open "
                      "Flex task: nobody sees the message and no Studio execution starts (stale conversation)")
        hop.remedy = (f"Close the stale conversation (flexops janitor --page {ev.get('page_id')}) and set "
                      "Conversations close timers so it does not happen again.")
    return hop


def studio_hop(ev):
    hop, config = Hop("studio"), ev.get("address") or {}
    auto = config.get("auto_creation") or {}
    if auto.get("type") != "studio":
        hop.detail = f"integration {auto.get('type') or 'none'}: no Studio flow"
        if config and auto.get("type") == "default":
            hop.status = FAIL
            hop.detail = "integration 'default': nothing hands the conversation to Flex"
            hop.remedy = "Set the address's integration to studio with your Flex messaging flow."
        return hop
    flow = ev.get("flow")
    hop.evidence["flow_sid"] = auto.get("studio_flow_sid")
    problem = _flow_problem(flow, auto.get("studio_flow_sid"))
    execution = ev.get("execution")
    if problem:
        hop.status, (hop.detail, hop.remedy) = FAIL, problem
        return hop
    if ev.get("message") is None:
        hop.status, hop.detail = PASS, "configuration: the published flow reaches Send to Flex"
        return hop
    if ev.get("conversation") and ev["message"].get("index", 0) > 0:
        hop.detail = "a follow-up message starts no Studio execution"
        hop.status = PASS if ev.get("open_task") else NOT_REACHED
        return hop
    if execution is None:
        hop.status, hop.detail = FAIL, "no Studio execution started for the conversation"
        hop.remedy = "Check the flow's Trigger: its Incoming Conversation transition must lead to Send to Flex."
        return hop
    steps = ev.get("steps") or []
    hop.evidence.update(execution_sid=execution["sid"], execution_status=execution.get("status"),
                        steps=" → ".join([steps[0].get("transitioned_from") or "Trigger"] +
                                         [s.get("transitioned_to") or "?" for s in steps]) if steps else "")
    flex_step = next((s for s in steps if s.get("type") == SEND_TO_FLEX), None)
    if flex_step is None:
        hop.status = FAIL
        hop.detail = f"execution {execution['sid']} ({execution.get('status')}) never reached Send to Flex"
        hop.remedy = "Follow the execution's steps in Console > Studio > the flow > Executions and fix the widget " \
                     "where it stopped."
    else:
        hop.status, hop.evidence["step_sid"] = PASS, flex_step.get("sid")
        hop.detail = f"execution {execution['sid']} ran Send to Flex ({flex_step.get('transitioned_to')})"
        if _step_failed(flex_step, steps):
            error = (flex_step.get("context") or {}).get("error") or {}
            hop.detail += ", which could not create the task" + (f": {error.get('message')}"
                                                                  if error.get("message") else "")
    return hop


def _step_failed(step, steps):
    """Send to Flex failed when its step carries an error or the flow left it along `failedToEnqueue`."""
    widget = step.get("transitioned_to")
    return bool((step.get("context") or {}).get("error")) or any(
        s.get("name") == "failedToEnqueue" and s.get("transitioned_from") == widget for s in steps)


def _flow_problem(flow, flow_sid):
    if flow is None:
        return (f"Studio flow {flow_sid} does not exist",
                "Point the address at your Flex messaging flow (runbook 10 with studio_flow_sid).")
    if flow.get("status") != "published":
        return (f"Studio flow {flow.get('sid')} is a draft: Studio runs only published flows",
                "Publish the flow in Console > Studio (or point the address at a published one).")
    if send_to_flex_state(flow.get("definition")) is None:
        return (f"flow {flow.get('sid')}'s Incoming Conversation trigger does not reach Send to Flex",
                "Connect the Trigger's Incoming Conversation to a Send to Flex widget and publish the flow.")
    return None


def webhook_hop(ev):
    hop, auto = Hop("webhook"), (ev.get("address") or {}).get("auto_creation") or {}
    url = auto.get("webhook_url") or ""
    hop.evidence["webhook_host"] = url.split("/")[2] if "//" in url else url
    if ev.get("message") is None:
        hop.status, hop.detail = PASS, "configuration: conversations are handed to the address's webhook"
    else:
        hop.status = PASS
        hop.detail = f"Twilio posts the conversation's events to {hop.evidence['webhook_host']}: what your " \
                     "endpoint does with them is outside what flexops can see"
    return hop


def flex_hop(ev):
    hop, flex = Hop("flex"), ev.get("flex") or {}
    config = flex.get("configuration")
    integration = ((ev.get("address") or {}).get("auto_creation") or {}).get("type")
    if integration == "webhook":
        hop.detail = "the webhook decides what reaches Flex"
        return hop
    if config is None or config.get("status") != "ok":
        hop.status, hop.detail = FAIL, "Flex is not set up in this account"
        hop.remedy = "Set up Flex (Console > Flex) before routing Messenger to it."
        return hop
    hop.evidence["workspace_sid"] = config.get("taskrouter_workspace_sid")
    problem = routing_problem(flex)
    task = ev.get("task")
    if task is None:
        if problem:
            hop.status, (hop.detail, hop.remedy) = FAIL, problem
        elif ev.get("message") is None:
            hop.status, hop.detail = PASS, "configuration: Send to Flex's workflow routes a Messenger task"
        else:
            errors = [(s.get("context") or {}).get("error") for s in ev.get("steps") or []]
            error = next((e for e in errors if e), None)
            hop.status, hop.detail = FAIL, "no TaskRouter task was created for the conversation" + (
                f" (Send to Flex: {error.get('message')})" if error else "")
            hop.remedy = twilio_errors.describe(81009).remedy
        return hop
    hop.evidence.update(task_sid=task["sid"], assignment_status=task.get("assignment_status"),
                        queue_sid=task.get("task_queue_sid"), workflow_sid=task.get("workflow_sid"),
                        interaction_sid=(task.get("attributes") or {}).get("flexInteractionSid"))
    if task.get("task_queue_sid"):
        hop.status = PASS
        hop.detail = f"task {task['sid']} in queue {task.get('task_queue_friendly_name') or task['task_queue_sid']}"
        return hop
    hop.status = FAIL
    reason = task.get("reason") or ""
    hop.detail = f"task {task['sid']} was never routed to a queue" + (f" ({reason})" if reason else "")
    hop.remedy = (problem[1] if problem else "Make a workflow filter match channelType == 'messenger' (flexops "
                  "routing check), or give the workflow a default_filter.")
    if problem:
        hop.detail += f": {problem[0]}"
    return hop


def routing_problem(flex):
    """(detail, remedy) when Send to Flex's workflow or task channel cannot route a Messenger task, else None."""
    widget = flex.get("widget") or {}
    workflows, channels = flex.get("workflows") or {}, flex.get("task_channels") or {}
    if not widget:
        return None
    workflow = workflows.get(widget.get("workflow"))
    if workflow is None:
        return (f"Send to Flex's workflow {widget.get('workflow')} is not in Flex's workspace",
                "Point Send to Flex at a workflow of Flex's TaskRouter workspace (e.g. 'Assign to Anyone') and "
                "publish the flow.")
    channel = widget.get("channel")
    if channel and channel not in channels and channel not in channels.values():
        return (f"Send to Flex's task channel {channel} is not in Flex's workspace",
                "Set Send to Flex's channel to Programmable Chat (the workspace's 'chat' task channel).")
    problems = workflow_problems(workflow.get("configuration"))
    if problems:
        return (f"workflow {workflow.get('friendly_name') or workflow.get('sid')}: {problems[0]}",
                "Make a filter match channelType == 'messenger' (flexops routing fix), or add a default_filter.")
    return None


def agent_hop(ev):
    hop, task = Hop("agent"), ev.get("task")
    if task is None or not task.get("task_queue_sid"):
        return hop
    reservations = ev.get("reservations") or []
    accepted = next((r for r in reservations if r.get("reservation_status") in ("accepted", "completed",
                                                                                  "wrapping")), None)
    pending = next((r for r in reservations if r.get("reservation_status") == "pending"), None)
    status = task.get("assignment_status")
    if accepted:
        hop.status = PASS
        hop.detail = f"accepted by {accepted.get('worker_name') or accepted.get('worker_sid')}"
        hop.evidence.update(reservation_sid=accepted.get("sid"), worker_sid=accepted.get("worker_sid"),
                            accepted_at=accepted.get("date_updated"))
    elif status in ("assigned", "wrapping", "completed"):
        hop.status, hop.detail = PASS, f"task {status}"
    elif pending:
        hop.status = WARN
        hop.detail = f"offered to {pending.get('worker_name') or pending.get('worker_sid')}, not accepted yet"
        hop.evidence["reservation_sid"] = pending.get("sid")
        hop.remedy = "Ask the agent to accept the task in Flex."
    elif status == "canceled":
        hop.status, hop.detail = FAIL, f"task canceled before an agent took it ({task.get('reason') or 'no reason'})"
        hop.remedy = "Have an agent available in the queue, and raise the workflow's timeout if tasks expire."
    else:
        hop.status = WARN
        hop.detail = "waiting in the queue: no agent has been offered the task (is anyone Available?)"
        hop.remedy = "Set an agent of the queue to Available in Flex."
    return hop
