"""Studio flow analysis (Incoming Conversation -> Send to Flex) and the flow cache, against the sandbox."""
import json
import threading

import pytest

from flexops.exceptions import ValidationError
from flexops.sandbox import seed
from flexops.studio import FlowCache, reaches_send_to_flex, send_to_flex_state

WORKFLOW, CHANNEL = "WW" + "1" * 32, "TC" + "2" * 32


def flow(*states, trigger_next="Start"):
    trigger = {"name": "Trigger", "type": "trigger", "properties": {},
               "transitions": [{"event": "incomingMessage", "next": "Flex"},
                               {"event": "incomingConversationMessage", "next": trigger_next},
                               {"event": "incomingCall"}]}
    return {"description": "test", "initial_state": "Trigger", "flags": {}, "states": [trigger, *states]}


def state(name, kind="set-variables", *nexts, event="next"):
    return {"name": name, "type": kind, "properties": {},
            "transitions": [{"event": event, "next": n} for n in nexts]}


FLEX = {"name": "Flex", "type": "send-to-flex", "properties": {"workflow": WORKFLOW, "channel": CHANNEL},
        "transitions": [{"event": "callComplete"}, {"event": "failedToEnqueue"}]}


def test_the_consoles_messaging_flow_reaches_flex():
    ok, path, detail = reaches_send_to_flex(seed.messaging_flow_definition(WORKFLOW, CHANNEL))
    assert ok and path == ["Trigger", "SendMessageToAgent"] and detail == "Trigger → SendMessageToAgent"
    assert send_to_flex_state(seed.messaging_flow_definition(WORKFLOW, CHANNEL))["properties"]["workflow"] == WORKFLOW


def test_a_send_to_flex_only_reachable_from_another_trigger_event_does_not_count():
    definition = flow(state("Start", "send-message", "Goodbye", event="sent"), state("Goodbye", "send-message"), FLEX)
    ok, path, detail = reaches_send_to_flex(definition)
    assert not ok and path == []
    assert "'Flex' exists but is not reachable" in detail


def test_reached_through_a_split():
    split = {"name": "Start", "type": "split-based-on", "properties": {"input": "{{trigger.conversation.Body}}"},
             "transitions": [{"event": "noMatch", "next": "Bye"},
                             {"event": "match", "next": "Menu",
                              "conditions": [{"type": "equal_to", "arguments": ["agent"], "value": "agent"}]}]}
    definition = flow(split, state("Bye", "send-message"), state("Menu", "send-and-wait-for-reply", "Flex",
                                                                   event="incomingMessage"), FLEX)
    ok, path, _ = reaches_send_to_flex(definition)
    assert ok and path == ["Trigger", "Start", "Menu", "Flex"]


def test_loops_terminate_with_and_without_flex():
    looping = flow(state("Start", "set-variables", "Ask"), state("Ask", "send-and-wait-for-reply", "Start", "Trigger"))
    assert reaches_send_to_flex(looping)[0] is False
    exits = flow(state("Start", "set-variables", "Ask"), state("Ask", "split-based-on", "Start", "Flex"), FLEX)
    ok, path, _ = reaches_send_to_flex(exits)
    assert ok and path == ["Trigger", "Start", "Ask", "Flex"]


def test_broken_definitions_explain_themselves():
    assert reaches_send_to_flex(None)[2] == "the flow has no definition (a list of states)"
    assert reaches_send_to_flex({"states": [FLEX]})[2] == "the flow has no Trigger widget"
    unconnected = flow(FLEX, trigger_next=None)
    assert "not connected" in reaches_send_to_flex(unconnected)[2]
    assert reaches_send_to_flex(flow(state("Start", "send-message")))[2].startswith("the flow has no Send to Flex")
    dangling = flow(state("Start", "set-variables", "Nowhere"))
    assert reaches_send_to_flex(dangling)[0] is False
    assert reaches_send_to_flex(json.dumps(flow(state("Start", "x", "Flex"), FLEX)))[0] is True
    assert send_to_flex_state(unconnected) is None


def test_flow_cache_fetches_each_flow_once(sandbox, client):
    cache = FlowCache(client)
    sid = sandbox.demo["messaging_flow_sid"]
    before = client.http_client.request_count
    threads = [threading.Thread(target=cache.analyse, args=(sid,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(3):
        assert cache.get(sid).sid == sid
    assert client.http_client.request_count - before == 1
    analysis = cache.analyse(sid)
    assert analysis.routes_to_flex and analysis.label == f"'Messaging Flow' ({sid})"
    missing = "FW" + "0" * 32
    assert cache.get(missing) is None and cache.get(missing) is None
    assert client.http_client.request_count - before == 2
    assert not cache.analyse(missing).found


def test_published_flex_flows_skips_drafts_and_flows_without_flex(sandbox, client):
    flows = client.studio.v2.flows
    broken = flow(state("Start", "send-message", "Goodbye", event="sent"), state("Goodbye", "send-message"), FLEX)
    flows.create(friendly_name="Unreachable Flex", status="published", definition=broken)
    reachable = flow(state("Start", "set-variables", "Flex"), FLEX)
    second = flows.create(friendly_name="Second Flex flow", status="published", definition=reachable)
    cache = FlowCache(client)
    found = cache.published_flex_flows()
    assert [f.sid for f in found] == [sandbox.demo["messaging_flow_sid"], second.sid]
    flows(second.sid).update(status="draft")
    assert [f.sid for f in FlowCache(client).published_flex_flows()] == [sandbox.demo["messaging_flow_sid"]]


def test_resolve_by_sid_or_unique_name(sandbox, client):
    cache = FlowCache(client)
    sid = sandbox.demo["messaging_flow_sid"]
    assert cache.resolve(sid) == sid
    assert cache.resolve("Messaging Flow") == sid
    assert cache.resolve("  messaging flow ") == sid, "a unique case-insensitive match is accepted"
    for bad in ("No Such Flow", "", "FW" + "0" * 32):
        with pytest.raises(ValidationError) as caught:
            cache.resolve(bad)
        assert caught.value.parameter == "studio_flow_sid"
    client.studio.v2.flows.create(friendly_name="Messaging Flow", status="draft",
                                  definition=seed.messaging_flow_definition(WORKFLOW, CHANNEL))
    with pytest.raises(ValidationError, match="several Studio flows"):
        FlowCache(client).resolve("Messaging Flow", parameter="flow")
