"""MessengerAddress validation and the address operations, through the real SDK against the sandbox."""
import time

import pytest

from flexops import addresses, retry
from flexops.client import connect, sandbox_target
from flexops.addresses import MessengerAddress
from flexops.exceptions import TwilioCallFailed, ValidationError

PAGE = "104738392011234"
OTHER_PAGE = "204738392011235"
HOOK = "https://hooks.example.com/flexops"
FLOW = "FW" + "a" * 32
SERVICE = "IS" + "b" * 32
CREATE_PATH = "^/v1/Configuration/Addresses$"


def studio_spec(sandbox, page=PAGE, **extra):
    return MessengerAddress.from_params(page_id=page, studio_flow_sid=sandbox.demo["messaging_flow_sid"], **extra)


def client_for(sandbox):
    return connect(sandbox_target(url=sandbox.url))


def record_calls(client):
    """Every (method, url) the client sends, as seen by its HTTP client."""
    calls = []
    client.http_client.listeners.append(lambda method, url, **kw: calls.append((method, url)))
    return calls


def mutations(calls):
    return [c for c in calls if c[0] in ("POST", "DELETE")]


def messenger_configs(client):
    return [c for c in client.conversations.v1.address_configurations.list() if c.type == "messenger"]


# --- validation ----------------------------------------------------------------------------------------------

BAD = [  # (params, parameter named in the error)
    ({"page_id": "12345abc"}, "page_id"),
    ({"page_id": "+104738392011234"}, "page_id"),
    ({"page_id": "1047 3839"}, "page_id"),
    ({"page_id": "1234"}, "page_id"),
    ({"page_id": "1" * 26}, "page_id"),
    ({"page_id": "whatsapp:+15550001111"}, "page_id"),
    ({"page_id": True}, "page_id"),
    ({"friendly_name": "x" * 300}, "friendly_name"),
    ({"integration": "flex"}, "integration"),
    ({"studio_flow_sid": None}, "studio_flow_sid"),
    ({"studio_flow_sid": "WW" + "a" * 32}, "studio_flow_sid"),
    ({"studio_flow_sid": "FW" + "g" * 32}, "studio_flow_sid"),
    ({"studio_flow_sid": "FW123"}, "studio_flow_sid"),
    ({"retry_count": 4}, "retry_count"),
    ({"retry_count": -1}, "retry_count"),
    ({"retry_count": "three"}, "retry_count"),
    ({"retry_count": "2.5"}, "retry_count"),
    ({"webhook_url": HOOK}, "webhook_url"),
    ({"webhook_method": "GET"}, "webhook_method"),
    ({"webhook_filters": "onMessageAdded"}, "webhook_filters"),
    ({"conversation_service_sid": "IS123"}, "conversation_service_sid"),
    ({"conversation_service_sid": "CH" + "b" * 32}, "conversation_service_sid"),
    ({"auto_creation_enabled": "maybe"}, "auto_creation_enabled"),
    ({"colour": "blue"}, "colour"),
    # webhook integration
    ({"integration": "webhook", "studio_flow_sid": None}, "webhook_url"),
    ({"integration": "webhook", "studio_flow_sid": None, "webhook_url": "http://hooks.example.com/x"}, "webhook_url"),
    ({"integration": "webhook", "studio_flow_sid": None, "webhook_url": "ftp://hooks.example.com/x"}, "webhook_url"),
    ({"integration": "webhook", "studio_flow_sid": None, "webhook_url": "https://"}, "webhook_url"),
    ({"integration": "webhook", "webhook_url": HOOK}, "studio_flow_sid"),
    ({"integration": "webhook", "studio_flow_sid": None, "webhook_url": HOOK, "retry_count": 1}, "retry_count"),
    ({"integration": "webhook", "studio_flow_sid": None, "webhook_url": HOOK, "webhook_method": "PUT"},
     "webhook_method"),
    ({"integration": "webhook", "studio_flow_sid": None, "webhook_url": HOOK,
      "webhook_filters": "onMessageAdded,onMessageSent"}, "webhook_filters"),
]


@pytest.mark.parametrize("params, parameter", BAD, ids=[f"{p}-{i}" for i, (_, p) in enumerate(BAD)])
def test_each_rule_names_its_parameter(params, parameter):
    full = {"page_id": PAGE, "studio_flow_sid": FLOW, **params}
    with pytest.raises(ValidationError) as caught:
        MessengerAddress.from_params(**{k: v for k, v in full.items() if v is not None})
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter}: ")


