"""The HTTP client reads the proxy environment once per host, and still honours it."""
import http.server
import threading
import urllib.request

import pytest

from flexops.client import connect


class ForwardingProxy(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP proxy: forwards each absolute-URL GET and remembers its path."""

    seen = []

    def do_GET(self):  # noqa: N802 - http.server's name
        self.seen.append(self.path)
        request = urllib.request.Request(self.path, headers={k: v for k, v in self.headers.items()
                                                             if k.lower() not in ("host", "proxy-connection")})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request) as answer:
            body = answer.read()
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    ForwardingProxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ForwardingProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", ForwardingProxy.seen
    finally:
        server.shutdown()
        server.server_close()


def proxy_environment(monkeypatch, url, no_proxy=""):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)


def test_requests_go_through_the_proxy_of_the_environment(sandbox, proxy, monkeypatch):
    url, seen = proxy
    client = sandbox.client()  # (its credentials come from the control plane, before the proxy is set)
    proxy_environment(monkeypatch, url)
    assert client.flex_api.v1.configuration().fetch().status == "ok"
    assert client.conversations.v1.configuration().fetch().account_sid == sandbox.demo["account_sid"]
    assert [path.split("/", 3)[3] for path in seen] == ["flex-api/v1/Configuration",
                                                        "conversations/v1/Configuration"]


def test_no_proxy_is_honoured_and_the_environment_is_read_once_per_client(sandbox, proxy, monkeypatch):
    url, seen = proxy
    client = sandbox.client()
    proxy_environment(monkeypatch, url, no_proxy="127.0.0.1")
    client.flex_api.v1.configuration().fetch()
    assert seen == []  # NO_PROXY names the sandbox's host
    monkeypatch.delenv("NO_PROXY")
    client.flex_api.v1.configuration().fetch()
    assert seen == []  # the same client keeps what it read for that host
    connect(client.flexops_target).flex_api.v1.configuration().fetch()
    assert len(seen) == 1  # a new client reads the environment again
