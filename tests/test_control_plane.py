"""The `/__sandbox/` control plane over real HTTP: its actions, its Bearer token, the Host/Origin checks that keep web
pages (cross-site forms, DNS rebinding) away from the sandbox, loopback-only serving, the private database file,
and every way flexops finds the control token (in-process, FLEXOPS_SANDBOX_TOKEN, the database file) or says what
to set when it cannot."""
import http.client
import json
import os
import signal
import stat
import subprocess
import sys

import pytest
import requests

from flexops.client import connect, sandbox_target
from flexops.exceptions import ConfigurationError, ConnectionFailed
from flexops.sandbox.control import SandboxControl
from flexops.sandbox.server import SandboxServer

ACTIONS = [("POST", "reset"), ("POST", "seed"), ("POST", "accounts"), ("POST", "accounts/status"),
           ("GET", "credentials"), ("GET", "pages"), ("POST", "pages"), ("GET", "faults"), ("POST", "faults"),
           ("DELETE", "faults"), ("GET", "settings"), ("POST", "settings"), ("GET", "stats"), ("POST", "stats/reset"),
           ("POST", "messenger/inbound"), ("GET", "webhooks"), ("GET", "no/such/action")]


def raw(sandbox, method, path, headers=None, body=None):
    """One request with exactly these headers (http.client adds only Host, unless given, and Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.server.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        data = body.encode() if isinstance(body, str) else body
        conn.putheader("Content-Length", str(len(data or b"")))
        conn.endheaders(data)
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read() or b"null"), reply
    finally:
        conn.close()


def bearer(sandbox):
    return {"Authorization": f"Bearer {sandbox.server.control_token}"}


def accounts(sandbox):
    return len(sandbox.store.accounts())


# --- the token ----------------------------------------------------------------------------------------------

def test_health_needs_no_token_and_tells_nothing_more(sandbox):
    status, body, _ = raw(sandbox, "GET", "/__sandbox/health")
    assert status == 200 and body == {"ok": True, "accounts": 1}


@pytest.mark.parametrize("method,action", ACTIONS, ids=[f"{m} {a}" for m, a in ACTIONS])
def test_every_other_action_refuses_a_missing_or_wrong_token(sandbox, method, action):
    before = (accounts(sandbox), sandbox.store.setting("default_account"))
    for headers in ({}, {"Authorization": "Bearer wrong-token"},
                    {"Authorization": f"Basic {sandbox.demo['auth_token']}"},
                    {"Authorization": f"Bearer {sandbox.server.control_token}x"}):
        status, body, reply = raw(sandbox, method, f"/__sandbox/{action}",
                                  {**headers, "Content-Type": "application/json"}, '{"name": "demo"}')
        assert status == 401, (headers, body)
        assert "Authorization: Bearer" in body["error"] and reply.getheader("WWW-Authenticate").startswith("Bearer")
        assert sandbox.server.control_token not in json.dumps(body)
    assert (accounts(sandbox), sandbox.store.setting("default_account")) == before  # nothing happened


def test_with_the_token_unknown_actions_and_methods_are_told_apart(sandbox):
    status, body, _ = raw(sandbox, "GET", "/__sandbox/no/such/action", bearer(sandbox))
    assert status == 404 and "no control-plane action GET /__sandbox/no/such/action" in body["error"]
    status, body, reply = raw(sandbox, "PUT", "/__sandbox/faults", bearer(sandbox))
    assert status == 405 and reply.getheader("Allow") == "DELETE, GET, HEAD, POST"


def test_each_action_still_does_what_it_did(sandbox):
    control, demo = sandbox.control, sandbox.demo
    assert control.credentials() == {k: demo[k] for k in ("account_sid", "auth_token", "api_key", "api_secret")}
    other = control.create_account("second")
    assert control.credentials(other["account_sid"])["auth_token"] == other["auth_token"]
    control.set_account_status(other["account_sid"], "suspended")
    assert sandbox.store.account(other["account_sid"])["status"] == "suspended"
    with pytest.raises(Exception, match="status must be one of active, suspended, closed"):
        control.set_account_status(other["account_sid"], "frozen")
    with pytest.raises(Exception, match="unknown account AC0"):
        control.set_account_status("AC0", "active")
    control.add_page("555000111", "Added Page")
    assert {"page_id": "555000111", "name": "Added Page"} in control.pages()
    assert control.pages(other["account_sid"]) == []
    rule = control.add_fault(product="api", status=503, times=1)
    assert control.faults()[0]["id"] == rule["id"] and rule["code"] == 20503
    with pytest.raises(Exception, match="unknown fault rule fields: bogus"):
        control.add_fault(bogus=1)
    control.clear_faults()
    assert control.faults() == []
    assert control.set_latency(5) == {"latency_ms": 5.0}
    assert control._call("GET", "settings") == {"latency_ms": 5.0}
    for bad in ("fast", -1, True):
        with pytest.raises(Exception, match="latency_ms must be a number of milliseconds"):
            control.set_latency(bad)
    control.set_latency(0)
    sandbox.client().api.v2010.accounts(demo["account_sid"]).fetch()
    assert control.stats()["requests"] == {"GET api": 1} and control.stats()["total"] == 1
    control.reset_stats()
    assert control.stats()["total"] == 0
    reply = control.simulate_inbound(demo["pages"][0]["page_id"], "123456", "hello")
    assert reply["delivered"] is False and "no address configuration" in reply["reason"]
    with pytest.raises(Exception, match="sender is required"):
        control._call("POST", "messenger/inbound", {"page_id": "1"})
    assert control.webhooks() == []
    with pytest.raises(Exception, match="unknown seed"):
        control.seed("other")
    token = sandbox.server.control_token
    control.reset()
    assert accounts(sandbox) == 0 and sandbox.server.control_token == token  # the state goes, the token stays
    with pytest.raises(Exception, match="no account yet: POST /__sandbox/seed first"):
        control.credentials()
    assert control.seed()["account_sid"] == sandbox.store.setting("default_account")


# --- Host and Origin ------------------------------------------------------------------------------------------

FOREIGN_HOSTS = ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}",
                 "192.168.1.20:{port}"]


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_a_foreign_host_is_refused_on_both_sides(sandbox, host):
    """DNS rebinding: the browser sends the attacker's name as Host, whatever address it now resolves to."""
    host = host.format(port=sandbox.server.port)
    status, body, _ = raw(sandbox, "GET", "/__sandbox/credentials", {**bearer(sandbox), "Host": host})
    assert status == 403 and "Host" in body["error"] and "auth_token" not in body
    status, body, _ = raw(sandbox, "GET", f"/api/2010-04-01/Accounts/{sandbox.demo['account_sid']}.json",
                          {"Host": host, **sandbox.client().http_client.session.headers})
    assert status == 403 and body["code"] == 20403 and body["status"] == 403 and "more_info" in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_the_loopback_names_of_this_server_are_answered(sandbox, host):
    status, body, _ = raw(sandbox, "GET", "/__sandbox/credentials",
                          {**bearer(sandbox), "Host": host.format(port=sandbox.server.port)})
    assert status == 200 and body["account_sid"] == sandbox.demo["account_sid"]


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}",
                                    "http://localhost:{port}.evil.example"])
