"""Fleets through the real SDK on a `fleet` sandbox (a main account, three Flex subaccounts, the second broken):
resolution of "", all, a list, unknown / closed / suspended SIDs; a subaccount that fails is one failed row while
the others pass; one global bound on requests in flight, counted at the sandbox; the combined report; no
subaccount auth token in any row, message or report."""
import json
import threading
import time

import pytest
from bs4 import BeautifulSoup

from flexops import checks, fleet, reports
from flexops.client import connect, sandbox_target
from flexops.exceptions import ConnectionFailed, ValidationError
from flexops.params import report_params, verify_params
from flexops.sandbox.control import SandboxControl
from flexops.sandbox.server import SandboxServer


class FleetSandbox:
    def __init__(self, server):
        self.server, self.url, self.store = server, server.url, server.store
        self.control = SandboxControl(server.url)
        self.demo = self.control.seed("fleet")  # the main account's credentials, the subaccounts' SIDs

    def client(self, account_sid=None):
        return connect(sandbox_target(url=self.url, account_sid=account_sid))


class InFlight:
    """WSGI middleware counting the Twilio requests the sandbox is serving at once (the control plane aside)."""

    def __init__(self, app):
        self.app, self.now, self.most, self.total, self.lock = app, 0, 0, 0, threading.Lock()

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"].startswith("/__sandbox"):
            return self.app(environ, start_response)
        with self.lock:
            self.now += 1
            self.total += 1
            self.most = max(self.most, self.now)
        try:
            return list(self.app(environ, start_response))
        finally:
            with self.lock:
                self.now -= 1


@pytest.fixture
def fleet_sandbox(tmp_path, monkeypatch):
    """A fresh sandbox seeded with `fleet` (its main account is the default account), requests counted."""
    server = SandboxServer(tmp_path / "fleet.db").start()
    try:
        running = FleetSandbox(server)
        running.inflight = server.httpd.app = InFlight(server.app)
        monkeypatch.setenv("FLEXOPS_SANDBOX_URL", server.url)
        monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", server.control_token)
        monkeypatch.setenv("FLEXOPS_TARGET", "sandbox")
        yield running
    finally:
        server.stop()


def tokens(sandbox):
    return [sandbox.store.account(s["account_sid"])["auth_token"] for s in sandbox.demo["subaccounts"]]


def subs(sandbox):
    return [s["account_sid"] for s in sandbox.demo["subaccounts"]]


@pytest.mark.parametrize("value, expected", [("", ""), (None, ""), ("all", "all"), (" ALL ", "all"),
                                             ("AC" + "a" * 32 + ", AC" + "b" * 32, ["AC" + "a" * 32, "AC" + "b" * 32]),
                                             (["AC" + "c" * 32, "AC" + "c" * 32], ["AC" + "c" * 32])])
def test_accounts_parameter(value, expected):
    assert fleet.parse_accounts(value) == expected
    assert verify_params(target="sandbox", accounts=value)["accounts"] == expected


@pytest.mark.parametrize("value", ["AC123", "all,AC" + "a" * 32, "IG" + "a" * 32, 3.5])
def test_bad_accounts_are_refused_naming_the_parameter(value, tmp_path):
    with pytest.raises(ValidationError) as caught:
        report_params(target="sandbox", out_dir=str(tmp_path), accounts=value)
    assert caught.value.parameter == "accounts"


def test_blank_is_the_credentials_own_account_without_listing(fleet_sandbox):
    client = fleet_sandbox.client()
    before = fleet_sandbox.inflight.total
    resolved = fleet.resolve(client, "")
    assert [a.sid for a in resolved.accounts] == [client.account_sid] and resolved.accounts[0].client is client
    assert fleet_sandbox.inflight.total == before  # no call made


def test_all_is_every_subaccount_and_the_main_account_only_with_flex(fleet_sandbox, sandbox):
    resolved = fleet.resolve(fleet_sandbox.client(), "all")
    assert [a.sid for a in resolved.accounts] == subs(fleet_sandbox)  # the ISV's main account has no Flex
    assert all(a.client is not None and a.client.account_sid == a.sid for a in resolved.accounts)
    assert [a.name for a in resolved.accounts] == [s["friendly_name"] for s in fleet_sandbox.demo["subaccounts"]]
    own = fleet.resolve(sandbox.client(), "all")  # the demo account: Flex, no subaccounts
    assert [a.sid for a in own.accounts] == [sandbox.demo["account_sid"]]


