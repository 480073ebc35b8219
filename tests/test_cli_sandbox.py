"""`flexops sandbox serve` / `credentials`: a separate process serving the sandbox, reachable by the real SDK."""
import json
import os
import signal
import stat
import subprocess
import sys

import psutil
import pytest
import requests
from click.testing import CliRunner

from flexops.cli import main
from flexops.client import connect, sandbox_target
from flexops.sandbox.guard import is_loopback
from flexops.sandbox.store import Store


def serve(db, *args):
    """`flexops sandbox serve` in its own process; returns (process, url, control token) once it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "flexops.cli", "sandbox", "serve", "--port", "0", "--db", str(db),
                             *args], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first = proc.stdout.readline()
    assert first.startswith("flexops sandbox listening on http://127.0.0.1:"), first
    url = first.split()[-1]
    assert proc.stdout.readline().split() == ["export", f"FLEXOPS_SANDBOX_URL={url}"]
    name, _, token = proc.stdout.readline().split()[1].partition("=")
    assert name == "FLEXOPS_SANDBOX_TOKEN" and len(token) >= 40
    return proc, url, token


@pytest.mark.slow  # starts a process
def test_serve_prints_url_token_and_credentials_and_serves_the_sdk(tmp_path, monkeypatch):
    db = tmp_path / "served.db"
    proc, url, token = serve(db)
    try:
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("inet") if c.status == "LISTEN"]
        assert [(a.ip, a.port) for a in listening] == [("127.0.0.1", int(url.rsplit(":", 1)[1]))]
        monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", token)  # as the banner says: another process needs it
        client = connect(sandbox_target(url=url))
        assert client.flex_api.v1.configuration().fetch().status == "ok"
        client.conversations.v1.address_configurations.create(type="messenger", address="messenger:55555")
        result = CliRunner().invoke(main, ["sandbox", "credentials", "--url", url, "--json"])
        assert result.exit_code == 0
        creds = json.loads(result.output)
        assert creds["account_sid"] == client.account_sid and creds["control_token"] == token
        banner = [proc.stdout.readline().split() for _ in range(2)]
        assert banner == [["account", "SID:", creds["account_sid"]],
                          ["auth", "token:", creds["auth_token"], *banner[1][3:]]]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    # state survives the process: a new server on the same file sees the address, and keeps the token
    store = Store(db)
    assert store.get(store.setting("default_account"), "address_configuration", key="messenger:55555")
    assert Store.peek_control_token(db) == token
    # the database and its WAL files are the owner's alone: they hold every credential
    for path in (db, tmp_path / "served.db-wal", tmp_path / "served.db-shm"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.slow  # starts a process
def test_serve_refuses_a_non_loopback_address_without_allow_remote(tmp_path):
    db = tmp_path / "remote.db"
    done = subprocess.run([sys.executable, "-m", "flexops.cli", "sandbox", "serve", "--host", "0.0.0.0", "--port",
                           "0", "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "refusing to listen on 0.0.0.0" in done.stderr and "--allow-remote" in done.stderr
    assert done.stdout == "" and not db.exists()  # refused before anything was created or printed


def test_credentials_without_a_sandbox_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("FLEXOPS_SANDBOX_URL", raising=False)
    missing = tmp_path / "missing.db"
    result = CliRunner().invoke(main, ["sandbox", "credentials", "--db", str(missing)])
    assert result.exit_code == 1 and "no sandbox database at" in result.output
    assert not missing.exists()  # asking must not create an empty database

    Store(tmp_path / "empty.db")
    result = CliRunner().invoke(main, ["sandbox", "credentials", "--db", str(tmp_path / "empty.db")])
    assert result.exit_code == 1 and "no account yet" in result.output

    result = CliRunner().invoke(main, ["sandbox", "credentials", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 3 and "cannot reach the sandbox at http://127.0.0.1:9" in result.output
    assert not isinstance(result.exception, requests.RequestException)  # a clear line, not a traceback


def test_credentials_json_from_the_database(sandbox, monkeypatch):
    monkeypatch.delenv("FLEXOPS_SANDBOX_URL")
    result = CliRunner().invoke(main, ["sandbox", "credentials", "--db", sandbox.store.path, "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == {**{key: sandbox.demo[key]
                                            for key in ("account_sid", "auth_token", "api_key", "api_secret")},
                                         "control_token": sandbox.server.control_token}


def test_serve_help_says_it_listens_on_loopback():
    result = CliRunner().invoke(main, ["sandbox", "serve", "--help"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "[default: 127.0.0.1]" in text and "loopback" in text and "--allow-remote" in text
    assert "FLEXOPS_SANDBOX_TOKEN" in text
    assert "FLEXOPS_SANDBOX_URL" in text and "--db" in text and "credentials" in text


def test_only_loopback_addresses_count_as_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.10", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.20", "sandbox.example.com"]))


def test_help_explains_targets():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "FLEXOPS_TARGET" in result.output
