"""The sandbox against Twilio's own OpenAPI definitions: every request the real SDK sends and every 2xx answer the
sandbox gives, for every emulated operation, plus the shape of error bodies.

To cover a new sandbox operation, add a `Step` to SCENARIO (and drop it from PENDING if it was listed there).
"""
import json
import re
from collections import namedtuple
from datetime import datetime, timezone

import pytest
from twilio.base.exceptions import TwilioException

from flexops.client import connect
from flexops.sandbox.app import PRODUCTS
from flexops.settings import Secret, Target

from .openapi_specs import TARBALL, SpecUnavailable, contract_problems, error_shape_problems, operation_id, spec_path
from .scenario_path import STEPS

pytestmark = pytest.mark.contract

ADDRESS = "messenger:104738392011234"
WEBHOOK_PAGE = "204738392011235"
WEBHOOK = "https://hooks.example.com/flexops"
STUDIO_PAGE = "304738392011236"

# call(client, results) -> anything, kept as results[name]; operation None: the step sends no Twilio request.
Step = namedtuple("Step", "name operation call")


def conv(client):
    return client.conversations.v1


def flows(client):
    return client.studio.v2.flows


def chat(results):
    return results["a customer writes to the page (control plane)"]["conversation_sid"]


def second_chat(results):
    return results["a second customer writes to the page (control plane)"]["conversation_sid"]


def execution(client, results):
    reply = results["a customer writes to the studio page (control plane)"]
    return flows(client)(results["demo"]["messaging_flow_sid"]).executions(reply["studio_execution_sid"])


def first_step(client, results):
    return execution(client, results).steps(results["list an execution's steps one a page"][0].sid)


def subaccount(client, results):
    return client.api.v2010.accounts(results["create a subaccount"].sid)


SINCE, UNTIL = datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)


