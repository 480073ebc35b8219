"""The audit trail of a run: hash-chained JSON lines for every mutating Twilio call, written as the call happens.

Why two lines per call: a POST/DELETE in flight when the process is killed may still be committed by Twilio. So a
`sent` line (method, path, parameters, `before`) is written before the request leaves, and an `answered` line
(status, `after`, error) with the same `call` id when it returns or fails; a sent line with no answer is a call
whose outcome is unknown (`calls()` pairs them, `summary()` counts them as `in_flight`). Lines written before
`event` existed are answered lines.

Why a chain: a reviewer must be able to tell that nobody edited or dropped a line after the run. Each line carries
`prev_hash` (sha256 of the previous line's text; 64 zeros for the first) and `hash` (sha256 of its own text
without the hash); `verify()` walks the chain. Lines are flushed and fsynced one by one, so a killed run keeps every
call it sent.

Why a state cache (seen_state.py): a change is only reviewable next to what it replaced. GET responses are
remembered in memory (redacted, never written anywhere), so a POST/DELETE line can carry the last state this
process saw of that resource as `before`, and the response as `after`.

Secrets: keys that look like credentials are replaced by `***` everywhere (`redact`), and the client's own
password (auth token or API secret) is scrubbed from any string that would end up in a line.
"""
import collections
import hashlib
import json
import os
import re
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .seen_state import seen

try:
    import fcntl
except ImportError:  # Windows: one writer per file is still safe thanks to the in-process lock
    fcntl = None

AUDIT_FILE = "audit.jsonl"
ZERO_HASH = "0" * 64
REDACTED = "***"
SECRET_KEY = re.compile(r"token|secret|password|passwd|auth(?!or(?!ization))", re.IGNORECASE)
READ_METHODS = ("GET", "HEAD", "OPTIONS")
_HASH_TAIL = re.compile(r',"hash":"([0-9a-f]{64})"\}$')


# --- redaction ----------------------------------------------------------------------------------------------

def is_secret_key(name):
    """True for names that may hold a credential (auth_token, ApiSecret, password, Authorization...)."""
    return bool(SECRET_KEY.search(str(name)))


def redact(obj, secrets=()):
    """A copy of `obj` with credential-like keys masked and any known secret value scrubbed from strings."""
    values = [s for s in secrets if s]
    if isinstance(obj, dict):
        return {k: REDACTED if is_secret_key(k) and v not in (None, "") else redact(v, values)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v, values) for v in obj]
    if isinstance(obj, str):
        for secret in values:
            obj = obj.replace(secret, REDACTED)
        return obj
    return obj


# --- the hash-chained log -----------------------------------------------------------------------------------

def _sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(record):
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def seal(record, prev_hash):
    """The line text for `record` chained after `prev_hash`: canonical JSON ending in its own hash."""
    body = _canonical({**record, "prev_hash": prev_hash})
    return body[:-1] + f',"hash":"{_sha(body)}"}}'


