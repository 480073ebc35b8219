"""Simulate a customer writing to a Facebook Page: the whole path Twilio takes with an inbound Messenger message,
deterministically, through the products' models (nothing here builds a resource's JSON or writes SQL).

1. Address: without an address configuration for `messenger:<page>` or with auto-creation off, the message is
   dropped (the answer says why).
2. Conversation: the customer's open conversation with the page captures the message (an inactive one becomes
   active again); otherwise a new conversation in the address's service (or the default one) with a participant
   bound to the customer (`address`) and the page (`proxy_address`).
3. Studio: a new conversation starts an execution of the address's published flow from the trigger's
   `incomingConversationMessage` transition; a captured message resumes an execution waiting for a reply.
The answer names the SIDs touched at each hop (`hops`), plus the flat keys callers have always read.
"""
from .conversations.models import ConversationsBackend
from .core import now
from .studio.engine import Run
from .studio.models import StudioBackend

PREFIX = "messenger:"


class Delivery:
    """One inbound message on its way; `hops` is what the answer reports."""

    def __init__(self, store, account_sid, page, sender, text):
        self.store, self.account_sid = store, account_sid
        self.page, self.sender, self.text = page, sender, text
        self.conversations = ConversationsBackend(store, account_sid)
        self.studio = StudioBackend(store, account_sid)
        self.hops, self.alerts = [], []
        self.conversation = self.participant = self.message = None
        self.db = None

    # --- hooks the Studio engine calls for widgets with effects outside Studio ----------------------------

    def send_message(self, body, execution):
        """Studio's Send Message widgets post into the conversation (authored by the flow, no participant)."""
        return self.conversations.add_message(self.db, self.conversation["sid"], None, "system", body)

    def send_to_flex(self, widget, attributes, execution):
        return None, {"simulated": True}

    # --- the hops ------------------------------------------------------------------------------------------

    def address(self):
        config = self.conversations.find_address(self.page)
        if config is None:
            return None, {"delivered": False, "reason": f"no address configuration for {self.page}: "
                                                        "the message is dropped"}
        if not (config.get("auto_creation") or {}).get("enabled"):
            return None, {"delivered": False, "address_sid": config["sid"],
                          "reason": f"auto-creation is disabled for {self.page}: the message is dropped"}
        self.hops.append({"hop": "address", "sid": config["sid"], "integration": config["auto_creation"]["type"]})
        return config, None

    def land(self, auto, stamp):
        """Hop 2: the open conversation of the address pair captures the message, or a new one starts."""
        conversation, participant = self.conversations.open_conversation_for(self.sender, self.page)
        created = conversation is None
        if created:
            service = auto.get("conversation_service_sid") or self.conversations.default_service_sid()
            conversation = self.conversations.create_conversation(self.db, service, stamp)
            participant = self.conversations.add_participant(self.db, conversation["sid"], self.sender, self.page,
                                                             "messenger", stamp)
        else:
            self.conversations.reactivate(self.db, conversation)
        self.conversation, self.participant = conversation, participant
        self.message = self.conversations.add_message(self.db, conversation["sid"], participant["sid"], self.sender,
                                                      self.text, stamp)
        self.hops.append({"hop": "conversation", "sid": conversation["sid"], "created": created,
                          "participant_sid": participant["sid"], "message_sid": self.message["sid"]})
        return created

    def trigger_context(self):
        """`trigger.conversation`: what Conversations tells Studio about the message (onMessageAdded)."""
        message, conversation = self.message, self.conversation
        return {"conversation": {
            "EventType": "onMessageAdded", "AccountSid": self.account_sid,
            "ChatServiceSid": conversation["chat_service_sid"], "ConversationSid": conversation["sid"],
            "MessagingServiceSid": conversation["messaging_service_sid"], "MessageSid": message["sid"],
            "ParticipantSid": self.participant["sid"], "Author": message["author"], "Body": message["body"],
            "Index": message["index"], "Attributes": message["attributes"], "DateCreated": message["date_created"],
            "Source": "MESSENGER", "RetryCount": 0}}

    def run_studio(self, auto, created):
        """Hop 3: a new conversation starts the published flow; a captured message may resume a waiting one."""
        if not created:
            execution, waiting_at = self.studio.waiting(self.conversation["sid"])
            if execution is None:
                return None, []
            flow = self.studio.flow(execution["flow_sid"])
            run = Run(self.studio, self.db, flow["definition"], execution, self)
            run.resume(waiting_at, {"Body": self.text, "MessageSid": self.message["sid"]})
            self.studio.save_execution(self.db, execution)
            return execution, run.steps
        if auto.get("type") != "studio":
            return None, []
        flow = self.store.get(self.account_sid, "studio_flow", sid=auto.get("studio_flow_sid"))
        if flow is None or flow.get("status") != "published":
            return None, []
        context = {"trigger": self.trigger_context(), "widgets": {},
                   "flow": {"flow_sid": flow["sid"], "channel": {"address": self.sender}, "variables": {}}}
        execution = self.studio.add_execution(self.db, flow, self.sender, self.conversation["sid"], context)
        context["flow"]["sid"] = execution["sid"]
        run = Run(self.studio, self.db, flow["definition"], execution, self)
        run.follow(flow["definition"]["initial_state"], "incomingConversationMessage")
        self.studio.save_execution(self.db, execution)
        return execution, run.steps

    def deliver(self):
        config, dropped = self.address()
        if dropped:
            return dropped
        auto, stamp = config["auto_creation"], now()
        with self.store.tx() as db:
            self.db = db
            created = self.land(auto, stamp)
            execution, steps = self.run_studio(auto, created)
        if execution is not None:
            self.hops.append({"hop": "studio", "sid": execution["sid"], "status": execution["status"],
                              "step_sids": [s["sid"] for s in steps]})
        return {"delivered": True, "address_sid": config["sid"], "integration": auto.get("type"),
                "conversation_sid": self.conversation["sid"], "conversation_created": created,
                "participant_sid": self.participant["sid"], "message_sid": self.message["sid"],
                "studio_execution_sid": execution["sid"] if execution and created else None,
                "studio_step_sids": [s["sid"] for s in steps],
                "webhook_url": auto.get("webhook_url") if auto.get("type") == "webhook" else None,
                "alerts": self.alerts, "hops": self.hops}


def addresses_of(page_id, sender):
    page_id, sender_id = str(page_id).removeprefix(PREFIX), str(sender).removeprefix(PREFIX)
    if not page_id.isdigit() or not sender_id.isdigit():
        raise ValueError("page_id and sender must be digits (a Facebook Page ID and a page-scoped user ID)")
    return PREFIX + page_id, PREFIX + sender_id


def deliver(store, account_sid, page_id, sender, text):
    """Apply one inbound message to the account's state; returns what happened at each hop."""
    page, who = addresses_of(page_id, sender)
    return Delivery(store, account_sid, page, who, text).deliver()


def simulate(app_or_store, body, args=None):
    """Control plane: POST /__sandbox/messenger/inbound {page_id, sender, text, account_sid?}."""
    store = getattr(app_or_store, "store", app_or_store)
    for name in ("page_id", "sender"):
        if body.get(name) in (None, ""):
            raise ValueError(f"{name} is required")
    account = body.get("account_sid") or store.setting("default_account")
    if not account:
        raise LookupError("the sandbox has no account yet: POST /__sandbox/seed first")
    if store.account(account) is None:
        raise LookupError(f"unknown account {account}")
    return deliver(store, account, body["page_id"], body["sender"], str(body.get("text", "")))


ACTIONS = {("POST", "/messenger/inbound"): simulate}
