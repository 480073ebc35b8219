"""Secrets never leave memory: every runbook, run through `flexops run` on success and failure paths against a
sandbox whose credentials are distinctive, leaves no auth token, no API secret and no sandbox control token (which
the kernels get through FLEXOPS_SANDBOX_TOKEN) in any file of its run folder
(output.ipynb and its papermill metadata, output.html, manifest, parameters, audit, results, reports) nor in the
command's output; failed authentication and configuration errors do not echo them either."""
import json
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from twilio.base.exceptions import TwilioRestException

from flexops import connect, run_parameters, settings
from flexops.cli import main
from flexops.exceptions import ConfigurationError
from flexops.sandbox import seed
from flexops.sandbox.control import SandboxControl
from flexops.sandbox.server import SandboxServer
from flexops.settings import Secret, Target

pytestmark = pytest.mark.notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TOKEN = "tok_SECRET_7f3e9a1c5b2d4e6f8a0b1c2d3e4f5a6b"
ENV_TOKEN = "tok_SECRET_from_env_0c1d2e3f4a5b6c7d8e9f"
READ_ONLY = {"00_connect", "20_verify_messenger_addresses", "30_inventory_report"}


@pytest.fixture
def secret_sandbox(tmp_path, monkeypatch):
    """A fresh sandbox whose demo account has a known, greppable auth token."""
    server = SandboxServer(tmp_path / "sandbox.db").start()
    try:
        demo = seed.seed_demo(server.store, auth_token=TOKEN)
        server.store.set_setting("default_account", demo["account_sid"])
        demo["control_token"] = server.control_token
        monkeypatch.setenv("FLEXOPS_SANDBOX_URL", server.url)
        monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", server.control_token)
        monkeypatch.setenv("FLEXOPS_TARGET", "sandbox")
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET",
                     "TWILIO_PROFILE", "TWILIO_REGION", "TWILIO_EDGE", "FLEXOPS_RUN_DIR"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TWILIO_CLI_CONFIG", os.fspath(tmp_path / "no-twilio-cli.json"))
        monkeypatch.chdir(ROOT)  # as a user runs them: runbooks may read examples/ relative to the checkout
        yield server, demo
    finally:
        server.stop()


def secrets_of(demo):
    return [TOKEN, demo["api_secret"], ENV_TOKEN, demo["control_token"]]


