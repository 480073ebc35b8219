"""Webhook deliveries: sent to a real loopback receiver that checks `X-Twilio-Signature` with twilio's own
RequestValidator (POST form and GET query string), recorded with the receiver's answer or the error, listed by
`GET /__sandbox/webhooks`, kept in the database, and never sent off this machine."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from flexops.sandbox import webhooks
from flexops.sandbox.store import Store

PARAMS = {"EventType": "onMessageAdded", "ConversationSid": "CH" + "1" * 32, "Body": "Hi & welcome = yes",
          "Author": "messenger:6283749201837465", "Index": 0}


class Receiver:
    """A loopback HTTP server that answers `status` and keeps what it got (method, URL, headers, form)."""

    def __init__(self, status=204):
        self.status, self.got = status, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver.got.append({"method": self.command, "url": f"{receiver.base}{self.path}",
                                     "headers": dict(self.headers), "form": dict(parse_qsl(body))})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = handle_one

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def valid(token, got):
    """What a Twilio webhook receiver checks: the signature of the URL it was called on and the POST params."""
    return RequestValidator(token).validate(got["url"], got["form"], got["headers"]["X-Twilio-Signature"])


def test_a_post_webhook_is_signed_as_twilio_signs_it(sandbox, receiver):
    demo = sandbox.demo
    record = webhooks.record_delivery(sandbox.store, demo["account_sid"], f"{receiver.base}/hooks/conv?x=1", "POST",
                                      "onMessageAdded", PARAMS)
    (got,) = receiver.got
    assert got["method"] == "POST" and got["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert got["form"] == {k: str(v) for k, v in PARAMS.items()}
    assert valid(demo["auth_token"], got)
    assert not valid("another-accounts-token", got)
    assert record["sent"] is True and record["status"] == 204 and record["error"] is None
    assert record["signature"] == got["headers"]["X-Twilio-Signature"] and record["url"] == got["url"]
    assert dict(parse_qsl(record["body"])) == got["form"] and record["event"] == "onMessageAdded"
    assert demo["auth_token"] not in json.dumps(record)  # signed with it, never showing it


def test_a_get_webhook_carries_the_params_in_its_signed_query(sandbox, receiver):
    demo = sandbox.demo
    record = webhooks.record_delivery(sandbox.store, demo["account_sid"], f"{receiver.base}/hook", "get",
                                      "onConversationAdded", {"ConversationSid": "CH" + "2" * 32, "Gone": None})
    (got,) = receiver.got
    assert got["method"] == "GET" and got["form"] == {}
    assert dict(parse_qsl(urlsplit(got["url"]).query)) == {"ConversationSid": "CH" + "2" * 32}
    assert valid(demo["auth_token"], got)
    assert record["method"] == "GET" and record["body"] == "" and record["status"] == 204


def test_the_receivers_answer_or_the_error_is_recorded(sandbox, receiver):
    acct = sandbox.demo["account_sid"]
    receiver.status = 500
    assert webhooks.record_delivery(sandbox.store, acct, receiver.base, "POST", "e", {})["status"] == 500
    receiver.close()  # nobody listens there any more
    refused = webhooks.record_delivery(sandbox.store, acct, receiver.base, "POST", "e", {})
    assert refused["sent"] is False and refused["status"] is None and refused["error"].startswith("not delivered")


@pytest.mark.parametrize("url", ["https://example.com/hook", "http://10.255.255.1:9/hook",
                                 "http://localhost.example.com/hook", "ftp://127.0.0.1/hook"])
def test_nothing_is_sent_off_this_machine(sandbox, url):
    record = webhooks.record_delivery(sandbox.store, sandbox.demo["account_sid"], url, "POST", "onMessageAdded",
                                      PARAMS)
    assert record["sent"] is False and record["error"] == "not sent: not a loopback URL"
    assert record["signature"]  # what Twilio would have signed, for the engineer to compare


def test_bad_input_is_refused_before_anything_is_recorded(sandbox):
    with pytest.raises(ValueError, match="POST or GET"):
        webhooks.record_delivery(sandbox.store, sandbox.demo["account_sid"], "http://127.0.0.1:9", "PUT", "e", {})
    with pytest.raises(LookupError, match="unknown account"):
        webhooks.record_delivery(sandbox.store, "AC" + "0" * 32, "http://127.0.0.1:9", "POST", "e", {})
    assert sandbox.control.webhooks() == []


def test_deliveries_are_listed_by_the_control_plane_and_kept_in_the_database(sandbox, receiver):
    acct = sandbox.demo["account_sid"]
    first = webhooks.record_delivery(sandbox.store, acct, f"{receiver.base}/a", "POST", "onMessageAdded", PARAMS)
    second = webhooks.record_delivery(sandbox.store, acct, "https://example.com/b", "GET", "onConversationAdded", {})
    listed = sandbox.control.webhooks()
    assert listed == [first, second]
    assert {"url", "method", "event", "body", "signature", "status", "error"} <= set(listed[0])
    assert webhooks.deliveries(Store(sandbox.store.path), acct) == [first, second]  # any process sharing the file
    other = sandbox.control.create_account("other")
    assert sandbox.control.webhooks(other["account_sid"]) == []
