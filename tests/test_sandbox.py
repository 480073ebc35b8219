"""The sandbox behaves like Twilio, seen through the real twilio SDK over loopback HTTP."""
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from flexops.client import connect
from flexops.exceptions import FlexopsError
from flexops.settings import Secret, Target

PAGE = "messenger:104738392011234"


def addresses(client):
    return client.conversations.v1.address_configurations


def create(client, address=PAGE, **options):
    return addresses(client).create(type=options.pop("type", "messenger"), address=address, **options)


def twilio_error(call):
    """The TwilioRestException a call raises."""
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value


def exchanges(sandbox):
    seen = []
    sandbox.app.observers.append(seen.append)
    return seen


# --- address configurations ----------------------------------------------------------------------------------

def test_create_fetch_update_delete_an_address(client, sandbox):
    flow = sandbox.demo["messaging_flow_sid"]
    made = create(client, friendly_name="Acme Outdoor Gear", auto_creation_enabled=True, auto_creation_type="studio",
                  auto_creation_studio_flow_sid=flow, auto_creation_studio_retry_count=3)
    assert made.sid.startswith("IG") and len(made.sid) == 34
    assert (made.type, made.address, made.friendly_name) == ("messenger", PAGE, "Acme Outdoor Gear")
    assert made.auto_creation == {"enabled": True, "type": "studio", "studio_flow_sid": flow, "studio_retry_count": 3}

    assert addresses(client)(made.sid).fetch().address == PAGE
    assert addresses(client)(PAGE).fetch().sid == made.sid  # the address itself works as the SID

    updated = addresses(client)(PAGE).update(friendly_name="Renamed", auto_creation_type="webhook",
                                             auto_creation_webhook_url="https://hooks.example.com/x",
                                             auto_creation_webhook_method="post",
                                             auto_creation_webhook_filters=["onMessageAdded", "onParticipantAdded"])
    assert updated.friendly_name == "Renamed"
    assert updated.auto_creation == {"enabled": True, "type": "webhook", "webhook_url": "https://hooks.example.com/x",
                                     "webhook_method": "POST",
                                     "webhook_filters": ["onMessageAdded", "onParticipantAdded"]}

    seen = exchanges(sandbox)
    assert addresses(client)(made.sid).delete() is True
    assert (seen[-1]["status"], seen[-1]["body"]) == (204, b"")
    gone = twilio_error(addresses(client)(made.sid).fetch)
    assert (gone.status, gone.code) == (404, 20404)
    assert twilio_error(addresses(client)(made.sid).delete).code == 20404


@pytest.mark.parametrize("field, value", [("Type", "sms"), ("Address", "messenger:1"), ("AddressCountry", "US")])
def test_type_address_and_country_cannot_change(client, field, value):
    made = create(client)
    url = f"https://conversations.twilio.com/v1/Configuration/Addresses/{made.sid}"
    reply = client.request("POST", url, data={field: value})
    assert reply.status_code == 400 and field in json.loads(reply.text)["message"]
    assert addresses(client)(made.sid).fetch().address == PAGE


def test_an_update_changes_only_what_it_sends(client, sandbox):
    flow = sandbox.demo["messaging_flow_sid"]
    made = create(client, friendly_name="Gear", auto_creation_enabled=True, auto_creation_type="studio",
                  auto_creation_studio_flow_sid=flow, auto_creation_studio_retry_count=2)
    address = addresses(client)(made.sid)
    assert address.update(friendly_name="Gear 2").auto_creation == made.auto_creation
    disabled = address.update(auto_creation_enabled=False)
    assert (disabled.friendly_name, disabled.auto_creation) == ("Gear 2", {**made.auto_creation, "enabled": False})
    err = twilio_error(lambda: address.update(auto_creation_type="webhook"))
    assert err.status == 400 and "AutoCreation.WebhookUrl" in err.msg  # a webhook needs its URL
    assert address.update(auto_creation_type="default").auto_creation == {"enabled": False, "type": "default"}
    assert address.fetch().date_updated >= made.date_updated


