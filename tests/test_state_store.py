"""verify's state store (evidence_store, evidence_scan, silence, first_message) on the sandbox, through the real SDK:
the second run asks Twilio only about new conversations, a window bigger than one run's cap is covered over runs
(and says so meanwhile), a run killed mid-scan leaves a store the next run completes, silent pages warn by a stated
rule, and with the store off verify works as without one."""
import os
import re
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest

from flexops import addresses, checks, silence
from flexops.address_spec import MessengerAddress
from flexops.evidence_scan import stamp
from flexops.evidence_store import open_store, store_path
from flexops.sandbox.conversations.models import ConversationsBackend
from test_notebooks import html_shown, run  # noqa: F401  (fixture)

PAGES = ["110000000000001", "110000000000002", "110000000000003"]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def add_pages(client, sandbox, pages=PAGES):
    for page in pages:
        addresses.create(client, MessengerAddress.from_params(
            page_id=page, studio_flow_sid=sandbox.demo["messaging_flow_sid"]))


def seed(sandbox, conversations, state="closed"):
    """[(page, datetime)] as conversations customers started, through the sandbox's models, oldest first (the
    list's order is creation order, as on Twilio); closed, as Flex leaves them after the agent's wrap-up."""
    backend = ConversationsBackend(sandbox.store, sandbox.demo["account_sid"])
    service = backend.default_service_sid()
    sids = []
    with sandbox.store.tx() as db:
        for n, (page, when) in enumerate(sorted(conversations, key=lambda c: c[1])):
            at = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            conversation = backend.create_conversation(db, service, stamp=at, state=state)
            backend.add_participant(db, conversation["sid"], f"messenger:{9_000_000 + n}", f"messenger:{page}",
                                    "messenger", stamp=at)
            sids.append(conversation["sid"])
    return sids


class Requests:
    """Every request the client makes, by kind (`participants`, `conversation list`, ...)."""

    def __init__(self, client):
        self.urls = []
        client.http_client.listeners.append(lambda method, url, **_: self.urls.append(url))

    def take(self):
        urls, self.urls = self.urls, []
        return {"participants": sum(u.split("?")[0].endswith("/Participants") for u in urls),
                "conversation list": sum(u.split("?")[0].endswith("/Conversations") for u in urls), "all": len(urls)}


def rows_of(rows, check):
    return {r.subject[len("messenger:"):]: r for r in rows if r.check == check}


