"""Studio v2 flows: list (definition null, as in Twilio), create, fetch, update, delete."""
import json

from werkzeug.routing import Rule

from .context import json_response, new_sid, no_content, now
from .errors import TwilioError, invalid, missing, not_found

KIND = "studio_flow"
STATUSES = ("draft", "published")


def validate_definition(definition):
    """Studio's structural rules we emulate: a trigger state exists and every transition names a known state."""
    errors = []
    states = definition.get("states") if isinstance(definition, dict) else None
    if not isinstance(states, list):
        return ["Definition must be an object with a list of states"]
    names = {s.get("name") for s in states if isinstance(s, dict)}
    if not any(s.get("type") == "trigger" for s in states if isinstance(s, dict)):
        errors.append("Definition has no trigger state")
    if definition.get("initial_state") not in names:
        errors.append(f"initial_state {definition.get('initial_state')!r} is not a state")
    for state in states:
        for transition in state.get("transitions", []) if isinstance(state, dict) else []:
            target = transition.get("next")
            if target and target not in names:
                errors.append(f"State {state.get('name')!r} transitions to unknown state {target!r}")
    return errors


def _definition(ctx):
    raw = ctx.form("Definition")
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        raise invalid("Invalid Definition: must be a JSON document") from None


def _status(ctx, required):
    status = ctx.form("Status")
    if status is None:
        if required:
            raise missing("Status")
        return None
    if status not in STATUSES:
        raise invalid(f"Invalid Status {status!r}: must be draft or published")
    return status


def apply_definition(flow, definition, status):
    """Set status (and definition, a new revision) after Studio's checks; publishing an invalid flow is refused."""
    errors = validate_definition(flow["definition"] if definition is None else definition)
    if status == "published" and errors:
        raise TwilioError(400, 20001, "Invalid Definition: " + "; ".join(errors))
    if definition is not None:
        flow["definition"] = definition
        flow["revision"] += 1
    flow["status"] = status or flow["status"]
    flow["valid"] = not errors
    flow["errors"] = [{"message": e} for e in errors]
    flow["warnings"] = []


def new_flow(account_sid, name, definition, status, commit_message=None):
    """A flow as Twilio renders it, at revision 1 (shared by the create handler and the demo seed)."""
    sid = new_sid("FW")
    url = f"https://studio.twilio.com/v2/Flows/{sid}"
    flow = {"sid": sid, "account_sid": account_sid, "author_sid": None, "friendly_name": name,
            "definition": None, "status": status, "revision": 0, "commit_message": commit_message,
            "date_created": now(), "date_updated": None,
            "webhook_url": f"https://webhooks.twilio.com/v1/Accounts/{account_sid}/Flows/{sid}", "url": url,
            "links": {"test_users": f"{url}/TestUsers", "revisions": f"{url}/Revisions",
                      "executions": f"{url}/Executions"}}
    apply_definition(flow, definition, status)
    return flow


def create_flow(ctx):
    name = ctx.form("FriendlyName")
    if not name:
        raise missing("FriendlyName")
    status = _status(ctx, required=True)
    if ctx.form("Definition") is None:
        raise missing("Definition")
    flow = new_flow(ctx.account_sid, name, _definition(ctx), status, ctx.form("CommitMessage"))
    with ctx.store.tx() as db:
        ctx.store.insert(db, ctx.account_sid, KIND, flow["sid"], flow)
    return json_response(flow, 201)


def fetch_flow(ctx, sid):
    return json_response(ctx.get(KIND, sid=sid))


def update_flow(ctx, sid):
    status = _status(ctx, required=True)
    definition = _definition(ctx) if ctx.form("Definition") is not None else None
    with ctx.store.tx() as db:
        flow = ctx.get(KIND, sid=sid)
        apply_definition(flow, definition, status)
        if ctx.form("FriendlyName"):
            flow["friendly_name"] = ctx.form("FriendlyName")
        if ctx.form("CommitMessage") is not None:
            flow["commit_message"] = ctx.form("CommitMessage")
        flow["date_updated"] = now()
        ctx.store.replace(db, ctx.account_sid, KIND, sid, flow)
    return json_response(flow)


def delete_flow(ctx, sid):
    with ctx.store.tx() as db:
        if not ctx.store.delete(db, ctx.account_sid, KIND, sid):
            raise not_found(ctx.path)
    return no_content()


def list_flows(ctx):
    return ctx.list_page(KIND, "flows", "/v2/Flows", maximum=1000, render=lambda f: {**f, "definition": None})


RULES = [
    Rule("/v2/Flows", methods=["GET"], endpoint=list_flows),
    Rule("/v2/Flows", methods=["POST"], endpoint=create_flow),
    Rule("/v2/Flows/<sid>", methods=["GET"], endpoint=fetch_flow),
    Rule("/v2/Flows/<sid>", methods=["POST"], endpoint=update_flow),
    Rule("/v2/Flows/<sid>", methods=["DELETE"], endpoint=delete_flow),
]
