"""The seeds, built through the models: `demo` (one Flex account, its services, two Studio flows and some connected
Facebook Pages) and `fleet` (an ISV's main account with N subaccounts, each its own Flex account with Messenger
addresses; one of them broken in a way verification catches)."""
from . import inbound
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


def provision_flex(store, acct):
    """Flex on an existing account: its Conversations services (Flex's the default), Flex itself (TaskRouter
    included), the Messaging Flow (published, reaching Send to Flex) and a draft flow without Send to Flex."""
    conversations = ConversationsBackend(store, acct)
    flex_service = conversations.create_service("Flex Conversation Service")["sid"]
    chat_service = conversations.create_service("Flex Chat Service")["sid"]
    conversations.configure(default_chat_service_sid=flex_service)
    flex = FlexBackend(store, acct).setup_flex(flex_service, chat_service)
    workflow, channel = flex["workflow_sid"], flex["chat_channel_sid"]
    flow = add_flow(store, acct, MESSAGING_FLOW, messaging_flow_definition(workflow, channel), "published")
    draft = add_flow(store, acct, DRAFT_FLOW, survey_flow_definition(), "draft")
    return {"messaging_flow_sid": flow["sid"], "draft_flow_sid": draft["sid"],
            "flex_service_sid": flex_service, "chat_service_sid": chat_service,
            "workspace_sid": flex["workspace_sid"], "workflow_sid": workflow, "queue_sid": flex["queue_sid"],
            "chat_channel_sid": channel, "worker_sid": flex.get("worker_sid")}


def seed_demo(store, pages=DEMO_PAGES, **account):
    """Seed a Flex-ready account; returns its credentials plus the SIDs a demo needs."""
    creds = create_account(store, **account)
    acct = creds["account_sid"]
    made = provision_flex(store, acct)
    with store.tx() as db:
        for page_id, name in pages:
            store.add_page(db, acct, page_id, name)
    return {**creds, **made, "pages": [{"page_id": p, "name": n} for p, n in pages]}


FLEET_BRANDS = ("Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Litware", "Adatum", "Proseware")
FLEET_SENDER = "7391028374650192"  # a page-scoped Messenger user ID
MAX_SUBACCOUNTS = 1000  # Twilio's default limit of subaccounts per main account


def _count(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return value


def seed_fleet(store, subaccounts=3, addresses=3, first_messages=True, friendly_name="flexops fleet (ISV main)"):
    """An ISV's main account (no Flex of its own) with `subaccounts` subaccounts, each a Flex account with its
    own flows and `addresses` Messenger addresses on its own Pages; a customer's first message reached each
    healthy address (`first_messages`). The second subaccount (the only one when there is one) is broken on
    purpose: its first address points at the draft flow. Returns the main account's credentials and, per
    subaccount, its SID, name, Pages and flows (its auth token is the API 2010 listing's, as on Twilio)."""
    _count("subaccounts", subaccounts, 1, MAX_SUBACCOUNTS)
    _count("addresses", addresses, 1, 1000)
    if not isinstance(first_messages, bool):
        raise ValueError(f"first_messages must be true or false, not {first_messages!r}")
    main = create_account(store, friendly_name=friendly_name)
    parent = AccountsBackend(store, main["account_sid"])
    broken_index = 1 if subaccounts > 1 else 0
    made = []
    for i in range(subaccounts):
        name = f"{FLEET_BRANDS[i % len(FLEET_BRANDS)]} {i // len(FLEET_BRANDS) + 1} (customer {i + 1:03d})"
        sid = parent.create_subaccount(name)["sid"]
        flex = provision_flex(store, sid)
        pages = [(f"7{i:05d}{j:09d}", f"{name} page {j + 1}") for j in range(addresses)]
        conversations = ConversationsBackend(store, sid)
        with store.tx() as db:
            for page_id, page_name in pages:
                store.add_page(db, sid, page_id, page_name)
        for j, (page_id, page_name) in enumerate(pages):
            broken = i == broken_index and j == 0
            flow = flex["draft_flow_sid"] if broken else flex["messaging_flow_sid"]
            conversations.create_address("messenger", f"messenger:{page_id}", friendly_name=page_name,
                                         auto_creation={"enabled": True, "type": "studio",
                                                        "studio_flow_sid": flow, "studio_retry_count": 3})
            if first_messages and not broken:
                inbound.deliver(store, sid, page_id, FLEET_SENDER, "Hi! Where is my order?")
        made.append({"account_sid": sid, "friendly_name": name, "broken": i == broken_index,
                     "pages": [{"page_id": p, "name": n} for p, n in pages],
                     "messaging_flow_sid": flex["messaging_flow_sid"], "draft_flow_sid": flex["draft_flow_sid"]})
    return {**main, "subaccounts": made, "broken_account_sid": made[broken_index]["account_sid"]}


def page_list(store, account_sid):
    return store.pages(account_sid)