def test_a_foreign_origin_is_refused_even_with_the_token(sandbox, origin):
    headers = {**bearer(sandbox), "Origin": origin.format(port=sandbox.server.port)}
    status, body, _ = raw(sandbox, "GET", "/__sandbox/credentials", headers)
    assert status == 403 and "another origin" in body["error"]
    status, body, _ = raw(sandbox, "GET", "/conversations/v1/Configuration/Addresses", headers)
    assert status == 403 and body["code"] == 20403


def test_the_sandbox_own_origin_and_sec_fetch_site(sandbox):
    own = {**bearer(sandbox), "Origin": f"http://127.0.0.1:{sandbox.server.port}", "Sec-Fetch-Site": "same-origin"}
    assert raw(sandbox, "GET", "/__sandbox/faults", own)[0] == 200
    status, body, _ = raw(sandbox, "GET", "/__sandbox/faults", {**bearer(sandbox), "Sec-Fetch-Site": "cross-site"})
    assert status == 403 and "another site" in body["error"]


def test_a_cross_site_form_post_to_reset_changes_nothing(sandbox):
    """What `<form method=post action=http://127.0.0.1:PORT/__sandbox/reset>` on any web page makes a browser send:
    with its Origin (refused), or from a browser that sends none (no token: refused)."""
    form = {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site",
            "Origin": "http://evil.example"}
    assert raw(sandbox, "POST", "/__sandbox/reset", form, "name=demo")[0] == 403
    assert raw(sandbox, "POST", "/__sandbox/reset", {"Content-Type": "text/plain"}, '{"x": 1}')[0] == 401
    assert accounts(sandbox) == 1 and sandbox.control.credentials()["account_sid"] == sandbox.demo["account_sid"]