def test_verify_all_one_broken_subaccount_fails_the_others_pass(fleet_sandbox):
    rows = fleet.verify(fleet.resolve(fleet_sandbox.client(), "all"))
    summary = {s["account_sid"]: s for s in fleet.account_summary(rows)}
    broken = fleet_sandbox.demo["broken_account_sid"]
    assert [summary[s]["status"] for s in subs(fleet_sandbox)] == ["pass", "fail", "pass"]
    assert summary[broken]["addresses"] == 3 and "flow published" in summary[broken]["failed_checks"]
    assert summary[broken]["remedy"] == "Open the flow in Console > Studio and click Publish."
    assert all(r.account_sid and r.account_name for r in rows)
    table = fleet.account_table(rows)
    assert list(table["status"]) == ["✓", "✗", "✓"] and list(table.columns[:2]) == ["account_name", "account_sid"]


def test_a_list_with_unknown_closed_and_suspended_sids(fleet_sandbox):
    first, second, third = subs(fleet_sandbox)
    fleet_sandbox.control.set_account_status(second, "closed")
    fleet_sandbox.control.set_account_status(third, "suspended")
    unknown = "AC" + "0" * 32
    rows = fleet.verify(fleet.resolve(fleet_sandbox.client(), [first, second, third, unknown]))
    summary = fleet.account_summary(rows)
    assert [s["account_sid"] for s in summary] == [first, second, third, unknown]
    assert [s["status"] for s in summary] == ["pass", "fail", "fail", "fail"]
    account_rows = {r.account_sid: r for r in rows if r.check == fleet.ACCOUNT_CHECK}
    assert set(account_rows) == {second, third, unknown}
    assert "closed" in account_rows[second].detail and "cannot be reopened" in account_rows[second].remedy
    assert "suspended" in account_rows[third].detail and "Reactivate" in account_rows[third].remedy
    assert "not an account" in account_rows[unknown].detail


def test_all_shows_a_suspended_subaccount_as_one_failed_row_while_the_others_pass(fleet_sandbox):
    first, broken, third = subs(fleet_sandbox)
    fleet_sandbox.control.set_account_status(third, "suspended")
    summary = {s["account_sid"]: s for s in fleet.account_summary(fleet.verify(
        fleet.resolve(fleet_sandbox.client(), "all")))}
    assert summary[first]["status"] == "pass" and summary[first]["passed"] == 33  # 3 addresses x (9 + 2 path checks)
    assert summary[third] == {**summary[third], "status": "fail", "failed": 1, "addresses": 0,
                              "failed_checks": "account"}


def test_refused_credentials_and_missing_flex_are_failed_rows(fleet_sandbox):
    client = fleet_sandbox.client()
    bare = client.api.v2010.accounts.create(friendly_name="new customer, Flex not set up").sid
    resolved = fleet.resolve(client, "all")
    first = subs(fleet_sandbox)[0]
    with fleet_sandbox.store.tx() as db:  # rotated after the listing: the subaccount's client is refused
        fleet_sandbox.store.update_account(db, first, auth_token="rotated" + "0" * 25)
    rows = fleet.verify(resolved)
    by_account = {s["account_sid"]: s for s in fleet.account_summary(rows)}
    assert by_account[first]["status"] == "fail" and "refused" in next(
        r.detail for r in rows if r.account_sid == first)
    assert by_account[bare]["failed_checks"] == "account"
    assert "Flex is not set up" in next(r.detail for r in rows if r.account_sid == bare)
    assert by_account[subs(fleet_sandbox)[2]]["status"] == "pass"


def test_one_global_bound_on_requests_in_flight(fleet_sandbox):
    fleet_sandbox.control.set_latency(30)
    counter = fleet_sandbox.inflight
    resolved = fleet.resolve(fleet_sandbox.client(), "all", max_in_flight=2)
    counter.most = 0
    rows = fleet.verify(resolved)
    assert counter.most == 2  # reached, never passed: the three accounts' clients share one gate
    assert {s["status"] for s in fleet.account_summary(rows)} == {"pass", "fail"}
    resolved = fleet.resolve(fleet_sandbox.client(), "all", max_in_flight=64)
    counter.most = 0
    fleet.verify(resolved)
    assert counter.most > 3  # unbounded enough, the accounts really are checked at the same time
    with pytest.raises(ValidationError):
        fleet.resolve(fleet_sandbox.client(), "all", max_in_flight=0)


