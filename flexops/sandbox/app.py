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

from . import faults, flex
from .api import urls as api_urls
from .context import Ctx, json_response
from .control_plane import PREFIX as CONTROL, ControlPlane
from .conversations import urls as conversations_urls
from .errors import TwilioError, error_response
from .guard import LocalGuard
from .monitor import urls as monitor_urls
from .store import Store
from .studio import urls as studio_urls
from .taskrouter import urls as taskrouter_urls

PRODUCTS = {"conversations": conversations_urls.RULES, "studio": studio_urls.RULES, "flex-api": flex.RULES,
            "api": api_urls.RULES, "taskrouter": taskrouter_urls.RULES, "monitor": monitor_urls.RULES}


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
        self.guard = LocalGuard()  # the server binds it to its address and port
        self.control_plane = ControlPlane(self)

    def __call__(self, environ, start_response):
        request = Request(environ)
        product, _, path = request.path.lstrip("/").partition("/")
        path = "/" + path
        refusal = self.guard.refusal(environ)
        if refusal:
            response = (json_response({"error": refusal}, 403) if product == CONTROL
                        else error_response(403, 20403, f"Forbidden: {refusal}"))
        elif product == CONTROL:
            response = self.control_plane(request, path)
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

    # --- stats for the control plane ----------------------------------------------------------------------

    def request_stats(self):
        with self._count_lock:
            return {"requests": dict(self.counts), "total": sum(self.counts.values())}

    def reset_request_stats(self):
        with self._count_lock:
            self.counts.clear()


def drop(environ):
    """Close the client's connection without an answer, as a network failure after commit would."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


