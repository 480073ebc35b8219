"""Did a customer's Messenger message reach an agent in Flex, and if not, which hop broke and why.

`trace()` finds the message (the newest to the Page, a known conversation, or the next one written while it
waits), `trace_collect` gathers the evidence with a bounded number of requests, and `analyse()` judges it hop by
hop (`trace_hops`): the verdict, the first broken hop, and the Monitor alerts on the hop whose resources they name.
"""
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from . import trace_collect, trace_hops, twilio_errors
from .address_spec import address_of, normalise_page_id
from .coerce import as_duration
from .exceptions import ValidationError
from .trace_hops import FAIL, NOT_REACHED, PASS, WARN, Hop, workflow_problems  # noqa: F401  (re-exported)

VERDICTS = ("reached_agent", "reached_flex", "handed_to_webhook", "broken", "no_message")
CONVERSATION_SID = re.compile(r"CH[0-9a-fA-F]{32}")


@dataclass
class Trace:
    page_id: str
    address: str
    message: dict
    verdict: str
    broken_hop: str
    hops: list
    alerts: list

    def to_dict(self):
        return {"page_id": self.page_id, "address": self.address, "message": self.message, "verdict": self.verdict,
                "broken_hop": self.broken_hop, "hops": [asdict(h) for h in self.hops], "alerts": self.alerts}

    def summary(self):
        """One sentence for people: where the message got to, or what to do next."""
        hop = next((h for h in self.hops if h.hop == self.broken_hop), None)
        if self.verdict == "no_message":
            if hop:
                return f"No inbound message found, and it could not get through: {hop.hop} — {hop.detail}."
            return (f"No inbound message to {self.address} found, and the configuration looks right: write to the "
                    f"Page from another Facebook profile and run `flexops trace {self.page_id} --wait 120`.")
        if hop:
            return f"The message stopped at {hop.hop}: {hop.detail}. {hop.remedy}".strip()
        return {"reached_agent": "The message reached an agent in Flex.",
                "reached_flex": "The message reached Flex; no agent has accepted it yet.",
                "handed_to_webhook": "The message was handed to the address's webhook."}[self.verdict]

    @property
    def reached_flex(self):
        return self.verdict in ("reached_agent", "reached_flex")

    @property
    def exit_code(self):
        """As for runs: 0 reached Flex (or an agent), or was handed to the address's webhook; 1 otherwise."""
        return 0 if self.verdict in ("reached_agent", "reached_flex", "handed_to_webhook") else 1


def analyse(evidence):
    """One Trace from the evidence gathered by trace_collect (see Evidence there for its fields)."""
    alerts = [_alert(a) for a in evidence.get("alerts") or []]
    hops = [trace_hops.address_hop(evidence), trace_hops.conversation_hop(evidence)]
    integration = ((evidence.get("address") or {}).get("auto_creation") or {}).get("type")
    hops.append(trace_hops.webhook_hop(evidence) if integration == "webhook" else trace_hops.studio_hop(evidence))
    hops += [trace_hops.flex_hop(evidence), trace_hops.agent_hop(evidence)]
    _attach(alerts, hops)
    if evidence.get("message") is not None:
        _cut_after_failure(hops)
    broken = next((h.hop for h in hops if h.status == FAIL), None)
    return Trace(evidence.get("page_id"), evidence.get("address_name"), evidence.get("message"),
                 _verdict(evidence, hops, broken, integration), broken, hops, alerts)


def _verdict(evidence, hops, broken, integration):
    if evidence.get("message") is None:
        return "no_message"
    if broken:
        return "broken"
    if integration == "webhook":
        return "handed_to_webhook"
    agent = next(h for h in hops if h.hop == "agent")
    return "reached_agent" if agent.status == PASS else "reached_flex"


def _cut_after_failure(hops):
    """For a real message, hops after the first failure were not reached, whatever their configuration says."""
    failed = False
    for hop in hops:
        if failed and hop.status in (PASS, WARN):
            hop.status, hop.detail = NOT_REACHED, f"not reached ({hop.detail})" if hop.detail else "not reached"
        failed = failed or hop.status == FAIL


def _attach(alerts, hops):
    """Each alert goes to the hop whose evidence names its resource, else to the hop its error code breaks."""
    for alert in alerts:
        hop = next((h for h in hops if alert["resource_sid"] and alert["resource_sid"] in _sids(h.evidence)), None)
        hop = hop or next((h for h in hops if h.hop == alert["hop"]), None)
        if hop is not None:
            hop.alerts.append(alert)


def _alert(alert):
    info = twilio_errors.describe(alert.get("error_code"))
    return {"sid": alert.get("sid"), "error_code": info.code, "log_level": alert.get("log_level") or "error",
            "alert_text": alert.get("alert_text") or "", "resource_sid": alert.get("resource_sid"),
            "date_created": alert.get("date_created"), "hop": info.hop, "title": info.title,
            "remedy": info.remedy, "link": info.link}


def _sids(evidence):
    return {v for v in evidence.values() if isinstance(v, str) and len(v) == 34 and v[:2].isalpha()}


# --- the entry point -------------------------------------------------------------------------------------------

def trace(client, page_id, since="7d", wait_seconds=None, conversation_sid=None, on_tick=None,
          max_conversations=trace_collect.MAX_CONVERSATIONS):
    """Trace the newest inbound message to the Page within `since` (or a known conversation, or the first new
    message within `wait_seconds`) hop by hop. Bad input raises ValidationError before any call."""
    page_id = normalise_page_id(page_id)
    window = as_duration("since", since)
    wait = None if wait_seconds in (None, "", 0) else as_duration("wait_seconds", wait_seconds)
    if conversation_sid and not CONVERSATION_SID.fullmatch(str(conversation_sid)):
        raise ValidationError("conversation", "must be a conversation SID (CH + 32 hex digits)", conversation_sid)
    since_time = datetime.now(timezone.utc) - window
    address = address_of(page_id)
    config = trace_collect.address_config(client, address)
    service = ((config or {}).get("auto_creation") or {}).get("conversation_service_sid")
    message = None
    if wait is not None and config is not None:
        found = trace_collect.wait_for_message(client, address, (service,), wait.total_seconds(), on_tick)
        if found:
            service, conversation_sid, message = found
    elif not conversation_sid and config is not None:
        found = trace_collect.newest_message(client, trace_collect.page_conversations(
            client, address, since_time, (service,), max_conversations))
        if found:
            service, conversation, message = found
            conversation_sid = conversation.sid
    ev = trace_collect.evidence(client, page_id, config, conversation_sid, since_time, service, message)
    return analyse(ev)
