"""Conversations v1: address configurations, global configuration, services, conversations (read-only)."""
import re

from werkzeug.routing import Rule

from .context import json_response, new_sid, no_content, now
from .errors import TwilioError, invalid, missing, not_found

ADDRESS_TYPES = ("sms", "whatsapp", "messenger", "gbm", "email", "rcs", "apple", "chat")
AUTO_CREATION_TYPES = ("webhook", "studio", "default")
WEBHOOK_METHODS = ("get", "post")
STUDIO_FIELDS = ("studio_flow_sid", "studio_retry_count")
WEBHOOK_FIELDS = ("webhook_url", "webhook_method", "webhook_filters")
SID_PATTERNS = {"AutoCreation.ConversationServiceSid": r"^IS[0-9a-fA-F]{32}$",
                "AutoCreation.StudioFlowSid": r"^FW[0-9a-fA-F]{32}$"}
ADDRESS_KIND = "address_configuration"
LIST_PATH = "/v1/Configuration/Addresses"


def _auto_creation_form(ctx, current):
    """Merge AutoCreation.* form fields into `current`; drop fields that do not belong to the resulting type."""
    auto = dict(current)
    enabled = ctx.form_bool("AutoCreation.Enabled")
    if enabled is not None:
        auto["enabled"] = enabled
    kind = ctx.form("AutoCreation.Type")
    if kind is not None:
        if kind.lower() not in AUTO_CREATION_TYPES:
            raise invalid(f"Invalid AutoCreation.Type {kind!r}: must be one of {', '.join(AUTO_CREATION_TYPES)}")
        auto["type"] = kind.lower()
    for name, pattern in SID_PATTERNS.items():
        value = ctx.form(name)
        if value is not None and not re.match(pattern, value):
            raise invalid(f"Invalid {name} {value!r}")
    simple = {"AutoCreation.ConversationServiceSid": "conversation_service_sid",
              "AutoCreation.WebhookUrl": "webhook_url", "AutoCreation.StudioFlowSid": "studio_flow_sid"}
    for form_name, field in simple.items():
        if ctx.form(form_name) is not None:
            auto[field] = ctx.form(form_name)
    method = ctx.form("AutoCreation.WebhookMethod")
    if method is not None:
        if method.lower() not in WEBHOOK_METHODS:
            raise invalid(f"Invalid AutoCreation.WebhookMethod {method!r}: must be GET or POST")
        auto["webhook_method"] = method.upper()
    if ctx.form_list("AutoCreation.WebhookFilters"):
        auto["webhook_filters"] = ctx.form_list("AutoCreation.WebhookFilters")
    retry = ctx.form_int("AutoCreation.StudioRetryCount")
    if retry is not None:
        auto["studio_retry_count"] = retry
    auto.setdefault("enabled", False)
    auto.setdefault("type", "default")
    if auto["type"] != "studio":
        for field in STUDIO_FIELDS:
            auto.pop(field, None)
    if auto["type"] != "webhook":
        for field in WEBHOOK_FIELDS:
            auto.pop(field, None)
    if auto["type"] == "studio" and "studio_flow_sid" not in auto:
        raise missing("AutoCreation.StudioFlowSid")
    if auto["type"] == "webhook" and "webhook_url" not in auto:
        raise missing("AutoCreation.WebhookUrl")
    return auto


def _validate_address(kind, address):
    if kind == "messenger" and not re.fullmatch(r"messenger:\d+", address):
        raise invalid(f"Invalid Address {address!r}: a messenger address is messenger:<facebook page id>")


def _friendly_name(ctx):
    name = ctx.form("FriendlyName")
    if name is not None and len(name) > 256:
        raise invalid("Invalid FriendlyName: must be at most 256 characters")
    return name


def create_address(ctx):
    kind, address = ctx.form("Type"), ctx.form("Address")
    if not kind:
        raise missing("Type")
    if not address:
        raise missing("Address")
    kind = kind.lower()  # Twilio takes the type in any case (its example: `whAtsAPP`) and answers it in lower case
    if kind not in ADDRESS_TYPES:
        raise invalid(f"Invalid Type {kind!r}: must be one of {', '.join(ADDRESS_TYPES)}")
    _validate_address(kind, address)
    sid, stamp = new_sid("IG"), now()
    data = {"account_sid": ctx.account_sid, "sid": sid, "address": address, "type": kind,
            "friendly_name": _friendly_name(ctx), "address_country": ctx.form("AddressCountry"),
            "auto_creation": _auto_creation_form(ctx, {}), "date_created": stamp, "date_updated": stamp,
            "url": ctx.url(f"{LIST_PATH}/{sid}")}
    with ctx.store.tx() as db:
        if not ctx.store.insert(db, ctx.account_sid, ADDRESS_KIND, sid, data, key=address):
            # Twilio documents no answer for this; 20409 is its platform-wide "Conflict" code.
            raise TwilioError(409, 20409, f"Address configuration already exists for address {address}")
    return json_response(data, 201)


def _find_address(ctx, sid):
    """`{Sid}` is the IG SID or the address itself."""
    if re.fullmatch(r"IG[0-9a-fA-F]{32}", sid):
        return ctx.get(ADDRESS_KIND, sid=sid)
    return ctx.get(ADDRESS_KIND, key=sid)


def fetch_address(ctx, sid):
    return json_response(_find_address(ctx, sid))