class AuditLog:
    """Appends sealed lines to one file. Safe across threads and (with fcntl) across processes."""

    _locks = collections.defaultdict(threading.Lock)
    _tails = {}  # abspath -> (file size, line count, last line) after our last write: no re-read per line

    def __init__(self, path, run_id=None):
        self.path = Path(path)
        self.run_id = run_id
        self._key = os.path.abspath(self.path)
        self._lock = AuditLog._locks[self._key]

    def touch(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        return self

    def append(self, entry):
        """Seal and durably write one entry (time, run_id and seq are added); returns the written record."""
        with self._lock, open(self.path, "a+b") as fh:
            if fcntl:
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                size = fh.seek(0, os.SEEK_END)
                cached = AuditLog._tails.get(self._key)
                # another writer (process) appended since our last line: read the file again
                count, last = cached[1:] if cached and cached[0] == size else _tail(fh)
                record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                          "run_id": self.run_id, "seq": count + 1, **entry}
                line = seal(record, _sha(last) if last is not None else ZERO_HASH)
                fh.seek(0, os.SEEK_END)
                fh.write(line.encode("utf-8") + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
                AuditLog._tails[self._key] = (fh.tell(), count + 1, line)
            finally:
                if fcntl:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        return json.loads(line)


def _tail(fh):
    """(number of lines, text of the last line or None) of an open log."""
    fh.seek(0)
    count, last = 0, None
    for raw in fh:
        text = raw.decode("utf-8", "replace").rstrip("\n")
        if text:
            count, last = count + 1, text
    return count, last


def read(path, strict=True):
    """Every record of an audit file (empty when it does not exist); `strict=False` skips damaged lines."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="strict" if strict else "replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if strict:
                raise
            continue
        if strict or isinstance(record, dict):
            records.append(record)
    return records


def verify(path):
    """Check the chain: (ok, first bad line number (1-based) or None, message)."""
    path = Path(path)
    if not path.exists():
        return True, None, "no audit file (nothing was changed)"
    expected, count = ZERO_HASH, 0
    for number, text in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not text:
            continue
        match = _HASH_TAIL.search(text)
        if not match:
            return False, number, f"line {number}: not a sealed audit line (no trailing hash)"
        body = text[:match.start()] + "}"
        try:
            record = json.loads(body)
        except ValueError:
            return False, number, f"line {number}: not valid JSON"
        if _sha(body) != match.group(1):
            return False, number, f"line {number}: content does not match its hash (edited)"
        if record.get("prev_hash") != expected:
            return False, number, f"line {number}: prev_hash does not match line {number - 1} (lines removed, " \
                                  "reordered or edited)"
        expected, count = _sha(text), count + 1
    return True, None, f"{count} line(s), chain intact"


def calls(records):
    """One record per mutating call, in the order they were sent: its answered line, or its sent line when no
    answer was ever written (in flight when the process died: the outcome is unknown). `records`: a list from
    `read()`, or an audit file path."""
    if isinstance(records, (str, os.PathLike)):
        records = read(records, strict=False)
    answers = {r["call"]: r for r in records if r.get("event") != "sent" and r.get("call")}
    sent = {r.get("call") for r in records if r.get("event") == "sent"}
    return [answers.get(r.get("call"), r) if r.get("event") == "sent" else r
            for r in records if r.get("event") == "sent" or r.get("call") not in sent]


def summary(path):
    """{"lines", "changes" (answered calls Twilio accepted), "failed" (answered calls refused or failed without an
    answer: those may or may not have changed anything), "in_flight" (sent, never answered: may or may not have
    changed anything), "head" (hash of the last line)}: what a manifest pins so that truncation shows, and what
    `flexops runs list` counts. Never fails on a damaged file (`verify` says what is wrong with it)."""
    path = Path(path)
    texts = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    texts = [text for text in texts if text.strip()]
    records = []
    for text in texts:
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        records.append(record if isinstance(record, dict) else {})  # damaged: counted as a failed answer
    answered = [r for r in records if r.get("event") != "sent"]
    changes = sum(1 for r in answered if isinstance(r.get("status"), int) and r["status"] < 400)
    answered_calls = {r.get("call") for r in answered if r.get("call")}
    in_flight = sum(1 for r in records if r.get("event") == "sent" and r.get("call") not in answered_calls)
    head = _HASH_TAIL.search(texts[-1]) if texts else None
    return {"lines": len(texts), "changes": changes, "failed": len(answered) - changes, "in_flight": in_flight,
            "head": head.group(1) if head else None}


def _json(response):
    try:
        return json.loads(response.text) if response is not None and response.text else None
    except ValueError:
        return None


def _form(data):
    """The SDK's form data (dict, possibly with list values for repeated keys) as a plain dict."""
    if isinstance(data, dict):
        return dict(data)
    if isinstance(data, (list, tuple)):
        out = {}
        for key, value in data:
            out.setdefault(key, []).append(value)
        return {k: v[0] if len(v) == 1 else v for k, v in out.items()}
    return {}


class AuditListener:
    """An `http.listeners` callback: caches reads; for each mutation writes a `sent` line before the request
    (`before()`, called by the HTTP client) and an `answered` line after it (success or failure)."""

    def __init__(self, log, account_sid, secrets=()):
        self.log = log
        self.account = account_sid
        self.secrets = [s for s in secrets if s]
        self._pending = {}  # call id -> (before_seen, before) as they were when the call was sent

    def before(self, method, url, params, data):
        """Write the `sent` line of a mutation; returns its call id (None for reads), passed back as `call`."""
        if method in READ_METHODS:
            return None
        call = uuid.uuid4().hex
        product, path = _where(url)
        request = self._request(method, product, path, params, data)
        self._pending[call] = (request["before_seen"], request["before"])
        self.log.append({"event": "sent", "call": call, **request,
                         "sid": (request["before"] or {}).get("sid") or _last_sid(path)})
        return call

    def __call__(self, method, url, params, data, response, error, elapsed, call=None):
        product, path = _where(url)
        body = _json(response)
        status = getattr(response, "status_code", None)
        if method in READ_METHODS:
            self._observe(product, path, status, body)
            return
        entry = self._entry(method, product, path, params, data, status, body, error, elapsed,
                            self._pending.pop(call, None))
        self.log.append({"event": "answered", "call": call or uuid.uuid4().hex, **entry})

    def _observe(self, product, path, status, body):
        if status == 200 and isinstance(body, dict):
            clean = redact(body, self.secrets)
            if "meta" in body:
                seen.remember_page(self.account, product, clean)
            else:
                seen.remember(self.account, product, clean, path=path)
        elif status == 404:
            seen.forget(self.account, product, [("path", path), *_segment_keys(path)])

    def _request(self, method, product, path, params, data):
        """What both lines of a call say about the request: where, with what, and the last state seen of it."""
        form = _form(data)
        keys = [("path", path), *_segment_keys(path),
                ("address", form.get("Address")), ("sid", form.get("Sid"))]
        before_seen, before = seen.lookup(self.account, product, keys)
        return {"method": method, "product": product, "path": path,
                "parameters": redact({**(params or {}), **form}, self.secrets),
                "before": before, "before_seen": before_seen}

    def _entry(self, method, product, path, params, data, status, body, error, elapsed, sent=None):
        entry = self._request(method, product, path, params, data)
        if sent is not None:
            entry["before_seen"], entry["before"] = sent
        before = entry["before"]
        ok = status is not None and status < 400
        after = redact(body, self.secrets) if ok and isinstance(body, dict) else None
        entry.update({"status": status, "error_code": body.get("code") if not ok and isinstance(body, dict) else None,
                      "error": None, "sid": (after or {}).get("sid") or (before or {}).get("sid") or _last_sid(path),
                      "after": after, "elapsed_ms": round(elapsed * 1000, 1)})
        if error is not None:
            entry["error"] = {"type": type(error).__name__, "message": redact(str(error)[:500], self.secrets)}
        elif not ok and isinstance(body, dict):
            entry["error"] = {"type": "TwilioError", "message": redact(str(body.get("message", ""))[:500],
                                                                        self.secrets)}
        if ok and method == "DELETE":
            old = before or {}
            seen.forget(self.account, product, [("path", path), *_segment_keys(path), ("sid", old.get("sid")),
                                                ("address", old.get("address"))])
        elif ok and after is not None:
            last = path.rstrip("/").rsplit("/", 1)[-1]
            addressed = last in (after.get("sid"), after.get("address")) or not after.get("url")
            seen.remember(self.account, product, after, path=path if addressed else None)
        return entry


def _where(url):
    """(product, decoded path) of a Twilio URL: `https://conversations.twilio.com/v1/...` -> conversations."""
    parts = urlsplit(url)
    return (parts.hostname or "").split(".")[0], unquote(parts.path)


def _segment_keys(path):
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return [("sid", last), ("address", last)] if last else []


_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def _last_sid(path):
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last if _SID.match(last) else None


# --- wiring -------------------------------------------------------------------------------------------------

def attach(client, path, run_id=None):
    """Audit every mutation `client` makes into `path` (created empty if needed); returns the listener."""
    http = client.http_client
    for listener in http.listeners:
        if isinstance(listener, AuditListener) and listener.log.path.resolve() == Path(path).resolve():
            return listener
    target = getattr(client, "flexops_target", None)
    secrets = [target.password.reveal()] if target is not None else []
    secrets.append(getattr(client, "password", None))
    listener = AuditListener(AuditLog(path, run_id).touch(), client.account_sid, secrets)
    http.listeners.append(listener)
    return listener


def current_run():
    """(run folder, run id) when this process runs inside `flexops run`, else None."""
    folder = os.environ.get("FLEXOPS_RUN_DIR")
    if not folder:
        return None
    return Path(folder), os.environ.get("FLEXOPS_RUN_ID") or Path(folder).name


def attach_current_run(client):
    """What `connect()` calls: audit into `<run dir>/audit.jsonl` when a run is active; otherwise nothing."""
    run = current_run()
    if run is None:
        return None
    folder, run_id = run
    return attach(client, folder / AUDIT_FILE, run_id)