def test_missing_page_id_is_named():
    with pytest.raises(ValidationError) as caught:
        MessengerAddress.from_params(studio_flow_sid=FLOW, page_id="")
    assert caught.value.parameter == "page_id"


def test_a_300_character_name_says_how_long_it_was():
    with pytest.raises(ValidationError, match="at most 256 characters \\(got 300\\)"):
        MessengerAddress(PAGE, friendly_name="n" * 300, studio_flow_sid=FLOW)


def test_page_id_forms_are_normalised():
    for given in (104738392011234, "104738392011234", "messenger:104738392011234", " 104738392011234 "):
        spec = MessengerAddress.from_params(page_id=given, studio_flow_sid=FLOW)
        assert spec.page_id == PAGE and spec.address == "messenger:" + PAGE
    assert MessengerAddress(int(PAGE), studio_flow_sid=FLOW).page_id == PAGE


def test_loose_parameters_are_coerced():
    spec = MessengerAddress.from_params(page_id=PAGE, friendly_name="", studio_flow_sid=FLOW, retry_count="2",
                                        auto_creation_enabled="false", conversation_service_sid="",
                                        webhook_url="", webhook_method="POST", webhook_filters="")
    assert (spec.friendly_name, spec.retry_count, spec.auto_creation_enabled) == (None, 2, False)
    assert spec.conversation_service_sid is None and spec.webhook_url is None
    hook = MessengerAddress.from_params(page_id=PAGE, integration="Webhook", webhook_url=HOOK, webhook_method="get",
                                        webhook_filters="onMessageAdded, onParticipantAdded,onMessageAdded",
                                        retry_count=3, allow_insecure_webhook="no")
    assert hook.integration == "webhook" and hook.webhook_method == "GET" and hook.retry_count is None
    assert hook.webhook_filters == ("onMessageAdded", "onParticipantAdded")
    assert MessengerAddress.from_params(page_id=PAGE, studio_flow_sid=FLOW, friendly_name=2024).friendly_name == "2024"
    listed = MessengerAddress.from_params(page_id=PAGE, integration="webhook", webhook_url=HOOK,
                                          webhook_filters=["onMessageAdded"])
    assert listed.webhook_filters == ("onMessageAdded",)


def test_http_webhook_needs_the_explicit_opt_in():
    spec = MessengerAddress.from_params(page_id=PAGE, integration="webhook", webhook_url="http://localhost:8080/h",
                                        allow_insecure_webhook="true")
    assert spec.webhook_url.startswith("http://")


def test_spec_is_frozen_and_exposes_params():
    spec = MessengerAddress.from_params(page_id=PAGE, friendly_name="Acme", studio_flow_sid=FLOW,
                                        conversation_service_sid=SERVICE, retry_count=1)
    with pytest.raises(AttributeError):
        spec.page_id = "1"
    assert spec.create_params() == {
        "type": "messenger", "address": "messenger:" + PAGE, "friendly_name": "Acme", "auto_creation_enabled": True,
        "auto_creation_type": "studio", "auto_creation_conversation_service_sid": SERVICE,
        "auto_creation_studio_flow_sid": FLOW, "auto_creation_studio_retry_count": 1}
    assert "type" not in spec.update_params() and "address" not in spec.update_params()
    hook = MessengerAddress.from_params(page_id=PAGE, integration="webhook", webhook_url=HOOK,
                                        webhook_filters="onMessageAdded")
    assert hook.create_params()["auto_creation_webhook_method"] == "post"
    assert hook.create_params()["auto_creation_webhook_filters"] == ["onMessageAdded"]
    assert "auto_creation_studio_retry_count" not in hook.create_params()
    assert spec.to_dict()["address"] == "messenger:" + PAGE and hook.to_dict()["webhook_filters"] == ["onMessageAdded"]


def test_state_of_reads_twilio_json_and_diff_lists_only_differences():
    spec = MessengerAddress(PAGE, friendly_name="Acme", studio_flow_sid=FLOW, retry_count=2)
    resource = {"sid": "IG" + "0" * 32, "address": "messenger:" + PAGE, "type": "messenger", "friendly_name": "Acme",
                "auto_creation": {"enabled": True, "type": "studio", "studio_flow_sid": FLOW,
                                  "studio_retry_count": 2}}
    assert addresses.state_of(resource) == spec.desired_state()
    assert addresses.diff(spec, resource) == {}
    resource["auto_creation"]["studio_retry_count"] = 3
    resource["friendly_name"] = "Old"
    assert addresses.diff(spec, resource) == {"retry_count": (3, 2), "friendly_name": ("Old", "Acme")}
    unnamed = MessengerAddress(PAGE, studio_flow_sid=FLOW, retry_count=3)
    assert addresses.diff(unnamed, resource) == {}, "an unset friendly name means 'leave it'"
    hook = {"friendly_name": None, "auto_creation": {"enabled": True, "type": "webhook", "webhook_url": HOOK,
                                                     "webhook_method": "post",
                                                     "webhook_filters": ["onParticipantAdded", "onMessageAdded"]}}
    state = addresses.state_of(hook)
    assert state["webhook_method"] == "POST"
    assert state["webhook_filters"] == ("onMessageAdded", "onParticipantAdded")


