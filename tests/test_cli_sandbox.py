"""`flexops sandbox serve` / `credentials`: a separate process serving the sandbox, reachable by the real SDK."""
import json
import os
import signal
import subprocess
import sys

from click.testing import CliRunner

from flexops.cli import main
from flexops.client import connect, sandbox_target


def test_serve_prints_url_and_credentials_and_serves_the_sdk(tmp_path):
    db = tmp_path / "served.db"
    proc = subprocess.Popen([sys.executable, "-m", "flexops.cli", "sandbox", "serve", "--port", "0", "--db", str(db)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = proc.stdout.readline()
        assert first.startswith("flexops sandbox listening on http://127.0.0.1:")
        url = first.split()[-1]
        client = connect(sandbox_target(url=url))
        assert client.flex_api.v1.configuration().fetch().status == "ok"
        client.conversations.v1.address_configurations.create(type="messenger", address="messenger:55555")
        result = CliRunner().invoke(main, ["sandbox", "credentials", "--url", url, "--json"])
        assert result.exit_code == 0
        assert json.loads(result.output)["account_sid"] == client.account_sid
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    # state survives the process: a new server on the same file sees the address
    from flexops.sandbox.store import Store
    store = Store(db)
    assert store.get(store.setting("default_account"), "address_configuration", key="messenger:55555")


def test_credentials_from_a_db_without_accounts_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["sandbox", "credentials", "--db", str(tmp_path / "empty.db")])
    assert result.exit_code != 0
    assert "no account yet" in result.output


def test_help_explains_targets():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "FLEXOPS_TARGET" in result.output
