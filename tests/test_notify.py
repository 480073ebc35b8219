"""Notifications through apprise to real receivers on loopback: a JSON webhook (an HTTP server) and e-mail (an
aiosmtpd SMTP server without TLS), sent by `flexops apply`/`rollback`/`report` (`flexops run`: test_secrets.py).
The URL is a secret: it is refused by position, recorded by scheme and host only, and never appears in a run
folder, the dashboard or the command's output; a notifier that fails never changes the exit code."""
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from flexops import notify
from flexops.atomic import write_json
from flexops.cli import main
from receivers import MailReceiver, WebhookReceiver, free_port

HOOK_SECRET = "tok_NOTIFY_hook_3b9f1e7a2c5d"
MAIL_SECRET = "pw_NOTIFY_mail_8e2d4f6a1b3c"


def hook_url(receiver):
    return f"json://127.0.0.1:{receiver.port}/hooks/{HOOK_SECRET}"


def mail_url(receiver):
    return (f"mailto://flexops:{MAIL_SECRET}@127.0.0.1:{receiver.port}?mode=insecure&from=flexops@example.com"
            "&to=ops@example.com")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLEXOPS_RUNS_DIR", os.fspath(tmp_path / "runs"))
    monkeypatch.setenv("FLEXOPS_LOCK_DIR", os.fspath(tmp_path / "locks"))
    monkeypatch.delenv("FLEXOPS_NOTIFY", raising=False)
    monkeypatch.delenv("FLEXOPS_NOTIFY_ON", raising=False)
    return tmp_path


def desired(folder, page="600001"):
    path = Path(folder) / "inventory.yaml"
    path.write_text(f'defaults:\n  studio_flow: Messaging Flow\naddresses:\n  - page_id: "{page}"\n'
                    f'    friendly_name: "Page {page}"\n')
    return path


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def the_run(workdir):
    (folder,) = [p for p in (workdir / "runs").iterdir() if p.is_dir()]
    return folder, json.loads((folder / "manifest.json").read_text())


