"""Runbook 70 against the sandbox: a dry run by default (the plan recorded, nothing changed), confirm applies and
verifies the repair, and a bad parameter stops the run before any call."""
import json

import pytest

from flexops import addresses

from test_notebooks import run  # noqa: F401 - the fixture
from test_repairs import (FACEBOOK_ONLY, facebook_only, flows, make_address, make_legacy_flow, page_of,
                          workflow_config)

pytestmark = pytest.mark.notebook
REPAIR = "70_repair_routing_and_legacy.ipynb"


def test_routing_repair_is_a_dry_run_until_confirmed_then_fixed_and_verified(sandbox, client, run):  # noqa: F811
    facebook_only(client, sandbox.demo)
    dry = run(REPAIR)
    assert dry.error is None
    (step,) = dry.results["plan"]["steps"]
    assert step["kind"] == "workflow" and "messenger" in json.loads(step["desired"]["configuration"])[
        "task_routing"]["filters"][0]["expression"]
    assert not dry.results["routing_check"]["workflows"][0]["routes_messenger"]
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] == FACEBOOK_ONLY
    done = run(REPAIR, confirm=True)
    assert done.error is None, done.failed_cell
    assert done.results["summary"]["status"] == "succeeded" and done.results["verify"][0]["ok"]
    assert workflow_config(client, sandbox.demo)["task_routing"]["filters"][0]["expression"] == \
        "channelType IN ['facebook', 'messenger']"


def test_legacy_repair_with_replace_moves_the_page(sandbox, client, run):  # noqa: F811
    page = page_of(sandbox)
    flow = make_legacy_flow(client, sandbox.demo, page)
    done = run(REPAIR, repair="legacy", flex_flow_sids=flow.sid, replace=True, confirm=True)
    assert done.error is None, done.failed_cell
    assert [r["collides"] for r in done.results["legacy_flows"]] == [False]  # no address yet when listed
    assert not flows(client) and addresses.find(client, page) is not None
    assert done.results["gaps"][0]["group"] == f"messenger:{page}"
    traced, = [r for r in done.results["verify"] if r["kind"] == "trace"]  # the Page traced after the repair
    assert traced["target"] == f"messenger:{page}" and traced["ok"] and "send a test message" in traced["note"]
    assert "Verified (and traced)" in done.output.read_text()


def test_a_repair_whose_page_is_still_broken_ends_the_run_with_the_trace_remedy(sandbox, client, run):  # noqa: F811
    page = page_of(sandbox)
    make_address(client, sandbox.demo, page)
    facebook_only(client, sandbox.demo)
    legacy_flow = make_legacy_flow(client, sandbox.demo, page)  # still holds the Page: the trace stays broken
    done = run(REPAIR, confirm=True)
    assert done.error is not None and done.error.ename == "CheckFailed", done.error
    assert f"flexops legacy retire {legacy_flow.sid}" in done.error.evalue
    assert done.results["summary"]["status"] == "verify failed"
    assert "channelType IN ['facebook', 'messenger']" in json.dumps(workflow_config(client, sandbox.demo))


def test_a_bad_repair_parameter_stops_before_any_call(sandbox, run):  # noqa: F811
    sandbox.control.reset_stats()
    result = run(REPAIR, repair="legacy", flex_flow_sids="FO123")
    assert result.error.ename == "ValidationError" and "flex_flow_sids" in result.error.evalue
    assert sandbox.control.stats()["total"] == 0
