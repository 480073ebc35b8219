"""The `demo` seed: one Flex account, its services, two Studio flows and some connected Facebook Pages."""
from .api.models import STATUSES as ACCOUNT_STATUSES, AccountsBackend  # noqa: F401  (API 2010 statuses)
from .conversations.models import ConversationsBackend
from .flex.models import FlexBackend
from .studio.models import StudioBackend

DEMO_PAGES = [("104738392011234", "Acme Outdoor Gear"), ("204738392011235", "Acme Support"),
              ("304738392011236", "Acme Deals (FR)"), ("404738392011237", "Acme Careers")]

MESSAGING_FLOW = "Messaging Flow"
DRAFT_FLOW = "Draft Survey Flow"


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
                            "attributes": '{"name": "{{trigger.conversation.Author}}", '
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
    """A bare main account with an API key; returns its credentials."""
    if status not in ACCOUNT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(ACCOUNT_STATUSES)}")
    return AccountsBackend(store, None).create_account(friendly_name, status=status, account_sid=account_sid,
                                                       auth_token=auth_token)


def add_flow(store, account_sid, name, definition, status):
    return StudioBackend(store, account_sid).create_flow(name, definition, status, commit_message="seed")


def seed_demo(store, pages=DEMO_PAGES, **account):
    """Seed a Flex-ready account; returns its credentials plus the SIDs a demo needs."""
    creds = create_account(store, **account)
    acct = creds["account_sid"]
    conversations = ConversationsBackend(store, acct)
    flex_service = conversations.create_service("Flex Conversation Service")["sid"]
    chat_service = conversations.create_service("Flex Chat Service")["sid"]
    conversations.configure(default_chat_service_sid=flex_service)
    flex = FlexBackend(store, acct).setup_flex(flex_service, chat_service)
    workflow, channel = flex["workflow_sid"], flex["chat_channel_sid"]
    with store.tx() as db:
        for page_id, name in pages:
            store.add_page(db, acct, page_id, name)
    flow = add_flow(store, acct, MESSAGING_FLOW, messaging_flow_definition(workflow, channel), "published")
    draft = add_flow(store, acct, DRAFT_FLOW, survey_flow_definition(), "draft")
    return {**creds, "messaging_flow_sid": flow["sid"], "draft_flow_sid": draft["sid"],
            "flex_service_sid": flex_service, "chat_service_sid": chat_service,
            "workspace_sid": flex["workspace_sid"], "workflow_sid": workflow, "queue_sid": flex["queue_sid"],
            "chat_channel_sid": channel, "worker_sid": flex.get("worker_sid"),
            "pages": [{"page_id": p, "name": n} for p, n in pages]}


def page_list(store, account_sid):
    return store.pages(account_sid)
