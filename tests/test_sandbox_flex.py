"""The Flex side of the path in the sandbox through the real SDK: Monitor alerts, the Flex configuration,
Interactions (Send to Flex) with their channels and TaskRouter tasks, and legacy Flex Flows."""
import time

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from flexops.sandbox.monitor.models import MonitorBackend


def test_recorded_alerts_are_listed_newest_first_and_filtered(sandbox, client):
    monitor = MonitorBackend(sandbox.store, sandbox.demo["account_sid"])
    first = monitor.record_alert(81009, "Msg=Send to Flex timed out enqueueing&sourceComponent=14100",
                                 resource_sid="FN" + "1" * 32, service_sid="FW" + "2" * 32,
                                 request_url="https://flex-api.twilio.com/v1/Interactions", request_method="post",
                                 response_body='{"code": 20429}')
    time.sleep(1.1)
    warning = monitor.record_alert("45210", "Flex Flow collided", log_level="warning")
    assert first["sid"].startswith("NO") and first["error_code"] == "81009" and first["request_method"] == "POST"
    assert first["more_info"] == "https://www.twilio.com/docs/errors/81009"
    listed = client.monitor.v1.alerts.list()
    assert [a.sid for a in listed] == [warning["sid"], first["sid"]]
    assert [a.sid for a in client.monitor.v1.alerts.list(log_level="warning")] == [warning["sid"]]
    assert [a.sid for a in client.monitor.v1.alerts.list(start_date=warning["date_generated"])] == [warning["sid"]]
    assert client.monitor.v1.alerts.list(end_date="2000-01-01T00:00:00Z") == []
    fetched = client.monitor.v1.alerts(first["sid"]).fetch()
    assert fetched.response_body == '{"code": 20429}' and fetched.resource_sid == "FN" + "1" * 32
    assert fetched.alert_text.startswith("Msg=Send to Flex")
    with pytest.raises(TwilioRestException) as raised:
        client.monitor.v1.alerts("NO" + "0" * 32).fetch()
    assert raised.value.status == 404
    with pytest.raises(TwilioException, match="LogLevel"):
        client.monitor.v1.alerts.list(log_level="fatal")


def test_alerts_belong_to_their_account(sandbox, client):
    other = sandbox.control.create_account("other")["account_sid"]
    MonitorBackend(sandbox.store, other).record_alert(63003, "not yours")
    assert client.monitor.v1.alerts.list() == []
    assert len(sandbox.client(other).monitor.v1.alerts.list()) == 1


def test_record_alert_refuses_what_twilio_never_records(sandbox):
    monitor = MonitorBackend(sandbox.store, sandbox.demo["account_sid"])
    with pytest.raises(ValueError, match="log_level"):
        monitor.record_alert(81009, "x", log_level="fatal")
    with pytest.raises(ValueError, match="request_method"):
        monitor.record_alert(81009, "x", request_method="PUT")