SCENARIO = [
    Step("create a studio address", "conversations CreateConfigurationAddress",
         lambda c, r: conv(c).address_configurations.create(
             type="messenger", address=ADDRESS, friendly_name="Acme Outdoor Gear", auto_creation_enabled=True,
             auto_creation_type="studio", auto_creation_studio_flow_sid=r["demo"]["messaging_flow_sid"],
             auto_creation_studio_retry_count=3, auto_creation_conversation_service_sid=r["demo"]["flex_service_sid"])),
    Step("create a webhook address", "conversations CreateConfigurationAddress",
         lambda c, r: conv(c).address_configurations.create(
             type="messenger", address=f"messenger:{WEBHOOK_PAGE}", auto_creation_enabled=True,
             auto_creation_type="webhook", auto_creation_webhook_url=WEBHOOK, auto_creation_webhook_method="post",
             auto_creation_webhook_filters=["onMessageAdded", "onParticipantAdded"])),
    Step("create an sms address", "conversations CreateConfigurationAddress",
         lambda c, r: conv(c).address_configurations.create(type="sms", address="+15550001111", address_country="US")),
    Step("list addresses two a page (PageToken)", "conversations ListConfigurationAddress",
         lambda c, r: list(conv(c).address_configurations.stream(page_size=2))),
    Step("list addresses of a type", "conversations ListConfigurationAddress",
         lambda c, r: conv(c).address_configurations.list(type="messenger")),
    Step("fetch an address by SID", "conversations FetchConfigurationAddress",
         lambda c, r: conv(c).address_configurations(r["create a studio address"].sid).fetch()),
    Step("fetch an address by address", "conversations FetchConfigurationAddress",
         lambda c, r: conv(c).address_configurations(ADDRESS).fetch()),
    Step("update an address", "conversations UpdateConfigurationAddress",
         lambda c, r: conv(c).address_configurations(r["create a studio address"].sid).update(
             friendly_name="Acme (webhook)", auto_creation_type="webhook", auto_creation_webhook_url=WEBHOOK,
             auto_creation_webhook_method="get", auto_creation_webhook_filters=["onMessageAdded"])),
    Step("delete an address", "conversations DeleteConfigurationAddress",
         lambda c, r: conv(c).address_configurations(r["create a studio address"].sid).delete()),
    Step("fetch the conversations configuration", "conversations FetchConfiguration",
         lambda c, r: conv(c).configuration().fetch()),
    Step("list conversation services", "conversations ListService", lambda c, r: conv(c).services.list()),
    Step("fetch a conversation service", "conversations FetchService",
         lambda c, r: conv(c).services(r["demo"]["flex_service_sid"]).fetch()),
    Step("a customer writes to the page (control plane)", None,
         lambda c, r: r["sandbox"].control.simulate_inbound(WEBHOOK_PAGE, "7000123", "Hello!")),
    Step("list conversations", "conversations ListConversation", lambda c, r: conv(c).conversations.list()),
    Step("fetch a conversation", "conversations FetchConversation",
         lambda c, r: conv(c).conversations(chat(r)).fetch()),
    Step("list a conversation's participants", "conversations ListConversationParticipant",
         lambda c, r: conv(c).conversations(chat(r)).participants.list()),
    Step("list a conversation's messages", "conversations ListConversationMessage",
         lambda c, r: conv(c).conversations(chat(r)).messages.list()),
    Step("list a service's conversations", "conversations ListServiceConversation",
         lambda c, r: conv(c).services(r["demo"]["flex_service_sid"]).conversations.list()),
    Step("list a service conversation's participants", "conversations ListServiceConversationParticipant",
         lambda c, r: conv(c).services(r["demo"]["flex_service_sid"]).conversations(chat(r)).participants.list()),
    Step("the customer writes again (control plane)", None,
         lambda c, r: r["sandbox"].control.simulate_inbound(WEBHOOK_PAGE, "7000123", "Anyone there?")),
    Step("list a conversation's messages newest first, one a page", "conversations ListConversationMessage",
         lambda c, r: list(conv(c).conversations(chat(r)).messages.stream(order="desc", page_size=1))),
    Step("fetch a service conversation", "conversations FetchServiceConversation",
         lambda c, r: conv(c).services(r["demo"]["flex_service_sid"]).conversations(chat(r)).fetch()),
    Step("list a service conversation's messages", "conversations ListServiceConversationMessage",
         lambda c, r: conv(c).services(r["demo"]["flex_service_sid"]).conversations(chat(r)).messages.list()),
    Step("a second customer writes to the page (control plane)", None,
         lambda c, r: r["sandbox"].control.simulate_inbound(WEBHOOK_PAGE, "7000999", "Hi there")),
    Step("set a conversation inactive with timers", "conversations UpdateConversation",
         lambda c, r: conv(c).conversations(second_chat(r)).update(state="inactive", timers_closed="PT10M",
                                                            friendly_name="Contract chat")),
    Step("list conversations by state and dates", "conversations ListConversation",
         lambda c, r: conv(c).conversations.list(state="inactive", start_date="2000-01-01", end_date="2100-01-01")),
    Step("close a service conversation", "conversations UpdateServiceConversation",
         lambda c, r: conv(c).services(r["demo"]["flex_service_sid"]).conversations(second_chat(r)).update(
             state="closed")),
    Step("list a service's conversations by state", "conversations ListServiceConversation",
         lambda c, r: conv(c).services(r["demo"]["flex_service_sid"]).conversations.list(state="closed")),
    Step("create a studio address on another page", "conversations CreateConfigurationAddress",
         lambda c, r: conv(c).address_configurations.create(
             type="messenger", address=f"messenger:{STUDIO_PAGE}", auto_creation_enabled=True,
             auto_creation_type="studio", auto_creation_studio_flow_sid=r["demo"]["messaging_flow_sid"])),
    Step("a customer writes to the studio page (control plane)", None,
         lambda c, r: r["sandbox"].control.simulate_inbound(STUDIO_PAGE, "7000456", "Where is my order?")),
    Step("list a flow's executions between two dates", "studio ListExecution",
         lambda c, r: flows(c)(r["demo"]["messaging_flow_sid"]).executions.list(date_created_from=SINCE,
                                                                                date_created_to=UNTIL)),
    Step("fetch an execution", "studio FetchExecution", lambda c, r: execution(c, r).fetch()),
    Step("fetch an execution's context", "studio FetchExecutionContext",
         lambda c, r: execution(c, r).execution_context().fetch()),
    Step("list an execution's steps one a page", "studio ListExecutionStep",
         lambda c, r: list(execution(c, r).steps.stream(page_size=1))),
    Step("fetch a step", "studio FetchExecutionStep", lambda c, r: first_step(c, r).fetch()),
    Step("fetch a step's context", "studio FetchExecutionStepContext",
         lambda c, r: first_step(c, r).step_context().fetch()),
    Step("list flows", "studio ListFlow", lambda c, r: flows(c).list(page_size=1)),
    Step("fetch a flow", "studio FetchFlow", lambda c, r: flows(c)(r["demo"]["messaging_flow_sid"]).fetch()),
    Step("create a flow", "studio CreateFlow",
         lambda c, r: flows(c).create(friendly_name="Contract Flow", status="draft",
                                      definition=r["fetch a flow"].definition, commit_message="first")),
    Step("publish a flow", "studio UpdateFlow",
         lambda c, r: flows(c)(r["create a flow"].sid).update(status="published", commit_message="go live")),
    Step("change a flow's definition (a new revision)", "studio UpdateFlow",
         lambda c, r: flows(c)(r["create a flow"].sid).update(
             status="draft", definition={**r["fetch a flow"].definition, "description": "second"})),
    Step("list a flow's revisions one a page", "studio ListFlowRevision",
         lambda c, r: list(flows(c)(r["create a flow"].sid).revisions.stream(page_size=1))),
    Step("fetch a flow revision", "studio FetchFlowRevision",
         lambda c, r: flows(c)(r["create a flow"].sid).revisions("1").fetch()),
    Step("fetch the latest published revision", "studio FetchFlowRevision",
         lambda c, r: flows(c)(r["create a flow"].sid).revisions("LatestPublished").fetch()),
    Step("delete a flow", "studio DeleteFlow", lambda c, r: flows(c)(r["create a flow"].sid).delete()),
    Step("fetch the flex configuration", "flex-api FetchConfiguration",
         lambda c, r: c.flex_api.v1.configuration().fetch()),
    Step("fetch the account", "api FetchAccount", lambda c, r: c.api.v2010.accounts(c.account_sid).fetch()),
    Step("create a subaccount", "api CreateAccount",
         lambda c, r: c.api.v2010.accounts.create(friendly_name="Contract subaccount")),
    Step("create a second subaccount", "api CreateAccount", lambda c, r: c.api.v2010.accounts.create()),
    Step("list accounts one a page", "api ListAccount",
         lambda c, r: list(c.api.v2010.accounts.stream(status="active", page_size=1))),
    Step("list accounts by name", "api ListAccount",
         lambda c, r: c.api.v2010.accounts.list(friendly_name="Contract subaccount")),
    Step("fetch a subaccount", "api FetchAccount", lambda c, r: subaccount(c, r).fetch()),
    Step("suspend a subaccount", "api UpdateAccount", lambda c, r: subaccount(c, r).update(status="suspended")),
    Step("close a subaccount", "api UpdateAccount",
         lambda c, r: subaccount(c, r).update(status="closed", friendly_name="Closed subaccount")),
]

