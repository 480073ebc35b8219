"""Target and credential resolution: env, API keys, twilio-cli profiles, sandbox; secrets never printed."""
import json

import pytest

import flexops
from flexops.exceptions import ConfigurationError, ConnectionFailed, ValidationError
from flexops.settings import Secret, choose_target, mask_sid, twilio_credentials

SID = "AC" + "1" * 28 + "abcd"
TOKEN = "tok_distinctive_value_123"


def test_secret_never_prints_itself():
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret) and TOKEN not in str(secret) and TOKEN not in f"{secret}"
    assert secret.reveal() == TOKEN
    with pytest.raises(TypeError):
        __import__("pickle").dumps(secret)


def test_mask_sid_keeps_prefix_and_last_four():
    assert mask_sid(SID) == "AC…abcd"
    assert mask_sid(None) == "unknown"


def test_unknown_target_names_the_parameter():
    with pytest.raises(ValidationError, match="target"):
        choose_target("production")


def test_env_token_credentials():
    target = twilio_credentials(env={"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_EDGE": "sydney"})
    assert target.kind == "twilio" and target.username == SID and target.edge == "sydney"
    assert TOKEN not in repr(target) and TOKEN not in target.describe() and TOKEN not in json.dumps(target.public())
    assert "AC…abcd" in target.describe()


def test_env_api_key_credentials():
    target = twilio_credentials(env={"TWILIO_ACCOUNT_SID": SID, "TWILIO_API_KEY": "SK" + "2" * 32,
                                     "TWILIO_API_SECRET": TOKEN})
    assert target.username.startswith("SK") and target.account_sid == SID


@pytest.mark.parametrize("env, needed", [
    ({"TWILIO_ACCOUNT_SID": SID}, "TWILIO_AUTH_TOKEN"),
    ({"TWILIO_AUTH_TOKEN": TOKEN}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_API_KEY": "SK" + "2" * 32, "TWILIO_API_SECRET": TOKEN}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_API_KEY": "SK" + "2" * 32, "TWILIO_ACCOUNT_SID": SID}, "TWILIO_API_SECRET"),
])
def test_partial_credentials_say_what_to_set(env, needed):
    with pytest.raises(ConfigurationError, match=needed) as info:
        twilio_credentials(env=env)
    assert TOKEN not in str(info.value)


def test_malformed_account_sid_is_refused_without_echoing_the_token():
    with pytest.raises(ConfigurationError, match="AC followed by 32 hex") as info:
        twilio_credentials(env={"TWILIO_ACCOUNT_SID": "ACnope", "TWILIO_AUTH_TOKEN": TOKEN})
    assert TOKEN not in str(info.value)


def _write_profiles(path, **profiles):
    path.write_text(json.dumps({"activeProject": next(iter(profiles)), "profiles": profiles}))


