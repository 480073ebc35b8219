"""Flex v1 handlers: configuration, interactions and their channels, legacy Flex Flows."""
from ..context import json_response, no_content
from ..errors import invalid, missing
from .flows import INTEGRATION_FIELDS
from .models import FlexBackend, config_sid, render_channel


def _backend(ctx):
    return FlexBackend(ctx.store, ctx.account_sid)


def fetch_configuration(ctx):
    config = _backend(ctx).configuration()
    if config is None:
        ctx.get("flex_configuration", sid=config_sid(ctx.account_sid))  # Twilio's 404 for this path
    return json_response(config)


# --- interactions ----------------------------------------------------------------------------------------

def create_interaction(ctx):
    if not ctx.form("Channel"):
        raise missing("Channel")
    if not ctx.form("Routing"):
        raise missing("Routing")
    return json_response(_backend(ctx).create_interaction(ctx.form("Channel"), ctx.form("Routing")))


def fetch_interaction(ctx, sid):
    return json_response(_backend(ctx).interaction(sid))


def list_interaction_channels(ctx, interaction_sid):
    rows = [(seq, render_channel(channel)) for seq, channel in _backend(ctx).channel_rows(interaction_sid)]
    return ctx.filtered_page(rows, "channels", f"/v1/Interactions/{interaction_sid}/Channels")


def fetch_interaction_channel(ctx, interaction_sid, sid):
    return json_response(render_channel(_backend(ctx).channel(interaction_sid, sid)))


def update_interaction_channel(ctx, interaction_sid, sid):
    if not ctx.form("Status"):
        raise missing("Status")
    return json_response(render_channel(_backend(ctx).update_channel(interaction_sid, sid, ctx.form("Status"))))


# --- legacy Flex Flows -----------------------------------------------------------------------------------

def _integration(ctx):
    integration = {}
    for form, key in INTEGRATION_FIELDS.items():
        name = f"Integration.{form}"
        if form in ("Timeout", "Priority", "RetryCount"):
            value = ctx.form_int(name)
        elif form == "CreationOnMessage":
            value = ctx.form_bool(name)
        else:
            value = ctx.form(name)
        if value is not None:
            integration[key] = value
    return integration


def _flow_fields(ctx):
    return {"friendly_name": ctx.form("FriendlyName"), "chat_service_sid": ctx.form("ChatServiceSid"),
            "channel_type": ctx.form("ChannelType"), "contact_identity": ctx.form("ContactIdentity"),
            "enabled": ctx.form_bool("Enabled"), "integration_type": ctx.form("IntegrationType"),
            "integration": _integration(ctx), "long_lived": ctx.form_bool("LongLived"),
            "janitor_enabled": ctx.form_bool("JanitorEnabled")}


def list_flex_flows(ctx):
    name = ctx.request.args.get("FriendlyName")
    return ctx.filtered_page(_backend(ctx).flows.rows(name), "flex_flows", "/v1/FlexFlows",
                   extra_query=[("FriendlyName", name)])


def create_flex_flow(ctx):
    return json_response(_backend(ctx).flows.create(**_flow_fields(ctx)), 201)


def fetch_flex_flow(ctx, sid):
    return json_response(_backend(ctx).flows.get(sid))


def update_flex_flow(ctx, sid):
    fields = _flow_fields(ctx)
    for name in ("friendly_name", "chat_service_sid", "channel_type"):
        if fields[name] == "":
            raise invalid(f"Invalid {name}: must not be empty")
    return json_response(_backend(ctx).flows.update(sid, **fields))


def delete_flex_flow(ctx, sid):
    _backend(ctx).flows.delete(sid)
    return no_content()
