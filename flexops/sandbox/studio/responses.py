"""Studio v2 over HTTP: parse the form or query, call StudioBackend, render Twilio's JSON."""
import json

from ..context import json_response, no_content
from ..core import day_bound
from ..errors import invalid
from .models import StudioBackend


def backend(ctx):
    return StudioBackend(ctx.store, ctx.account_sid)


def _definition(ctx):
    raw = ctx.form("Definition")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid("Invalid Definition: must be a JSON document") from None


def create_flow(ctx):
    return json_response(backend(ctx).create_flow(ctx.form("FriendlyName"), _definition(ctx), ctx.form("Status"),
                                                  ctx.form("CommitMessage")), 201)


def fetch_flow(ctx, sid):
    return json_response(backend(ctx).flow(sid))


def update_flow(ctx, sid):
    return json_response(backend(ctx).update_flow(sid, ctx.form("Status"), _definition(ctx),
                                                  ctx.form("FriendlyName"), ctx.form("CommitMessage")))


def delete_flow(ctx, sid):
    backend(ctx).delete_flow(sid)
    return no_content()


def without_definition(resource):
    return {**resource, "definition": None}


def list_flows(ctx):
    return ctx.list_page(None, "flows", "/v2/Flows", maximum=1000, fetch=backend(ctx).flow_rows(),
                         render=without_definition)


def list_revisions(ctx, sid):
    return ctx.list_page(None, "revisions", f"/v2/Flows/{sid}/Revisions", maximum=1000,
                         fetch=backend(ctx).revision_rows(sid), render=without_definition)


def fetch_revision(ctx, sid, revision):
    return json_response(backend(ctx).revision(sid, revision))


def _instant(ctx, name):
    """DateCreatedFrom/To: ISO 8601, compared as Twilio's `...Z` stamps."""
    value = ctx.arg(name)
    try:
        return day_bound(name, value, end=name.endswith("To")) if value else None
    except ValueError as exc:
        raise invalid(str(exc)) from None


def list_executions(ctx, flow_sid):
    fetch = backend(ctx).execution_rows(flow_sid, _instant(ctx, "DateCreatedFrom"), _instant(ctx, "DateCreatedTo"))
    return ctx.list_page(None, "executions", f"/v2/Flows/{flow_sid}/Executions", fetch=fetch,
                         render=lambda e: {**e, "context": None},
                         extra_query=[(n, ctx.arg(n)) for n in ("DateCreatedFrom", "DateCreatedTo")])


def fetch_execution(ctx, flow_sid, sid):
    return json_response(backend(ctx).execution(flow_sid, sid))


def fetch_execution_context(ctx, flow_sid, execution_sid):
    return json_response(backend(ctx).execution_context(flow_sid, execution_sid))


def list_steps(ctx, flow_sid, execution_sid):
    return ctx.list_page(None, "steps", f"/v2/Flows/{flow_sid}/Executions/{execution_sid}/Steps",
                         fetch=backend(ctx).step_rows(flow_sid, execution_sid), render=lambda s: {**s, "context": None})


def fetch_step(ctx, flow_sid, execution_sid, sid):
    return json_response(backend(ctx).step(flow_sid, execution_sid, sid))


def fetch_step_context(ctx, flow_sid, execution_sid, step_sid):
    return json_response(backend(ctx).step_context(flow_sid, execution_sid, step_sid))
