"""The audit trail: two sealed lines per mutation made through connect() inside a run (`sent` before the request
leaves, `answered` after), none for reads; the hash chain verifies and catches edits, deletions and reordering;
secrets never reach a line; a call never answered is counted as in flight."""
import json
import threading
import time

import pytest
from twilio.base.exceptions import TwilioRestException

from flexops import audit, connect, seen_state
from flexops.client import sandbox_target

PAGE = "104738392011234"


@pytest.fixture(autouse=True)
def fresh_state_cache():
    audit.seen.clear()
    yield
    audit.seen.clear()


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    monkeypatch.setenv("FLEXOPS_RUN_DIR", str(folder))
    monkeypatch.setenv("FLEXOPS_RUN_ID", "run-under-test")
    return folder


def run_client(sandbox):
    return connect(sandbox_target(url=sandbox.url))


def lines(folder):
    """One record per call: its answered line (or its sent line when never answered)."""
    return audit.calls(folder / audit.AUDIT_FILE)


def test_every_mutation_is_sent_then_answered_with_before_and_after(sandbox, run_dir):
    client = run_client(sandbox)
    addresses = client.conversations.v1.address_configurations
    with pytest.raises(TwilioRestException):
        addresses(f"messenger:{PAGE}").fetch()  # the create runbook looks first: seen absent
    created = addresses.create(type="messenger", address=f"messenger:{PAGE}", friendly_name="Acme",
                               auto_creation_enabled=True, auto_creation_type="studio",
                               auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"])
    addresses(created.sid).fetch()
    addresses(created.sid).update(friendly_name="Acme Outdoor")
    addresses(f"messenger:{PAGE}").delete()  # by address, never fetched that way: found through the SID cache

    create, update, delete = lines(run_dir)
    assert [(r["method"], r["product"], r["status"]) for r in (create, update, delete)] == [
        ("POST", "conversations", 201), ("POST", "conversations", 200), ("DELETE", "conversations", 204)]
    assert create["path"] == "/v1/Configuration/Addresses" and create["run_id"] == "run-under-test"
    assert create["before"] is None and create["before_seen"] is True
    assert create["after"]["sid"] == created.sid == create["sid"]
    assert create["parameters"]["Address"] == f"messenger:{PAGE}"
    assert update["before"]["friendly_name"] == "Acme" and update["after"]["friendly_name"] == "Acme Outdoor"
    assert delete["before"]["friendly_name"] == "Acme Outdoor" and delete["after"] is None
    assert delete["sid"] == created.sid
    assert [r["seq"] for r in (create, update, delete)] == [2, 4, 6]
    assert audit.verify(run_dir / audit.AUDIT_FILE) == (True, None, "6 line(s), chain intact")
    raw = audit.read(run_dir / audit.AUDIT_FILE)
    assert [r["event"] for r in raw] == ["sent", "answered"] * 3
    for sent, answered in zip(raw[::2], raw[1::2]):
        assert sent["call"] == answered["call"] and "status" not in sent and "after" not in sent
        assert {k: sent[k] for k in ("method", "product", "path", "parameters", "before", "before_seen")} == \
            {k: answered[k] for k in ("method", "product", "path", "parameters", "before", "before_seen")}
    assert len({r["call"] for r in raw}) == 3
    counts = audit.summary(run_dir / audit.AUDIT_FILE)
    assert (counts["lines"], counts["changes"], counts["failed"], counts["in_flight"]) == (6, 3, 0, 0)


def test_the_sent_line_is_written_before_the_request_leaves(sandbox, run_dir):
    client = run_client(sandbox)
    sandbox.control.add_fault(product="conversations", method="POST", path="^/v1/Configuration/Addresses$",
                              action="latency", latency_ms=800, times=1)
    worker = threading.Thread(target=client.conversations.v1.address_configurations.create,
                              kwargs={"type": "messenger", "address": f"messenger:{PAGE}"})
    worker.start()
    deadline = time.monotonic() + 5
    while not audit.read(run_dir / audit.AUDIT_FILE) and time.monotonic() < deadline:
        time.sleep(0.01)
    (sent,) = audit.read(run_dir / audit.AUDIT_FILE)  # the server is still holding the request
    assert sent["event"] == "sent" and sent["parameters"]["Address"] == f"messenger:{PAGE}"
    assert audit.summary(run_dir / audit.AUDIT_FILE)["in_flight"] == 1
    assert lines(run_dir) == [sent]  # a call never answered is represented by its sent line
    worker.join(timeout=10)
    sent_again, answered = audit.read(run_dir / audit.AUDIT_FILE)
    assert sent_again == sent and (answered["event"], answered["call"], answered["status"]) == (
        "answered", sent["call"], 201)
    assert audit.summary(run_dir / audit.AUDIT_FILE)["in_flight"] == 0


def test_a_mutation_that_cannot_be_audited_is_not_sent(sandbox, run_dir):
    client = run_client(sandbox)
    (run_dir / audit.AUDIT_FILE).unlink()
    (run_dir / audit.AUDIT_FILE).mkdir()  # the trail cannot be written
    with pytest.raises(OSError):
        client.conversations.v1.address_configurations.create(type="messenger", address=f"messenger:{PAGE}")
    assert client.conversations.v1.address_configurations.list() == []  # reads still work; nothing was created


def test_delete_of_something_never_fetched_has_no_before(sandbox, run_dir):
    sid = sandbox.client().conversations.v1.address_configurations.create(type="messenger",
                                                                         address=f"messenger:{PAGE}").sid
    audit.seen.clear()  # as if another process had created it
    (run_dir / audit.AUDIT_FILE).write_text("")
    run_client(sandbox).conversations.v1.address_configurations(sid).delete()
    (line,) = lines(run_dir)
    assert line["before"] is None and line["before_seen"] is False and line["sid"] == sid


def test_reads_write_nothing_and_secrets_stay_out(sandbox, run_dir):
    client = run_client(sandbox)
    token = sandbox.demo["auth_token"]
    account = client.api.v2010.accounts(sandbox.demo["account_sid"]).fetch()  # its body carries auth_token
    assert account.auth_token == token
    list(client.conversations.v1.address_configurations.stream())
    client.flex_api.v1.configuration().fetch()
    assert (run_dir / audit.AUDIT_FILE).read_text() == ""  # read-only: present and empty
    client.studio.v2.flows(sandbox.demo["draft_flow_sid"]).update(status="draft", commit_message=token)
    text = (run_dir / audit.AUDIT_FILE).read_text()
    assert token not in text and sandbox.demo["api_secret"] not in text
    sent, answered = (json.loads(line) for line in text.splitlines())
    assert sent["parameters"]["CommitMessage"] == answered["parameters"]["CommitMessage"] == audit.REDACTED
    assert all(token not in json.dumps(state) for _, state in audit.seen._items.values()
               if state is not seen_state.StateCache.ABSENT)


def test_failed_attempts_are_recorded(sandbox, run_dir):
    client = run_client(sandbox)
    sandbox.control.add_fault(product="conversations", method="POST", path="^/v1/Configuration/Addresses$",
                              action="error", status=503, code=20503, times=1)
    with pytest.raises(TwilioRestException):
        client.conversations.v1.address_configurations.create(type="messenger", address=f"messenger:{PAGE}")
    sandbox.control.add_fault(product="conversations", method="POST", path="^/v1/Configuration/Addresses$",
                              action="commit_then_drop", times=1)
    with pytest.raises(Exception):
        client.conversations.v1.address_configurations.create(type="messenger", address=f"messenger:{PAGE}")
    refused, dropped = lines(run_dir)
    assert (refused["status"], refused["error_code"], refused["after"]) == (503, 20503, None)
    assert dropped["status"] is None and dropped["error"]["type"].endswith("Error")
    assert dropped["event"] == "answered"  # the client saw it fail: not in flight, but its outcome is unknown
    counts = audit.summary(run_dir / audit.AUDIT_FILE)
    assert (counts["lines"], counts["changes"], counts["failed"], counts["in_flight"]) == (4, 0, 2, 0)


def test_no_run_no_audit(sandbox, monkeypatch):
    monkeypatch.delenv("FLEXOPS_RUN_DIR", raising=False)
    client = sandbox.client()
    assert not any(isinstance(l, audit.AuditListener) for l in client.http_client.listeners)


def test_attach_is_idempotent_and_explicit(sandbox, tmp_path):
    client = sandbox.client()
    path = tmp_path / "plan-audit.jsonl"
    first = audit.attach(client, path, run_id="apply-1")
    assert audit.attach(client, path, run_id="apply-1") is first and path.read_text() == ""
    client.studio.v2.flows(sandbox.demo["draft_flow_sid"]).update(status="draft")
    assert [(r["run_id"], r["event"]) for r in audit.read(path)] == [("apply-1", "sent"), ("apply-1", "answered")]


def test_calls_and_summary_pair_sent_and_answered_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = audit.AuditLog(path, "r1")
    legacy = {"method": "POST", "path": "/v1/Configuration/Addresses", "status": 201}  # written before `event`
    for entry in (legacy, {"event": "sent", "call": "a"}, {"event": "sent", "call": "b"},
                  {"event": "answered", "call": "b", "status": 503}, {"event": "sent", "call": "c"},
                  {"event": "answered", "call": "a", "status": 200}):
        log.append(entry)
    assert [(r.get("call"), r.get("event"), r.get("status")) for r in audit.calls(path)] == [
        (None, None, 201), ("a", "answered", 200), ("b", "answered", 503), ("c", "sent", None)]  # in send order
    assert audit.summary(path) == {"lines": 6, "changes": 2, "failed": 1, "in_flight": 1,
                                   "head": audit.read(path)[-1]["hash"]}
    assert audit.verify(path)[0]


def write_chain(path, n=4):
    log = audit.AuditLog(path, "r1")
    for i in range(n):
        log.append({"method": "POST", "path": f"/v2/Flows/{i}", "before": None, "after": {"n": i}})
    return path.read_text().splitlines()


def test_chain_detects_an_edited_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    text = write_chain(path)
    assert json.loads(text[0])["prev_hash"] == audit.ZERO_HASH
    text[2] = text[2].replace('"n":2', '"n":7')
    path.write_text("\n".join(text) + "\n")
    ok, line, message = audit.verify(path)
    assert (ok, line) == (False, 3) and "edited" in message


def test_chain_detects_a_resealed_edit_and_removed_or_reordered_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    text = write_chain(path)
    record = json.loads(text[1])
    record.pop("hash")
    record["after"] = {"n": 99}
    resealed = audit.seal({k: v for k, v in record.items() if k != "prev_hash"}, record["prev_hash"])
    path.write_text("\n".join([text[0], resealed, *text[2:]]) + "\n")
    assert audit.verify(path)[:2] == (False, 3)  # line 2 looks fine on its own; line 3 no longer chains to it
    path.write_text("\n".join([text[0], text[2], text[3]]) + "\n")
    assert audit.verify(path)[:2] == (False, 2)
    path.write_text("\n".join([text[1], text[0], *text[2:]]) + "\n")
    assert audit.verify(path)[:2] == (False, 1)
    path.write_text("\n".join(text) + "\nnot json\n")
    assert audit.verify(path)[:2] == (False, 5)
    inserted = audit.seal({"method": "DELETE", "path": "/v2/Flows/x"}, audit._sha(text[0]))
    path.write_text("\n".join([text[0], inserted, *text[1:]]) + "\n")  # a well-sealed line slipped in
    assert audit.verify(path)[:2] == (False, 3)


def test_redact():
    data = {"auth_token": "abc", "ApiSecret": "k", "Password": "p", "Authorization": "Basic x", "author_sid": "US1",
            "nested": [{"refresh_token": "r", "note": "contains abc inside"}], "empty_token": ""}
    assert audit.redact(data, secrets=["abc"]) == {
        "auth_token": "***", "ApiSecret": "***", "Password": "***", "Authorization": "***", "author_sid": "US1",
        "nested": [{"refresh_token": "***", "note": "contains *** inside"}], "empty_token": ""}
