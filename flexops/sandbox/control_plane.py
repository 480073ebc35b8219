"""The `/__sandbox/` control plane: seed, reset, accounts, credentials, pages, faults, latency, stats, simulated
inbound messages and the webhook log, routed by a werkzeug Map like the Twilio side.

It hands out the accounts' credentials and can wipe the state, so every action but `GET /__sandbox/health` needs
`Authorization: Bearer <control token>`. The token is random per database (`Store.ensure_control_token`): whoever
can read the database file (created 0600) or was told the token by `flexops sandbox serve` may use the plane.
Bodies are JSON objects; answers are JSON, errors `{"error": "..."}` with 400 (bad input), 401 (no or wrong
token), 404 (unknown action or thing) or 405.
"""
import hmac
import secrets

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from . import faults, inbound, seed, webhooks
from .context import json_response

PREFIX = "__sandbox"
TOKEN_HELP = ("send Authorization: Bearer <control token> (`flexops sandbox serve` prints it; "
              "`flexops sandbox credentials --json` shows it as control_token)")


def control_token(store):
    """The database's control token, made on first use."""
    return store.ensure_control_token(secrets.token_urlsafe(32))


def credentials(store, account_sid):
    account = store.account(account_sid)
    if account is None:
        raise LookupError(f"unknown account {account_sid}")
    keys = store.api_keys(account_sid)
    return {"account_sid": account_sid, "auth_token": account["auth_token"],
            "api_key": keys[0]["sid"] if keys else None, "api_secret": keys[0]["secret"] if keys else None}


class Call:
    """One control-plane request: the app, its store, the JSON body and the query arguments."""

    def __init__(self, app, body, args):
        self.app, self.store, self.body, self.args = app, app.store, body, args

    def required(self, name):
        value = self.body.get(name)
        if value in (None, ""):
            raise ValueError(f"{name} is required")
        return value

    def account(self, where=None):
        """`account_sid` from the body (or the query), else the default account; it must exist."""
        sid = (where if where is not None else self.body).get("account_sid") or self.default_account()
        if self.store.account(sid) is None:
            raise LookupError(f"unknown account {sid}")
        return sid

    def default_account(self):
        sid = self.store.setting("default_account")
        if not sid:
            raise LookupError(f"the sandbox has no account yet: POST /{PREFIX}/seed first")
        return sid


# --- handlers -------------------------------------------------------------------------------------------------

def health(call):
    return {"ok": True, "accounts": len(call.store.accounts())}


def reset(call):
    call.store.reset()
    return {"ok": True}


SEEDS = ("demo", "fleet")


def seed_state(call):
    """`{"name": "demo"}` (the default) or `{"name": "fleet", "subaccounts": N, "addresses": M}`; the first account
    seeded becomes the default account (the fleet's main account)."""
    name = call.body.get("name", "demo")
    if name == "demo":
        created = seed.seed_demo(call.store)
    elif name == "fleet":
        options = {k: call.body[k] for k in ("subaccounts", "addresses", "first_messages") if k in call.body}
        created = seed.seed_fleet(call.store, **options)
    else:
        raise ValueError(f"unknown seed {name!r}: choose one of {', '.join(SEEDS)}")
    if not call.store.setting("default_account"):
        call.store.set_setting("default_account", created["account_sid"])
    return created


def create_account(call):
    return seed.create_account(call.store, friendly_name=call.body.get("friendly_name", "sandbox account"),
                               status=call.body.get("status", "active"))


def account_status(call):
    status, sid = call.body.get("status"), call.required("account_sid")
    if status not in seed.ACCOUNT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(seed.ACCOUNT_STATUSES)}")
    if not call.store.set_account_status(sid, status):
        raise LookupError(f"unknown account {sid}")
    return {"ok": True}


def account_credentials(call):
    return credentials(call.store, call.args.get("account_sid") or call.default_account())


def pages(call):
    return {"pages": seed.page_list(call.store, call.args.get("account_sid") or call.default_account())}


def add_page(call):
    page_id = str(call.required("page_id"))
    call.store.put_page(call.body.get("account_sid") or call.default_account(), page_id, call.body.get("name", ""))
    return {"ok": True}


