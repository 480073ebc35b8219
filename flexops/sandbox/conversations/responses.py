"""Conversations v1 over HTTP: parse the form or query, call ConversationsBackend, render Twilio's JSON."""
from ..context import json_response, no_content
from ..errors import not_found
from .models import LIST_PATH, ConversationsBackend, in_service

AUTO_CREATION_FORM = {"AutoCreation.Type": "type", "AutoCreation.ConversationServiceSid": "conversation_service_sid",
                      "AutoCreation.WebhookUrl": "webhook_url", "AutoCreation.WebhookMethod": "webhook_method",
                      "AutoCreation.StudioFlowSid": "studio_flow_sid"}


def backend(ctx):
    return ConversationsBackend(ctx.store, ctx.account_sid)


def _auto_creation(ctx):
    changes = {field: ctx.form(name) for name, field in AUTO_CREATION_FORM.items()}
    changes["enabled"] = ctx.form_bool("AutoCreation.Enabled")
    changes["webhook_filters"] = ctx.form_list("AutoCreation.WebhookFilters")
    changes["studio_retry_count"] = ctx.form_int("AutoCreation.StudioRetryCount")
    return changes


def create_address(ctx):
    return json_response(backend(ctx).create_address(
        ctx.form("Type"), ctx.form("Address"), friendly_name=ctx.form("FriendlyName"),
        address_country=ctx.form("AddressCountry"), auto_creation=_auto_creation(ctx)), 201)


def fetch_address(ctx, sid):
    return json_response(backend(ctx).address(sid))


def update_address(ctx, sid):
    sent = [name for name in ("Type", "Address", "AddressCountry") if ctx.form(name) is not None]
    return json_response(backend(ctx).update_address(sid, friendly_name=ctx.form("FriendlyName"),
                                                     auto_creation=_auto_creation(ctx), immutable=sent))


def delete_address(ctx, sid):
    backend(ctx).delete_address(sid)
    return no_content()


def list_addresses(ctx):
    kind = (ctx.arg("Type") or "").lower() or None
    return ctx.list_page(None, "address_configurations", LIST_PATH, fetch=backend(ctx).address_rows(kind),
                         extra_query=[("Type", kind)])


def fetch_configuration(ctx):
    found = backend(ctx).configuration()
    if found is None:
        raise not_found(ctx.path)
    return json_response(found)


def list_services(ctx):
    return ctx.list_page(None, "services", "/v1/Services", maximum=100, fetch=backend(ctx).service_rows())


def fetch_service(ctx, sid):
    return json_response(backend(ctx).service(sid))


def _filters(ctx):
    return {"state": ctx.arg("State"), "start_date": ctx.arg("StartDate"), "end_date": ctx.arg("EndDate")}


def _extra(ctx):
    return [(name, ctx.arg(name)) for name in ("StartDate", "EndDate", "State")]


def list_conversations(ctx):
    """Like Twilio, /v1/Conversations holds the default Conversation Service's conversations only."""
    return ctx.list_page(None, "conversations", "/v1/Conversations", maximum=100,
                         fetch=backend(ctx).conversation_rows(**_filters(ctx)), extra_query=_extra(ctx))


def list_service_conversations(ctx, chat_service_sid):
    conversations = backend(ctx)
    conversations.service(chat_service_sid)
    return ctx.list_page(None, "conversations", f"/v1/Services/{chat_service_sid}/Conversations", maximum=100,
                         fetch=conversations.conversation_rows(chat_service_sid, **_filters(ctx)),
                         render=lambda data: in_service(chat_service_sid, data), extra_query=_extra(ctx))


def fetch_conversation(ctx, sid, chat_service_sid=None):
    found = backend(ctx).conversation(sid, chat_service_sid)
    return json_response(in_service(chat_service_sid, found) if chat_service_sid else found)


def update_conversation(ctx, sid, chat_service_sid=None):
    updated = backend(ctx).update_conversation(
        sid, chat_service_sid, state=ctx.form("State"), timers_inactive=ctx.form("Timers.Inactive"),
        timers_closed=ctx.form("Timers.Closed"), friendly_name=ctx.form("FriendlyName"),
        attributes=ctx.form("Attributes"))
    return json_response(in_service(chat_service_sid, updated) if chat_service_sid else updated)


def children(kind, key):
    """List handler of a conversation's participants or messages, plain or under a service."""
    def handler(ctx, conversation_sid, chat_service_sid=None):
        order = ctx.arg("Order") if kind == "message" else None
        fetch = backend(ctx).child_rows(kind, conversation_sid, chat_service_sid, order=order)
        base = f"/v1/Services/{chat_service_sid}" if chat_service_sid else "/v1"
        render = (lambda data: in_service(chat_service_sid, data)) if chat_service_sid else None
        return ctx.list_page(None, key, f"{base}/Conversations/{conversation_sid}/{key.capitalize()}",
                             maximum=100, fetch=fetch, render=render, extra_query=[("Order", order)])
    return handler
