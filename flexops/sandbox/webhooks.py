"""Webhooks the sandbox sends as Twilio would: recorded for `GET /__sandbox/webhooks`, and really sent when the URL
is on this machine.

Twilio signs every webhook with the account's auth token (`X-Twilio-Signature`: HMAC-SHA1 of the URL followed by
the sorted POST parameters, base64), so a receiver can check it with `twilio.request_validator.RequestValidator`.
The same signature is computed here with that class. A POST carries the parameters form-encoded; a GET carries
them in the query string (and the signature covers that URL, with no parameters). A sandbox never sends anything
off the machine: a non-loopback URL is recorded as not sent. Records are a resource kind of the store, so any
process sharing the database sees them.
"""
import json
from urllib.parse import urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

from .core import new_sid, now
from .guard import is_loopback

KIND = "webhook_delivery"
TIMEOUT = 2.0  # seconds: Twilio waits up to 15 s; a local receiver that slow is a stuck one
METHODS = ("POST", "GET")


def _form_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def request_for(url, method, params):
    """(the URL requested, the form body or "", the params signed): what Twilio would send."""
    pairs = [(k, _form_value(v)) for k, v in params.items() if v is not None]
    if method == "GET":
        full = url + ("&" if urlsplit(url).query else "?") + urlencode(pairs) if pairs else url
        return full, "", {}
    return url, urlencode(pairs), dict(pairs)


def record_delivery(store, account_sid, url, method, event, params):
    """Record (and, to a loopback URL, send) one webhook of `event` to `url`; returns the delivery record."""
    method = (method or "POST").upper()
    if method not in METHODS:
        raise ValueError(f"webhook method must be POST or GET, not {method!r}")
    account = store.account(account_sid)
    if account is None:
        raise LookupError(f"unknown account {account_sid}")
    target, body, signed = request_for(url, method, params)
    signature = RequestValidator(account["auth_token"]).compute_signature(target, signed)
    record = {"sid": new_sid("WD"), "account_sid": account_sid, "event": event, "method": method, "url": target,
              "body": body, "signature": signature, "sent": False, "status": None, "error": None,
              "date_created": now()}
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not is_loopback(parts.hostname or ""):
        record["error"] = "not sent: not a loopback URL"
    else:
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            with requests.Session() as session:
                session.trust_env = False  # no proxy from the environment: a loopback URL stays on this machine
                reply = session.request(method, target, data=body.encode() if body else None, headers=headers,
                                        timeout=TIMEOUT, allow_redirects=False)
            record["sent"], record["status"] = True, reply.status_code
        except requests.Timeout:
            record["error"] = f"no answer within {TIMEOUT:g} s"
        except requests.RequestException as exc:
            record["error"] = f"not delivered: {type(exc).__name__}"
    with store.tx() as db:
        store.insert(db, account_sid, KIND, record["sid"], record)
    return record


def deliveries(store, account_sid):
    """Every webhook recorded for the account, oldest first."""
    found, after = [], 0
    while True:
        rows = store.page(account_sid, KIND, after_seq=after, limit=500)
        found += [data for _, data in rows]
        if len(rows) < 500:
            return found
        after = rows[-1][0]
