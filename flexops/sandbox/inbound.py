"""Simulate a customer writing to a Facebook Page: the whole path Twilio takes with an inbound Messenger message,
deterministically, through the products' models (nothing here builds a resource's JSON or writes SQL).

1. Address: without an address configuration for `messenger:<page>` or with auto-creation off, the message is
   dropped (the answer says why).
2. Conversation: the customer's open conversation with the page captures the message (an inactive one becomes
   active again); otherwise a new conversation in the address's service (or the default one) with a participant
   bound to the customer (`address`) and the page (`proxy_address`).
3. Studio: a new conversation starts an execution of the address's published flow from the trigger's
   `incomingConversationMessage` transition; a captured message resumes an execution waiting for a reply.
4. Send to Flex: a Flex Interaction bound to the conversation and a TaskRouter task in Flex's workspace, through
   the widget's workflow and task channel (Flex's models); a failure takes the widget's `failedToEnqueue`.
5. Webhook integration: the address's webhook receives the conversation's events its filters select.
A legacy Flex Flow holding the page captures the message before any of this (docs/sandbox.md: the choice made).
Every failure records a Monitor alert. The answer names the SIDs touched at each hop (`hops`), plus the flat keys
callers have always read.
"""
from . import webhooks
from .conversations import events
from .conversations.models import ConversationsBackend
from .core import now
from .errors import TwilioError
from .flex.models import FlexBackend
from .monitor.models import MonitorBackend
from .studio.engine import Run, parse_attributes
from .studio.models import StudioBackend

STUDIO_WEBHOOK = "https://webhooks.twilio.com/v1/Accounts/{account}/Flows/{flow}"
FLOW_UNAVAILABLE = 20404  # Twilio documents no code for an address whose flow is gone or unpublished: docs/sandbox.md
SEND_TO_FLEX_FAILED = 81009  # Studio: "the request to the TaskRouter API failed / invalid values were passed"
WEBHOOK_FAILED = 11200  # Twilio's "HTTP retrieval failure" of a webhook
LEGACY_COLLISION = 45212  # Flex: "collided with existing Flex Flows"

PREFIX = "messenger:"


