"""The sandbox WSGI app: Twilio routes by product + path, Basic auth, faults, and the `/__sandbox/` control plane.

Requests arrive as `/<product>/<twilio path>` (for example `/conversations/v1/Configuration/Addresses`): the
flexops HTTP client rewrites `https://<product>.twilio.com/...` that way, so Conversations' and Flex's
`/v1/Configuration` stay apart.
"""
import base64
import collections
import hmac
import socket
import threading
import time

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request

from . import accounts, conversations, faults, flex, inbound, seed, studio
from .context import Ctx, json_response
from .errors import TwilioError, error_response
from .store import Store
from .monitor import urls as monitor_urls
from .taskrouter import urls as taskrouter_urls

PRODUCTS = {"conversations": conversations.RULES, "studio": studio.RULES, "flex-api": flex.RULES,
            "api": accounts.RULES, "taskrouter": taskrouter_urls.RULES,
            "monitor": monitor_urls.RULES}
CONTROL = "__sandbox"


class SandboxApp:
    """`observers` are called with every Twilio exchange (used by the contract tests): a dict of product, method,
    Twilio path, query, form, status, response headers, body and `auth_scheme` (never the credentials)."""

    def __init__(self, db_path):
        self.store = Store(db_path)
        # Bound once: a MapAdapter only reads its settings when matching, so threads can share it.
        self.routes = {product: Map([r.empty() for r in rules], strict_slashes=False).bind("sandbox")
                       for product, rules in PRODUCTS.items()}
        self.observers = []
        self.counts = collections.Counter()
        self._count_lock = threading.Lock()
        self.control_actions = {}
        self.control_actions.update(inbound.ACTIONS)

    def __call__(self, environ, start_response):
        request = Request(environ)
        product, _, path = request.path.lstrip("/").partition("/")
        path = "/" + path
        if product == CONTROL:
            response = self.control(request, path)
        else:
            response = self.twilio(request, product, path, environ)
        if response is None:  # connection deliberately dropped
            return []
        if product != CONTROL and self.observers:
            for observe in self.observers:
                observe({"product": product, "method": request.method, "path": path,
                         "query": request.args.to_dict(flat=False), "form": request.form.to_dict(flat=False),
                         "status": response.status_code, "headers": dict(response.headers),
                         "body": response.get_data(),
                         "auth_scheme": request.authorization.type if request.authorization else None})
        return response(environ, start_response)

    # --- Twilio side -------------------------------------------------------------------------------------

    def authenticate(self, request, logins):
        """The account SID for the request's Basic credentials (an account's auth token or an API key's secret)."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            secret, account_sid = logins.get(user, (None, None))
            if secret is not None and hmac.compare_digest(secret.encode(), password.encode()):
                return account_sid
        raise TwilioError(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def twilio(self, request, product, path, environ):
        with self._count_lock:
            self.counts[f"{request.method} {product}"] += 1
        state = self.store.control_state()  # latency, credentials, any faults: cached, one query to validate
        if state.latency_ms:
            time.sleep(state.latency_ms / 1000)
        try:
            rules = faults.pick(self.store, product, request.method, path) if state.has_faults else []
            post_commit = None
            for rule in rules:
                if rule["action"] == "latency":
                    time.sleep(rule["latency_ms"] / 1000)
                elif rule["action"] == "error":
                    headers = {"Retry-After": str(rule["retry_after"])} if rule["retry_after"] is not None else {}
                    return error_response(rule["status"], rule["code"], rule["message"], headers)
                else:
                    post_commit = post_commit or rule
            # Credentials first, as Twilio: a caller without them learns nothing, not even which paths exist.
            account_sid = self.authenticate(request, state.logins)
            if product not in self.routes:
                raise TwilioError(404, 20404, f"The requested resource {path} was not found")
            try:
                handler, args = self.routes[product].match(path, request.method)
            except NotFound:
                raise TwilioError(404, 20404, f"The requested resource {path} was not found") from None
            except MethodNotAllowed as exc:
                allow = ", ".join(sorted(exc.valid_methods or ()))
                raise TwilioError(405, 20004, "Method not allowed", {"Allow": allow}) from None
            response = handler(Ctx(self.store, account_sid, request, product, path), **args)
            if post_commit and post_commit["action"] == "commit_then_drop":
                drop(environ)
                return None
            if post_commit:
                return error_response(post_commit["status"], post_commit["code"], post_commit["message"])
            return response
        except TwilioError as err:
            return err.response()

    # --- control plane -----------------------------------------------------------------------------------

    def control(self, request, path):
        try:
            body = request.get_json(silent=True) or {}
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            return json_response(self.control_action(request.method, path, body, request.args))
        except (faults.FaultRuleError, KeyError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        except LookupError as exc:
            return json_response({"error": str(exc)}, 404)

    def default_account(self):
        sid = self.store.setting("default_account")
        if not sid:
            raise LookupError("the sandbox has no account yet: POST /__sandbox/seed first")
        return sid

    def control_action(self, method, path, body, args):
        store = self.store
        route = (method, path.rstrip("/"))
        if route == ("GET", "/health"):
            return {"ok": True, "accounts": len(store.accounts())}
        if route == ("POST", "/reset"):
            store.reset()
            return {"ok": True}
        if route == ("POST", "/seed"):
            if body.get("name", "demo") != "demo":
                raise ValueError("unknown seed: only 'demo' exists")
            created = seed.seed_demo(store)
            if not store.setting("default_account"):
                store.set_setting("default_account", created["account_sid"])
            return created
        if route == ("POST", "/accounts"):
            return seed.create_account(store, friendly_name=body.get("friendly_name", "sandbox account"),
                                       status=body.get("status", "active"))
        if route == ("POST", "/accounts/status"):
            if body.get("status") not in seed.ACCOUNT_STATUSES:
                raise ValueError(f"status must be one of {', '.join(seed.ACCOUNT_STATUSES)}")
            with store.tx() as db:
                changed = db.execute("UPDATE accounts SET status = ? WHERE sid = ?",
                                     (body["status"], body["account_sid"])).rowcount
            if not changed:
                raise LookupError(f"unknown account {body['account_sid']}")
            return {"ok": True}
        if route == ("GET", "/credentials"):
            return credentials(store, args.get("account_sid") or self.default_account())
        if route == ("GET", "/pages"):
            return {"pages": seed.page_list(store, args.get("account_sid") or self.default_account())}
        if route == ("POST", "/pages"):
            account = body.get("account_sid") or self.default_account()
            with store.tx() as db:
                db.execute("INSERT OR REPLACE INTO pages (account_sid, page_id, name) VALUES (?, ?, ?)",
                           (account, str(body["page_id"]), body.get("name", "")))
            return {"ok": True}
        if route == ("GET", "/faults"):
            return {"faults": faults.listing(store)}
        if route == ("POST", "/faults"):
            return faults.add(store, body)
        if route == ("DELETE", "/faults"):
            faults.clear(store)
            return {"ok": True}
        if route == ("GET", "/settings"):
            return {"latency_ms": store.setting("latency_ms", 0)}
        if route == ("POST", "/settings"):
            store.set_setting("latency_ms", float(body.get("latency_ms", 0)))
            return {"latency_ms": store.setting("latency_ms")}
        if route == ("GET", "/stats"):
            with self._count_lock:
                return {"requests": dict(self.counts), "total": sum(self.counts.values())}
        if route == ("POST", "/stats/reset"):
            with self._count_lock:
                self.counts.clear()
            return {"ok": True}
        action = self.control_actions.get(route)
        if action:
            return action(self, body, args)
        raise LookupError(f"no control-plane action {method} /{CONTROL}{path}")


def credentials(store, account_sid):
    account = store.account(account_sid)
    if account is None:
        raise LookupError(f"unknown account {account_sid}")
    keys = store.api_keys(account_sid)
    return {"account_sid": account_sid, "auth_token": account["auth_token"],
            "api_key": keys[0]["sid"] if keys else None, "api_secret": keys[0]["secret"] if keys else None}


def drop(environ):
    """Close the client's connection without an answer, as a network failure after commit would."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