def test_type_is_taken_in_any_case_and_answered_in_lower_case(client):
    """Twilio's own example creates `whAtsAPP`; the list filter is as forgiving."""
    made = create(client, "whatsapp:+15550001234", type="whAtsAPP")
    assert made.type == "whatsapp"
    assert [a.sid for a in addresses(client).list(type="WhatsApp")] == [made.sid]
    assert addresses(client)("whatsapp:+15550001234").fetch().sid == made.sid  # `+` in the path is not a space


def test_a_duplicate_address_is_refused_with_a_twilio_error_body(client, sandbox):
    create(client)
    seen = exchanges(sandbox)
    err = twilio_error(lambda: create(client))
    assert (err.status, err.code) == (409, 20409) and PAGE in err.msg
    body = json.loads(seen[-1]["body"])
    assert body == {"code": err.code, "message": body["message"], "status": 409,
                    "more_info": f"https://www.twilio.com/docs/errors/{err.code}"}
    assert err.msg.endswith(body["message"])  # the SDK prefixes "Unable to create record: "
    assert len(addresses(client).list()) == 1


@pytest.mark.parametrize("options, named", [
    ({"type": None}, "Type"),
    ({"address": None}, "Address"),
    ({"auto_creation_type": "studio", "auto_creation_studio_flow_sid": "FW123"}, "AutoCreation.StudioFlowSid"),
    ({"friendly_name": "x" * 257}, "FriendlyName"),
    ({"auto_creation_type": "carrier-pigeon"}, "AutoCreation.Type"),
])
def test_bad_input_is_a_400_naming_the_field(client, options, named):
    err = twilio_error(lambda: create(client, **{"address": PAGE, **options}))
    assert err.status == 400 and named in err.msg
    assert addresses(client).list() == []


def test_a_friendly_name_of_256_characters_is_fine(client):
    assert len(create(client, friendly_name="x" * 256).friendly_name) == 256


def test_paging_across_pages_keeps_the_type_filter(client, sandbox):
    for n in range(105):
        create(client, f"messenger:{1000 + n}")
        if n % 20 == 0:
            create(client, f"+1555000{n:04d}", type="sms")
    seen = exchanges(sandbox)
    listed = addresses(client).list(type="messenger", page_size=50)
    assert len(listed) == 105 and {a.type for a in listed} == {"messenger"}
    assert [a.address for a in listed] == [f"messenger:{1000 + n}" for n in range(105)]  # creation order, no repeats
    assert [x["query"].get("Type") for x in seen] == [["messenger"]] * 3
    assert ["PageToken" in x["query"] for x in seen] == [False, True, True]

    assert len(addresses(client).list()) == 111  # 50 a page by default
    with pytest.raises(TwilioException, match="Unable to fetch page"):
        addresses(client).list(page_size=51)
    assert seen[-1]["status"] == 400 and b"PageSize" in seen[-1]["body"]


@pytest.mark.parametrize("query, named", [("PageSize=0", "PageSize"), ("PageSize=51", "PageSize"),
                                          ("PageSize=ten", "PageSize"), ("Page=-1", "Page"),
                                          ("PageToken=nonsense", "PageToken")])
def test_paging_parameters_out_of_bounds_are_400s(client, query, named):
    reply = client.request("GET", f"https://conversations.twilio.com/v1/Configuration/Addresses?{query}")
    body = json.loads(reply.text)
    assert (reply.status_code, body["code"]) == (400, 20001) and named in body["message"]


def test_next_page_url_is_absolute_and_carries_the_filter(client):
    for n in range(3):
        create(client, f"messenger:{2000 + n}")
    url = "https://conversations.twilio.com/v1/Configuration/Addresses?PageSize=2&Type=messenger"
    meta = json.loads(client.request("GET", url).text)["meta"]
    following = urlsplit(meta["next_page_url"])
    assert (following.scheme, following.netloc, following.path) == ("https", "conversations.twilio.com",
                                                                     "/v1/Configuration/Addresses")
    query = parse_qs(following.query)
    assert (query["Type"], query["PageSize"], query["Page"]) == (["messenger"], ["2"], ["1"])
    last = json.loads(client.request("GET", meta["next_page_url"]).text)
    assert [a["address"] for a in last["address_configurations"]] == ["messenger:2002"]
    assert last["meta"]["next_page_url"] is None and last["meta"]["previous_page_url"] is not None


