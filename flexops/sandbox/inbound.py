"""Simulate a customer writing to a Facebook Page: what Twilio does with an inbound Messenger message.

If the account has an address configuration for `messenger:<page_id>` with auto-creation enabled, the message
lands in a conversation (reused while the customer's conversation with that page is active, else created in the
address's Conversations service or the account's default one) with a participant bound to the customer
(`address`) and the page (`proxy_address`), and a message. A Studio address with a published flow also gets a
Studio execution recorded. Otherwise the message is dropped, and the answer says why.
Resources follow Twilio's OpenAPI schemas (conversations.v1.conversation, ...conversation_participant,
...conversation_message, studio.v2.flow.execution).
"""
import json

from .context import new_sid, now

PREFIX = "messenger:"
BASE = "https://conversations.twilio.com/v1/Conversations"


def _active_conversation(store, account_sid, sender, page):
    """The customer's active conversation with this page and their participant in it, or (None, None)."""
    rows = store.read("SELECT parent, data FROM resources WHERE account_sid = ? AND kind = 'participant' AND "
                      "json_extract(data, '$.messaging_binding.address') = ? AND "
                      "json_extract(data, '$.messaging_binding.proxy_address') = ? ORDER BY seq DESC",
                      (account_sid, sender, page))
    for row in rows:
        conversation = store.get(account_sid, "conversation", sid=row["parent"])
        if conversation and conversation.get("state") == "active":
            return conversation, json.loads(row["data"])
    return None, None


def conversation_json(account_sid, service_sid, stamp):
    sid = new_sid("CH")
    url = f"{BASE}/{sid}"
    return {"account_sid": account_sid, "chat_service_sid": service_sid, "messaging_service_sid": None, "sid": sid,
            "friendly_name": None, "unique_name": None, "attributes": "{}", "state": "active",
            "date_created": stamp, "date_updated": stamp, "timers": {}, "url": url,
            "links": {"participants": f"{url}/Participants", "messages": f"{url}/Messages",
                      "webhooks": f"{url}/Webhooks"},
            "bindings": None}


def participant_json(account_sid, conversation_sid, sender, page, stamp):
    sid = new_sid("MB")
    return {"account_sid": account_sid, "conversation_sid": conversation_sid, "sid": sid, "identity": None,
            "attributes": "{}", "messaging_binding": {"type": "messenger", "address": sender, "proxy_address": page},
            "role_sid": None, "date_created": stamp, "date_updated": stamp,
            "url": f"{BASE}/{conversation_sid}/Participants/{sid}", "last_read_message_index": None,
            "last_read_timestamp": None}


def message_json(account_sid, conversation_sid, participant_sid, sender, text, index, stamp):
    sid = new_sid("IM")
    url = f"{BASE}/{conversation_sid}/Messages/{sid}"
    return {"account_sid": account_sid, "conversation_sid": conversation_sid, "sid": sid, "index": index,
            "author": sender, "body": text, "media": None, "attributes": "{}", "participant_sid": participant_sid,
            "date_created": stamp, "date_updated": None, "url": url, "delivery": None,
            "links": {"delivery_receipts": f"{url}/Receipts", "channel_metadata": f"{url}/ChannelMetadata"},
            "content_sid": None}


def deliver(store, account_sid, page_id, sender, text):
    """Apply one inbound message to the account's state; returns what happened."""
    page_id, sender_id = str(page_id).removeprefix(PREFIX), str(sender).removeprefix(PREFIX)
    if not page_id.isdigit() or not sender_id.isdigit():
        raise ValueError("page_id and sender must be digits (a Facebook Page ID and a page-scoped user ID)")
    page, who = PREFIX + page_id, PREFIX + sender_id
    config = store.get(account_sid, "address_configuration", key=page)
    if config is None:
        return {"delivered": False, "reason": f"no address configuration for {page}: the message is dropped"}
    auto = config.get("auto_creation") or {}
    if not auto.get("enabled"):
        return {"delivered": False, "address_sid": config["sid"],
                "reason": f"auto-creation is disabled for {page}: the message is dropped"}
    stamp = now()
    conversation, participant = _active_conversation(store, account_sid, who, page)
    created = conversation is None
    with store.tx() as db:
        if created:
            service = auto.get("conversation_service_sid") or _default_service(store, account_sid)
            conversation = conversation_json(account_sid, service, stamp)
            store.insert(db, account_sid, "conversation", conversation["sid"], conversation)
            participant = participant_json(account_sid, conversation["sid"], who, page, stamp)
            store.insert(db, account_sid, "participant", participant["sid"], participant, parent=conversation["sid"])
        index = db.execute("SELECT COUNT(*) FROM resources WHERE account_sid = ? AND kind = 'message' AND parent = ?",
                           (account_sid, conversation["sid"])).fetchone()[0]
        message = message_json(account_sid, conversation["sid"], participant["sid"], who, text, index, stamp)
        store.insert(db, account_sid, "message", message["sid"], message, parent=conversation["sid"])
        execution = _studio_execution(store, db, account_sid, auto, conversation, who, stamp) if created else None
    return {"delivered": True, "address_sid": config["sid"], "integration": auto.get("type"),
            "conversation_sid": conversation["sid"], "conversation_created": created,
            "participant_sid": participant["sid"], "message_sid": message["sid"],
            "studio_execution_sid": execution["sid"] if execution else None,
            "webhook_url": auto.get("webhook_url") if auto.get("type") == "webhook" else None}


def _default_service(store, account_sid):
    config = store.get(account_sid, "conversations_configuration", sid="configuration") or {}
    return config.get("default_chat_service_sid")


def _studio_execution(store, db, account_sid, auto, conversation, who, stamp):
    """Studio starts an execution for the conversation's first message when the flow is published."""
    if auto.get("type") != "studio":
        return None
    flow = store.get(account_sid, "studio_flow", sid=auto.get("studio_flow_sid"))
    if flow is None or flow.get("status") != "published":
        return None
    sid = new_sid("FN")
    url = f"https://studio.twilio.com/v2/Flows/{flow['sid']}/Executions/{sid}"
    execution = {"sid": sid, "account_sid": account_sid, "flow_sid": flow["sid"], "flow_version": flow["revision"],
                 "contact_sid": None, "contact_channel_address": who, "initiated_by": conversation["sid"],
                 "status": "active", "context": {"trigger": {"conversation": {"ConversationSid": conversation["sid"]}}},
                 "date_created": stamp, "date_updated": stamp, "url": url,
                 "links": {"steps": f"{url}/Steps", "execution_context": f"{url}/Context"}}
    store.insert(db, account_sid, "studio_execution", sid, execution, parent=flow["sid"])
    return execution


def simulate(app, body, args):
    """Control plane: POST /__sandbox/messenger/inbound {page_id, sender, text, account_sid?}."""
    for name in ("page_id", "sender"):
        if body.get(name) in (None, ""):
            raise ValueError(f"{name} is required")
    account = body.get("account_sid") or app.default_account()
    if app.store.account(account) is None:
        raise LookupError(f"unknown account {account}")
    return deliver(app.store, account, body["page_id"], body["sender"], str(body.get("text", "")))


ACTIONS = {("POST", "/messenger/inbound"): simulate}