def test_twilio_cli_profiles(tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    _write_profiles(config, prod={"accountSid": SID, "apiKey": "SK" + "3" * 32, "apiSecret": TOKEN, "region": "ie1"},
                    staging={"accountSid": "AC" + "4" * 32, "apiKey": "SK" + "5" * 32, "apiSecret": "x"})
    monkeypatch.setenv("TWILIO_CLI_CONFIG", str(config))
    active = twilio_credentials(env={})
    assert active.account_sid == SID and active.region == "ie1" and "prod" in active.source
    assert twilio_credentials(profile="staging", env={}).account_sid == "AC" + "4" * 32
    with pytest.raises(ConfigurationError, match="known profiles: prod, staging"):
        twilio_credentials(profile="nope", env={})


def test_profile_without_secret_explains_keychain(tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    _write_profiles(config, prod={"accountSid": SID, "apiKey": "SK" + "3" * 32})
    monkeypatch.setenv("TWILIO_CLI_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match="keychain"):
        twilio_credentials(env={})


def test_auto_prefers_configured_credentials(sandbox, monkeypatch):
    monkeypatch.delenv("FLEXOPS_TARGET")
    assert flexops.resolve_target("auto").is_sandbox
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    target = flexops.resolve_target("auto")
    assert target.kind == "twilio" and target.account_sid == SID
    assert flexops.resolve_target("sandbox").is_sandbox


def test_target_twilio_without_credentials_says_what_to_set(sandbox):
    with pytest.raises(ConfigurationError, match="TWILIO_ACCOUNT_SID"):
        flexops.connect("twilio")


def test_connect_to_running_sandbox_via_env(sandbox):
    client = flexops.connect()
    assert client.flexops_target.is_sandbox
    assert client.flexops_target.account_sid == sandbox.demo["account_sid"]
    account = client.api.v2010.accounts(client.account_sid).fetch()
    assert account.status == "active"
    for text in (repr(client), repr(client.flexops_target), repr(client.http_client), client.flexops_target.describe()):
        assert sandbox.demo["auth_token"] not in text


def test_embedded_sandbox_persists_state_in_its_file(tmp_path, monkeypatch):
    monkeypatch.delenv("FLEXOPS_SANDBOX_URL", raising=False)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWILIO_CLI_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.setenv("FLEXOPS_SANDBOX_DB", str(tmp_path / "embedded.db"))
    client = flexops.connect("auto")
    assert client.flexops_target.is_sandbox
    client.conversations.v1.address_configurations.create(type="messenger", address="messenger:123456789")
    from flexops.sandbox.store import Store
    store = Store(tmp_path / "embedded.db")
    assert store.get(client.account_sid, "address_configuration", key="messenger:123456789") is not None


def test_auto_defers_to_flexops_target_and_explicit_wins(monkeypatch):
    monkeypatch.setenv("FLEXOPS_TARGET", "sandbox")
    assert choose_target("auto") == "sandbox" and choose_target(None) == "sandbox"
    assert choose_target("twilio") == "twilio"
    monkeypatch.setenv("FLEXOPS_TARGET", "prod")
    with pytest.raises(ConfigurationError, match="FLEXOPS_TARGET"):
        choose_target("auto")


def test_twilio_profile_env_picks_the_profile_and_region_edge_env_override_it(tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    _write_profiles(config, prod={"accountSid": SID, "apiKey": "SK" + "3" * 32, "apiSecret": TOKEN, "region": "ie1"},
                    staging={"accountSid": "AC" + "4" * 32, "apiKey": "SK" + "5" * 32, "apiSecret": "x",
                             "region": "au1", "edge": "sydney"})
    monkeypatch.setenv("TWILIO_CLI_CONFIG", str(config))
    staging = twilio_credentials(env={"TWILIO_PROFILE": "staging"})
    assert (staging.account_sid, staging.region, staging.edge) == ("AC" + "4" * 32, "au1", "sydney")
    moved = twilio_credentials(env={"TWILIO_PROFILE": "staging", "TWILIO_REGION": "ie1", "TWILIO_EDGE": "dublin"})
    assert (moved.region, moved.edge) == ("ie1", "dublin")
    assert moved.describe() == "Twilio account AC…4444 (region ie1, edge dublin)"


def test_a_real_twilio_client_is_not_rerouted(monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_CLI_CONFIG", "/nonexistent/config.json")
    client = flexops.connect("twilio")  # no request is made until a resource is used
    assert client.flexops_target.kind == "twilio" and client.http_client.sandbox_url is None
    url = "https://conversations.twilio.com/v1/Configuration"
    assert client.http_client.route(url) == url
    assert TOKEN not in repr(client.flexops_target) and TOKEN not in repr(client.http_client)


def test_an_unreachable_sandbox_url_is_a_clear_connection_error(monkeypatch):
    monkeypatch.setenv("FLEXOPS_SANDBOX_URL", "http://127.0.0.1:9")
    with pytest.raises(ConnectionFailed, match=r"cannot reach the sandbox at http://127\.0\.0\.1:9"):
        flexops.connect("sandbox")