def assert_clean(folder, secrets, *texts):
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    assert {"output.ipynb", "output.html", "manifest.json", "audit.jsonl", "results.json",
            "parameters.json"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"a secret leaked into {path.name}"
    for text in texts:
        for secret in secrets:
            assert secret not in text


def flexops_run(tmp_path, notebook, *args):
    runs_dir = tmp_path / "runs"
    before = {p for p in runs_dir.iterdir() if p.is_dir()} if runs_dir.exists() else set()  # not index.html
    result = CliRunner().invoke(main, ["run", os.fspath(notebook), "--runs-dir", os.fspath(runs_dir), *args])
    (folder,) = {p for p in runs_dir.iterdir() if p.is_dir()} - before
    return result, folder


def good_parameters(notebook, demo, reports):
    import papermill

    declared = papermill.inspect_notebook(os.fspath(notebook))
    args = []
    if "page_id" in declared:
        args += ["-p", "page_id", demo["pages"][0]["page_id"]]
    if "out_dir" in declared:
        args += ["-p", "out_dir", os.fspath(reports)]
    return args


def stored_widgets(folder):
    return json.loads((folder / "output.ipynb").read_text())["metadata"].get("widgets")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_runbook_runs_keep_secrets_out(notebook, secret_sandbox, tmp_path):
    """Success, the form (widget state is saved in output.ipynb), a failure after connecting (tracebacks from
    Twilio errors), and a refused parameter: no secret in any file or in the command's output."""
    server, demo = secret_sandbox
    reports = tmp_path / "reports"
    good = good_parameters(notebook, demo, reports)
    ok, ok_folder = flexops_run(tmp_path, notebook, *good)
    assert ok.exit_code in (0, 1), ok.output  # it ran (a check may legitimately fail on the demo account)
    assert_clean(ok_folder, secrets_of(demo), ok.output)
    if notebook.stem in READ_ONLY:  # (while we are here) a read-only runbook leaves an empty audit trail
        assert (ok_folder / "audit.jsonl").read_text() == ""
    if "interactive" in run_parameters.declared_parameters(notebook):
        form, form_folder = flexops_run(tmp_path, notebook, *good, "-p", "interactive", "true")
        assert form.exit_code in (0, 1), form.output
        assert stored_widgets(form_folder)  # the form's state is in the notebook: and it holds no secret
        assert_clean(form_folder, secrets_of(demo), form.output)
    # every Twilio call now fails with a Twilio error: the runbook stops after connecting
    SandboxControl(server.url).add_fault(status=400, code=20001, message="Injected fault")
    failed, failed_folder = flexops_run(tmp_path, notebook, *good)
    assert failed.exit_code in (1, 2, 3), failed.output
    assert '"output_type": "error"' in (failed_folder / "output.ipynb").read_text()  # a traceback was kept
    assert_clean(failed_folder, secrets_of(demo), failed.output)
    bad, bad_folder = flexops_run(tmp_path, notebook, "-p", "target", "nowhere")
    assert bad.exit_code == 2, bad.output
    assert_clean(bad_folder, secrets_of(demo), bad.output)
    for path in (p for p in reports.rglob("*") if p.is_file()):  # reports written outside the run folder
        for secret in secrets_of(demo):
            assert secret.encode() not in path.read_bytes(), f"a secret leaked into {path}"


def test_failing_check_and_refused_parameter_keep_secrets_out(secret_sandbox, tmp_path):
    server, demo = secret_sandbox
    connect().studio.v2.flows(demo["messaging_flow_sid"]).update(status="draft")
    failed, folder = flexops_run(tmp_path, ROOT / "notebooks" / "00_connect.ipynb")
    assert failed.exit_code == 1, failed.output
    assert_clean(folder, secrets_of(demo), failed.output)
    refused, folder = flexops_run(tmp_path, ROOT / "notebooks" / "00_connect.ipynb", "-r", "auth_token", TOKEN)
    assert refused.exit_code == 2
    assert_clean(folder, secrets_of(demo), refused.output)


def test_notify_urls_are_secrets_too(secret_sandbox, tmp_path, monkeypatch):
    """A failed run notifies a webhook and by mail (real loopback receivers); the tokens and passwords in the notify
    URLs appear in no file of the run folder, not in runs/index.html, not in the output; a notifier that cannot be
    reached (closed port; FLEXOPS_NOTIFY, which the kernel inherits) leaves the exit code as it was."""
    from receivers import MailReceiver, WebhookReceiver, free_port

    server, demo = secret_sandbox
    hook_secret, mail_secret = "tok_SECRET_notify_hook_5a7c9e1b", "pw_SECRET_notify_mail_2d4f6b8a"
    connect().studio.v2.flows(demo["messaging_flow_sid"]).update(status="draft")
    with WebhookReceiver() as hook, MailReceiver() as mail:
        failed, folder = flexops_run(
            tmp_path, ROOT / "notebooks" / "00_connect.ipynb", "--notify",
            f"json://127.0.0.1:{hook.port}/hooks/{hook_secret}", "--notify",
            f"mailto://flexops:{mail_secret}@127.0.0.1:{mail.port}?mode=insecure&from=flexops@example.com&to=ops@x.org")
    assert failed.exit_code == 1, failed.output
    ((_, _, body),) = hook.received
    assert body["type"] == "failure" and "00_connect.ipynb" in body["title"] and "Remedy: " in body["message"]
    assert f"Report: {folder / 'output.html'}" in body["message"]
    assert f"account {demo['account_sid'][:2]}…{demo['account_sid'][-4:]}" in body["message"]
    assert demo["account_sid"] not in body["message"]
    (message,) = mail.messages
    assert "Remedy: " in message.get_body(("plain", "html")).get_content()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [(n["scheme"], n["host"], n["sent"]) for n in manifest["notifications"]] == [
        ("json", "127.0.0.1", True), ("mailto", "127.0.0.1", True)]
    everything = [*secrets_of(demo), hook_secret, mail_secret]
    assert_clean(folder, everything, failed.output)
    monkeypatch.setenv("FLEXOPS_NOTIFY", f"json://127.0.0.1:{free_port()}/hooks/{hook_secret}")
    unreachable, folder = flexops_run(tmp_path, ROOT / "notebooks" / "00_connect.ipynb")
    assert unreachable.exit_code == 1, unreachable.output
    assert json.loads((folder / "manifest.json").read_text())["notifications"][0]["sent"] is False
    assert_clean(folder, everything, unreachable.output)
    index = (tmp_path / "runs" / "index.html").read_text()
    assert folder.name in index and not any(secret in index for secret in everything)


def test_env_credentials_for_real_twilio_stay_out(secret_sandbox, tmp_path, monkeypatch):
    """Target twilio with a token in the environment (refused before any call: no network needed)."""
    server, demo = secret_sandbox
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", ENV_TOKEN)
    result, folder = flexops_run(tmp_path, ROOT / "notebooks" / "00_connect.ipynb", "--target", "twilio",
                                 "-p", "no_such_parameter", "1")
    assert result.exit_code == 2
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["target"]["kind"] == "twilio" and manifest["target"]["account"] == "AC…0000"
    assert_clean(folder, secrets_of(demo), result.output)


def test_janitor_and_sandbox_import_keep_secrets_out(secret_sandbox, tmp_path, monkeypatch):
    """The command runs of issue 14: a janitor run folder and a twin database (and what both commands print)."""
    server, demo = secret_sandbox
    monkeypatch.setenv("FLEXOPS_LOCK_DIR", os.fspath(tmp_path / "locks"))
    client = connect()
    client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{demo['pages'][0]['page_id']}", auto_creation_enabled=True,
        auto_creation_type="studio", auto_creation_studio_flow_sid=demo["messaging_flow_sid"])
    delivered = SandboxControl(server.url).simulate_inbound(demo["pages"][0]["page_id"], "7000001", "hi")
    client.taskrouter.v1.workspaces(demo["workspace_sid"]).tasks(delivered["task_sid"]).update(
        assignment_status="canceled")
    runs_dir = tmp_path / "runs"
    closed = CliRunner().invoke(main, ["janitor", "--idle", "0s", "--yes", "--runs-dir", os.fspath(runs_dir)])
    assert closed.exit_code == 0, closed.output
    imported = CliRunner().invoke(main, ["sandbox", "import", "--db", os.fspath(tmp_path / "twin.db"),
                                         "--conversations", "5"])
    assert imported.exit_code == 0, imported.output
    files = [p for p in runs_dir.rglob("*") if p.is_file()] + list(tmp_path.glob("twin.db*"))
    assert {"audit.jsonl", "manifest.json", "results.json"} <= {p.name for p in files}
    for path in files:
        for secret in secrets_of(demo):
            assert secret.encode() not in path.read_bytes(), f"a secret leaked into {path.name}"
    for secret in secrets_of(demo):
        assert secret not in closed.output and secret not in imported.output