# --- operations ----------------------------------------------------------------------------------------------

def test_ensure_creates_then_is_a_no_op(sandbox, client):
    spec = studio_spec(sandbox, friendly_name="Acme Outdoor Gear")
    created = addresses.ensure(client, spec)
    assert created.action == "created" and created.sid.startswith("IG") and created.changed
    calls = record_calls(client)
    again = addresses.ensure(client, spec)
    assert (again.action, again.sid, again.diff) == ("unchanged", created.sid, {})
    assert mutations(calls) == [] and len(calls) == 1, "a no-op is one GET by address"
    assert again.to_dict() == {"address": "messenger:" + PAGE, "page_id": PAGE, "action": "unchanged",
                               "sid": created.sid, "diff": {}}


def test_drift_is_reported_then_updated_on_request(sandbox, client):
    addresses.ensure(client, studio_spec(sandbox, retry_count=3))
    wanted = studio_spec(sandbox, retry_count=1, friendly_name="Renamed")
    drift = addresses.ensure(client, wanted)
    assert drift.action == "drift"
    assert drift.diff == {"retry_count": (3, 1), "friendly_name": (None, "Renamed")}
    assert drift.to_dict()["diff"]["retry_count"] == {"current": 3, "desired": 1}
    assert addresses.find(client, PAGE).auto_creation["studio_retry_count"] == 3, "drift alone changes nothing"
    updated = addresses.ensure(client, wanted, update_existing=True)
    assert updated.action == "updated" and updated.sid == drift.sid
    assert addresses.ensure(client, wanted).action == "unchanged"


def test_switching_integration_updates_in_place(sandbox, client):
    first = addresses.ensure(client, studio_spec(sandbox))
    hook = MessengerAddress.from_params(page_id=PAGE, integration="webhook", webhook_url=HOOK,
                                        webhook_filters="onMessageAdded")
    result = addresses.ensure(client, hook, update_existing=True)
    assert result.action == "updated" and result.sid == first.sid
    assert addresses.diff(hook, addresses.find(client, PAGE)) == {}
    assert len(messenger_configs(client)) == 1


def test_dry_run_mutates_nothing(sandbox, client):
    calls = record_calls(client)
    spec = studio_spec(sandbox)
    assert addresses.ensure(client, spec, dry_run=True).action == "would_create"
    assert addresses.find(client, PAGE) is None
    addresses.create(client, spec)
    changed = studio_spec(sandbox, retry_count=0)
    before = len(calls)
    assert addresses.ensure(client, changed, update_existing=True, dry_run=True).action == "would_update"
    assert addresses.ensure(client, changed, dry_run=True).action == "drift"
    assert addresses.ensure(client, spec, dry_run=True).action == "unchanged"
    assert addresses.remove(client, PAGE, dry_run=True).action == "would_delete"
    assert mutations(calls[before:]) == []
    assert addresses.find(client, PAGE).auto_creation["studio_retry_count"] == 3


@pytest.mark.parametrize("action", ["commit_then_error", "commit_then_drop"])
def test_no_duplicate_after_an_ambiguous_create(sandbox, client, action):
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, action=action, times=1)
    result = addresses.ensure(client, studio_spec(sandbox))
    assert result.action == "created"
    configs = messenger_configs(client)
    assert [c.sid for c in configs] == [result.sid]
    assert sandbox.control.faults()[0]["fired"] == 1
    assert addresses.ensure(client, studio_spec(sandbox)).action == "unchanged"


def test_a_5xx_before_commit_is_retried_once_checked(sandbox, client):
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, status=503, code=20503,
                              times=1)
    calls = record_calls(client)
    result = addresses.ensure(client, studio_spec(sandbox))
    assert result.action == "created" and len(messenger_configs(client)) == 1
    posts = [c for c in calls if c[0] == "POST"]
    assert len(posts) == 2, "one failed create, one retried create"
    methods = [c[0] for c in calls]
    assert methods[:3] == ["GET", "POST", "GET"], "looked up first, and again after the 503, before re-sending"


