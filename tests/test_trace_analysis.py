"""trace.analyse from evidence alone: each hop's verdict, the first broken hop, its remedy, alerts on the right hop."""
import json

import pytest

from flexops import trace
from flexops.coerce import as_duration
from flexops.exceptions import ValidationError
from flexops.twilio_errors import describe

PAGE = "104738392011234"
CH, WT, FW, FN, WW, TC = ("CH" + "1" * 32, "WT" + "2" * 32, "FW" + "3" * 32, "FN" + "4" * 32, "WW" + "5" * 32,
                          "TC" + "6" * 32)
FLEX_SERVICE = "IS" + "7" * 32
ROUTE_ALL = json.dumps({"task_routing": {"filters": [{"filter_friendly_name": "all", "expression": "1==1",
                                                      "targets": [{"queue": "WQ" + "8" * 32}]}]}})
FACEBOOK_ONLY = json.dumps({"task_routing": {"filters": [{"filter_friendly_name": "fb",
                                                          "expression": "channelType == 'facebook'",
                                                          "targets": [{"queue": "WQ" + "8" * 32}]}]}})
DEFINITION = {"initial_state": "Trigger", "states": [
    {"name": "Trigger", "type": "trigger",
     "transitions": [{"event": "incomingConversationMessage", "next": "SendToAgent"}]},
    {"name": "SendToAgent", "type": "send-to-flex", "properties": {"workflow": WW, "channel": TC},
     "transitions": []}]}


def healthy(**changes):
    ev = {
        "page_id": PAGE, "address_name": f"messenger:{PAGE}",
        "address": {"sid": "IG" + "9" * 32, "auto_creation": {"enabled": True, "type": "studio",
                                                               "studio_flow_sid": FW}},
        "message": {"sid": "IM" + "0" * 32, "index": 0, "author": "messenger:7000123",
                    "date_created": "2026-12-01T10:00:00+00:00", "conversation_sid": CH},
        "conversation": {"sid": CH, "state": "active", "chat_service_sid": FLEX_SERVICE},
        "flex_service_sid": FLEX_SERVICE,
        "flow": {"sid": FW, "status": "published", "definition": DEFINITION},
        "execution": {"sid": FN, "status": "ended"},
        "steps": [{"sid": "FT" + "1" * 32, "name": "incomingConversationMessage", "type": "send-to-flex",
                   "transitioned_from": "Trigger", "transitioned_to": "SendToAgent", "context": {"sid": WT}}],
        "flex": {"configuration": {"status": "ok", "taskrouter_workspace_sid": "WS" + "2" * 32},
                 "widget": {"name": "SendToAgent", "workflow": WW, "channel": TC},
                 "workflows": {WW: {"sid": WW, "friendly_name": "Assign to Anyone", "configuration": ROUTE_ALL}},
                 "task_channels": {"chat": TC}},
        "task": {"sid": WT, "assignment_status": "assigned", "task_queue_sid": "WQ" + "8" * 32,
                 "task_queue_friendly_name": "Everyone", "workflow_sid": WW, "attributes": {}},
        "open_task": None,
        "reservations": [{"sid": "WR" + "3" * 32, "reservation_status": "accepted", "worker_name": "alice"}],
        "alerts": [],
    }
    for key, value in changes.items():
        ev[key] = value
    return ev


def statuses(result):
    return {h.hop: h.status for h in result.hops}


def test_the_healthy_path_reaches_an_agent():
    result = trace.analyse(healthy())
    assert (result.verdict, result.broken_hop, result.exit_code) == ("reached_agent", None, 0)
    assert statuses(result) == {"address": "pass", "conversation": "pass", "studio": "pass", "flex": "pass",
                                "agent": "pass"}
    assert "alice" in result.hops[-1].detail
    assert set(result.to_dict()) == {"page_id", "address", "message", "verdict", "broken_hop", "hops", "alerts"}


def test_a_pending_reservation_is_a_warning_not_a_failure():
    result = trace.analyse(healthy(reservations=[{"sid": "WR1", "reservation_status": "pending",
                                                  "worker_name": "bob"}],
                                   task={**healthy()["task"], "assignment_status": "reserved"}))
    assert (result.verdict, result.broken_hop, result.exit_code) == ("reached_flex", None, 0)
    assert statuses(result)["agent"] == "warn" and "bob" in result.hops[-1].detail


def test_no_address_is_broken_at_the_address_and_says_how_to_create_it():
    result = trace.analyse(healthy(address=None, message=None, conversation=None, execution=None, task=None))
    assert (result.verdict, result.broken_hop, result.exit_code) == ("no_message", "address", 1)
    assert "10_create_messenger_address" in result.hops[0].remedy and PAGE in result.hops[0].remedy


def test_auto_creation_off():
    ev = healthy(message=None, conversation=None, execution=None, task=None)
    ev["address"]["auto_creation"]["enabled"] = False
    result = trace.analyse(ev)
    assert result.broken_hop == "address" and "auto-creation" in result.hops[0].remedy.lower()


def test_a_draft_flow_breaks_studio():
    result = trace.analyse(healthy(flow={"sid": FW, "status": "draft", "definition": DEFINITION},
                                   message=None, conversation=None, execution=None, task=None))
    assert (result.verdict, result.broken_hop) == ("no_message", "studio")
    assert "Publish" in result.hops[2].remedy


