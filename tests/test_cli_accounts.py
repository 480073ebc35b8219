"""`flexops accounts`: what a scheduler fans out over (the Airflow DAG's mapped tasks) — the fleet's accounts as
`accounts` names them, SIDs and names only, an account that cannot be checked listed with its problem."""
import json

import pytest
from click.testing import CliRunner

from flexops.cli import main
from flexops.sandbox.control import SandboxControl
from flexops.sandbox.server import SandboxServer


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    """A sandbox seeded with `fleet` only (its main account is the default one): the seed's answer."""
    server = SandboxServer(tmp_path / "fleet.db").start()
    try:
        made = SandboxControl(server.url, server.control_token).seed("fleet")
        monkeypatch.setenv("FLEXOPS_SANDBOX_URL", server.url)
        monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", server.control_token)
        monkeypatch.setenv("FLEXOPS_TARGET", "sandbox")
        made["server"] = server
        yield made
    finally:
        server.stop()


def accounts(*args):
    done = CliRunner().invoke(main, ["accounts", *args])
    return done


def secrets(fleet):
    store = fleet["server"].store
    return [fleet["server"].control_token] + [store.account(sid)["auth_token"] for sid in
                                              [fleet["account_sid"], *(s["account_sid"] for s in fleet["subaccounts"])]]


def test_all_lists_every_subaccount_by_sid_and_name_and_no_credential(fleet):
    subaccounts = [s["account_sid"] for s in fleet["subaccounts"]]
    done = accounts("--json")
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    assert [r["account_sid"] for r in rows] == subaccounts  # the main account has no Flex: not in `all`
    assert [r["account_name"] for r in rows] == [s["friendly_name"] for s in fleet["subaccounts"]]
    assert all(r["problem"] == r["remedy"] == "" for r in rows)
    assert accounts("--sids").stdout == ",".join(subaccounts) + "\n"
    table = accounts()
    assert all(sid in table.stdout for sid in subaccounts) and "3 accounts, 3 can be checked" in table.stderr
    for done in (accounts("--json"), accounts("--sids"), table):
        assert not [s for s in secrets(fleet) if s in done.output]


def test_an_account_that_cannot_be_checked_is_listed_with_its_problem(fleet):
    suspended = fleet["subaccounts"][0]["account_sid"]
    SandboxControl(fleet["server"].url, fleet["server"].control_token).set_account_status(suspended, "suspended")
    stranger = "AC" + "0" * 32
    rows = {r["account_sid"]: r for r in json.loads(accounts("--json").stdout)}
    assert len(rows) == 3 and rows[suspended]["problem"] == "the subaccount is suspended"
    assert "Reactivate" in rows[suspended]["remedy"]  # its task fails with the remedy instead of vanishing
    named = json.loads(accounts("--accounts", f"{suspended},{stranger}", "--json").stdout)
    assert [r["account_sid"] for r in named] == [suspended, stranger]
    assert named[1]["problem"].startswith("not an account the credentials of")


def test_blank_is_the_credentials_own_account_and_bad_input_is_exit_2(fleet):
    assert accounts("--accounts", "", "--sids").stdout.strip() == fleet["account_sid"]
    bad = accounts("--accounts", "all,AC123")
    assert bad.exit_code == 2 and "accounts" in bad.stderr