class Delivery:
    """One inbound message on its way; `hops` is what the answer reports."""

    def __init__(self, store, account_sid, page, sender, text):
        self.store, self.account_sid = store, account_sid
        self.page, self.sender, self.text = page, sender, text
        self.conversations = ConversationsBackend(store, account_sid)
        self.studio = StudioBackend(store, account_sid)
        self.monitor = MonitorBackend(store, account_sid)
        self.flex = FlexBackend(store, account_sid)
        self.hops, self.alerts = [], []
        self.conversation = self.participant = self.message = None
        self.db = None
        self.handoff = {}

    def alert(self, code, text, resource_sid=None, service_sid=None, request_url=None, log_level="error"):
        alert = self.monitor.record_alert(code, text, resource_sid=resource_sid, service_sid=service_sid,
                                          request_url=request_url, request_method="POST" if request_url else None,
                                          log_level=log_level, db=self.db)
        self.alerts.append(alert["sid"])
        return alert

    # --- hooks the Studio engine calls for widgets with effects outside Studio ----------------------------

    def send_message(self, body, execution):
        """Studio's Send Message widgets post into the conversation (authored by the flow, no participant)."""
        return self.conversations.add_message(self.db, self.conversation["sid"], None, "system", body)

    def send_to_flex(self, widget, attributes, execution):
        """Send to Flex for a conversation: a Flex Interaction (its channel bound to the conversation) whose routing
        creates the task. None: the conversation is Flex's now and the execution ends; else `failedToEnqueue`."""
        properties = widget.get("properties", {})
        config = self.flex.configuration() or {}
        channel = properties.get("channel") or "default"
        routing = {"properties": {
            "workspace_sid": config.get("taskrouter_workspace_sid"), "workflow_sid": properties.get("workflow"),
            ("task_channel_sid" if str(channel).startswith("TC") else "task_channel_unique_name"): channel,
            "attributes": {**parse_attributes(attributes), **self.task_attributes()},
            "priority": properties.get("priority"), "timeout": properties.get("timeout")}}
        media = {"type": "messenger", "initiated_by": "customer",
                 "properties": {"media_channel_sid": self.conversation["sid"]}}
        try:
            interaction = self.flex.create_interaction(media, routing, db=self.db)
        except TwilioError as err:
            url = STUDIO_WEBHOOK.format(account=self.account_sid, flow=execution["flow_sid"])
            self.alert(SEND_TO_FLEX_FAILED, f"Send to Flex widget {widget['name']!r} failed: {err.message}",
                       resource_sid=execution["flow_sid"], request_url=url)
            return "failedToEnqueue", {"error": {"code": err.code, "message": err.message}}
        task_sid = (interaction.get("routing") or {}).get("properties", {}).get("sid")
        self.handoff = {"interaction_sid": interaction["sid"], "task_sid": task_sid,
                        "interaction_channel_sid": (interaction.get("channel") or {}).get("sid")}
        return None, {"sid": task_sid, "interaction_sid": interaction["sid"]}

    def task_attributes(self):
        """What Flex itself sets on a Conversations task (its Interaction adds its own SIDs)."""
        return {"channelType": "messenger", "conversationSid": self.conversation["sid"], "from": self.sender,
                "customerAddress": self.sender, "customerName": self.sender, "direction": "inbound",
                "initiatedBy": "customer"}

    # --- the hops ------------------------------------------------------------------------------------------

    def legacy(self):
        """A legacy Flex Flow (channel type facebook) holding the page captures its messages first."""
        flow = self.flex.legacy_flow_for(self.page)
        if flow is None:
            return None
        config = self.conversations.find_address(self.page)
        if config is not None:
            with self.store.tx() as db:
                self.db = db
                self.alert(LEGACY_COLLISION, f"Address configuration {config['sid']} and legacy Flex Flow "
                           f"{flow['sid']} both hold {self.page}: the Flex Flow receives the message",
                           resource_sid=flow["sid"], log_level="warning")
            self.db = None
        self.hops.append({"hop": "legacy flex flow", "sid": flow["sid"]})
        return {"delivered": False, "flex_flow_sid": flow["sid"], "address_sid": config and config["sid"],
                "reason": f"legacy Flex Flow {flow['sid']} holds {self.page}: it receives the message, "
                          "not Conversations", "alerts": self.alerts, "hops": self.hops}

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
        return {"conversation": events.message_added(self.conversation, self.message)}

    def call_webhook(self, auto, created):
        """The webhook integration: the events the address's filters select, signed as Twilio signs them."""
        happened = [events.message_added(self.conversation, self.message)]
        if created:
            happened[:0] = [events.conversation_added(self.conversation, self.participant),
                            events.participant_added(self.conversation, self.participant)]
        sent = []
        for event, params in events.selected(happened, auto.get("webhook_filters")):
            delivery = webhooks.record_delivery(self.store, self.account_sid, auto["webhook_url"],
                                                auto.get("webhook_method", "POST"), event, params)
            sent.append(delivery["sid"])
            attempted = delivery["sent"] or "loopback" not in (delivery["error"] or "")
            if attempted and not 200 <= (delivery["status"] or 0) < 300:
                with self.store.tx() as db:
                    self.db = db
                    self.alert(WEBHOOK_FAILED, f"Webhook {event} to {auto['webhook_url']} failed: "
                               f"{delivery['error'] or 'HTTP ' + str(delivery['status'])}",
                               resource_sid=self.conversation["sid"], service_sid=self.conversation["chat_service_sid"],
                               request_url=auto["webhook_url"], log_level="warning")
                self.db = None
        self.hops.append({"hop": "webhook", "url": auto["webhook_url"], "delivery_sids": sent})
        return sent

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
            why = "does not exist" if flow is None else "is not published"
            self.alert(FLOW_UNAVAILABLE, f"Studio flow {auto.get('studio_flow_sid')} of address {self.page} {why}: "
                       "no execution started", resource_sid=auto.get("studio_flow_sid"),
                       service_sid=self.conversation["chat_service_sid"])
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
        captured = self.legacy()
        if captured:
            return captured
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
        if self.handoff:
            self.hops.append({"hop": "flex", "sid": self.handoff["interaction_sid"], **self.handoff})
        deliveries = self.call_webhook(auto, created) if auto.get("type") == "webhook" else []
        return {"delivered": True, "address_sid": config["sid"], "integration": auto.get("type"),
                "conversation_sid": self.conversation["sid"], "conversation_created": created,
                "participant_sid": self.participant["sid"], "message_sid": self.message["sid"],
                "studio_execution_sid": execution["sid"] if execution and created else None,
                "studio_step_sids": [s["sid"] for s in steps],
                "studio_execution_status": execution["status"] if execution else None,
                "interaction_sid": self.handoff.get("interaction_sid"), "task_sid": self.handoff.get("task_sid"),
                "webhook_url": auto.get("webhook_url") if auto.get("type") == "webhook" else None,
                "webhook_delivery_sids": deliveries, "alerts": self.alerts, "hops": self.hops}


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
