"""`flexops trace` through click, on the sandbox: the table, --json, --all and the exit codes."""
import json

from click.testing import CliRunner

from flexops.cli import main

PAGE = "104738392011234"


def run(*args):
    return CliRunner().invoke(main, ["trace", *args, "--target", "sandbox"], catch_exceptions=False)


def test_a_message_that_reached_flex_exits_0_with_every_hop(client, sandbox):
    client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{PAGE}", auto_creation_enabled=True, auto_creation_type="studio",
        auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"])
    delivered = sandbox.control.simulate_inbound(PAGE, "7000123", "hi")
    result = run(PAGE)
    assert result.exit_code == 0, result.output
    for hop in ("address", "conversation", "studio", "flex", "agent"):
        assert hop in result.output
    assert "reached_flex" in result.output and delivered["task_sid"] in result.output

    as_json = run(PAGE, "--json")
    body = json.loads(as_json.stdout)
    assert as_json.exit_code == 0 and body["verdict"] == "reached_flex" and body["broken_hop"] is None
    assert [h["hop"] for h in body["hops"]] == ["address", "conversation", "studio", "flex", "agent"]
    assert set(body) == {"page_id", "address", "message", "verdict", "broken_hop", "hops", "alerts"}

    known = json.loads(run(PAGE, "--json", "--conversation", delivered["conversation_sid"]).stdout)
    assert known["message"]["sid"] == delivered["message_sid"]


def test_no_message_exits_1_naming_the_broken_hop(sandbox):
    result = run(PAGE, "--json")
    body = json.loads(result.stdout)
    assert result.exit_code == 1 and (body["verdict"], body["broken_hop"]) == ("no_message", "address")


def test_bad_input_exits_2_and_names_it(sandbox):
    for args, named in ((["+15551234567"], "page_id"), ([PAGE, "--since", "soon"], "since"), ([], "page_id")):
        result = CliRunner().invoke(main, ["trace", *args, "--target", "sandbox"])
        assert result.exit_code == 2 and named in result.output, result.output


def test_all_counts_every_page(client, sandbox):
    client.conversations.v1.address_configurations.create(
        type="messenger", address=f"messenger:{PAGE}", auto_creation_enabled=True, auto_creation_type="studio",
        auto_creation_studio_flow_sid=sandbox.demo["draft_flow_sid"])
    for sender in ("7000001", "7000002"):
        sandbox.control.simulate_inbound(PAGE, sender, "hi")
    result = run("--all", "--json", "--since", "1d")
    body = json.loads(result.stdout)
    page = next(p for p in body["pages"] if p["page_id"] == PAGE)
    assert result.exit_code == 1 and page["conversations"] == 2 and page["broken"] == {"studio": 2}
    assert body["requests"] > 0