def test_confirmed_repair_runbook_and_fleet_import_keep_secrets_out(secret_sandbox, tmp_path, monkeypatch):
    """Runbook 70 confirmed (its verify traces the Page) and `sandbox import --accounts all`: no secret in any
    file of the run folder or the twin, nor in what they print."""
    server, demo = secret_sandbox
    monkeypatch.setenv("FLEXOPS_LOCK_DIR", os.fspath(tmp_path / "locks"))
    client = connect()
    page = demo["pages"][0]["page_id"]
    client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{page}", auto_creation_enabled=True, auto_creation_type="studio",
        auto_creation_studio_flow_sid=demo["messaging_flow_sid"])
    client.taskrouter.v1.workspaces(demo["workspace_sid"]).workflows(demo["workflow_sid"]).update(
        configuration=json.dumps({"task_routing": {"filters": [{"expression": "channelType == 'facebook'",
                                                                 "targets": [{"queue": demo["queue_sid"]}]}]}}))
    confirmed, folder = flexops_run(tmp_path, ROOT / "notebooks" / "70_repair_routing_and_legacy.ipynb",
                                    "-p", "confirm", "true")
    assert confirmed.exit_code == 0, confirmed.output
    results = json.loads((folder / "results.json").read_text())
    assert [r["target"] for r in results["verify"] if r["kind"] == "trace"] == [f"messenger:{page}"]
    assert_clean(folder, secrets_of(demo), confirmed.output)
    imported = CliRunner().invoke(main, ["sandbox", "import", "--db", os.fspath(tmp_path / "twin.db"),
                                         "--accounts", "all", "--conversations", "5"])
    assert imported.exit_code == 0, imported.output
    for path in tmp_path.glob("twin.db*"):
        for secret in secrets_of(demo):
            assert secret.encode() not in path.read_bytes(), f"a secret leaked into {path.name}"
    for secret in secrets_of(demo):
        assert secret not in imported.output


