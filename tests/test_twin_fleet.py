"""`flexops sandbox import --accounts all|AC…` with the `fleet` seed as the source (a main account without Flex,
three Flex subaccounts, the second broken): the twin holds the main account and the subaccounts, SIDs kept, each a
subaccount of the twin's main account with fresh credentials; a fleet verify and a plan per subaccount on the twin
equal the ones on the source; no source credential is in the twin's database or the command's output."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from flexops import fleet, plan, twin_fleet
from flexops.cli import main
from flexops.client import connect, sandbox_target
from flexops.exceptions import ValidationError
from flexops.sandbox.store import Store
from test_fleet import fleet_sandbox, subs  # noqa: F401  (fixture)
from test_plan import workdir  # noqa: F401  (fixture)
from test_twin import comparable, twin_server  # noqa: F401  (fixture)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"


def source_secrets(source):
    accounts = source.store.accounts()
    keys = [k["secret"] for a in accounts for k in source.store.api_keys(a["sid"])]
    return [a["auth_token"] for a in accounts] + keys + [source.server.control_token]


def fleet_rows(client):
    resolved = fleet.resolve(client, "all")
    try:
        return [r.to_dict() for r in fleet.verify(resolved)]
    finally:
        fleet.release(resolved, client)


def test_a_twin_of_the_fleet_verifies_and_plans_like_the_source(fleet_sandbox, tmp_path, twin_server):
    source = fleet_sandbox.client()
    copied = twin_fleet.import_accounts(source, tmp_path / "twin.db", "all", conversations=20)
    sub_sids = subs(fleet_sandbox)
    assert [c.sid for c in copied] == [source.account_sid, *sub_sids]
    assert [c.role for c in copied] == ["main", "subaccount", "subaccount", "subaccount"]
    assert [(c.counts["conversations"], c.counts["open tasks"]) for c in copied] == [(0, 0), (3, 3), (2, 2), (3, 3)]

    twin_db = Store(tmp_path / "twin.db")
    on_twin = {a["sid"]: a for a in twin_db.accounts()}
    assert set(on_twin) == {source.account_sid, *sub_sids}
    assert all(on_twin[sid]["owner_sid"] == source.account_sid for sid in sub_sids)
    assert on_twin[source.account_sid]["owner_sid"] is None

    server = twin_server(tmp_path / "twin.db")
    mirror = connect(sandbox_target(url=server.url))
    assert mirror.account_sid == source.account_sid
    listed = {a.sid: a for a in mirror.api.v2010.accounts.list()}  # the twin's main account lists its subaccounts
    for c in copied[1:]:
        assert listed[c.sid].auth_token == c.creds["auth_token"]
        assert listed[c.sid].owner_account_sid == source.account_sid

    on_source, twin_rows = fleet_rows(source), fleet_rows(mirror)
    assert [r["account_sid"] for r in twin_rows] == [r["account_sid"] for r in on_source]
    assert any(r["status"] == "fail" for r in on_source)  # the broken subaccount is broken on the twin too
    for a, b in zip(twin_rows, on_source):
        assert a == b, (a, b)
    assert twin_rows == on_source

    for sid in sub_sids:
        there, here = (connect(sandbox_target(url=url, account_sid=sid)) for url in (fleet_sandbox.url, server.url))
        assert comparable(plan.make_plan(here, EXAMPLE)) == comparable(plan.make_plan(there, EXAMPLE)), sid

    data = b"".join(p.read_bytes() for p in tmp_path.glob("twin.db*"))
    for secret in source_secrets(fleet_sandbox):
        assert secret.encode() not in data, "a source credential is in the twin's database"


def test_chosen_subaccounts_and_a_suspended_one(fleet_sandbox, tmp_path, workdir, twin_server, monkeypatch):
    first, broken, third = subs(fleet_sandbox)
    fleet_sandbox.store.set_account_status(third, "suspended")
    result = CliRunner().invoke(main, ["sandbox", "import", "--db", str(tmp_path / "twin.db"), "--target",
                                       "sandbox", "--accounts", f"{first},{third}", "--no-progress"])
    assert result.exit_code == 0, result.output
    twin_db = Store(tmp_path / "twin.db")
    statuses = {a["sid"]: a["status"] for a in twin_db.accounts()}
    assert statuses == {fleet_sandbox.demo["account_sid"]: "active", first: "active", third: "suspended"}
    assert twin_db.pages(first)
    assert not twin_db.pages(third)  # a suspended subaccount cannot be read: copied without configuration
    for line in (first, third):
        assert f"subaccount {line}" in result.output
    assert "address configurations" in result.output
    for secret in source_secrets(fleet_sandbox):
        assert secret not in result.output
    server = twin_server(tmp_path / "twin.db")  # a repair rehearsed on one subaccount of the twin
    monkeypatch.setenv("FLEXOPS_SANDBOX_URL", server.url)
    monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", server.control_token)
    monkeypatch.setenv("FLEXOPS_SANDBOX_ACCOUNT", first)
    assert connect("sandbox").account_sid == first
    checked = CliRunner().invoke(main, ["routing", "check", "--target", "sandbox", "--json"])
    flex = connect(sandbox_target(url=fleet_sandbox.url, account_sid=first)).flex_api.v1.configuration().fetch()
    assert checked.exit_code == 0 and flex.taskrouter_workspace_sid in checked.output, checked.output


def test_refusals_before_anything_is_written(fleet_sandbox, tmp_path, workdir):
    source = fleet_sandbox.client()
    with pytest.raises(ValidationError, match="not subaccounts of the main account"):
        twin_fleet.import_accounts(source, tmp_path / "twin.db", "AC" + "0" * 32)
    assert not Store(tmp_path / "twin.db").accounts()
    bad = CliRunner().invoke(main, ["sandbox", "import", "--db", str(tmp_path / "other.db"), "--accounts",
                                    "all,AC" + "1" * 32])
    assert bad.exit_code == 2 and "cannot be combined" in bad.output


def test_a_subaccount_that_cannot_be_read_stops_the_import_with_nothing_written(fleet_sandbox, tmp_path, workdir):
    broken = subs(fleet_sandbox)[2]
    fleet_sandbox.control.add_fault(method="GET", path=f"/Accounts/{broken}\\.json$", status=403, code=20403,
                                    message="Forbidden")
    result = CliRunner().invoke(main, ["sandbox", "import", "--db", str(tmp_path / "twin.db"), "--target",
                                       "sandbox", "--accounts", "all", "--no-progress"])
    assert result.exit_code == 3, result.output
    assert "nothing written" in result.output and broken[-4:] in result.output
    assert not Store(tmp_path / "twin.db").accounts()
