"""A small client for the sandbox control plane (`/__sandbox/...`): seed, pages, faults, latency, simulations.

The plane needs its control token. Given none, the client finds it as flexops does everywhere (`find_token`):
a sandbox served by this very process; else FLEXOPS_SANDBOX_TOKEN; else the sandbox database at
FLEXOPS_SANDBOX_DB (default `.flexops/sandbox.db`), when this user can read it.
"""
import os
from pathlib import Path

import requests

from ..exceptions import ConfigurationError, ConnectionFailed, FlexopsError

TOKEN_ENV = "FLEXOPS_SANDBOX_TOKEN"
DB_ENV = "FLEXOPS_SANDBOX_DB"
DEFAULT_DB = Path(".flexops") / "sandbox.db"
TOKEN_HINT = (f"set {TOKEN_ENV} to the control token `flexops sandbox serve` printed (or that "
              "`flexops sandbox credentials --db <its database> --json` shows as control_token)")


def default_db_path():
    """The sandbox database flexops uses when told nothing else: FLEXOPS_SANDBOX_DB, else .flexops/sandbox.db."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB).resolve()


def find_token(url):
    """(token, where it was found) for the sandbox at `url`, or (None, what was tried)."""
    from .server import control_token_for
    from .store import Store

    token = control_token_for(url)
    if token:
        return token, "this process's sandbox"
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip(), TOKEN_ENV
    path = default_db_path()
    token = Store.peek_control_token(path) if path.is_file() else None
    if token:
        return token, f"the database {path}"
    return None, f"no sandbox of this process at {url}, no {TOKEN_ENV}, no readable token in {path}"


class SandboxControl:
    def __init__(self, url, token=None, timeout=30):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self._token, self._token_source = (token, "the token given") if token else find_token(self.url)

    @property
    def token(self):
        """The control token this client uses (a secret); a clear error when none was found."""
        if not self._token:
            raise ConfigurationError(f"the sandbox control plane at {self.url} needs its control token and none "
                                     f"was found ({self._token_source}): {TOKEN_HINT}")
        return self._token

    def __repr__(self):
        return f"SandboxControl({self.url!r})"

    def _call(self, method, action, body=None, token=True, **params):
        if token and not self._token:
            self.health()  # an unreachable sandbox is the first thing to fix: say that rather than "no token"
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        try:
            reply = self.session.request(method, f"{self.url}/__sandbox/{action}", json=body, headers=headers,
                                         params={k: v for k, v in params.items() if v is not None} or None,
                                         timeout=self.timeout)
            data = reply.json()
        except requests.RequestException as exc:  # JSON decoding errors included: not a sandbox at this URL
            raise ConnectionFailed(f"cannot reach the sandbox at {self.url}: {type(exc).__name__}") from None
        if reply.status_code == 401:
            raise ConnectionFailed(f"the sandbox at {self.url} refused the control token from "
                                   f"{self._token_source}: {TOKEN_HINT}")
        if reply.status_code >= 400:
            raise FlexopsError(f"sandbox {action}: {data.get('error', reply.status_code)}")
        return data

    def health(self):
        return self._call("GET", "health", token=False)

    def reset(self):
        return self._call("POST", "reset")

    def seed(self, name="demo", **options):
        """`seed("fleet", subaccounts=N, addresses=M)`: a main account with N Flex subaccounts (docs/sandbox.md)."""
        return self._call("POST", "seed", {"name": name, **options})

    def create_account(self, friendly_name="sandbox account"):
        return self._call("POST", "accounts", {"friendly_name": friendly_name})

    def set_account_status(self, account_sid, status):
        return self._call("POST", "accounts/status", {"account_sid": account_sid, "status": status})

    def credentials(self, account_sid=None):
        return self._call("GET", "credentials", account_sid=account_sid)

    def pages(self, account_sid=None):
        return self._call("GET", "pages", account_sid=account_sid)["pages"]

    def add_page(self, page_id, name, account_sid=None):
        return self._call("POST", "pages", {"page_id": str(page_id), "name": name, "account_sid": account_sid})

    def add_fault(self, **rule):
        return self._call("POST", "faults", rule)

    def faults(self):
        return self._call("GET", "faults")["faults"]

    def clear_faults(self):
        return self._call("DELETE", "faults")

    def set_latency(self, latency_ms):
        return self._call("POST", "settings", {"latency_ms": latency_ms})

    def stats(self):
        return self._call("GET", "stats")

    def reset_stats(self):
        return self._call("POST", "stats/reset")

    def simulate_inbound(self, page_id, sender, text, account_sid=None):
        """A customer (`sender`, a page-scoped user ID) writes `text` to the Facebook Page `page_id`."""
        return self._call("POST", "messenger/inbound", {"page_id": str(page_id), "sender": str(sender),
                                                         "text": text, "account_sid": account_sid})

    def webhooks(self, account_sid=None):
        """The webhooks the sandbox sent (or would have sent), oldest first."""
        return self._call("GET", "webhooks", account_sid=account_sid)["webhooks"]