@pytest.mark.parametrize("commits", ["before the re-send", "after the re-send"])
def test_no_duplicate_after_a_read_timeout_on_create(sandbox, monkeypatch, commits):
    """The client stops waiting (its own read timeout) while Twilio is still working on the create, which then
    commits before or after our retry: the address is looked up before re-sending, and there is exactly one."""
    slow = connect(sandbox_target(url=sandbox.url), timeout=0.4)
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, action="latency",
                              latency_ms=1200, times=1)
    if commits == "before the re-send":
        monkeypatch.setattr(retry, "sleep", lambda seconds: time.sleep(1.5))
    calls = record_calls(slow)
    result = addresses.ensure(slow, studio_spec(sandbox))
    methods = [m for m, _ in calls]
    time.sleep(1.5)  # let the slow first create finish on the server side
    assert result.action == "created"
    assert [c.sid for c in messenger_configs(slow)] == [result.sid]
    assert methods[:4] == ["GET", "POST", "GET", "POST"], "looked up again after the timeout, before re-sending"
    if commits == "before the re-send":
        assert methods[4:] == ["GET"], "the re-send met the committed address (409): looked up, not failed"
    assert addresses.ensure(client_for(sandbox), studio_spec(sandbox)).action == "unchanged"


def test_a_failing_lookup_is_retried_by_the_http_client_only(sandbox, client):
    """GETs are retried once, by the HTTP client (honouring Retry-After); retry.call does not multiply them."""
    from requests.adapters import HTTPAdapter

    from flexops.client import safe_retry

    client.http_client.session.mount("http://", HTTPAdapter(max_retries=safe_retry(total=2)))  # a short backoff
    sandbox.control.add_fault(product="conversations", method="GET", path="^/v1/Configuration/Addresses/",
                              status=503, code=20503)
    sandbox.control.reset_stats()
    started = time.monotonic()
    with pytest.raises(TwilioCallFailed, match="still failing after the HTTP client's retries") as caught:
        addresses.ensure(client, studio_spec(sandbox))
    assert (caught.value.status, caught.value.code) == (503, 20503)
    assert sandbox.control.stats()["requests"] == {"GET conversations": 3}, "1 + 2 HTTP retries, no more"
    assert time.monotonic() - started < 5


def test_429_with_retry_after_is_waited_then_retried(sandbox, client):
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, status=429, code=20429,
                              retry_after=1, times=1)
    started = time.monotonic()
    result = addresses.ensure(client, studio_spec(sandbox))
    assert result.action == "created"
    assert time.monotonic() - started >= 0.95, "Retry-After: 1 was honoured"
    assert len(messenger_configs(client)) == 1


def test_429_gives_up_at_the_deadline(sandbox, client):
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, status=429, code=20429,
                              retry_after=5)
    spec = studio_spec(sandbox)
    with pytest.raises(TwilioCallFailed) as caught:
        retry.call(lambda: client.conversations.v1.address_configurations.create(**spec.create_params()),
                   what="create it", deadline=2, client=client)
    assert caught.value.status == 429 and caught.value.code == 20429
    assert "create it" in str(caught.value) and "deadline" in str(caught.value)


def test_permanent_errors_fail_at_once_and_show_no_secret(sandbox, client):
    sandbox.control.add_fault(product="conversations", method="POST", path=CREATE_PATH, status=400, code=20001,
                              message="Invalid parameter")
    calls = record_calls(client)
    with pytest.raises(TwilioCallFailed) as caught:
        addresses.create(client, studio_spec(sandbox))
    error = caught.value
    assert (error.status, error.code) == (400, 20001)
    assert "create address configuration messenger:" + PAGE in str(error) and "20001" in str(error)
    assert sandbox.demo["auth_token"] not in str(error)
    assert len([c for c in calls if c[0] == "POST"]) == 1


def test_a_create_for_an_existing_address_is_a_permanent_conflict(sandbox, client):
    addresses.create(client, studio_spec(sandbox))
    with pytest.raises(TwilioCallFailed) as caught:
        addresses.create(client, studio_spec(sandbox))
    assert caught.value.status == 409


def test_find_accepts_ids_and_addresses_and_misses_are_none(sandbox, client):
    assert addresses.find(client, PAGE) is None
    created = addresses.create(client, studio_spec(sandbox))
    for key in (PAGE, int(PAGE), "messenger:" + PAGE):
        assert addresses.find(client, key).sid == created.sid
    with pytest.raises(ValidationError):
        addresses.find(client, "+15550001111")


