"""call(): run one Twilio call safely when its outcome can be unknown.

GET/HEAD are already retried by the HTTP client (see client.py). A POST or DELETE is not: re-sending a create after a
timeout or a 5xx could make a duplicate, because the first attempt may have committed. So:

- 429: Twilio did not process the request -> wait Retry-After (+ up to 20 % jitter; without it, exponential backoff
  with jitter) and send again;
- 5xx, dropped connection, timeout: the outcome is unknown -> run `reconcile()` (look at the state); a non-None
  answer means the change happened and is returned; otherwise send again;
- other 4xx: permanent at once.

A GET or HEAD that still fails reaches us only after the HTTP client's own retries (429/5xx, connection and read
errors, Retry-After honoured): `call` does not retry it a second time, so an outage costs one bounded round of
retries, not attempts x HTTP retries. Everything else is bounded by `deadline` seconds and `attempts`. A permanent
failure raises TwilioCallFailed naming `what`, with the HTTP status and Twilio error code (Twilio's messages carry
no credentials; we add none).
"""
import json
import random
import threading
import time

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from .exceptions import TwilioCallFailed

BACKOFF_BASE = 0.25  # seconds; doubled per attempt, capped, with jitter
BACKOFF_CAP = 8.0
MAX_RETRY_AFTER = 30.0
sleep = time.sleep  # module attribute so callers (and tests) can swap in a faster clock

SAFE_METHODS = ("GET", "HEAD")  # retried by the HTTP client itself (client.safe_retry)
_last = threading.local()  # the last HTTP request this thread made: its method, and its response for Retry-After


def _remember(method, url, params, data, response, error, elapsed):
    _last.method, _last.response = method, response


def watch(client):
    """Let `call` read response headers (Retry-After) of calls made through `client`; idempotent."""
    http = getattr(client, "http_client", client)
    listeners = getattr(http, "listeners", None)
    if listeners is not None and _remember not in listeners:
        listeners.append(_remember)
    return client


class Failure:
    """What one failed attempt tells us: status, Twilio code, message, Retry-After, and whether it is ambiguous."""

    def __init__(self, status=None, code=None, message="", retry_after=None, ambiguous=False):
        self.status, self.code, self.message = status, code, message
        self.retry_after, self.ambiguous = retry_after, ambiguous

    @property
    def throttled(self):
        return self.status == 429

    @property
    def permanent(self):
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


def _retry_after(headers):
    if not headers:
        return None
    value = next((v for k, v in dict(headers).items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: rare from Twilio; fall back to backoff


def _headers_for(status):
    response = getattr(_last, "response", None)
    if response is not None and getattr(response, "status_code", None) == status:
        return getattr(response, "headers", None)
    return None


def classify(exc):
    """A Failure for an exception the SDK or requests raised, or None when it is not a Twilio/network error."""
    if isinstance(exc, TwilioRestException):
        return Failure(exc.status, exc.code, str(exc.msg), _retry_after(_headers_for(exc.status)),
                       ambiguous=exc.status >= 500)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return Failure(None, None, f"{type(exc).__name__} (no answer from Twilio)", ambiguous=True)
    if isinstance(exc, TwilioException) and len(exc.args) > 1 and hasattr(exc.args[1], "status_code"):
        response = exc.args[1]  # list()/page(): TwilioException("Unable to fetch page", response)
        try:
            body = json.loads(response.text)
        except (TypeError, ValueError):
            body = {}
        status = response.status_code
        return Failure(status, body.get("code", status), body.get("message", exc.args[0]),
                       _retry_after(response.headers), ambiguous=status >= 500)
    return None


def none_if_missing(fn, missing=None):
    """`fn` wrapped so that Twilio's 404 answer returns `missing` (None: "no such resource") instead of raising."""
    def fetch():
        try:
            return fn()
        except TwilioRestException as exc:
            if exc.status == 404:
                return missing
            raise
    return fetch


def backoff(attempt):
    """Exponential backoff with jitter: 0.25 s, 0.5 s, 1 s ... capped at BACKOFF_CAP, times 0.5-1.0."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt) * (0.5 + random.random() / 2)


def _throttle_wait(retry_after):
    """Retry-After plus up to 20 % jitter: the workers throttled together must not all come back together."""
    return retry_after * (1 + random.random() / 5)


def failed(what, failure, attempts, reason=""):
    """The TwilioCallFailed to raise for `failure`: HTTP status, Twilio code and docs link, never a credential."""
    where = f"{what}: " if what else ""
    status = f"HTTP {failure.status}" if failure.status else "no HTTP answer"
    code = f", Twilio error {failure.code}" if failure.code and failure.code != failure.status else ""
    more = f" (https://www.twilio.com/docs/errors/{failure.code})" if failure.code and failure.code >= 10000 else ""
    tail = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts > 1 else ""
    text = f"{where}{status}{code}{tail}: {failure.message or 'no message'}{more}"
    return TwilioCallFailed(text + (f" — {reason}" if reason else ""), status=failure.status, code=failure.code)


def call(fn, *, reconcile=None, deadline=60, what="", attempts=8, client=None):
    """Run `fn()` with the retry rules above; returns fn()'s (or reconcile()'s) result."""
    if client is not None:
        watch(client)
    started = time.monotonic()
    ambiguous_before = False
    for attempt in range(attempts):
        _last.method = _last.response = None
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classify() decides; anything else is re-raised as is
            failure = classify(exc)
            if failure is None:
                raise
        if _last.method in SAFE_METHODS:  # already retried by the HTTP client when it could be
            reason = "" if failure.permanent else "still failing after the HTTP client's retries"
            raise failed(what, failure, attempt + 1, reason) from None
        if failure.ambiguous or (failure.status == 409 and ambiguous_before):
            # 409 after an unknown outcome: our earlier attempt most likely committed; look before giving up
            ambiguous_before = True
            if reconcile is not None:
                found = _reconcile(reconcile, started, deadline, what)
                if found is not None:
                    return found
        if failure.permanent:
            raise failed(what, failure, attempt + 1) from None
        wait = min(_throttle_wait(failure.retry_after) if failure.throttled and failure.retry_after is not None
                   else backoff(attempt), MAX_RETRY_AFTER)
        if attempt + 1 >= attempts:
            break
        if time.monotonic() - started + wait > deadline:
            raise failed(what, failure, attempt + 1, f"gave up: the {deadline:g} s deadline would pass") from None
        sleep(wait)
    raise failed(what, failure, attempts, "gave up: retries exhausted") from None


def _reconcile(reconcile, started, deadline, what):
    """Run reconcile(); if it fails itself (network, 5xx) keep trying until the deadline: we must know the state."""
    for attempt in range(8):
        try:
            return reconcile()
        except Exception as exc:  # noqa: BLE001
            failure = classify(exc)
            if failure is None or failure.permanent:
                raise
        if time.monotonic() - started > deadline:
            break
        sleep(backoff(attempt))
    raise failed(what, failure, attempt + 1, "the outcome is unknown: checking the state after a failed call "
                                            "kept failing; look in the Twilio Console before retrying")