SCENARIO += STEPS

# Emulated operations no step covers yet (each needs a reason).
PENDING = set()


def label(exchange):
    op = operation_id(exchange)
    query = "&".join(f"{k}={v}" for k, values in exchange["query"].items() for v in values)
    where = f"{exchange['method']} {exchange['product']}{exchange['path']}" + (f"?{query}" if query else "")
    return f"{exchange['product']} {op}" if op else "(no Twilio operation)", where


def run_steps(client, traffic, steps, results):
    """Run steps, returning [(step, its exchanges)]."""
    done = []
    for step in steps:
        start = len(traffic)
        try:
            results[step.name] = step.call(client, results)
        except Exception as exc:
            raise AssertionError(f"step {step.name!r} failed: {exc!r}") from exc
        done.append((step, traffic[start:]))
    return done


PLACEHOLDERS = {"conversation_sid": "CH", "service_sid": "IS",
                "workspace_sid": "WS", "task_sid": "WT", "interaction_sid": "KD"}


def sandbox_operations():
    """Every Twilio operation the sandbox routes, named as in Twilio's definitions (None: Twilio has no such)."""
    operations = {}
    for product, rules in PRODUCTS.items():
        for rule in rules:
            path = re.sub(r"<(\w+)>", lambda m: PLACEHOLDERS.get(m[1], "XX") + "0" * 32, rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                op = operation_id({"product": product, "method": method, "path": path})
                operations[f"{method} {product}{rule.rule}"] = f"{product} {op}" if op else None
    return operations


def test_every_sandbox_route_is_a_twilio_operation(twilio_openapi):
    invented = sorted(route for route, op in sandbox_operations().items() if op is None)
    assert not invented, f"sandbox routes Twilio's OpenAPI does not define: {invented}"


def test_every_emulated_operation_matches_twilio_openapi(sandbox, traffic):
    results = {"demo": sandbox.demo, "sandbox": sandbox}
    failures, covered = [], set()
    for step, exchanges in run_steps(sandbox.client(), traffic, SCENARIO, results):
        assert bool(exchanges) == bool(step.operation), f"step {step.name!r} sent {len(exchanges)} requests"
        for exchange in exchanges:
            operation, where = label(exchange)
            covered.add(operation)
            if operation != step.operation:
                failures.append(f"{step.name}: expected {step.operation}, sent {operation} ({where})")
            failures += [f"{step.name}: {operation} {where} -> {exchange['status']}: {problem}"
                         for problem in contract_problems(exchange)]
    assert not failures, "the sandbox disagrees with Twilio's OpenAPI:\n" + "\n".join(failures)

    paged = [x["query"] for x in traffic if "PageToken" in x["query"]]
    assert paged, "the paging step never followed a next_page_url with a PageToken"
    emulated = {op for op in sandbox_operations().values() if op}
    missing = sorted(emulated - covered - PENDING)
    assert not missing, f"emulated operations no step covers (add a Step to SCENARIO in {__name__}): {missing}"


def test_an_empty_account_validates(sandbox, traffic):
    client = sandbox.client(sandbox.control.create_account("empty")["account_sid"])
    assert conv(client).conversations.list() == []
    assert conv(client).address_configurations.list() == []
    assert flows(client).list() == []
    failures = [f"{' '.join(label(x))}: {p}" for x in traffic for p in contract_problems(x)]
    assert len(traffic) == 3 and not failures, failures


def _bad_client(sandbox):
    demo = sandbox.demo
    return connect(Target("sandbox", demo["account_sid"], demo["account_sid"], Secret("not-the-token"),
                          sandbox_url=sandbox.url))


ERRORS = [  # (what, expected HTTP status, call(client, sandbox))
    ("PageSize above 50", 400, lambda c, s: conv(c).address_configurations.list(page_size=51)),
    ("unknown address SID", 404, lambda c, s: conv(c).address_configurations("IG" + "0" * 32).fetch()),
    ("duplicate address", 409, lambda c, s: [conv(c).address_configurations.create(type="messenger", address=ADDRESS)
                                             for _ in range(2)]),
    ("missing Type", 400, lambda c, s: conv(c).address_configurations.create(type=None, address=ADDRESS)),
    ("unpublishable flow", 400, lambda c, s: flows(c).create(friendly_name="x", status="published",
                                                             definition={"states": []})),
    ("wrong credentials", 401, lambda c, s: conv(_bad_client(s)).configuration().fetch()),
    ("another account", 401, lambda c, s: c.api.v2010.accounts("AC" + "0" * 32).fetch()),
    ("method not allowed", 405, lambda c, s: c.request("PUT", "https://conversations.twilio.com/v1/Configuration")),
    ("injected 429", 429, lambda c, s: (s.control.add_fault(product="studio", status=429, code=20429, retry_after=0,
                                                            method="POST", times=1),
                                        flows(c)(s.demo["draft_flow_sid"]).update(status="draft"))),
]


def test_error_bodies_have_twilios_shape(sandbox, traffic):
    client = sandbox.client()
    failures = []
    for what, status, call in ERRORS:
        start = len(traffic)
        try:
            call(client, sandbox)
        except TwilioException:
            pass
        errors = [x for x in traffic[start:] if x["status"] >= 400]
        if status not in [x["status"] for x in errors]:
            failures.append(f"{what}: expected an HTTP {status}, got {[x['status'] for x in traffic[start:]]}")
        failures += [f"{what}: {' '.join(label(x))} -> {x['status']}: {problem}"
                     for x in errors for problem in error_shape_problems(x)]
    assert not failures, "\n".join(failures)


def test_a_disagreement_names_the_operation_and_the_field(sandbox, traffic):
    """The checks are not vacuous: a tampered answer is reported by operation and field."""
    conv(sandbox.client()).address_configurations.create(type="messenger", address=ADDRESS)
    created = traffic[-1]
    assert contract_problems(created) == []
    body = json.loads(created["body"])
    body.pop("url")
    body.update(date_created="yesterday", invented=1)
    problems = contract_problems({**created, "body": json.dumps(body).encode()})
    assert label(created)[0] == "conversations CreateConfigurationAddress"
    assert any(p.startswith("response <body>: 'url' is a required property") for p in problems), problems
    assert any(p.startswith("response date_created: 'yesterday' is not a 'date-time'") for p in problems), problems
    assert any("invented" in p for p in problems), problems

    form = {**created["form"], "AutoCreation.StudioFlowSid": ["FWnope"]}
    assert any("AutoCreation.StudioFlowSid" in p for p in contract_problems({**created, "form": form}))

    error = {"status": 404, "body": json.dumps({"code": "20404", "message": "x", "status": 404}).encode()}
    assert sorted(error_shape_problems(error)) == [
        "error body field 'code' is str, not int", "error body field 'more_info' missing"]


def test_unobtainable_definitions_are_an_error_not_a_skip(tmp_path, monkeypatch):
    (tmp_path / TARBALL).write_bytes(b"not the pinned tarball")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm to fetch a good one
    with pytest.raises(SpecUnavailable, match="npm is not installed"):
        spec_path("conversations", cache=tmp_path)
