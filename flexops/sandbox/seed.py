"""The `demo` seed: one Flex account, its services, two Studio flows and some connected Facebook Pages."""
import secrets

from . import studio
from .context import new_sid, now

DEMO_PAGES = [("104738392011234", "Acme Outdoor Gear"), ("204738392011235", "Acme Support"),
              ("304738392011236", "Acme Deals (FR)"), ("404738392011237", "Acme Careers")]

MESSAGING_FLOW = "Messaging Flow"
DRAFT_FLOW = "Draft Survey Flow"
ACCOUNT_STATUSES = ("active", "suspended", "closed")  # API 2010 account statuses


def messaging_flow_definition(workflow_sid, channel_sid):
    """What the Console's default messaging flow looks like: Trigger -> Send to Flex."""
    return {
        "description": "Route incoming conversations to Flex",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": [
            {"name": "Trigger", "type": "trigger", "properties": {"offset": {"x": 0, "y": 0}},
             "transitions": [{"event": "incomingMessage"}, {"event": "incomingCall"},
                             {"event": "incomingConversationMessage", "next": "SendMessageToAgent"},
                             {"event": "incomingRequest"}, {"event": "incomingParent"}]},
            {"name": "SendMessageToAgent", "type": "send-to-flex",
             "properties": {"offset": {"x": 0, "y": 200}, "workflow": workflow_sid, "channel": channel_sid,
                            "attributes": '{"name": "{{trigger.conversation.ChannelAttributes.from}}", '
                                          '"channelType": "{{trigger.conversation.ChannelAttributes.channel_type}}", '
                                          '"channelSid": "{{trigger.conversation.ConversationSid}}"}'},
             "transitions": [{"event": "callComplete"}, {"event": "failedToEnqueue"}, {"event": "callFailure"}]},
        ],
    }


def survey_flow_definition():
    return {
        "description": "A draft without Send to Flex",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": [
            {"name": "Trigger", "type": "trigger", "properties": {},
             "transitions": [{"event": "incomingConversationMessage", "next": "AskRating"}]},
            {"name": "AskRating", "type": "send-message", "properties": {"body": "How did we do?"},
             "transitions": [{"event": "sent"}, {"event": "failed"}]},
        ],
    }


def create_account(store, friendly_name="flexops demo", account_sid=None, auth_token=None, status="active"):
    """A bare account with an API key; returns its credentials."""
    if status not in ACCOUNT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(ACCOUNT_STATUSES)}")
    sid = account_sid or new_sid("AC")
    token = auth_token or secrets.token_hex(16)
    key_sid, key_secret = new_sid("SK"), secrets.token_urlsafe(24)
    with store.tx() as db:
        db.execute("INSERT INTO accounts (sid, auth_token, status, friendly_name, date_created) VALUES (?,?,?,?,?)",
                   (sid, token, status, friendly_name, now()))
        db.execute("INSERT INTO api_keys (sid, account_sid, secret, friendly_name) VALUES (?,?,?,?)",
                   (key_sid, sid, key_secret, "flexops"))
    return {"account_sid": sid, "auth_token": token, "api_key": key_sid, "api_secret": key_secret}


def add_flow(store, account_sid, name, definition, status):
    flow = studio.new_flow(account_sid, name, definition, status, commit_message="seed")
    with store.tx() as db:
        store.insert(db, account_sid, studio.KIND, flow["sid"], flow)
    return flow


def seed_demo(store, pages=DEMO_PAGES, **account):
    """Seed a Flex-ready account; returns its credentials plus the SIDs a demo needs."""
    creds = create_account(store, **account)
    acct = creds["account_sid"]
    stamp = now()
    chat_service, flex_service = new_sid("IS"), new_sid("IS")
    workspace, workflow, channel = new_sid("WS"), new_sid("WW"), new_sid("TC")
    with store.tx() as db:
        for sid, name in ((flex_service, "Flex Conversation Service"), (chat_service, "Flex Chat Service")):
            store.insert(db, acct, "conversation_service", sid, {
                "account_sid": acct, "sid": sid, "friendly_name": name, "date_created": stamp,
                "date_updated": stamp, "url": f"https://conversations.twilio.com/v1/Services/{sid}",
                "links": {"conversations": f"https://conversations.twilio.com/v1/Services/{sid}/Conversations"}})
        store.insert(db, acct, "conversations_configuration", "configuration", {
            "account_sid": acct, "default_chat_service_sid": flex_service, "default_messaging_service_sid": None,
            "default_inactive_timer": None, "default_closed_timer": None,
            "url": "https://conversations.twilio.com/v1/Configuration",
            "links": {"service": "https://conversations.twilio.com/v1/Configuration/Services",
                      "webhooks": "https://conversations.twilio.com/v1/Configuration/Webhooks"}})
        store.insert(db, acct, "flex_configuration", "configuration", {
            "account_sid": acct, "date_created": stamp, "date_updated": stamp, "status": "ok",
            "taskrouter_workspace_sid": workspace, "taskrouter_target_workflow_sid": workflow,
            "taskrouter_target_taskqueue_sid": new_sid("WQ"), "flex_service_instance_sid": flex_service,
            "chat_service_instance_sid": chat_service, "flex_instance_sid": new_sid("GO"),
            "messaging_service_instance_sid": None, "runtime_domain": "flexops-demo-1234.twil.io",
            "service_version": "2.0", "ui_version": "2.9.0", "url": "https://flex-api.twilio.com/v1/Configuration"})
        for page_id, name in pages:
            db.execute("INSERT INTO pages (account_sid, page_id, name) VALUES (?, ?, ?)", (acct, page_id, name))
    flow = add_flow(store, acct, MESSAGING_FLOW, messaging_flow_definition(workflow, channel), "published")
    draft = add_flow(store, acct, DRAFT_FLOW, survey_flow_definition(), "draft")
    return {**creds, "messaging_flow_sid": flow["sid"], "draft_flow_sid": draft["sid"],
            "flex_service_sid": flex_service, "pages": [{"page_id": p, "name": n} for p, n in pages]}


def page_list(store, account_sid):
    return [dict(r) for r in store.read("SELECT page_id, name FROM pages WHERE account_sid = ? ORDER BY page_id",
                                        (account_sid,))]


