"""Sandbox throughput: simple authenticated GETs per second over loopback (target >= 1,000 req/s).

The server runs in its own process (as `flexops sandbox serve` would); the load comes from client processes with
keep-alive sessions. Baseline in the same run: the same load against a bare werkzeug app that returns a constant
body, so the ratio shows what the sandbox's auth + SQLite work costs on this machine.
"""
import base64
import http.client
import multiprocessing as mp
import os
import sys
import tempfile
import time


DURATION = 3.0
CLIENTS = 2


def _serve(kind, db_path, queue):
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    from flexops.sandbox.server import QuietHandler, SandboxServer

    if kind == "sandbox":
        server = SandboxServer(db_path)
        httpd = server.httpd
    else:
        httpd = make_server("127.0.0.1", 0, lambda env, start: Response('{"ok": true}')(env, start),
                            threaded=True, request_handler=QuietHandler)
    queue.put(httpd.server_port)
    httpd.serve_forever()


def _load(port, path, auth, deadline, queue):
    """A keep-alive loop on http.client: a light client, so the figure measures the server."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()} if auth else {}
    done = 0
    while time.time() < deadline:
        conn.request("GET", path, headers=headers)
        reply = conn.getresponse()
        body = reply.read()
        assert reply.status == 200, body
        done += 1
    queue.put(done)


def measure(kind, db_path, auth=None):
    queue = mp.Queue()
    server = mp.Process(target=_serve, args=(kind, db_path, queue), daemon=True)
    server.start()
    port = queue.get(timeout=30)
    path = f"/api/2010-04-01/Accounts/{auth[0]}.json" if auth else "/"
    deadline = time.time() + DURATION
    clients = [mp.Process(target=_load, args=(port, path, auth, deadline, queue)) for _ in range(CLIENTS)]
    started = time.time()
    for c in clients:
        c.start()
    total = sum(queue.get(timeout=60) for _ in clients)
    elapsed = time.time() - started
    for c in clients:
        c.join()
    server.terminate()
    return total / elapsed


def main():
    from flexops.sandbox import seed
    from flexops.sandbox.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.db")
        creds = seed.seed_demo(Store(db))
        sandbox_rps = measure("sandbox", db, (creds["account_sid"], creds["auth_token"]))
        bare_rps = measure("bare", db)
    return [("sandbox requests/s (simple GET, loopback)", round(sandbox_rps), ">= 1000", sandbox_rps >= 1000),
            ("sandbox / bare werkzeug throughput", round(sandbox_rps / bare_rps, 2), "(info)", True)]


if __name__ == "__main__":
    rows = main()
    for name, value, target, ok in rows:
        print(f"{name}\t{value}\t{target}")
    sys.exit(0 if all(ok for *_, ok in rows) else 1)