def test_concurrent_fleet_is_faster_than_one_account_after_another(fleet_sandbox):
    fleet_sandbox.control.set_latency(40)
    resolved = fleet.resolve(fleet_sandbox.client(), "all")
    started = time.perf_counter()
    for account in resolved.accounts:
        checks.verify(account.client, progress=False)
    one_by_one = time.perf_counter() - started
    started = time.perf_counter()
    fleet.verify(resolved)
    assert time.perf_counter() - started < one_by_one * 0.75


def test_a_standard_api_key_is_told_it_needs_a_main_key(fleet_sandbox):
    fleet_sandbox.control.add_fault(product="api", method="GET", path=r"^/2010-04-01/Accounts\.json$", status=403,
                                    code=20003, message="Authenticate")
    with pytest.raises(ConnectionFailed) as caught:
        fleet.resolve(fleet_sandbox.client(), "all")
    assert "Main API key" in str(caught.value) and "403" in str(caught.value)


def test_combined_report_per_account_table_first_and_no_token(fleet_sandbox, tmp_path):
    df, figures = fleet.collect(fleet.resolve(fleet_sandbox.client(), "all"), verify=checks.verify_inventory)
    assert len(df) == 9 and set(df["account_sid"]) == set(subs(fleet_sandbox))
    assert [f["status"] for f in figures] == ["pass", "fail", "pass"] and figures[1]["flows_draft"] == 1
    written = reports.export(df, tmp_path)
    soup = BeautifulSoup(written["html"].read_text(encoding="utf-8"), "html.parser")
    headings = [h.get_text() for h in soup.find_all("h2")]
    assert headings[0] == "Accounts (3)" and headings[-1].startswith("Inventory")
    first_table = soup.find("table")
    assert [th.get_text() for th in first_table.find_all("th")][:3] == ["account_name", "account_sid", "status"]
    assert fleet_sandbox.demo["broken_account_sid"] in first_table.get_text()
    assert soup.find("img", alt="Addresses per account")
    meta = json.loads(written["json"].read_text())["metadata"]
    assert [a["account_sid"] for a in meta["accounts"]] == subs(fleet_sandbox)
    assert written["md"].read_text().split("\n")[4] == "## Accounts (3)"
    for path in written.values():
        data = path.read_bytes()
        assert not [t for t in tokens(fleet_sandbox) if t.encode() in data], f"a subaccount token in {path.name}"


def test_no_subaccount_token_in_rows_reprs_or_messages(fleet_sandbox):
    resolved = fleet.resolve(fleet_sandbox.client(), "all")
    rows = fleet.verify(resolved)
    texts = [repr(resolved), repr(resolved.accounts), json.dumps([r.to_dict() for r in rows]),
             fleet.account_table(rows).to_string(), repr([a.client.flexops_target for a in resolved.accounts])]
    assert not [t for t in tokens(fleet_sandbox) for text in texts if t in text]


# --- the runbooks, headless over the fleet (papermill + the flexops kernel) -------------------------------------

from test_notebooks import REPORT, VERIFY, html_shown, run  # noqa: E402,F401  (the runbook fixture)


@pytest.mark.notebook
def test_verify_runbook_with_accounts_all_shows_the_account_table_first(fleet_sandbox, run):
    result = run(VERIFY, target="sandbox", accounts="all")
    assert result.error is not None and result.error.ename == "CheckFailed"  # the broken subaccount fails the run
    per_account = result.results["accounts"]
    assert [a["account_sid"] for a in per_account] == subs(fleet_sandbox)
    assert [a["status"] for a in per_account] == ["pass", "fail", "pass"]
    assert result.results["parameters"]["accounts"] == "all"
    assert {r["account_sid"] for r in result.results["checks"]} == set(subs(fleet_sandbox))
    shown = html_shown(result.output)
    assert shown.index("Verification by account (3)") < shown.index("Rows that need work")
    data = result.output.read_bytes() + (result.output.parent / "results.json").read_bytes()
    assert not [t for t in tokens(fleet_sandbox) if t.encode() in data]