def fault_list(call):
    return {"faults": faults.listing(call.store)}


def add_fault(call):
    return faults.add(call.store, call.body)


def clear_faults(call):
    faults.clear(call.store)
    return {"ok": True}


def get_settings(call):
    return {"latency_ms": call.store.setting("latency_ms", 0)}


def put_settings(call):
    latency = call.body.get("latency_ms", 0)
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency < 0:
        raise ValueError(f"latency_ms must be a number of milliseconds, 0 or more, not {latency!r}")
    call.store.set_setting("latency_ms", float(latency))
    return get_settings(call)


def stats(call):
    return call.app.request_stats()


def reset_stats(call):
    call.app.reset_request_stats()
    return {"ok": True}


def messenger_inbound(call):
    """A customer (`sender`) writes `text` to the Facebook Page `page_id`, as Twilio would receive it."""
    page_id, sender = call.required("page_id"), call.required("sender")
    return inbound.deliver(call.store, call.account(), page_id, sender, str(call.body.get("text", "")))


def webhook_list(call):
    return {"webhooks": webhooks.deliveries(call.store, call.account(call.args))}


PUBLIC = {health}  # answers without the token: says only that a sandbox is there
RULES = [
    Rule("/health", methods=["GET"], endpoint=health),
    Rule("/reset", methods=["POST"], endpoint=reset),
    Rule("/seed", methods=["POST"], endpoint=seed_state),
    Rule("/accounts", methods=["POST"], endpoint=create_account),
    Rule("/accounts/status", methods=["POST"], endpoint=account_status),
    Rule("/credentials", methods=["GET"], endpoint=account_credentials),
    Rule("/pages", methods=["GET"], endpoint=pages),
    Rule("/pages", methods=["POST"], endpoint=add_page),
    Rule("/faults", methods=["GET"], endpoint=fault_list),
    Rule("/faults", methods=["POST"], endpoint=add_fault),
    Rule("/faults", methods=["DELETE"], endpoint=clear_faults),
    Rule("/settings", methods=["GET"], endpoint=get_settings),
    Rule("/settings", methods=["POST"], endpoint=put_settings),
    Rule("/stats", methods=["GET"], endpoint=stats),
    Rule("/stats/reset", methods=["POST"], endpoint=reset_stats),
    Rule("/messenger/inbound", methods=["POST"], endpoint=messenger_inbound),
    Rule("/webhooks", methods=["GET"], endpoint=webhook_list),
]


class ControlPlane:
    """Answers `/__sandbox/<path>` for `app` (a SandboxApp: `store`, `request_stats()`, `reset_request_stats()`)."""

    def __init__(self, app):
        self.app = app
        self._token = control_token(app.store).encode()
        # Bound once: a MapAdapter only reads its settings when matching, so threads can share it.
        self.routes = Map([rule.empty() for rule in RULES], strict_slashes=False).bind("sandbox")

    @property
    def token(self):
        return self._token.decode()

    def authorized(self, request):
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self._token)

    def __call__(self, request, path):
        try:
            handler, _ = self.routes.match(path or "/", request.method)
        except (NotFound, MethodNotAllowed) as exc:
            handler, miss = None, exc
        if handler not in PUBLIC and not self.authorized(request):
            # Before anything else: a caller without the token learns nothing, not even which actions exist.
            refused = json_response({"error": f"the sandbox control plane needs its token: {TOKEN_HELP}"}, 401)
            refused.headers["WWW-Authenticate"] = 'Bearer realm="flexops sandbox"'
            return refused
        if handler is None:
            if isinstance(miss, MethodNotAllowed):
                refused = json_response({"error": f"{request.method} is not allowed on /{PREFIX}{path}"}, 405)
                refused.headers["Allow"] = ", ".join(sorted(miss.valid_methods or ()))
                return refused
            return json_response({"error": f"no control-plane action {request.method} /{PREFIX}{path}"}, 404)
        try:
            body = request.get_json(silent=True) or {}
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            return json_response(handler(Call(self.app, body, request.args)))
        except (faults.FaultRuleError, KeyError, ValueError) as exc:
            return json_response({"error": str(exc).strip("'\"")}, 400)
        except LookupError as exc:
            return json_response({"error": str(exc)}, 404)