# --- credentials and accounts --------------------------------------------------------------------------------

def target(sandbox, username, password, account_sid=None):
    return Target("sandbox", account_sid or sandbox.demo["account_sid"], username, Secret(password),
                  sandbox_url=sandbox.url)


def test_a_wrong_token_is_a_401_20003(sandbox):
    bad = connect(target(sandbox, sandbox.demo["account_sid"], "wrong-token"))
    err = twilio_error(bad.conversations.v1.configuration().fetch)
    assert (err.status, err.code) == (401, 20003)


def test_an_api_key_works_and_an_unknown_key_does_not(sandbox):
    demo = sandbox.demo
    keyed = connect(target(sandbox, demo["api_key"], demo["api_secret"]))
    account = keyed.api.v2010.accounts(demo["account_sid"]).fetch()
    assert account.sid == demo["account_sid"]
    assert account.date_created.tzinfo is not None  # RFC 2822, as API 2010 writes dates and the SDK parses them
    unknown = connect(target(sandbox, "SK" + "0" * 32, demo["api_secret"]))
    with pytest.raises(TwilioException, match="Unable to fetch page") as info:
        unknown.studio.v2.flows.list()
    assert info.value.args[1].status_code == 401
    assert twilio_error(unknown.flex_api.v1.configuration().fetch).code == 20003


@pytest.mark.parametrize("username, password", [
    ("other:api_key", "other:api_secret"),  # a valid key, of another account
    ("demo:account_sid", "demo:api_secret"),  # the account SID with its key's secret
    ("demo:api_key", "demo:auth_token"),  # the key with the account's token
    ("other:account_sid", "demo:auth_token"),
])
def test_credentials_that_do_not_belong_to_the_account_are_refused(sandbox, username, password):
    accounts = {"demo": sandbox.demo, "other": sandbox.control.create_account("other")}

    def pick(ref):
        who, field = ref.split(":")
        return accounts[who][field]

    bad = connect(target(sandbox, pick(username), pick(password)))
    err = twilio_error(bad.api.v2010.accounts(sandbox.demo["account_sid"]).fetch)
    assert (err.status, err.code) == (401, 20003)


def test_without_credentials_every_path_is_a_401_not_a_404(sandbox):
    for path in ("/conversations/v1/Configuration/Addresses", "/conversations/v1/NoSuchThing", "/nosuch/v1/x"):
        reply = requests.get(sandbox.url + path)
        assert (reply.status_code, reply.json()["code"]) == (401, 20003), path
        assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_a_method_twilio_does_not_allow_is_a_405_20004(client, sandbox):
    seen = exchanges(sandbox)
    reply = client.request("DELETE", "https://conversations.twilio.com/v1/Configuration")
    assert (reply.status_code, json.loads(reply.text)["code"]) == (405, 20004)
    assert seen[-1]["headers"]["Allow"] == "GET, HEAD"
    assert client.conversations.v1.configuration().fetch().account_sid == sandbox.demo["account_sid"]


def test_accounts_are_isolated(client, sandbox):
    made = create(client)
    other = sandbox.control.create_account("second")
    second = sandbox.client(other["account_sid"])
    assert addresses(second).list() == []
    assert twilio_error(addresses(second)(made.sid).fetch).code == 20404
    assert twilio_error(addresses(second)(PAGE).fetch).code == 20404
    assert twilio_error(second.api.v2010.accounts(sandbox.demo["account_sid"]).fetch).code == 20003
    assert second.api.v2010.accounts(other["account_sid"]).fetch().friendly_name == "second"
    assert addresses(client)(made.sid).fetch().sid == made.sid


# --- Studio, Flex and Conversations configuration ------------------------------------------------------------