def test_the_second_run_asks_only_about_new_conversations(sandbox, client):
    add_pages(client, sandbox)
    seed(sandbox, [(PAGES[n % 2], NOW - timedelta(days=1 + n // 3, hours=n)) for n in range(30)])
    requests = Requests(client)
    first = rows_of(checks.verify(client, progress=False), "first message")
    cold = requests.take()
    assert cold["participants"] == 30
    assert first[PAGES[0]].status == first[PAGES[1]].status == "pass"
    assert first[PAGES[2]].status == "fail" and "no conversation from this page since" in first[PAGES[2]].detail
    sandbox.control.simulate_inbound(PAGES[2], "7712345678901234", "hi")
    sandbox.control.simulate_inbound(PAGES[0], "7712345678909999", "hi")
    second = rows_of(checks.verify(client, progress=False), "first message")
    warm = requests.take()
    assert warm["participants"] == 2, warm  # the two new conversations, nothing for the 30 known ones
    assert warm["conversation list"] == 2  # one page down to the watermark, and the path checks' active ones
    assert warm["all"] == cold["all"] - 30 + 2
    assert {page: row.status for page, row in second.items()} == dict.fromkeys(PAGES, "pass")
    assert requests.take()["all"] == 0
    checks.verify(client, progress=False)
    assert requests.take()["participants"] == 0


def test_evidence_beyond_the_cap_is_found_across_runs_and_the_capped_runs_say_so(sandbox, client):
    """A page whose only conversation is older than one run's cap is found by a later run; until the window is
    covered, pages without evidence are warnings naming the cap, then a page without any is a failure."""
    quiet, busy, never = PAGES
    add_pages(client, sandbox)
    seed(sandbox, [(quiet, NOW - timedelta(days=20))] + [(busy, NOW - timedelta(hours=n + 1)) for n in range(12)])
    requests = Requests(client)
    runs = []
    for _ in range(4):
        runs.append(rows_of(checks.verify(client, progress=False, max_conversations=5), "first message"))
        assert requests.take()["participants"] <= 5
    first = runs[0]
    assert first[busy].status == "pass"
    for page in (quiet, never):
        assert first[page].status == "warn", first[page]
        assert "cap of 5 conversations" in first[page].detail and "the next run continues" in first[page].detail
        assert "next run scans older conversations" in first[page].remedy
    assert runs[1][quiet].status == "warn"  # 10 of the 13 conversations scanned by now
    assert runs[2][quiet].status == "pass" and "created" in runs[2][quiet].detail
    assert runs[2][never].status == "fail" and "cap" not in runs[2][never].detail  # the window is covered now
    assert runs[3][quiet].status == "pass" and runs[3][never].status == "fail"
    coverage = open_store(client.account_sid).coverage("default")
    assert coverage.oldest.endswith("T00:00:00Z") and coverage.oldest <= stamp(NOW - timedelta(days=30))


class Killed(Exception):
    """The process dying mid-scan, as far as the scan can tell: not a Twilio error it could note and go on from."""


class KillAt:
    """A client listener whose `before` hook (run before each request leaves) kills the run at the nth
    participants request."""

    def __init__(self, nth):
        self.nth, self.seen, self.lock = nth, 0, threading.Lock()

    def before(self, method, url, **_):
        if url.split("?")[0].endswith("/Participants"):
            with self.lock:
                self.seen += 1
                if self.seen == self.nth:
                    raise Killed(f"killed at participants request {self.nth}")

    def __call__(self, **_):
        pass


def test_a_run_killed_mid_scan_leaves_a_store_the_next_run_completes(sandbox, client):
    add_pages(client, sandbox)
    older = [(PAGES[2], NOW - timedelta(days=10))]
    newer = [(PAGES[n % 2], NOW - timedelta(hours=n + 1)) for n in range(119)]  # 120: two list pages of 100
    sids = seed(sandbox, older + newer)
    killer = KillAt(105)  # on the second list page
    client.http_client.listeners.append(killer)
    with pytest.raises(Killed):
        checks.verify(client, progress=False)
    client.http_client.listeners.remove(killer)
    store = open_store(client.account_sid)
    coverage = store.coverage("default")
    assert store.known(sids) == set(sids[-100:])  # the first page only, whole
    assert coverage.oldest > stamp(NOW - timedelta(days=10))  # no watermark below what it did not scan
    requests = Requests(client)
    rows = rows_of(checks.verify(client, progress=False), "first message")
    assert requests.take()["participants"] == 20
    assert {page: row.status for page, row in rows.items()} == dict.fromkeys(PAGES, "pass")
    assert store.known(sids) == set(sids)


def test_concurrent_runs_for_one_account_share_the_store(sandbox):
    clients = [sandbox.client(), sandbox.client()]
    add_pages(clients[0], sandbox)
    seed(sandbox, [(PAGES[n % 3], NOW - timedelta(hours=3 * n + 1)) for n in range(150)])
    results, errors = [], []

    def run(client):
        try:
            results.append(rows_of(checks.verify(client, progress=False), "first message"))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 2
    assert all(row.status == "pass" for rows in results for row in rows.values())
    requests = Requests(clients[0])
    checks.verify(clients[0], progress=False)
    assert requests.take()["participants"] == 0
    with sqlite3.connect(store_path(clients[0].account_sid)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 150


def test_the_store_keeps_no_customer_address_and_no_secret(sandbox, client):
    add_pages(client, sandbox)
    sandbox.control.simulate_inbound(PAGES[0], "7712345678901234", "a private message")
    checks.verify(client, progress=False)
    path = store_path(client.account_sid)
    assert path.parent == __import__("pathlib").Path(os.environ["FLEXOPS_STATE_DIR"])
    data = b"".join(p.read_bytes() for p in path.parent.iterdir())
    for secret in ("7712345678901234", "a private message", client.password, sandbox.server.control_token):
        assert secret.encode() not in data
    with sqlite3.connect(path) as db:
        assert [r[2] for r in db.execute("SELECT * FROM conversations")] == [f"messenger:{PAGES[0]}"]


def test_with_the_store_off_verify_scans_like_without_one(sandbox, client, monkeypatch, tmp_path):
    add_pages(client, sandbox)
    seed(sandbox, [(PAGES[0], NOW - timedelta(days=2)), (PAGES[1], NOW - timedelta(days=1))])
    requests = Requests(client)
    for run in range(2):
        rows = rows_of(checks.verify(client, progress=False, state_dir="off"), "first message")
        assert requests.take()["participants"] == 2  # every run asks again
        assert rows[PAGES[0]].status == "pass" and rows[PAGES[2]].status == "fail"
        assert rows[PAGES[2]].detail == "no recent conversation from this page yet"
    monkeypatch.setenv("FLEXOPS_STATE_DIR", "off")
    checks.verify(client, progress=False)
    assert requests.take()["participants"] == 2
    checks.verify(client, progress=False, state_dir="")
    assert requests.take()["participants"] == 2
    assert not (tmp_path / "flexops-state").exists()
    checks.verify(client, progress=False, state_dir=tmp_path / "elsewhere")
    assert store_path(client.account_sid, tmp_path / "elsewhere").is_file()


# --- silent pages ----------------------------------------------------------------------------------------------

def daily(days_ago):
    return [NOW - timedelta(days=d, hours=1) for d in days_ago]


def test_a_steady_page_that_went_quiet_warns_a_new_or_irregular_one_does_not(sandbox, client):
    steady, new, irregular, busy = ["12000000000000" + str(n) for n in range(4)]
    add_pages(client, sandbox, [steady, new, irregular, busy])
    history = ([(steady, at) for at in daily(range(11, 31))]  # every day, then nothing for 11 days
               + [(new, at) for at in daily((11, 12, 13))]  # three days of traffic: too little history
               + [(irregular, at) for at in daily([11, 12, 13, 14, 30, 31, 32, 33])]  # quiet 16 days before
               + [(busy, at) for at in daily(range(0, 31))])
    seed(sandbox, history)
    rows = checks.verify(client, progress=False, since_days=40)
    silent = rows_of(rows, silence.CHECK)
    assert list(silent) == [steady]
    row = silent[steady]
    assert row.status == "warn"
    assert "usually a new conversation every 24 hours" in row.detail
    assert re.search(r"none for 11\.\d days", row.detail)  # 11 days 1 h, or more when the test runs late
    assert "disconnected in the Console" in row.detail and "password or 2FA change" in row.detail
    assert "Connect with Facebook" in row.remedy
    assert all(r.status == "pass" for r in rows_of(rows, "first message").values())


def stamps(times):
    return [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in times]


@pytest.mark.parametrize("active, quiet_days, warns", [
    (20, 3.9, False),  # daily page: not yet 4 × its 1-day gap
    (20, 4.1, True),
    (6, 30, False),  # fewer than MIN_ACTIVE_DAYS days with traffic: no rule applies
    (7, 4.1, True),
])
def test_the_silence_rule_for_a_daily_page(active, quiet_days, warns):
    last = NOW - timedelta(days=quiet_days)
    found = silence.judge("p", stamps(last - timedelta(days=d) for d in range(active)), NOW)
    assert (found is not None) == warns
    if warns:
        assert found.usual_gap == timedelta(days=1) and found.active_days == active


def test_the_silence_rule_scales_with_the_usual_gap_and_never_goes_below_48_hours():
    weekly = stamps(NOW - timedelta(days=7 * w + 1) for w in range(10))
    assert silence.judge("p", weekly, NOW + timedelta(days=26)) is None  # 27 days < 4 × 7
    assert silence.judge("p", weekly, NOW + timedelta(days=28)).usual_gap == timedelta(days=7)
    hourly = stamps(NOW - timedelta(hours=h) for h in range(24 * 10))  # 4 × 1 hour is under the 48-hour floor
    assert silence.judge("p", hourly, NOW + timedelta(hours=47)) is None
    assert silence.span(timedelta(minutes=40)) == "40 minutes" and silence.span(timedelta(hours=47)) == "47 hours"
    found = silence.judge("p", hourly, NOW + timedelta(hours=49))
    assert found is not None and "every 1 hour " in found.detail and "none for 2.0 days" in found.detail
    irregular = hourly + stamps([NOW - timedelta(days=30)])  # quiet for 20 days once before, and came back
    assert silence.judge("p", irregular, NOW + timedelta(days=15)) is None
    assert silence.judge("p", irregular, NOW + timedelta(days=21)) is not None


# --- where it shows: the report, the fleet, the runbook's parameter ---------------------------------------------

def test_the_report_shows_a_silent_page_and_a_first_message_the_capped_scan_has_not_reached(sandbox, client,
                                                                                            tmp_path):
    from flexops.cli import run_report

    steady, pending = PAGES[0], PAGES[1]
    add_pages(client, sandbox, [steady, pending])
    seed(sandbox, [(steady, at) for at in daily(range(11, 31))])
    df, written = run_report(target="sandbox", formats=("html", "md", "csv"), out_dir=tmp_path / "report",
                             verify=True, progress=False)
    notes = dict(zip(df["address"], df["verification"].astype(object) + " | " + df["verification_notes"]))
    assert notes[f"messenger:{steady}"].startswith("warn | ") and "page went silent: usually" in notes[
        f"messenger:{steady}"]
    page = written["html"].read_text(encoding="utf-8")
    assert "page went silent (see verification_notes)" in page
    assert "page went silent: usually a new conversation every 24 hours" in page
    # a busy account's first run, capped: the page not reached yet says so in the report too
    from flexops import reports
    capped = checks.verify(client, progress=False, max_conversations=0, state_dir=tmp_path / "cold")
    note = " · ".join(f"{r.check}: {r.detail}" for r in capped if r.subject == f"messenger:{pending}"
                      and r.status != "pass")
    frame = df.assign(verification_notes=[note if a == f"messenger:{pending}" else n
                                          for a, n in zip(df["address"], df["verification_notes"])])
    problems = dict((a, p) for a, _, p in reports.attention(frame))
    assert "first message not reached yet: the scan stopped at its cap" in problems[f"messenger:{pending}"]


def test_a_fleet_keeps_one_state_file_per_account(tmp_path, monkeypatch):
    from flexops import fleet
    from flexops.sandbox.control import SandboxControl
    from flexops.sandbox.server import SandboxServer

    with SandboxServer(tmp_path / "fleet.db") as server:
        demo = SandboxControl(server.url, token=server.control_token).seed("fleet", subaccounts=2)
        monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", server.control_token)
        from flexops.client import connect, sandbox_target
        main = connect(sandbox_target(url=server.url, account_sid=demo["account_sid"]))
        resolved = fleet.resolve(main, "all")
        fleet.verify(resolved, state_dir=tmp_path / "fleet-state")
        fleet.release(resolved, main)
    files = sorted(p.name for p in (tmp_path / "fleet-state").iterdir() if p.suffix == ".sqlite3")
    assert files == sorted(f"{s['account_sid']}.sqlite3" for s in demo["subaccounts"])


def test_the_runbook_parameter(tmp_path):
    from flexops.exceptions import ValidationError
    from flexops.params import verify_params

    assert verify_params(target="sandbox")["state_dir"] is None
    assert verify_params(target="sandbox", state_dir="OFF")["state_dir"] == "off"
    assert verify_params(target="sandbox", state_dir=str(tmp_path))["state_dir"] == str(tmp_path.resolve())
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError) as caught:
        verify_params(target="sandbox", state_dir=str(tmp_path / "file"))
    assert caught.value.parameter == "state_dir"


def test_a_participants_request_that_fails_is_retried_by_the_next_run_and_fails_no_page(sandbox, client):
    older, newer = PAGES[0], PAGES[1]
    add_pages(client, sandbox, [older, newer])
    failing, _ = seed(sandbox, [(older, NOW - timedelta(days=5)), (newer, NOW - timedelta(days=1))])
    sandbox.control.add_fault(product="conversations", method="GET", path=f".*/{failing}/Participants", status=403,
                              times=1)
    first = rows_of(checks.verify(client, progress=False), "first message")
    assert first[newer].status == "pass"
    assert first[older].status == "warn" and "the next run retries it" in first[older].detail, first[older]
    assert open_store(client.account_sid).known([failing]) == set()
    second = rows_of(checks.verify(client, progress=False), "first message")
    assert second[older].status == "pass" and failing in second[older].detail


def test_a_conversation_removed_while_scanning_belongs_to_no_page(sandbox, client):
    add_pages(client, sandbox, PAGES[:1])
    removed, kept = seed(sandbox, [(PAGES[0], NOW - timedelta(days=2)), (PAGES[0], NOW - timedelta(days=1))])
    sandbox.control.add_fault(product="conversations", method="GET", path=f".*/{removed}/Participants", status=404,
                              times=1)
    rows = rows_of(checks.verify(client, progress=False), "first message")
    assert rows[PAGES[0]].status == "pass" and kept in rows[PAGES[0]].detail
    assert open_store(client.account_sid).pages_of([removed]) == {removed: None}
    assert oct(store_path(client.account_sid).stat().st_mode & 0o777) == "0o600"


@pytest.mark.notebook
def test_runbook_20_shows_a_silent_page_and_keeps_its_store_where_told(sandbox, client, run, tmp_path):
    steady = PAGES[0]
    add_pages(client, sandbox, [steady])
    seed(sandbox, [(steady, at) for at in daily(range(11, 31))])
    folder = tmp_path / "nightly-state"
    done = run("20_verify_messenger_addresses.ipynb", target="sandbox", state_dir=str(folder))
    assert done.error is None, done.error  # a warning does not fail the run
    rows = {r["check"]: r for r in done.results["checks"]}
    silent = rows["page went silent"]
    assert silent["status"] == "warn" and re.search(r"none for 11\.\d days", silent["detail"])  # 11 days 1 h, or more
    assert rows["first message"]["status"] == "pass"
    assert "page went silent" in html_shown(done.output)
    assert [p.name for p in folder.glob("*.sqlite3")] == [f"{client.account_sid}.sqlite3"]
    off = run("20_verify_messenger_addresses.ipynb", target="sandbox", state_dir="off")
    assert off.error is None and off.results["parameters"]["state_dir"] == "off"
    assert "page went silent" not in {r["check"] for r in off.results["checks"]}  # no store, no history
    assert not (tmp_path / "flexops-state").exists()


def test_a_store_that_cannot_be_used_is_a_clear_error(sandbox, client, tmp_path):
    from flexops.exceptions import ConfigurationError

    add_pages(client, sandbox, PAGES[:1])
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ConfigurationError, match="FLEXOPS_STATE_DIR") as caught:
        checks.verify(client, progress=False, state_dir=tmp_path / "a-file")
    assert "cannot use the state store" in str(caught.value)
    checks.verify(client, progress=False, state_dir=tmp_path / "ok")
    other = "AC" + "0" * 32
    store_path(client.account_sid, tmp_path / "ok").rename(store_path(other, tmp_path / "ok"))
    with pytest.raises(ConfigurationError, match="belongs to account AC…"):
        open_store(other, tmp_path / "ok")