@pytest.mark.notebook
def test_report_runbook_with_accounts_all_writes_one_combined_report(fleet_sandbox, run, tmp_path):
    result = run(REPORT, target="sandbox", accounts="all", out_dir=str(tmp_path / "report"))
    assert result.error is None, result.error
    assert [a["status"] for a in result.results["accounts"]] == ["pass", "fail", "pass"]
    assert result.results["summary"]["total"] == 9
    page = (tmp_path / "report" / "inventory.html").read_text(encoding="utf-8")
    assert page.index("Accounts (3)") < page.index("Inventory (9)")
    for path in [*(tmp_path / "report").iterdir(), result.output]:
        assert not [t for t in tokens(fleet_sandbox) if t.encode() in path.read_bytes()], path.name


# --- the CLI ---------------------------------------------------------------------------------------------------

def test_report_accounts_all_on_the_cli(fleet_sandbox, tmp_path):
    from click.testing import CliRunner

    from flexops.cli import main

    done = CliRunner().invoke(main, ["report", "--accounts", "all", "--verify", "--out",
                                                     str(tmp_path / "r"), "--format", "json,md"])
    assert done.exit_code == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith(("pass", "fail"))]
    assert [line.split()[0] for line in lines] == ["pass", "fail", "pass"]
    assert "draft Studio flow" in lines[1]
    meta = json.loads((tmp_path / "r" / "inventory.json").read_text())["metadata"]
    assert [a["status"] for a in meta["accounts"]] == ["pass", "fail", "pass"]
    assert not [t for t in tokens(fleet_sandbox) if t in done.stdout + done.stderr]


def test_trace_all_accounts_on_the_cli(fleet_sandbox):
    from click.testing import CliRunner

    from flexops.cli import main

    runner = CliRunner()
    done = runner.invoke(main, ["trace", "--all", "--accounts", "all", "--json"])
    body = json.loads(done.stdout)
    assert {p["account_sid"] for p in body["pages"]} == set(subs(fleet_sandbox)) and len(body["pages"]) == 9
    reached = {p["page_id"]: p["reached_flex"] for p in body["pages"]}
    broken_page = next(s for s in fleet_sandbox.demo["subaccounts"] if s["broken"])["pages"][0]["page_id"]
    assert reached[broken_page] == 0 and sum(reached.values()) == 8  # no first message to the broken address
    assert body["requests"] > 0
    refused = runner.invoke(main, ["trace", "700000000000000", "--accounts", "all"])
    assert refused.exit_code == 2 and "--all" in refused.stderr


@pytest.mark.slow  # starts a process
def test_sandbox_serve_seed_fleet(tmp_path, monkeypatch):
    import signal

    from flexops.client import connect, sandbox_target
    from test_cli_sandbox import serve

    proc, url, token = serve(tmp_path / "served.db", "--seed", "fleet")
    try:
        monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", token)
        main_account = connect(sandbox_target(url=url))
        listed = main_account.api.v2010.accounts.list()
        assert len(listed) == 4 and {a.owner_account_sid for a in listed} == {main_account.account_sid}
        assert [a.sid for a in fleet.resolve(main_account, "all").accounts] == [
            a.sid for a in listed if a.sid != main_account.account_sid]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def test_control_plane_seed_fleet_checks_its_options(fleet_sandbox):
    from flexops.exceptions import FlexopsError

    made = fleet_sandbox.control.seed("fleet", subaccounts=2, addresses=1, first_messages=False)
    assert len(made["subaccounts"]) == 2 and made["broken_account_sid"] == made["subaccounts"][1]["account_sid"]
    assert "auth_token" not in json.dumps(made["subaccounts"])
    for bad in ({"subaccounts": 0}, {"subaccounts": "3"}, {"addresses": 1001}, {"first_messages": "yes"}):
        with pytest.raises(FlexopsError, match="must be"):
            fleet_sandbox.control.seed("fleet", **bad)
    with pytest.raises(FlexopsError, match="unknown seed"):
        fleet_sandbox.control.seed("galaxy")


@pytest.mark.notebook
def test_flexops_demo_fleet(tmp_path, monkeypatch):
    from flexops.demo import run_fleet_demo

    monkeypatch.delenv("FLEXOPS_RUN_DIR", raising=False)
    said = []
    steps = run_fleet_demo(tmp_path / "fleet", echo=said.append)
    assert [s.name for s in steps] == ["20 verify fleet", "30 report fleet"]
    for step in steps:
        assert [a["status"] for a in step.results["accounts"]] == ["pass", "fail", "pass"]
        assert step.summary.startswith("3 accounts: 2 ok, 1 failing")
    assert (tmp_path / "fleet" / "02_30_report_fleet" / "inventory.html").exists() and "HTML report" in said[-1]
