"""Studio flows: does a flow route Messenger conversations to Flex, and fetch each flow only once.

A Flex messaging flow is one whose Trigger's `incomingConversationMessage` transition leads, through any widgets
(splits, loops...), to a `send-to-flex` widget. A Send to Flex widget that exists but cannot be reached from that
transition routes nothing, so it does not count.
"""
import collections
import json
import re
import threading
from dataclasses import dataclass, field

from . import retry
from .exceptions import ValidationError

TRIGGER = "trigger"
SEND_TO_FLEX = "send-to-flex"
CONVERSATION_EVENT = "incomingConversationMessage"
FLOW_SID = re.compile(r"FW[0-9a-fA-F]{32}")
LIST_PAGE_SIZE = 1000  # Studio v2 allows up to 1000 flows per page


def _states(definition):
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except ValueError:
            return None
    states = definition.get("states") if isinstance(definition, dict) else None
    if not isinstance(states, list):
        return None
    return {s["name"]: s for s in states if isinstance(s, dict) and s.get("name")}


def _transitions(state):
    return [t for t in state.get("transitions") or [] if isinstance(t, dict)]


def reaches_send_to_flex(definition):
    """(ok, path of state names, detail): breadth-first from the Trigger's incomingConversationMessage `next`."""
    states = _states(definition)
    if states is None:
        return False, [], "the flow has no definition (a list of states)"
    trigger = next((s for s in states.values() if s.get("type") == TRIGGER), None)
    if trigger is None:
        return False, [], "the flow has no Trigger widget"
    start = next((t.get("next") for t in _transitions(trigger) if t.get("event") == CONVERSATION_EVENT), None)
    if not start:
        return False, [trigger["name"]], ("the Trigger's Incoming Conversation transition is not connected "
                                          "to any widget")
    parents = {start: trigger["name"]}
    queue = collections.deque([start])
    while queue:
        name = queue.popleft()
        state = states.get(name)
        if state is None:
            continue  # a transition to an unknown widget: Studio marks the flow invalid
        if state.get("type") == SEND_TO_FLEX:
            path = [name]
            while path[-1] != trigger["name"]:
                path.append(parents[path[-1]])
            path.reverse()
            return True, path, " → ".join(path)
        if state.get("type") == TRIGGER:
            continue  # going back to the Trigger does not fire it again
        for transition in _transitions(state):
            nxt = transition.get("next")
            if nxt and nxt not in parents and nxt != trigger["name"]:
                parents[nxt] = name
                queue.append(nxt)
    elsewhere = [n for n, s in states.items() if s.get("type") == SEND_TO_FLEX]
    if elsewhere:
        return False, [], (f"the Send to Flex widget {elsewhere[0]!r} exists but is not reachable from the "
                           f"Trigger's Incoming Conversation transition")
    return False, [], "the flow has no Send to Flex widget on the Incoming Conversation path"


def send_to_flex_state(definition):
    """The reachable Send to Flex widget (dict with its workflow/channel properties), or None."""
    ok, path, _ = reaches_send_to_flex(definition)
    return _states(definition)[path[-1]] if ok else None


@dataclass
class FlowAnalysis:
    """What a check needs to know about one flow."""

    sid: str
    found: bool
    friendly_name: str = None
    status: str = None
    valid: bool = None
    errors: list = field(default_factory=list)
    reaches_flex: bool = False
    path: list = field(default_factory=list)
    detail: str = ""

    @property
    def published(self):
        return self.status == "published"

    @property
    def routes_to_flex(self):
        return self.found and self.published and bool(self.valid) and self.reaches_flex

    @property
    def label(self):
        return f"'{self.friendly_name}' ({self.sid})" if self.friendly_name else self.sid


class FlowCache:
    """Fetches each flow (with its definition) once, however many addresses or threads ask for it."""

    def __init__(self, client):
        self.client = client
        self._flows = {}
        self._analyses = {}
        self._locks = collections.defaultdict(threading.Lock)
        self._lock = threading.Lock()
        self._listing_lock = threading.Lock()
        self._listing = None

    def _sid_lock(self, sid):
        with self._lock:
            return self._locks[sid]

    def get(self, sid):
        """The FlowInstance (definition included), or None when the account has no such flow."""
        with self._sid_lock(sid):
            if sid not in self._flows:
                fetch = retry.none_if_missing(lambda: self.client.studio.v2.flows(sid).fetch())
                self._flows[sid] = retry.call(fetch, what=f"fetch Studio flow {sid}", client=self.client)
            return self._flows[sid]

    def analyse(self, sid):
        """A FlowAnalysis for `sid` (cached)."""
        with self._sid_lock(("analysis", sid)):
            if sid not in self._analyses:
                flow = self.get(sid)
                if flow is None:
                    self._analyses[sid] = FlowAnalysis(sid, found=False, detail=f"no Studio flow {sid} in the account")
                else:
                    ok, path, detail = reaches_send_to_flex(flow.definition)
                    self._analyses[sid] = FlowAnalysis(
                        sid, True, flow.friendly_name, flow.status, flow.valid,
                        [e.get("message", str(e)) if isinstance(e, dict) else str(e) for e in flow.errors or []],
                        ok, path, detail)
            return self._analyses[sid]

    def listing(self):
        """Every flow of the account, as listed (no definitions); one listing per cache."""
        with self._listing_lock:
            if self._listing is None:
                self._listing = retry.call(lambda: self.client.studio.v2.flows.list(page_size=LIST_PAGE_SIZE),
                                           what="list Studio flows", client=self.client)
            return list(self._listing)

    def published_flex_flows(self):
        """Published, valid flows whose Incoming Conversation path reaches Send to Flex (FlowInstances)."""
        found = []
        for listed in self.listing():
            if listed.status != "published" or listed.valid is False:
                continue
            if self.analyse(listed.sid).routes_to_flex:
                found.append(self.get(listed.sid))
        return found

    def resolve(self, name_or_sid, parameter="studio_flow_sid"):
        """A flow SID from a SID or a unique friendly name; unknown or ambiguous names are ValidationErrors."""
        text = name_or_sid.strip() if isinstance(name_or_sid, str) else name_or_sid
        if not text or not isinstance(text, str):
            raise ValidationError(parameter, "a Studio flow SID (FW…) or flow name is required", name_or_sid)
        if FLOW_SID.fullmatch(text):
            if self.get(text) is None:
                raise ValidationError(parameter, "no Studio flow with this SID in the account", text)
            return text
        flows = self.listing()
        matches = [f for f in flows if f.friendly_name == text] or \
            [f for f in flows if (f.friendly_name or "").casefold() == text.casefold()]
        if not matches:
            names = ", ".join(repr(f.friendly_name) for f in flows[:10]) or "none"
            raise ValidationError(parameter, f"no Studio flow named like this; flows in the account: {names}", text)
        if len(matches) > 1:
            raise ValidationError(parameter, "several Studio flows have this name; give the SID instead ("
                                  + ", ".join(f.sid for f in matches) + ")", text)
        return matches[0].sid
