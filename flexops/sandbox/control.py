"""A small client for the sandbox control plane (`/__sandbox/...`): seed, pages, faults, latency, simulations."""
import requests

from ..exceptions import ConnectionFailed, FlexopsError


class SandboxControl:
    def __init__(self, url, timeout=30):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _call(self, method, action, body=None, **params):
        try:
            reply = self.session.request(method, f"{self.url}/__sandbox/{action}", json=body,
                                         params={k: v for k, v in params.items() if v is not None} or None,
                                         timeout=self.timeout)
            data = reply.json()
        except requests.RequestException as exc:  # JSON decoding errors included: not a sandbox at this URL
            raise ConnectionFailed(f"cannot reach the sandbox at {self.url}: {type(exc).__name__}") from None
        if reply.status_code >= 400:
            raise FlexopsError(f"sandbox {action}: {data.get('error', reply.status_code)}")
        return data

    def health(self):
        return self._call("GET", "health")

    def reset(self):
        return self._call("POST", "reset")

    def seed(self, name="demo"):
        return self._call("POST", "seed", {"name": name})

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
