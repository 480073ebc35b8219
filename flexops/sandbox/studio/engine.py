"""Run a Studio flow definition the way Studio does, deterministically: from a trigger event, widget after
widget, each transition recorded as a Step (`name` = the event, `transitioned_from` -> `transitioned_to`).

Widgets with effects outside Studio go through `hooks` (the inbound simulation gives them): `send_to_flex(widget,
attributes, execution) -> (event or None, widget context)` (None: the conversation is Flex's, the execution ends)
and `send_message(body, execution) -> message dict`. Widgets Studio has but the sandbox does not model are recorded
and followed along their success transition, with `"simulated": true` in the step's context.
"""
import json
import re

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

ENDED = "Ended"
MAX_STEPS = 100  # a definition that loops forever ends here, as Studio's own step limit would end it
FAILURE_EVENTS = {"failed", "fail", "timeout", "noMatch", "failedToEnqueue", "callFailure", "deliveryFailure"}
LIQUID = SandboxedEnvironment(autoescape=False)


def render(text, context):
    """Liquid-like `{{trigger.conversation.Body}}` templates (Jinja2's syntax for what Studio's flows use)."""
    if not isinstance(text, str) or "{" not in text:
        return text
    try:
        return LIQUID.from_string(text).render(context)
    except TemplateError:
        return text


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def condition_holds(condition, subject):
    """One `split-based-on` condition on the rendered input; text comparisons ignore case."""
    kind, value = condition.get("type"), str(condition.get("value", ""))
    text, wanted = str(subject or "").strip().lower(), value.strip().lower()
    options = [v.strip() for v in wanted.split(",")]
    checks = {
        "equal_to": lambda: text == wanted, "not_equal_to": lambda: text != wanted,
        "contains": lambda: wanted in text, "does_not_contain": lambda: wanted not in text,
        "starts_with": lambda: text.startswith(wanted), "does_not_start_with": lambda: not text.startswith(wanted),
        "is_blank": lambda: text == "", "is_not_blank": lambda: text != "",
        "matches_any_of": lambda: text in options, "does_not_match_any_of": lambda: text not in options,
        "regex": lambda: re.search(value, str(subject or "")) is not None,
        "less_than": lambda: None not in (_number(text), _number(wanted)) and _number(text) < _number(wanted),
        "greater_than": lambda: None not in (_number(text), _number(wanted)) and _number(text) > _number(wanted),
    }
    check = checks.get(kind)
    return bool(check and check())


def _next(state, event):
    for transition in state.get("transitions", []):
        if transition.get("event") == event:
            return transition.get("next") or None
    return None


def _split(widget, context):
    properties = widget.get("properties", {})
    for transition in widget.get("transitions", []):
        conditions = transition.get("conditions") or []
        if transition.get("event") == "match" and conditions:
            for condition in conditions:
                subject = render((condition.get("arguments") or [properties.get("input")])[0], context)
                if condition_holds(condition, subject):
                    return transition.get("next") or None, {"matched": condition.get("friendly_name")}
    return _next(widget, "noMatch"), {"matched": None}


def _success_event(widget):
    events = [t.get("event") for t in widget.get("transitions", [])]
    return next((e for e in events if e not in FAILURE_EVENTS), events[0] if events else None)


class Run:
    """One execution moving through its flow; `steps` collects the Step resources it recorded."""

    def __init__(self, studio, db, definition, execution, hooks):
        self.studio, self.db, self.execution, self.hooks = studio, db, execution, hooks
        self.states = {s["name"]: s for s in definition.get("states", [])}
        self.steps = []

    @property
    def context(self):
        return self.execution["context"]

    def _record(self, event, source, target, widget_type, context):
        step = self.studio.add_step(self.db, self.execution, event, widget_type, source, target or ENDED, context)
        self.steps.append(step)

    def _end(self):
        self.execution["status"] = "ended"

    def follow(self, source, event, target=None):
        """Take `event` out of state `source` and run widgets until the flow ends or waits."""
        target = target if target is not None else _next(self.states.get(source, {}), event)
        for _ in range(MAX_STEPS):
            widget = self.states.get(target) if target else None
            if widget is None:
                self._record(event, source, None, None, {})
                return self._end()
            outcome = self.run_widget(widget)
            self._record(event, source, target, widget.get("type"), outcome["context"])
            self.context.setdefault("widgets", {})[target] = outcome["context"]
            if outcome.get("wait"):
                return self.studio.bind(self.db, self.execution["initiated_by"], self.execution, target)
            if outcome.get("end"):
                return self._end()
            source, event, target = target, outcome["event"], outcome.get("next", _next(widget, outcome["event"]))
        return self._end()

    def resume(self, state_name, inbound):
        """The reply a send-and-wait-for-reply widget waited for: continue along `incomingMessage`."""
        self.studio.unbind(self.db, self.execution["initiated_by"])
        widget_context = self.context.setdefault("widgets", {}).setdefault(state_name, {})
        widget_context["inbound"] = inbound
        self.follow(state_name, "incomingMessage")

    def run_widget(self, widget):
        kind, properties = widget.get("type"), widget.get("properties", {})
        if kind == "send-to-flex":
            attributes = render(properties.get("attributes", "{}"), self.context)
            event, context = self.hooks.send_to_flex(widget, attributes, self.execution)
            return {"event": event, "context": context, "end": event is None}
        if kind in ("send-message", "send-and-wait-for-reply"):
            message = self.hooks.send_message(render(properties.get("body", ""), self.context), self.execution)
            context = {"outbound": {"Body": message["body"], "MessageSid": message["sid"]}}
            if kind == "send-and-wait-for-reply":
                return {"context": context, "wait": True}
            return {"event": "sent", "context": context}
        if kind == "split-based-on":
            target, context = _split(widget, self.context)
            return {"event": "match" if context["matched"] else "noMatch", "next": target, "context": context}
        if kind == "set-variables":
            variables = self.context.setdefault("flow", {}).setdefault("variables", {})
            for item in properties.get("variables", []):
                variables[item.get("key")] = render(item.get("value"), self.context)
            return {"event": "next", "context": {"variables": dict(variables)}}
        return {"event": _success_event(widget), "context": {"simulated": True, "type": kind}}


def parse_attributes(text):
    """Send to Flex's rendered `attributes` as the task's JSON object ({} when they are not valid JSON)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