def test_remove_needs_confirmation_and_is_idempotent(sandbox, client):
    created = addresses.create(client, studio_spec(sandbox))
    calls = record_calls(client)
    with pytest.raises(ValidationError) as caught:
        addresses.remove(client, PAGE)
    assert caught.value.parameter == "confirm" and calls == [], "refused before any API call"
    assert addresses.remove(client, PAGE, confirm=True).to_dict()["action"] == "deleted"
    assert addresses.find(client, PAGE) is None
    gone = addresses.remove(client, PAGE, confirm=True)
    assert (gone.action, gone.sid) == ("absent", None)
    assert created.sid


def test_delete_after_a_dropped_connection_counts_as_done(sandbox, client):
    created = addresses.create(client, studio_spec(sandbox))
    sandbox.control.add_fault(product="conversations", method="DELETE", path="^/v1/Configuration/Addresses/",
                              action="commit_then_drop", times=1)
    assert addresses.delete(client, created.sid) is True
    assert addresses.find(client, PAGE) is None
    assert addresses.delete(client, "messenger:" + PAGE) is False


def test_update_and_delete_by_address(sandbox, client):
    created = addresses.create(client, studio_spec(sandbox))
    updated = addresses.update(client, created.sid, studio_spec(sandbox, friendly_name="New name"))
    assert updated.friendly_name == "New name"
    assert addresses.delete(client, PAGE) is True


def test_list_messenger_filters_by_type_at_the_maximum_page_size(sandbox, client):
    for page in (PAGE, OTHER_PAGE, "304738392011236"):
        addresses.create(client, studio_spec(sandbox, page=page))
    client.conversations.v1.address_configurations.create(type="sms", address="+15550001111")
    sent = []
    client.http_client.listeners.append(lambda method, url, params=None, **kw: sent.append(dict(params or {})))
    listed = addresses.list_messenger(client)
    assert sorted(c.address for c in listed) == sorted("messenger:" + p for p in (PAGE, OTHER_PAGE, "304738392011236"))
    assert sent == [{"Type": "messenger", "PageSize": 50}]
    with pytest.raises(ValidationError):
        addresses.list_messenger(client, page_size=51)


def test_list_messenger_pages_through_many(sandbox, client):
    for n in range(5):
        addresses.create(client, studio_spec(sandbox, page=f"5000000000{n}"))
    assert len(addresses.list_messenger(client, page_size=2)) == 5


# --- retry rules without a server (the SDK's exceptions, raised as it raises them) --------------------------

def _raising(*failures, result="done"):
    """fn() that raises each failure in turn, then returns `result`; `.calls` counts attempts."""
    def fn():
        fn.calls += 1
        if fn.calls <= len(failures):
            raise failures[fn.calls - 1]
        return result
    fn.calls = 0
    return fn


def test_429_without_headers_backs_off_with_jitter(monkeypatch):
    from twilio.base.exceptions import TwilioRestException

    waits = []
    monkeypatch.setattr(retry, "sleep", waits.append)
    fn = _raising(*[TwilioRestException(429, "https://x", "Too many", 20429, "POST")] * 3)
    assert retry.call(fn, what="x") == "done" and fn.calls == 4
    assert len(waits) == 3 and all(0 < w <= retry.BACKOFF_CAP for w in waits)
    assert waits[2] > waits[0] / 2, "backoff grows"


def test_unknown_outcome_runs_reconcile_and_returns_what_it_found(monkeypatch):
    import requests
    from twilio.base.exceptions import TwilioRestException

    monkeypatch.setattr(retry, "sleep", lambda s: None)
    fn = _raising(TwilioRestException(500, "https://x", "boom", 20500, "POST"))
    assert retry.call(fn, reconcile=lambda: "it exists", what="x") == "it exists" and fn.calls == 1
    fn = _raising(requests.ConnectionError("reset"), requests.Timeout("slow"))
    looks = []
    assert retry.call(fn, reconcile=lambda: looks.append(1), what="x") == "done"
    assert (fn.calls, len(looks)) == (3, 2)


def test_retries_are_bounded_and_other_errors_pass_through(monkeypatch):
    import requests

    monkeypatch.setattr(retry, "sleep", lambda s: None)
    fn = _raising(*[requests.ConnectionError("down")] * 10)
    with pytest.raises(TwilioCallFailed, match="^ping: no HTTP answer after 3 attempts") as caught:
        retry.call(fn, what="ping", attempts=3)
    assert caught.value.status is None and fn.calls == 3
    with pytest.raises(KeyError):
        retry.call(_raising(KeyError("bug")), what="x")