def test_studio_flows_lifecycle(client, sandbox):
    flows = client.studio.v2.flows
    listed = {f.friendly_name: f for f in flows.list()}
    assert set(listed) == {"Messaging Flow", "Draft Survey Flow"}
    assert all(f.definition is None for f in listed.values())  # as Twilio: no definition in lists

    messaging = flows(sandbox.demo["messaging_flow_sid"]).fetch()
    assert messaging.status == "published" and messaging.valid is True
    assert any(s["type"] == "send-to-flex" for s in messaging.definition["states"])

    made = flows.create(friendly_name="Copy", status="draft", definition=messaging.definition)
    assert (made.status, made.revision, made.valid) == ("draft", 1, True)
    published = flows(made.sid).update(status="published", commit_message="go")
    assert published.status == "published" and published.commit_message == "go"

    broken = {**messaging.definition, "initial_state": "Nowhere"}
    err = twilio_error(lambda: flows(made.sid).update(status="published", definition=broken))
    assert err.status == 400 and "initial_state" in err.msg
    assert flows(made.sid).fetch().definition == messaging.definition  # unchanged

    assert flows(made.sid).delete() is True
    assert twilio_error(flows(made.sid).fetch).code == 20404


def test_flex_and_conversations_configuration_are_routed_apart(client, sandbox):
    flex = client.flex_api.v1.configuration().fetch()
    conversations = client.conversations.v1.configuration().fetch()
    assert flex.status == "ok" and flex.flex_service_instance_sid == sandbox.demo["flex_service_sid"]
    assert flex.taskrouter_target_workflow_sid.startswith("WW")
    assert conversations.default_chat_service_sid == sandbox.demo["flex_service_sid"]
    assert "flex" not in conversations.url and flex.url == "https://flex-api.twilio.com/v1/Configuration"


# --- faults and latency --------------------------------------------------------------------------------------

def test_a_get_is_retried_through_injected_errors(client, sandbox):
    sandbox.control.add_fault(product="conversations", method="GET", path="^/v1/Configuration$", status=503,
                              code=20503, retry_after=0, times=2)
    sandbox.control.reset_stats()
    assert client.conversations.v1.configuration().fetch().account_sid == sandbox.demo["account_sid"]
    assert sandbox.control.faults()[0]["fired"] == 2
    assert sandbox.control.stats()["requests"] == {"GET conversations": 3}
    assert client.http_client.request_count == 1


def test_an_error_fault_carries_status_code_and_retry_after(client, sandbox):
    sandbox.control.add_fault(product="studio", method="POST", status=429, code=20429, retry_after=7,
                              message="Too many requests", times=1)
    seen = exchanges(sandbox)
    err = twilio_error(lambda: client.studio.v2.flows(sandbox.demo["draft_flow_sid"]).update(status="draft"))
    assert (err.status, err.code) == (429, 20429) and err.msg.endswith("Too many requests")
    assert seen[-1]["headers"]["Retry-After"] == "7"
    assert client.studio.v2.flows(sandbox.demo["draft_flow_sid"]).update(status="draft").status == "draft"


def test_a_fault_without_a_code_gets_twilios_code_for_its_status(client, sandbox):
    sandbox.control.add_fault(product="flex-api", status=429, retry_after=0, times=1)
    seen = exchanges(sandbox)
    client.flex_api.v1.configuration().fetch()  # retried through the 429
    assert [(x["status"], json.loads(x["body"]).get("code")) for x in seen][0] == (429, 20429)


@pytest.mark.parametrize("rule, named", [({"method": 5}, "method"), ({"times": "x"}, "times"),
                                         ({"times": 0}, "times"), ({"status": 200}, "status"),
                                         ({"probability": 2}, "probability"), ({"action": "explode"}, "action"),
                                         ({"path": "("}, "path"), ({"colour": "red"}, "colour")])
def test_a_bad_fault_rule_is_refused_naming_the_field(sandbox, rule, named):
    with pytest.raises(FlexopsError, match=named):
        sandbox.control.add_fault(**rule)
    assert sandbox.control.faults() == []