def test_send_to_flex_to_a_missing_workflow_breaks_flex():
    ev = healthy(task=None, reservations=[])
    ev["flex"]["workflows"] = {}
    result = trace.analyse(ev)
    assert (result.verdict, result.broken_hop) == ("broken", "flex")
    assert WW in result.hops[3].detail and "workflow" in result.hops[3].remedy


def test_filters_that_exclude_messenger_name_the_filter_and_the_fix():
    ev = healthy(task={"sid": WT, "assignment_status": "pending", "task_queue_sid": None, "attributes": {},
                       "reason": None}, reservations=[])
    ev["flex"]["workflows"][WW]["configuration"] = FACEBOOK_ONLY
    result = trace.analyse(ev)
    assert (result.verdict, result.broken_hop) == ("broken", "flex")
    assert "facebook" in result.hops[3].detail and "routing fix" in result.hops[3].remedy
    assert statuses(result)["agent"] == "not_reached"


def test_a_stale_conversation_captures_the_message():
    ev = healthy(message={**healthy()["message"], "index": 4}, execution=None, steps=[], task=None,
                 open_task=None, reservations=[])
    result = trace.analyse(ev)
    assert (result.verdict, result.broken_hop) == ("broken", "conversation")
    assert "stale" in result.hops[1].detail and "janitor" in result.hops[1].remedy
    assert statuses(result)["studio"] == "not_reached"


def test_a_follow_up_with_an_open_task_is_fine():
    open_task = {**healthy()["task"], "assignment_status": "assigned"}
    result = trace.analyse(healthy(message={**healthy()["message"], "index": 3}, execution=None,
                                   open_task=open_task))
    assert result.broken_hop is None and result.verdict == "reached_agent"


def test_a_conversation_outside_flexs_service():
    result = trace.analyse(healthy(conversation={"sid": CH, "state": "active", "chat_service_sid": "IS" + "a" * 32}))
    assert result.broken_hop == "conversation" and "ConversationServiceSid" in result.hops[1].remedy


def test_a_legacy_flex_flow_holding_the_page():
    result = trace.analyse(healthy(message=None, conversation=None, execution=None, task=None,
                                   legacy_flow={"sid": "FO" + "1" * 32, "contact_identity": f"messenger:{PAGE}"}))
    assert result.broken_hop == "address" and "legacy retire" in result.hops[0].remedy


def test_the_webhook_integration_is_handed_over():
    ev = healthy(flow=None, execution=None, task=None, reservations=[])
    ev["address"]["auto_creation"] = {"enabled": True, "type": "webhook", "webhook_url": "https://hooks.example/x"}
    result = trace.analyse(ev)
    assert (result.verdict, result.broken_hop, result.exit_code) == ("handed_to_webhook", None, 0)
    assert [h.hop for h in result.hops] == ["address", "conversation", "webhook", "flex", "agent"]
    assert "hooks.example" in result.hops[2].detail


def test_alerts_land_on_the_hop_whose_resource_they_name():
    alerts = [{"sid": "NO1", "error_code": "81009", "log_level": "error", "alert_text": "x", "resource_sid": FN},
              {"sid": "NO2", "error_code": "99999", "log_level": "warning", "alert_text": "y", "resource_sid": CH},
              {"sid": "NO3", "error_code": "45212", "log_level": "error", "alert_text": "z", "resource_sid": None}]
    result = trace.analyse(healthy(alerts=alerts))
    by_hop = {h.hop: [a["sid"] for a in h.alerts] for h in result.hops}
    assert by_hop["studio"] == ["NO1"] and by_hop["conversation"] == ["NO2"] and by_hop["address"] == ["NO3"]
    unknown = next(a for a in result.alerts if a["sid"] == "NO2")
    assert unknown["link"].endswith("/99999") and unknown["hop"] == ""


def test_the_catalogue_covers_the_codes_of_this_path():
    for code in (63003, 63007, 63008, 63016, 63039, 81009, 81011, 81014, 81017, 81024, 45205, 45210, 45212,
                 80906, 20429):
        info = describe(code)
        assert info.known and info.hop in ("address", "conversation", "studio", "webhook", "flex", "agent")
        assert info.remedy.endswith(".") and info.link == f"https://www.twilio.com/docs/api/errors/{code}"
    assert not describe("not a code").known


def test_workflow_problems_use_the_shared_expression_evaluator():
    assert trace.workflow_problems(ROUTE_ALL) == []
    assert "facebook" in trace.workflow_problems(FACEBOOK_ONLY)[0]
    with_default = json.dumps({"task_routing": {"filters": [], "default_filter": {"queue": "WQ1"}}})
    assert trace.workflow_problems(with_default) == []
    assert trace.workflow_problems("not json") == ["its configuration has no task_routing"]


@pytest.mark.parametrize("text, seconds", [("0s", 0), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("2w", 1209600)])
def test_durations(text, seconds):
    assert as_duration("since", text).total_seconds() == seconds


def test_a_bad_duration_names_the_parameter():
    with pytest.raises(ValidationError, match="since: must be a duration"):
        as_duration("since", "a week")