def assert_no_secret(folder, *texts):
    for path in (p for p in Path(folder).rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert HOOK_SECRET.encode() not in data and MAIL_SECRET.encode() not in data, f"secret in {path.name}"
    for text in texts:
        assert HOOK_SECRET not in text and MAIL_SECRET not in text


def test_urls_come_from_the_options_else_from_flexops_notify():
    env = {"FLEXOPS_NOTIFY": "json://127.0.0.1:1/a, mailto://u:p@example.com  slack://TA/TB/TC"}
    assert notify.urls_from((), env) == ["json://127.0.0.1:1/a", "mailto://u:p@example.com", "slack://TA/TB/TC"]
    assert notify.urls_from(("json://127.0.0.1:2/b",), env) == ["json://127.0.0.1:2/b"]
    assert notify.urls_from((), {}) == [] and notify.urls_from((), {"FLEXOPS_NOTIFY": "  "}) == []


def test_only_the_scheme_and_a_real_host_name_are_public():
    assert notify.public(f"json://127.0.0.1:8/hooks/{HOOK_SECRET}") == {"scheme": "json", "host": "127.0.0.1"}
    assert notify.public(f"mailtos://me:{MAIL_SECRET}@smtp.example.com") == {"scheme": "mailtos",
                                                                            "host": "smtp.example.com"}
    # for these services the "host" of the URL is the token itself
    assert notify.public("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F")["host"] == "(not shown)"
    assert notify.public("tgram://123456789:ABCdefGhIJKlmNoPQRsTUVwxyZ/12315544")["host"] == "(not shown)"


def test_when_to_notify():
    assert notify.outcome(0) == "success" and notify.outcome(0, 2) == "warning" and notify.outcome(3) == "failure"
    assert [notify.wanted("failure", how) for how in ("failure", "warning", "success")] == [True, False, False]
    assert [notify.wanted("warning", how) for how in ("failure", "warning", "success")] == [True, True, False]
    assert [notify.wanted("always", how) for how in ("failure", "warning", "success")] == [True, True, True]


def test_a_bad_url_is_refused_before_anything_runs_and_is_not_echoed(workdir):
    result = cli("apply", desired(workdir), "--yes", "--target", "sandbox", "--notify", f"nope://{HOOK_SECRET}")
    assert result.exit_code == 2, result.output
    assert "notify URL #1 (scheme nope://)" in result.output
    assert HOOK_SECRET not in result.output
    assert not (workdir / "runs").exists()  # nothing ran
    incomplete = cli("apply", desired(workdir), "--yes", "--notify", "json://127.0.0.1:1/ok", "--notify",
                     f"slack://{HOOK_SECRET}")  # a known scheme, but a Slack URL needs three tokens
    assert incomplete.exit_code == 2 and "notify URL #2 (scheme slack://)" in incomplete.output
    assert HOOK_SECRET not in incomplete.output and not (workdir / "runs").exists()


def test_a_run_message_names_the_failing_checks_their_remedies_and_the_report(tmp_path):
    folder = tmp_path / "20260101T000000Z-20_verify-abc123"
    folder.mkdir()
    write_json(folder / "manifest.json", {
        "run_id": folder.name, "status": "failed", "exit_code": 1, "duration_s": 4.2, "host": "cron1",
        "notebook": {"path": "notebooks/20_verify_messenger_addresses.ipynb"},
        "target": {"kind": "twilio", "account": "AC…cdef"},
        "error": {"ename": "CheckFailed", "evalue": "2 of 3 verification checks failed\nmore"}})
    checks = [{"subject": f"messenger:{n}", "check": "Studio flow", "status": "fail", "symbol": "✗",
               "detail": f"flow {n} is a draft", "remedy": f"Publish flow {n}"} for n in range(7)]
    write_json(folder / "results.json", {"checks": [{"subject": "messenger:x", "check": "ok", "status": "pass"}]
                                         + checks, "summary": {"passed": 1, "failed": 7, "warnings": 0}})
    (folder / "output.html").write_text("<html></html>")
    title, body, how = notify.run_message(folder)
    assert how == "failure" and title.startswith("flexops FAILURE: 20_verify_messenger_addresses.ipynb")
    assert "twilio account AC…cdef" in title and "Where: twilio account AC…cdef (on cron1)" in body
    assert "Ended: failed (exit 1) after 4.2 s" in body and "Error: CheckFailed: 2 of 3 verification" in body
    assert "messenger:0: Studio flow: flow 0 is a draft\n  Remedy: Publish flow 0" in body
    assert "Publish flow 4" in body and "Publish flow 5" not in body and "... and 2 more in results.json" in body
    assert f"Report: {folder / 'output.html'}" in body and f"Run folder: {folder}" in body


def test_a_fleet_run_message_names_the_failing_accounts(tmp_path):
    """One verification per account (the Airflow DAG's mapped tasks): the title and the lines name the customer,
    not only the main account whose credentials ran it."""
    folder = tmp_path / "20260101T000000Z-20_verify-def456"
    folder.mkdir()
    sid, other = "AC" + "1" * 28 + "beef", "AC" + "2" * 28 + "cafe"
    write_json(folder / "manifest.json", {"status": "failed", "exit_code": 1, "notebook": {"path": "20_verify.ipynb"},
                                          "target": {"kind": "twilio", "account": "AC…cdef"}})
    row = {"account_sid": sid, "account_name": "Contoso", "subject": "messenger:1", "check": "flow published",
           "status": "fail", "detail": "draft", "remedy": "Publish it"}
    write_json(folder / "results.json", {"checks": [row], "accounts": [
        {"account_sid": sid, "account_name": "Contoso", "status": "fail", "failed_checks": "flow published",
         "remedy": "Publish it"}]})
    title, body, _ = notify.run_message(folder)
    assert title.endswith("on twilio account AC…cdef for Contoso (AC…beef)")
    assert "Accounts: 1, 1 failing\n- fail Contoso (AC…beef): flow published\n  Remedy: Publish it" in body
    assert "- fail Contoso (AC…beef) messenger:1: flow published: draft" in body and sid not in body
    write_json(folder / "results.json", {"accounts": [
        {"account_sid": sid, "account_name": "", "status": "pass"},
        {"account_sid": other, "status": "fail", "problem": "the subaccount is suspended", "remedy": "Reactivate"}]})
    title, body, _ = notify.run_message(folder)
    assert " for " not in title and "Accounts: 2, 1 failing\n- fail AC…cafe: the subaccount is suspended" in body
    assert "AC…beef" not in body  # a passing account is not news


def test_apply_notifies_a_webhook_and_by_mail_recording_only_scheme_and_host(sandbox, workdir):
    with WebhookReceiver() as hook, MailReceiver() as mail:
        result = cli("apply", desired(workdir), "--yes", "--notify-on", "always",
                     "--notify", hook_url(hook), "--notify", mail_url(mail))
        assert result.exit_code == 0, result.output
    folder, manifest = the_run(workdir)
    ((path, headers, body),) = hook.received
    assert path == f"/hooks/{HOOK_SECRET}"  # it reached the URL's own endpoint
    assert body["type"] == "success" and body["title"].startswith("flexops SUCCESS: flexops apply on sandbox account")
    assert "What: flexops apply" in body["message"] and f"Run folder: {folder}" in body["message"]
    (message,) = mail.messages
    assert mail.logins == [("flexops", MAIL_SECRET)]  # the URL's login was used, over plain SMTP
    assert message["To"] == "ops@example.com" and message["Subject"].startswith("flexops SUCCESS: flexops apply")
    assert manifest["notifications"] == [
        {"scheme": "json", "host": "127.0.0.1", "sent": True, "at": manifest["notifications"][0]["at"]},
        {"scheme": "mailto", "host": "127.0.0.1", "sent": True, "at": manifest["notifications"][1]["at"]}]
    assert "notify" not in json.dumps(manifest["parameters"])  # the options never reach the manifest
    assert "notified json://127.0.0.1" in result.output
    assert (workdir / "runs" / "index.html").is_file()  # the dashboard was refreshed
    assert_no_secret(workdir / "runs", result.output)


def test_by_default_only_a_failure_notifies(sandbox, workdir):
    with WebhookReceiver() as hook:
        ok = cli("apply", desired(workdir), "--yes", "--notify", hook_url(hook))
        assert ok.exit_code == 0, ok.output
        assert hook.received == []
        folder, manifest = the_run(workdir)
        assert "notifications" not in manifest
        refused = cli("rollback", "no-such-run", "--yes", "--notify", hook_url(hook))
        assert refused.exit_code == 2, refused.output
    ((_, _, body),) = hook.received  # no run folder: the command itself is reported
    assert body["type"] == "failure" and "What: flexops rollback" in body["message"]
    assert "Ended: exit 2" in body["message"] and "no run matches" in body["message"]


def test_a_failing_notifier_leaves_the_exit_code_unchanged(sandbox, workdir, monkeypatch):
    closed = free_port()
    with WebhookReceiver(status=500) as broken:
        monkeypatch.setenv("FLEXOPS_NOTIFY", f"json://127.0.0.1:{closed}/hooks/{HOOK_SECRET}, {hook_url(broken)}")
        ok = cli("apply", desired(workdir), "--yes", "--notify-on", "always")
        assert ok.exit_code == 0, ok.output
        assert len(broken.received) == 1
        failed = cli("rollback", "no-such-run", "--yes")
        assert failed.exit_code == 2, failed.output
    folder, manifest = the_run(workdir)
    assert [(n["host"], n["sent"], n["error"]) for n in manifest["notifications"]] == [
        ("127.0.0.1", False, "not delivered"), ("127.0.0.1", False, "not delivered")]
    assert "warning: notification to json://127.0.0.1 failed (not delivered)" in ok.output
    assert_no_secret(workdir / "runs", ok.output, failed.output)


def test_report_notifies_with_the_report_path(sandbox, workdir):
    with WebhookReceiver() as hook:
        result = cli("report", "--format", "html", "--out", workdir / "rep", "--notify-on", "always",
                     "--notify", hook_url(hook))
        assert result.exit_code == 0, result.output
    ((_, _, body),) = hook.received
    assert "What: flexops report" in body["message"] and "Where: sandbox" in body["message"]
    assert f"Report: {workdir / 'rep'}" in body["message"] and "Addresses: " in body["message"]


def test_trace_notifies_the_broken_hop_on_the_masked_account(sandbox, workdir):
    with WebhookReceiver() as hook:
        result = cli("trace", "104738392011234", "--target", "sandbox", "--notify", hook_url(hook))
        assert result.exit_code == 1, result.output  # no message: broken at the address
    ((_, _, body),) = hook.received
    sid = sandbox.demo["account_sid"]
    assert body["title"] == f"flexops FAILURE: flexops trace 104738392011234 on sandbox account {sid[:2]}…{sid[-4:]}"
    assert "Verdict messenger:104738392011234: no_message (broken at address)" in body["message"]
    assert sid not in json.dumps(body)
