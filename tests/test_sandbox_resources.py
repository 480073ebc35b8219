"""Studio executions/steps/revisions, API 2010 subaccounts and conversation updates, through the real SDK."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from twilio.base.exceptions import TwilioRestException

from flexops.client import connect
from flexops.settings import Secret, Target

PAGE, CUSTOMER = "104738392011234", "7712345678901234"


def twilio_error(call):
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value


def studio_address(client, flow_sid, page=PAGE):
    return client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{page}", auto_creation_enabled=True, auto_creation_type="studio",
        auto_creation_studio_flow_sid=flow_sid)


# --- Studio: revisions --------------------------------------------------------------------------------------

def test_each_definition_is_a_revision_that_stays_fetchable(client, sandbox):
    flows = client.studio.v2.flows
    first = flows(sandbox.demo["messaging_flow_sid"]).fetch().definition
    made = flows.create(friendly_name="Revisions", status="published", definition=first, commit_message="one")
    second = {**first, "description": "second"}
    updated = flows(made.sid).update(status="draft", definition=second, commit_message="two")
    assert (updated.revision, updated.status) == (2, "draft")
    assert flows(made.sid).update(status="draft").revision == 2  # a status change alone is no new revision

    revisions = flows(made.sid).revisions
    listed = revisions.list(page_size=1)
    assert [r.revision for r in listed] == [1, 2] and all(r.definition is None for r in listed)
    one, two = revisions("1").fetch(), revisions("2").fetch()
    assert (one.definition, one.status, one.commit_message) == (first, "published", "one")
    assert (two.definition, two.status, two.commit_message) == (second, "draft", "two")
    assert revisions("LatestPublished").fetch().revision == 1
    assert revisions("LatestRevision").fetch().revision == 2
    assert twilio_error(revisions("3").fetch).status == 404


def test_publishing_an_invalid_definition_is_refused_and_keeps_the_revision(client, sandbox):
    flow = client.studio.v2.flows(sandbox.demo["draft_flow_sid"])
    before = flow.fetch()
    err = twilio_error(lambda: flow.update(status="published", definition={"states": [], "initial_state": "x"}))
    assert err.status == 400 and "trigger" in err.msg
    after = flow.fetch()
    assert (after.revision, after.definition, after.status) == (before.revision, before.definition, "draft")
    assert [r.revision for r in flow.revisions.list()] == [1]


# --- Studio: executions and steps -----------------------------------------------------------------------------

def test_an_inbound_execution_can_be_listed_fetched_and_walked_step_by_step(client, sandbox):
    flow_sid = sandbox.demo["draft_flow_sid"]
    client.studio.v2.flows(flow_sid).update(status="published")
    studio_address(client, flow_sid)
    reply = sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hello")
    flow = client.studio.v2.flows(flow_sid)
    now = datetime.now(timezone.utc)
    [listed] = flow.executions.list(date_created_from=now - timedelta(minutes=5), date_created_to=now + timedelta(1))
    assert listed.sid == reply["studio_execution_sid"]
    assert flow.executions.list(date_created_to=now - timedelta(days=1)) == []
    assert flow.executions.list(date_created_from=now + timedelta(days=1)) == []

    execution = flow.executions(listed.sid).fetch()
    assert (execution.status, execution.contact_channel_address) == ("ended", f"messenger:{CUSTOMER}")
    assert execution.initiated_by == reply["conversation_sid"]
    context = flow.executions(listed.sid).execution_context().fetch().context
    assert context["trigger"]["conversation"]["Body"] == "hello"
    assert context["widgets"]["AskRating"]["outbound"]["Body"] == "How did we do?"

    steps = flow.executions(listed.sid).steps.list(page_size=1)
    assert [(s.name, s.transitioned_from, s.transitioned_to) for s in steps] == [
        ("incomingConversationMessage", "Trigger", "AskRating"), ("sent", "AskRating", "Ended")]
    step = flow.executions(listed.sid).steps(steps[0].sid)
    assert step.fetch().type == "send-message"
    assert step.step_context().fetch().context["outbound"]["Body"] == "How did we do?"
    messages = client.conversations.v1.conversations(reply["conversation_sid"]).messages.list()
    assert [m.body for m in messages] == ["hello", "How did we do?"]


def test_executions_of_another_flow_or_account_are_404s(client, sandbox):
    client.studio.v2.flows(sandbox.demo["draft_flow_sid"]).update(status="published")
    studio_address(client, sandbox.demo["draft_flow_sid"])
    sid = sandbox.control.simulate_inbound(PAGE, CUSTOMER, "hi")["studio_execution_sid"]
    wrong_flow = client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).executions(sid)
    assert twilio_error(wrong_flow.fetch).status == 404
    other = sandbox.client(sandbox.control.create_account("other")["account_sid"])
    assert twilio_error(other.studio.v2.flows(sandbox.demo["draft_flow_sid"]).executions(sid).fetch).status == 404
    url = f"https://studio.twilio.com/v2/Flows/{sandbox.demo['draft_flow_sid']}/Executions?DateCreatedFrom=yesterday"
    reply = client.request("GET", url)
    assert reply.status_code == 400 and "DateCreatedFrom" in json.loads(reply.text)["message"]


# --- API 2010: subaccounts ------------------------------------------------------------------------------------

def login(sandbox, sid, token):
    return connect(Target("sandbox", sid, sid, Secret(token), sandbox_url=sandbox.url))


def test_a_main_account_creates_lists_and_manages_its_subaccounts(client, sandbox):
    main = sandbox.demo["account_sid"]
    sub = client.api.v2010.accounts.create(friendly_name="Team A")
    assert (sub.owner_account_sid, sub.status, sub.friendly_name) == (main, "active", "Team A")
    assert sub.sid != main and sub.auth_token and sub.date_created.tzinfo is not None
    unnamed = client.api.v2010.accounts.create()
    assert unnamed.friendly_name.startswith("SubAccount Created at ")

    listed = client.api.v2010.accounts.list(page_size=1)
    assert [a.sid for a in listed] == [main, sub.sid, unnamed.sid]
    assert {a.sid: a.auth_token for a in listed}[sub.sid] == sub.auth_token  # as Twilio's listing does
    assert [a.sid for a in client.api.v2010.accounts.list(friendly_name="Team A")] == [sub.sid]

    assert client.api.v2010.accounts(sub.sid).update(status="suspended").status == "suspended"
    assert [a.sid for a in client.api.v2010.accounts.list(status="suspended")] == [sub.sid]
    closed = client.api.v2010.accounts(sub.sid).update(status="closed")
    assert closed.status == "closed"
    err = twilio_error(lambda: client.api.v2010.accounts(sub.sid).update(status="active"))
    assert err.status == 400 and "closed" in err.msg
    assert twilio_error(lambda: client.api.v2010.accounts(sub.sid).update(status="asleep")).status == 400


def test_a_subaccount_reaches_only_itself(client, sandbox):
    sub = client.api.v2010.accounts.create(friendly_name="Team B")
    sibling = client.api.v2010.accounts.create(friendly_name="Team C")
    own = login(sandbox, sub.sid, sub.auth_token)
    assert [a.sid for a in own.api.v2010.accounts.list()] == [sub.sid]
    assert own.api.v2010.accounts(sub.sid).fetch().owner_account_sid == sandbox.demo["account_sid"]
    for other in (sandbox.demo["account_sid"], sibling.sid):
        assert twilio_error(own.api.v2010.accounts(other).fetch).status == 401
    assert twilio_error(lambda: own.api.v2010.accounts.create(friendly_name="grandchild")).status == 403
    assert twilio_error(lambda: own.api.v2010.accounts(sub.sid).update(status="closed")).status == 403
    assert own.api.v2010.accounts(sub.sid).update(friendly_name="Renamed").friendly_name == "Renamed"

    # Other products' resources belong to the account whose credentials made the call.
    own.conversations.v1.address_configurations.create(type="messenger", address="messenger:555")
    assert [a.address for a in own.conversations.v1.address_configurations.list()] == ["messenger:555"]
    assert client.conversations.v1.address_configurations.list() == []
    assert own.studio.v2.flows.list() == []


# --- Conversations: update, filters, messages -----------------------------------------------------------------

def inbound_conversation(client, sandbox, customer=CUSTOMER):
    client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{PAGE}", auto_creation_enabled=True) if not \
        client.conversations.v1.address_configurations.list() else None
    return sandbox.control.simulate_inbound(PAGE, customer, "hello")["conversation_sid"]


def test_conversation_states_timers_and_the_closed_rule(client, sandbox):
    sid = inbound_conversation(client, sandbox)
    conversation = client.conversations.v1.conversations(sid)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    timed = conversation.update(timers_inactive="PT5M", timers_closed="PT1H")
    assert timed.state == "active"
    assert before + timedelta(minutes=5) <= datetime.fromisoformat(timed.timers["date_inactive"].replace("Z", "+00:00"))
    assert set(timed.timers) == {"date_inactive", "date_closed"}
    assert twilio_error(lambda: conversation.update(timers_closed="PT5M")).status == 400  # minimum 10 minutes
    assert twilio_error(lambda: conversation.update(timers_inactive="soon")).status == 400
    assert twilio_error(lambda: conversation.update(state="asleep")).status == 400
    assert conversation.update(state="inactive").state == "inactive"
    assert conversation.update(state="active").state == "active"
    closed = conversation.update(state="closed")
    assert (closed.state, closed.timers) == ("closed", {})
    err = twilio_error(lambda: conversation.update(state="active"))
    assert err.status == 400 and "closed" in err.msg
    assert conversation.fetch().state == "closed"


def test_conversation_list_filters_and_service_scoped_variants(client, sandbox):
    service = sandbox.demo["flex_service_sid"]
    first = inbound_conversation(client, sandbox)
    second = inbound_conversation(client, sandbox, customer="7700000000000002")
    client.conversations.v1.conversations(first).update(state="closed")
    listing = client.conversations.v1.conversations
    assert [c.sid for c in listing.list(state="closed")] == [first]
    assert [c.sid for c in listing.list(state="active")] == [second]
    today = datetime.now(timezone.utc).date()
    assert len(listing.list(start_date=str(today), end_date=str(today))) == 2
    assert listing.list(start_date=str(today + timedelta(days=1))) == []
    assert listing.list(end_date=str(today - timedelta(days=1))) == []
    reply = client.request("GET", "https://conversations.twilio.com/v1/Conversations?StartDate=someday")
    assert reply.status_code == 400 and "StartDate" in json.loads(reply.text)["message"]

    scoped = client.conversations.v1.services(service).conversations
    assert [c.sid for c in scoped.list(state="active")] == [second]
    fetched = scoped(second).fetch()
    assert fetched.url == f"https://conversations.twilio.com/v1/Services/{service}/Conversations/{second}"
    assert scoped(second).update(state="inactive").state == "inactive"
    [message] = scoped(second).messages.list()
    assert message.body == "hello" and f"/Services/{service}/" in message.url
    other = client.conversations.v1.services.list()[1].sid
    elsewhere = client.conversations.v1.services(other).conversations(second)
    assert other != service and twilio_error(elsewhere.fetch).status == 404


def test_messages_list_in_both_orders_across_pages(client, sandbox):
    sid = inbound_conversation(client, sandbox)
    for n in range(4):
        sandbox.control.simulate_inbound(PAGE, CUSTOMER, f"more {n}")
    messages = client.conversations.v1.conversations(sid).messages
    assert [m.index for m in messages.list(page_size=2)] == [0, 1, 2, 3, 4]
    assert [m.index for m in messages.list(order="desc", page_size=2)] == [4, 3, 2, 1, 0]
