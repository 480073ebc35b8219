"""Who may talk to the sandbox at all: requests for this server's own loopback address, from no foreign web page.

A web page the engineer visits can make the browser send requests to `http://127.0.0.1:<port>` (a form POST) or,
through DNS rebinding, to a name of its own that now resolves to 127.0.0.1. Browsers always say where such a
request is for (`Host`) and, for cross-site requests, where it comes from (`Origin`, `Sec-Fetch-Site`), so the
sandbox answers only requests whose Host names this server by a loopback name and port, and none that come from
another origin. Jupyter Server's Host/Origin checks are the model; as there, `allow_remote` turns the Host check
off (a remote client names the machine as it knows it), while foreign origins stay refused.
Clients that are not browsers (the twilio SDK, requests, http.client) send the Host of the URL they were given
and no Origin, so they pass.
"""
import ipaddress

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
CROSS_SITE = ("cross-site", "same-site")  # Sec-Fetch-Site of a request made by a page of another origin


def is_loopback(host):
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost
        return False


class LocalGuard:
    """`refusal(environ)` is None for a request this sandbox should answer, else why it is refused.

    `port=None` (an app not yet bound to a server, e.g. under werkzeug's test client) accepts the loopback names
    on any port."""

    def __init__(self, host="127.0.0.1", port=None, allow_remote=False):
        names = set(LOOPBACK_NAMES)
        if is_loopback(host):
            names.add(f"[{host}]" if ":" in host else host)
        self.names = frozenset(names)
        self.port = port
        self.allow_remote = allow_remote
        hosts = set()
        if port is not None:
            hosts = {f"{name}:{port}" for name in names}
            if port == 80:
                hosts |= names
        self.hosts = frozenset(hosts)
        self.origins = frozenset(f"http://{h}" for h in hosts)

    def host_ok(self, host):
        if host in self.hosts or self.allow_remote:
            return True
        if self.port is None:
            name = host.lower().rsplit(":", 1)[0] if not host.endswith("]") else host.lower()
            return name in self.names
        return host.lower() in self.hosts

    def refusal(self, environ):
        host = environ.get("HTTP_HOST")  # HTTP/1.0 clients may send none: no browser does
        if host is not None and not self.host_ok(host):
            return f"this sandbox does not answer requests for Host {host!r}: use {self.example()}"
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self.origins and not (
                self.port is None and origin.startswith("http://") and self.host_ok(origin[7:])) and not (
                self.allow_remote and host is not None and origin == f"http://{host}"):
            return f"this sandbox does not answer requests from web pages of another origin ({origin[:100]!r})"
        if environ.get("HTTP_SEC_FETCH_SITE") in CROSS_SITE:
            return "this sandbox does not answer requests made by web pages of another site"
        return None

    def example(self):
        return f"http://127.0.0.1:{self.port}" if self.port is not None else "a loopback address"