@pytest.fixture
def wrong_token_sandbox(secret_sandbox, monkeypatch):
    """The same sandbox, but its control plane hands out a wrong token: every Twilio call gets 401 / 20003."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    server, demo = secret_sandbox
    wrong = "tok_SECRET_wrong_" + "8" * 16

    def app(environ, start_response):
        if Request(environ).path == "/__sandbox/credentials":
            body = json.dumps({"account_sid": demo["account_sid"], "auth_token": wrong, "api_key": None,
                               "api_secret": None})
            return Response(body, content_type="application/json")(environ, start_response)
        environ["HTTP_HOST"] = f"127.0.0.1:{server.port}"  # as a reverse proxy must: the sandbox answers its own Host
        return server.app(environ, start_response)

    front = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("FLEXOPS_SANDBOX_URL", f"http://127.0.0.1:{front.server_port}")
    try:
        yield server, demo, wrong
    finally:
        front.shutdown()
        front.server_close()


def test_rejected_credentials_in_a_run_stay_out(wrong_token_sandbox, tmp_path):
    server, demo, wrong = wrong_token_sandbox
    result, folder = flexops_run(tmp_path, ROOT / "notebooks" / "00_connect.ipynb")
    assert result.exit_code == 3, result.output  # the target refused us: a scheduler must tell this from a failed check
    assert "20003" in (folder / "output.ipynb").read_text()
    assert json.loads((folder / "manifest.json").read_text())["error"]["ename"] == "ConnectionFailed"
    assert_clean(folder, [*secrets_of(demo), wrong], result.output)


def test_failed_authentication_does_not_echo_the_token(secret_sandbox):
    server, demo = secret_sandbox
    wrong = "tok_SECRET_wrong_" + "9" * 16
    client = connect(Target("sandbox", demo["account_sid"], demo["account_sid"], Secret(wrong),
                            sandbox_url=server.url))
    with pytest.raises(TwilioRestException) as caught:
        client.api.v2010.accounts(demo["account_sid"]).fetch()
    assert caught.value.status == 401 and caught.value.code == 20003
    for text in (str(caught.value), repr(caught.value), repr(client.flexops_target), str(caught.value.msg)):
        assert wrong not in text and TOKEN not in text


@pytest.mark.parametrize("env", [
    {"TWILIO_ACCOUNT_SID": "not-a-sid", "TWILIO_AUTH_TOKEN": ENV_TOKEN},
    {"TWILIO_AUTH_TOKEN": ENV_TOKEN},
    {"TWILIO_API_KEY": "SK" + "1" * 32, "TWILIO_API_SECRET": ENV_TOKEN},
    {"TWILIO_API_SECRET": ENV_TOKEN, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32},
], ids=["bad-sid", "token-only", "key-without-sid", "secret-without-key"])
def test_configuration_errors_do_not_echo_secrets(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TWILIO_CLI_CONFIG", os.fspath(tmp_path / "none.json"))
    with pytest.raises(ConfigurationError) as caught:
        settings.twilio_credentials(env=env)
    assert ENV_TOKEN not in str(caught.value) and ENV_TOKEN not in repr(caught.value)


def test_twilio_cli_profile_errors_do_not_echo_secrets(tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"activeProject": "p", "profiles": {"p": {"apiKey": "SK" + "2" * 32,
                                                                          "apiSecret": ENV_TOKEN}}}))
    monkeypatch.setenv("TWILIO_CLI_CONFIG", os.fspath(config))
    with pytest.raises(ConfigurationError) as caught:
        settings.twilio_credentials(env={})
    assert "accountSid" in str(caught.value) and ENV_TOKEN not in str(caught.value)


def test_repair_runs_keep_secrets_out(secret_sandbox, tmp_path, monkeypatch):
    """`flexops legacy retire --replace`, `flexops routing fix` and their rollbacks: no secret in any file of their
    run folders (audit trail with the Flex Flow's full configuration, results, manifest) nor in their output."""
    server, demo = secret_sandbox
    monkeypatch.setenv("FLEXOPS_LOCK_DIR", os.fspath(tmp_path / "locks"))
    client = connect()
    page = demo["pages"][0]["page_id"]
    flow = client.flex_api.v1.flex_flow.create(
        friendly_name="Legacy", chat_service_sid=demo["chat_service_sid"], channel_type="facebook",
        contact_identity=f"messenger:{page}", enabled=True, integration_type="studio",
        integration_flow_sid=demo["messaging_flow_sid"])
    config = {"task_routing": {"filters": [{"filter_friendly_name": "FB", "expression": "channelType == 'facebook'",
                                            "targets": [{"queue": demo["queue_sid"]}]}]}}
    client.taskrouter.v1.workspaces(demo["workspace_sid"]).workflows(demo["workflow_sid"]).update(
        configuration=json.dumps(config))
    runs_dir = tmp_path / "runs"
    outputs = []
    # routing first: a retire's verify traces the Page, and with the routing still facebook-only it would fail
    for args in (["routing", "fix"], ["legacy", "retire", flow.sid, "--replace"], ["rollback", "latest"],
                 ["rollback", "latest"]):
        result = CliRunner().invoke(main, [*args, "--yes", "--runs-dir", os.fspath(runs_dir)])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    folders = [p for p in runs_dir.iterdir() if p.is_dir()]  # runs/index.html is the dashboard
    assert len(folders) == 4
    for folder in folders:
        for path in folder.iterdir():
            for secret in secrets_of(demo):
                assert secret.encode() not in path.read_bytes(), f"a secret leaked into {folder.name}/{path.name}"
    for text in outputs:
        for secret in secrets_of(demo):
            assert secret not in text
def test_fleet_runs_keep_every_subaccount_token_out(tmp_path, monkeypatch):
    """Runbooks 20 and 30 over a fleet (accounts=all): the subaccounts' auth tokens, which the main account's
    listing hands out and each subaccount's client uses, appear in no file of the run folders, no report, and not
    in the command's output."""
    server = SandboxServer(tmp_path / "fleet.db").start()
    try:
        made = SandboxControl(server.url).seed("fleet")
        monkeypatch.setenv("FLEXOPS_SANDBOX_URL", server.url)
        monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", server.control_token)
        monkeypatch.setenv("FLEXOPS_TARGET", "sandbox")
        monkeypatch.delenv("FLEXOPS_RUN_DIR", raising=False)
        monkeypatch.chdir(ROOT)
        secrets = [server.store.account(s["account_sid"])["auth_token"] for s in made["subaccounts"]]
        secrets += [made["auth_token"], made["api_secret"], server.control_token]
        reports = tmp_path / "reports"
        verified, folder = flexops_run(tmp_path, ROOT / "notebooks" / "20_verify_messenger_addresses.ipynb",
                                       "-p", "accounts", "all")
        assert verified.exit_code == 1, verified.output  # the subaccount broken on purpose
        assert len(json.loads((folder / "results.json").read_text())["accounts"]) == 3
        assert_clean(folder, secrets, verified.output)
        reported, folder = flexops_run(tmp_path, ROOT / "notebooks" / "30_inventory_report.ipynb",
                                       "-p", "accounts", "all", "-p", "out_dir", os.fspath(reports))
        assert reported.exit_code == 0, reported.output
        assert_clean(folder, secrets, reported.output)
        for path in (p for p in reports.rglob("*") if p.is_file()):
            assert not [s for s in secrets if s.encode() in path.read_bytes()], f"a secret leaked into {path}"
    finally:
        server.stop()
