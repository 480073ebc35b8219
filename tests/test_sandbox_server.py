"""The sandbox server's fast path: keep-alive connections, pooled SQLite connections, and the cached control
state (credentials, latency, faults) that must still see every change, whoever makes it."""
import base64
import http.client
import socket
import threading
import time
from urllib.parse import urlencode

import pytest

from flexops.sandbox.store import Store

PAGE = "messenger:777000111"


def _auth(sandbox, token=None):
    creds = f"{sandbox.demo['account_sid']}:{token or sandbox.demo['auth_token']}"
    return {"Authorization": "Basic " + base64.b64encode(creds.encode()).decode()}


def _account_path(sandbox):
    return f"/api/2010-04-01/Accounts/{sandbox.demo['account_sid']}.json"


def _exchange(conn, method, path, headers, body=None):
    conn.request(method, path, body=body, headers=headers)
    reply = conn.getresponse()
    return reply.status, reply.read(), reply


@pytest.fixture
def conn(sandbox):
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.server.port, timeout=10)
    yield connection
    connection.close()


def test_one_connection_serves_gets_and_posts_in_turn(sandbox, conn):
    """A POST's form body is consumed before the next request line, so the connection stays usable."""
    form = urlencode({"Type": "messenger", "Address": PAGE, "FriendlyName": "Kept alive"})
    headers = {**_auth(sandbox), "Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox))
    first_socket = conn.sock
    assert status == 200
    status, body, reply = _exchange(conn, "POST", "/conversations/v1/Configuration/Addresses", headers, form)
    assert status == 201 and b"Kept alive" in body and reply.getheader("Connection") is None
    status, body, _ = _exchange(conn, "GET", f"/conversations/v1/Configuration/Addresses/{PAGE}", _auth(sandbox))
    assert status == 200 and b"Kept alive" in body
    assert conn.sock is first_socket  # http.client reconnects silently when a server closes: it did not


def test_chunked_request_body_is_read_whole(sandbox, conn):
    form = urlencode({"Type": "messenger", "Address": PAGE}).encode()
    chunks = iter([form[:10], form[10:]])
    conn.request("POST", "/conversations/v1/Configuration/Addresses", body=chunks, encode_chunked=True,
                 headers={**_auth(sandbox), "Content-Type": "application/x-www-form-urlencoded"})
    reply = conn.getresponse()
    assert reply.status == 201, reply.read()
    reply.read()
    status, _, _ = _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox))
    assert status == 200


def test_http10_and_connection_close_requests_are_closed(sandbox):
    with socket.create_connection(("127.0.0.1", sandbox.server.port), timeout=10) as sock:
        sock.sendall(b"GET /__sandbox/health HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the server closes: recv returns b"" instead of blocking
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.server.port, timeout=10)
    status, _, reply = _exchange(conn, "GET", "/__sandbox/health", {"Connection": "close"})
    assert status == 200 and reply.getheader("Connection") == "close"


def test_bad_content_length_is_a_400(sandbox):
    with socket.create_connection(("127.0.0.1", sandbox.server.port), timeout=10) as sock:
        sock.sendall(b"POST /__sandbox/seed HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")


def test_stop_closes_kept_alive_connections(tmp_path):
    from flexops.sandbox.server import SandboxServer

    server = SandboxServer(tmp_path / "s.db").start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    assert _exchange(conn, "GET", "/__sandbox/health", {})[0] == 200
    server.stop()
    conn.sock.settimeout(5)
    assert conn.sock.recv(1) == b""  # closed by the server, not left hanging


def test_credentials_changed_by_another_connection_apply_at_once(sandbox, conn):
    """The cached logins reload when any writer (here another Store, as another process would) changes them."""
    assert _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox))[0] == 200
    other = Store(sandbox.store.path)
    with other.tx() as db:
        db.execute("UPDATE accounts SET auth_token = 'rotated' WHERE sid = ?", (sandbox.demo["account_sid"],))
    assert _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox))[0] == 401
    assert _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox, "rotated"))[0] == 200
    with other.tx() as db:
        db.execute("DELETE FROM api_keys")
    key_auth = {"Authorization": "Basic " + base64.b64encode(
        f"{sandbox.demo['api_key']}:{sandbox.demo['api_secret']}".encode()).decode()}
    assert _exchange(conn, "GET", _account_path(sandbox), key_auth)[0] == 401


def test_latency_and_faults_set_elsewhere_apply_at_once(sandbox, conn):
    other = Store(sandbox.store.path)
    assert _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox))[0] == 200
    other.set_setting("latency_ms", 150)
    started = time.monotonic()
    assert _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox))[0] == 200
    assert time.monotonic() - started >= 0.15
    other.set_setting("latency_ms", 0)
    from flexops.sandbox import faults

    faults.add(other, {"product": "api", "status": 503, "code": 20503, "times": 1})
    assert _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox))[0] == 503
    assert _exchange(conn, "GET", _account_path(sandbox), _auth(sandbox))[0] == 200  # times=1: spent
    faults.clear(other)
    assert not sandbox.store.control_state().has_faults


def test_threads_reuse_sqlite_connections(tmp_path):
    """A thread per client connection must not mean a new SQLite connection per client connection."""
    store = Store(tmp_path / "pool.db")
    used = set()

    def work():
        used.add(id(store._conn()))
        store.read("SELECT 1")

    for _ in range(20):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert len(used) == 1
