"""connect(): a real `twilio.rest.Client` whose HTTP client retries safe calls, reports every call to listeners
(the audit trail), and, for the sandbox, re-routes `https://<product>.twilio.com/...` to loopback.

The re-routing happens inside the HTTP client, after the SDK applied TWILIO_EDGE/TWILIO_REGION to the host, so
edge/region settings keep working; `next_page_url` (absolute, as Twilio writes it) goes through the same path.
"""
import os
import threading
import time
from contextlib import nullcontext
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.util.retry import Retry

from . import audit, settings
from .exceptions import ConfigurationError, ConnectionFailed, FlexopsError
from .settings import Secret, Target

RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 30.0


class BoundedRetry(Retry):
    """urllib3 Retry that honours Retry-After but never sleeps longer than MAX_RETRY_AFTER."""

    def get_retry_after(self, response):
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER)


def safe_retry(total=6):
    """Retries for GET/HEAD only: re-sending those cannot change anything. POST/DELETE are reconciled upstream."""
    return BoundedRetry(total=total, connect=3, read=2, status=total, backoff_factor=0.2, backoff_max=8,
                        backoff_jitter=0.2, status_forcelist=RETRY_STATUSES, allowed_methods=("GET", "HEAD"),
                        respect_retry_after_header=True, raise_on_status=False)


class EnvironmentOnceSession(requests.Session):
    """A requests Session that reads the proxy environment once per scheme and host, not on every request.

    requests looks the environment up on every call (`merge_environment_settings` walks all of `os.environ` twice
    for HTTP(S)_PROXY / NO_PROXY): a sixth of the client's CPU on a fleet verify, where thousands of calls go to a
    handful of hosts. The answer is the same for a host as long as the environment is, and a client lives for one
    run: proxy variables changed meanwhile apply to the next client.
    """

    def __init__(self):
        super().__init__()
        self._environment = {}
        self._environment_lock = threading.Lock()

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        scheme, netloc = urlsplit(url)[:2]
        key = (scheme, netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, dict(proxies or {}), stream, verify, cert)
            with self._environment_lock:
                self._environment[key] = found
        return {**found, "proxies": dict(found["proxies"])}


class FlexopsHttpClient(TwilioHttpClient):
    """TwilioHttpClient + safe retries + call listeners (+ sandbox re-routing when `sandbox_url` is set)."""

    def __init__(self, sandbox_url=None, timeout=30, pool_size=16):
        super().__init__(pool_connections=False, timeout=timeout)  # no Session of its own: ours replaces it
        self.session = EnvironmentOnceSession()
        self.sandbox_url = sandbox_url.rstrip("/") if sandbox_url else None
        adapter = HTTPAdapter(max_retries=safe_retry(), pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.listeners = []
        # Entered around every request, retries included: fleet.py shares one semaphore between the clients of
        # many accounts, so a fleet run keeps one global bound on requests in flight.
        self.gate = nullcontext()
        self.request_count = 0
        self._lock = threading.Lock()

    def route(self, url):
        if not self.sandbox_url:
            return url
        parts = urlsplit(url)
        product = parts.hostname.split(".")[0]
        return f"{self.sandbox_url}/{product}{parts.path}" + (f"?{parts.query}" if parts.query else "")

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        started = time.monotonic()
        with self._lock:
            self.request_count += 1
        # A listener with a `before` hook (the audit trail) records the call before it leaves: a process killed
        # while it is in flight still leaves a trace of it. Its token comes back to it as `call`.
        tokens = {id(listener): listener.before(method=method.upper(), url=url, params=params, data=data)
                  for listener in list(self.listeners) if hasattr(listener, "before")}
        response = error = None
        try:
            with self.gate:
                response = super().request(method, self.route(url), params=params, data=data, headers=headers,
                                            auth=auth, timeout=timeout, allow_redirects=allow_redirects)
            return response
        except requests.RequestException as exc:
            error = exc
            raise
        finally:
            for listener in self.listeners:
                extra = {"call": tokens[id(listener)]} if id(listener) in tokens else {}
                listener(method=method.upper(), url=url, params=params, data=data, response=response, error=error,
                         elapsed=time.monotonic() - started, **extra)

    def log_request(self, kwargs):
        """The SDK logs headers (Authorization included) at INFO: we log nothing of the request."""

    def log_response(self, status_code, response):
        pass

    def __repr__(self):
        return f"FlexopsHttpClient(sandbox_url={self.sandbox_url!r})"


# --- the embedded sandbox ------------------------------------------------------------------------------------

_embedded = {}
_embedded_lock = threading.Lock()


def embedded_sandbox(db_path=None):
    """One in-process sandbox server per database file, seeded with the demo account on first use."""
    from .sandbox.server import SandboxServer
    from .sandbox import seed

    path = os.fspath(db_path or settings.sandbox_db_path())
    with _embedded_lock:
        server = _embedded.get(path)
        if server is None:
            server = SandboxServer(path).start()
            _embedded[path] = server
        if not server.store.setting("default_account"):
            created = seed.seed_demo(server.store)
            server.store.set_setting("default_account", created["account_sid"])
    return server


def sandbox_target(url=None, db_path=None, account_sid=None):
    """The sandbox at `url` (else FLEXOPS_SANDBOX_URL, else the embedded one), with credentials from its control
    plane: the demo account's, or `account_sid`'s (else FLEXOPS_SANDBOX_ACCOUNT's: a twin's subaccount). The control
    token is the embedded server's own, else found as `SandboxControl` finds it (FLEXOPS_SANDBOX_TOKEN, or the
    sandbox database when readable)."""
    from .sandbox.control import SandboxControl

    url = url or os.environ.get("FLEXOPS_SANDBOX_URL")
    embedded = None if url else embedded_sandbox(db_path)
    url = (url or embedded.url).rstrip("/")
    try:
        control = SandboxControl(url, token=embedded.control_token if embedded else None, timeout=10)
        creds = control.credentials(account_sid or os.environ.get("FLEXOPS_SANDBOX_ACCOUNT") or None)
    except (ConnectionFailed, ConfigurationError):
        raise
    except FlexopsError as exc:
        raise ConnectionFailed(f"the sandbox at {url} gave no credentials: {exc}") from None
    return Target("sandbox", creds["account_sid"], creds["account_sid"], Secret(creds["auth_token"]),
                  sandbox_url=url, source="sandbox control plane")


def resolve_target(target=None, profile=None):
    """The Target for a `target` name (auto | sandbox | twilio); `auto` prefers configured real credentials."""
    chosen = settings.choose_target(target)
    if chosen == "sandbox":
        return sandbox_target()
    creds = settings.twilio_credentials(profile)
    if chosen == "twilio" and creds is None:
        raise ConfigurationError("target 'twilio' needs credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, "
                                 "or TWILIO_API_KEY + TWILIO_API_SECRET + TWILIO_ACCOUNT_SID, or pick a twilio-cli "
                                 "profile (--profile / TWILIO_PROFILE)")
    return creds if creds is not None else sandbox_target()


def connect(target=None, profile=None, timeout=30):
    """A real twilio.rest.Client for the target; `client.flexops_target` says which (see Target.describe)."""
    resolved = target if isinstance(target, Target) else resolve_target(target, profile)
    http = FlexopsHttpClient(sandbox_url=resolved.sandbox_url, timeout=timeout)
    client = Client(resolved.username, resolved.password.reveal(), account_sid=resolved.account_sid,
                    region=resolved.region, edge=resolved.edge, http_client=http)
    client.flexops_target = resolved
    audit.attach_current_run(client)  # inside `flexops run`: every mutation goes to <run dir>/audit.jsonl
    return client