def test_a_429_retry_after_is_honoured(client, sandbox):
    sandbox.control.add_fault(product="flex-api", status=429, code=20429, retry_after=1, times=1)
    sandbox.control.reset_stats()
    started = time.monotonic()
    assert client.flex_api.v1.configuration().fetch().status == "ok"
    assert time.monotonic() - started >= 1.0
    assert sandbox.control.stats()["requests"] == {"GET flex-api": 2}


def test_latency_fault_and_global_latency(client, sandbox):
    sandbox.control.add_fault(product="studio", action="latency", latency_ms=300, times=1)
    started = time.monotonic()
    client.studio.v2.flows.list()
    assert time.monotonic() - started >= 0.3

    sandbox.control.set_latency(250)
    started = time.monotonic()
    client.conversations.v1.configuration().fetch()
    assert time.monotonic() - started >= 0.25
    sandbox.control.set_latency(0)
    started = time.monotonic()
    client.conversations.v1.configuration().fetch()
    assert time.monotonic() - started < 0.25


def test_commit_then_error_changes_state_although_the_client_saw_a_500(client, sandbox):
    sandbox.control.add_fault(product="conversations", method="POST", action="commit_then_error", times=1)
    err = twilio_error(lambda: create(client))
    assert err.status == 500
    assert addresses(client)(PAGE).fetch().address == PAGE


def test_commit_then_drop_changes_state_although_the_connection_dropped(client, sandbox):
    sandbox.control.add_fault(product="conversations", method="POST", action="commit_then_drop", times=1)
    with pytest.raises(requests.ConnectionError):
        create(client)
    assert addresses(client)(PAGE).fetch().address == PAGE


def test_probabilistic_faults_with_a_seed_are_reproducible(client, sandbox):
    flow = client.studio.v2.flows(sandbox.demo["draft_flow_sid"])

    def pattern():
        sandbox.control.clear_faults()
        sandbox.control.add_fault(product="studio", method="POST", probability=0.5, seed=42, status=503, code=20503)
        outcomes = []
        for _ in range(16):
            try:
                flow.update(status="draft")
                outcomes.append("ok")
            except TwilioRestException as err:
                outcomes.append(err.status)
        return outcomes

    first = pattern()
    assert first == pattern()
    assert set(first) == {"ok", 503}


# --- region/edge and secrets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("edge, region, host", [("sydney", "au1", "sydney.au1"), ("dublin", None, "dublin.us1"),
                                                 (None, "ie1", "ie1")])
def test_region_and_edge_settings_still_reach_the_sandbox(sandbox, monkeypatch, edge, region, host):
    for name, value in (("TWILIO_EDGE", edge), ("TWILIO_REGION", region)):
        if value:
            monkeypatch.setenv(name, value)
    client = sandbox.client()
    urls = []
    client.http_client.listeners.append(lambda **call: urls.append(call["url"]))
    assert client.conversations.v1.configuration().fetch().account_sid == sandbox.demo["account_sid"]
    assert client.flex_api.v1.configuration().fetch().status == "ok"
    account = client.api.v2010.accounts(sandbox.demo["account_sid"]).fetch()
    assert account.sid == sandbox.demo["account_sid"]
    assert urls == [f"https://conversations.{host}.twilio.com/v1/Configuration",
                    f"https://flex-api.{host}.twilio.com/v1/Configuration",
                    f"https://api.{host}.twilio.com/2010-04-01/Accounts/{sandbox.demo['account_sid']}.json"]


def test_no_repr_or_str_shows_the_token(client, sandbox):
    token, secret = sandbox.demo["auth_token"], sandbox.demo["api_secret"]
    keyed = connect(target(sandbox, sandbox.demo["api_key"], secret))
    shown = [f(obj) for obj in (client.flexops_target, client, client.http_client, keyed.flexops_target, keyed,
                                client.flexops_target.password) for f in (repr, str)]
    shown += [client.flexops_target.describe(), str(client.flexops_target.public())]
    assert not [s for s in shown if token in s or secret in s]