def test_the_sdk_through_localhost_and_127_0_0_1_is_answered(sandbox):
    for url in (sandbox.url, sandbox.url.replace("127.0.0.1", "localhost")):
        client = connect(sandbox_target(url=url))
        assert client.flex_api.v1.configuration().fetch().status == "ok"
        assert list(client.conversations.v1.address_configurations.list(limit=5)) == []


# --- serving ----------------------------------------------------------------------------------------------------

def test_a_non_loopback_bind_needs_allow_remote(tmp_path):
    with pytest.raises(ConfigurationError, match="refusing to listen on 0.0.0.0: not a loopback address"):
        SandboxServer(tmp_path / "remote.db", host="0.0.0.0")
    assert not (tmp_path / "remote.db").exists()
    with SandboxServer(tmp_path / "remote.db", host="0.0.0.0", allow_remote=True).start() as server:
        control = SandboxControl(f"http://127.0.0.1:{server.port}")
        control.seed()
        # remote clients name the machine as they know it: Host is not checked, the token and Origin still are
        named = {"Host": f"devbox.example:{server.port}"}
        url = f"http://127.0.0.1:{server.port}/__sandbox/credentials"
        assert requests.get(url, headers=named, timeout=10).status_code == 401
        assert requests.get(url, headers={**named, "Authorization": f"Bearer {control.token}"},
                            timeout=10).status_code == 200
        assert requests.get(url, headers={**named, "Authorization": f"Bearer {control.token}",
                                          "Origin": "http://evil.example"}, timeout=10).status_code == 403
        assert requests.get(url, headers={**named, "Authorization": f"Bearer {control.token}",
                                          "Origin": f"http://devbox.example:{server.port}"},
                            timeout=10).status_code == 200


def test_the_database_is_private_to_its_owner(tmp_path):
    with SandboxServer(tmp_path / "new.db") as server:
        SandboxControl(server.url).seed()
        for name in ("new.db", "new.db-wal", "new.db-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    with SandboxServer(old):
        pass
    assert stat.S_IMODE(old.stat().st_mode) == 0o600  # a database made before: tightened


# --- finding the token ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`flexops sandbox serve` in another process: nothing in this one knows its token."""
    db = tmp_path_factory.mktemp("served") / "sandbox.db"
    proc = subprocess.Popen([sys.executable, "-m", "flexops.cli", "sandbox", "serve", "--port", "0", "--db", str(db)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = proc.stdout.readline().split()[-1]
    proc.stdout.readline()
    token = proc.stdout.readline().split()[1].partition("=")[2]
    yield url, token, db
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    for name in ("FLEXOPS_SANDBOX_URL", "FLEXOPS_SANDBOX_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEXOPS_SANDBOX_DB", os.fspath(tmp_path / "not-there.db"))
    monkeypatch.chdir(tmp_path)  # and no .flexops/sandbox.db here
    return monkeypatch


def test_token_from_the_embedded_sandbox(clean_env, tmp_path):
    clean_env.setenv("FLEXOPS_SANDBOX_DB", os.fspath(tmp_path / "embedded.db"))
    target = sandbox_target()
    assert connect(target).flex_api.v1.configuration().fetch().status == "ok"
    assert SandboxControl(target.sandbox_url).pages()  # in-process: found without being told


def test_token_from_the_environment(served, clean_env):
    url, token, _ = served
    clean_env.setenv("FLEXOPS_SANDBOX_TOKEN", token)
    clean_env.setenv("FLEXOPS_SANDBOX_URL", url)
    assert connect(sandbox_target()).flex_api.v1.configuration().fetch().status == "ok"


def test_token_from_the_database_file(served, clean_env):
    url, token, db = served
    clean_env.setenv("FLEXOPS_SANDBOX_DB", os.fspath(db))
    assert SandboxControl(url).token == token
    assert connect(sandbox_target(url=url)).flex_api.v1.configuration().fetch().status == "ok"


def test_no_token_found_is_a_clear_error(served, clean_env):
    url, token, _ = served
    with pytest.raises(ConfigurationError) as caught:
        sandbox_target(url=url)
    assert "needs its control token" in str(caught.value) and "FLEXOPS_SANDBOX_TOKEN" in str(caught.value)
    assert SandboxControl(url).health()["ok"]  # health needs none
    clean_env.setenv("FLEXOPS_SANDBOX_TOKEN", "stale-" + token[:8])
    with pytest.raises(ConnectionFailed) as caught:
        SandboxControl(url).credentials()
    message = str(caught.value)
    assert "refused the control token from FLEXOPS_SANDBOX_TOKEN" in message and token[:8] not in message