def update_address(ctx, sid):
    for immutable in ("Type", "Address", "AddressCountry"):
        if ctx.form(immutable) is not None:
            raise invalid(f"Invalid parameter {immutable}: it cannot be changed after creation")
    name = _friendly_name(ctx)
    with ctx.store.tx() as db:
        data = _find_address(ctx, sid)
        data["auto_creation"] = _auto_creation_form(ctx, data["auto_creation"])
        if name is not None:
            data["friendly_name"] = name
        data["date_updated"] = now()
        ctx.store.replace(db, ctx.account_sid, ADDRESS_KIND, data["sid"], data)
    return json_response(data)


def delete_address(ctx, sid):
    with ctx.store.tx() as db:
        data = _find_address(ctx, sid)
        if not ctx.store.delete(db, ctx.account_sid, ADDRESS_KIND, data["sid"]):
            raise not_found(ctx.path)
    return no_content()


def list_addresses(ctx):
    kind = (ctx.request.args.get("Type") or "").lower() or None
    return ctx.list_page(ADDRESS_KIND, "address_configurations", LIST_PATH,
                         where={"type": kind} if kind else None, extra_query=[("Type", kind)])


def fetch_configuration(ctx):
    return json_response(ctx.get("conversations_configuration", sid="configuration"))


def list_services(ctx):
    return ctx.list_page("conversation_service", "services", "/v1/Services", maximum=100)


def fetch_service(ctx, sid):
    return json_response(ctx.get("conversation_service", sid=sid))


def list_conversations(ctx):
    """Like Twilio, /v1/Conversations holds the default Conversation Service's conversations only."""
    config = ctx.store.get(ctx.account_sid, "conversations_configuration", sid="configuration") or {}
    default = config.get("default_chat_service_sid")
    return ctx.list_page("conversation", "conversations", "/v1/Conversations", maximum=100,
                         where={"chat_service_sid": default} if default else None)


def _in_service(service_sid, data):
    """A conversation (or participant) as Twilio shows it under /v1/Services/{sid}/Conversations."""
    base = "https://conversations.twilio.com/v1/"

    def moved(url):
        return url.replace(f"{base}Conversations/", f"{base}Services/{service_sid}/Conversations/", 1) \
            if isinstance(url, str) else url
    shown = {**data, "url": moved(data.get("url"))}
    if isinstance(data.get("links"), dict):
        shown["links"] = {name: moved(url) for name, url in data["links"].items()}
    return shown


def list_service_conversations(ctx, chat_service_sid):
    ctx.get("conversation_service", sid=chat_service_sid)
    return ctx.list_page("conversation", "conversations", f"/v1/Services/{chat_service_sid}/Conversations",
                         maximum=100, where={"chat_service_sid": chat_service_sid},
                         render=lambda data: _in_service(chat_service_sid, data))


def list_service_participants(ctx, chat_service_sid, conversation_sid):
    if ctx.get("conversation", sid=conversation_sid).get("chat_service_sid") != chat_service_sid:
        raise not_found(ctx.path)
    return ctx.list_page("participant", "participants",
                         f"/v1/Services/{chat_service_sid}/Conversations/{conversation_sid}/Participants",
                         parent=conversation_sid, maximum=100,
                         render=lambda data: {**_in_service(chat_service_sid, data),
                                              "chat_service_sid": chat_service_sid})


def fetch_conversation(ctx, sid):
    found = ctx.store.get(ctx.account_sid, "conversation", sid=sid) or \
        ctx.store.get(ctx.account_sid, "conversation", key=sid)
    if found is None:
        raise not_found(ctx.path)
    return json_response(found)


def _children(kind, key):
    def handler(ctx, conversation_sid):
        ctx.get("conversation", sid=conversation_sid)
        return ctx.list_page(kind, key, f"/v1/Conversations/{conversation_sid}/{key.capitalize()}",
                             parent=conversation_sid, maximum=100)
    return handler


RULES = [
    Rule(LIST_PATH, methods=["GET"], endpoint=list_addresses),
    Rule(LIST_PATH, methods=["POST"], endpoint=create_address),
    Rule(f"{LIST_PATH}/<sid>", methods=["GET"], endpoint=fetch_address),
    Rule(f"{LIST_PATH}/<sid>", methods=["POST"], endpoint=update_address),
    Rule(f"{LIST_PATH}/<sid>", methods=["DELETE"], endpoint=delete_address),
    Rule("/v1/Configuration", methods=["GET"], endpoint=fetch_configuration),
    Rule("/v1/Services", methods=["GET"], endpoint=list_services),
    Rule("/v1/Services/<sid>", methods=["GET"], endpoint=fetch_service),
    Rule("/v1/Conversations", methods=["GET"], endpoint=list_conversations),
    Rule("/v1/Conversations/<sid>", methods=["GET"], endpoint=fetch_conversation),
    Rule("/v1/Conversations/<conversation_sid>/Participants", methods=["GET"],
         endpoint=_children("participant", "participants")),
    Rule("/v1/Conversations/<conversation_sid>/Messages", methods=["GET"], endpoint=_children("message", "messages")),
    Rule("/v1/Services/<chat_service_sid>/Conversations", methods=["GET"], endpoint=list_service_conversations),
    Rule("/v1/Services/<chat_service_sid>/Conversations/<conversation_sid>/Participants", methods=["GET"],
         endpoint=list_service_participants),
]
