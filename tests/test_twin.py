"""`flexops sandbox import`: a sandbox account copied into a new sandbox database through the real SDK. A plan of
examples/inventory.yaml against the twin equals the plan against the source field for field; the source is only
read; no secret of the source reaches the twin's database or the command's output."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flexops import plan, twin
from flexops.cli import main
from flexops.client import connect, sandbox_target
from flexops.exceptions import FlexopsError, ValidationError
from flexops.sandbox.control import SandboxControl
from flexops.sandbox.server import SandboxServer
from test_plan import workdir  # noqa: F401  (fixture)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"
PAGE = "104738392011234"


@pytest.fixture
def source(sandbox, client):
    """The demo account with some history: two Messenger addresses (one differs from the example), a webhook
    address with a credential in its URL, a legacy Flex Flow, a second workflow, and two conversations."""
    demo = sandbox.demo
    addresses = client.conversations.v1.address_configurations
    addresses.create(type="messenger", address=f"messenger:{PAGE}", friendly_name="Acme Outdoor Gear",
                     auto_creation_enabled=True, auto_creation_type="studio",
                     auto_creation_studio_flow_sid=demo["messaging_flow_sid"], auto_creation_studio_retry_count=1)
    addresses.create(type="messenger", address="messenger:404738392011237", friendly_name="Careers",
                     auto_creation_enabled=True, auto_creation_type="webhook",
                     auto_creation_webhook_url="https://hookuser:hooksecret99@hooks.example.com/flex")
    flow = client.studio.v2.flows(demo["messaging_flow_sid"])
    flow.update(status="published", definition=flow.fetch().definition, commit_message="second revision")
    client.flex_api.v1.flex_flow.create(friendly_name="Old Messenger", chat_service_sid=demo["chat_service_sid"],
                                        channel_type="facebook", contact_identity="messenger:304738392011236",
                                        integration_type="studio", integration_flow_sid=demo["messaging_flow_sid"],
                                        enabled=False)
    ws = client.taskrouter.v1.workspaces(demo["workspace_sid"])
    queue = ws.task_queues.create(friendly_name="Messenger VIP", target_workers="1==1")
    ws.workflows.create(friendly_name="VIP routing", configuration=json.dumps(
        {"task_routing": {"filters": [{"expression": "channelType == 'messenger'", "targets": [{"queue": queue.sid}]}],
                          "default_filter": {"queue": demo["queue_sid"]}}}))
    for sender in ("24738392011234", "24738392015678"):
        sandbox.control.simulate_inbound(PAGE, sender, "Hello from a real customer")
    return sandbox


@pytest.fixture
def twin_server(tmp_path):
    servers = []

    def serve(path):
        servers.append(SandboxServer(path).start())
        return servers[-1]
    yield serve
    for server in servers:
        server.stop()


def twin_client(server):
    return connect(sandbox_target(url=server.url))


def comparable(the_plan):
    data = the_plan.to_dict()
    data.pop("created_at")
    data.pop("target")  # names the sandbox's URL, which differs; the account (masked) is compared
    return data


def secrets_of(sandbox):
    creds = sandbox.control.credentials()
    return [creds["auth_token"], creds["api_secret"], sandbox.server.control_token, "hooksecret99"]


def test_a_plan_on_the_twin_equals_the_plan_on_the_source(source, client, tmp_path, twin_server):
    calls = []
    client.http_client.listeners.append(lambda method, url, **rest: calls.append(method))
    counts, creds = twin.import_account(client, tmp_path / "twin.db", conversations=1)
    assert set(calls) == {"GET"}  # read-only on the source
    assert creds["account_sid"] == client.account_sid and creds["auth_token"] != source.demo["auth_token"]
    assert counts["address configurations"] == 2 and counts["studio flows"] == 2
    assert counts["workflows"] == 2 and counts["task queues"] == 2 and counts["legacy flex flows"] == 1
    assert counts["conversations"] == 1 and counts["messages"] == 1

    mirror = twin_client(twin_server(tmp_path / "twin.db"))
    on_source, on_twin = plan.make_plan(client, EXAMPLE), plan.make_plan(mirror, EXAMPLE)
    assert on_source.counts() == {"create": 2, "update": 1, "delete": 0, "noop": 0}
    a, b = comparable(on_twin), comparable(on_source)
    for x, y in zip(a["changes"], b["changes"]):
        for k in x:
            assert x[k] == y[k], (k, x[k], y[k])
    assert a == b

    flow_sid = source.demo["messaging_flow_sid"]
    original, copied = client.studio.v2.flows(flow_sid).fetch(), mirror.studio.v2.flows(flow_sid).fetch()
    for name in ("friendly_name", "status", "revision", "definition", "commit_message"):
        assert getattr(copied, name) == getattr(original, name), name
    assert copied.revision == 2
    flex = [c.flex_api.v1.configuration().fetch() for c in (client, mirror)]
    assert flex[0].taskrouter_workspace_sid == flex[1].taskrouter_workspace_sid
    assert flex[0].flex_service_instance_sid == flex[1].flex_service_instance_sid
    ws_sid = source.demo["workspace_sid"]
    for listing in ("workflows", "task_queues", "task_channels", "activities"):
        def rows(c):
            return sorted((r.sid, r.friendly_name) for r in getattr(c.taskrouter.v1.workspaces(ws_sid), listing).list())
        assert rows(mirror) == rows(client), listing
    legacy, = mirror.flex_api.v1.flex_flow.list()
    assert legacy.contact_identity == "messenger:304738392011236" and legacy.enabled is False
    webhook = mirror.conversations.v1.address_configurations("messenger:404738392011237").fetch()
    assert webhook.auto_creation["webhook_url"] == "https://hooks.example.com/flex"  # the credential is dropped


def test_conversations_are_copied_only_when_asked_and_pseudonymised(source, client, tmp_path, twin_server):
    twin.import_account(client, tmp_path / "plain.db")
    plain = twin_client(twin_server(tmp_path / "plain.db"))
    assert plain.conversations.v1.conversations.list() == []
    twin.import_account(client, tmp_path / "two.db", conversations=2)
    mirror = twin_client(twin_server(tmp_path / "two.db"))
    copied = mirror.conversations.v1.conversations.list()
    assert sorted(c.sid for c in copied) == sorted(c.sid for c in client.conversations.v1.conversations.list())
    authors = {m.author for c in copied for m in mirror.conversations.v1.conversations(c.sid).messages.list()}
    assert len(authors) == 2 and not authors & {"messenger:24738392011234", "messenger:24738392015678"}
    assert all(a.startswith("messenger:9") for a in authors)
    data = (tmp_path / "two.db").read_bytes()
    assert b"24738392011234" not in data and b"24738392015678" not in data


def test_the_twin_serves_the_same_path(source, client, tmp_path, twin_server):
    """A message on the twin walks the same hops: the twin is a working account, not only a listing."""
    twin.import_account(client, tmp_path / "twin.db")
    server = twin_server(tmp_path / "twin.db")
    control = SandboxControl(server.url, token=server.control_token)
    mirror = twin_client(server)
    ws = mirror.taskrouter.v1.workspaces(source.demo["workspace_sid"])
    delivered = control.simulate_inbound(PAGE, "7000001", "Hello twin")
    assert delivered["studio_execution_sid"] and delivered["task_sid"]
    assert ws.tasks(delivered["task_sid"]).fetch().workflow_sid == source.demo["workflow_sid"]


def test_no_secret_reaches_the_twin_or_the_output(source, tmp_path, workdir):
    result = CliRunner().invoke(main, ["sandbox", "import", "--db", str(tmp_path / "twin.db"), "--target",
                                       "sandbox", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "address configurations" in result.output and "auth token" in result.output
    data = b"".join(p.read_bytes() for p in tmp_path.glob("twin.db*"))
    for secret in secrets_of(source):
        assert secret not in result.output
        assert secret.encode() not in data, "a source secret is in the twin's database"


def test_refusals(source, client, tmp_path):
    twin.import_account(client, tmp_path / "twin.db")
    with pytest.raises(ValidationError, match="already holds a sandbox account"):
        twin.import_account(client, tmp_path / "twin.db")
    refused = CliRunner().invoke(main, ["sandbox", "import", "--db", str(tmp_path / "other.db"), "--accounts",
                                        "AC" + "0" * 32])
    assert refused.exit_code == 2 and "not subaccounts of the main account" in refused.output
    twin.read_only(client)
    with pytest.raises(FlexopsError, match="reads the source account only"):
        client.conversations.v1.services.create(friendly_name="not on the source")
