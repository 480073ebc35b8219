"""Fault rules: make the sandbox answer like a Twilio having a bad day, reproducibly.

A rule matches on product, method and a path regex, and then either fails the request (`error`: status, Twilio
code, optional Retry-After), delays it (`latency`), or lets it commit and then fails it (`commit_then_error`) or
drops the connection (`commit_then_drop`). It fires `times` times, or with `probability` decided by a seeded RNG
so that a run can be replayed exactly.
"""
import json
import random
import re

ACTIONS = ("error", "latency", "commit_then_error", "commit_then_drop")
DEFAULTS = {"product": "*", "method": "*", "path": ".*", "action": "error", "status": 500, "code": None,
            "message": "Injected fault", "retry_after": None, "latency_ms": 0, "times": None,
            "probability": None, "seed": 0}
TYPES = {"product": str, "method": str, "path": str, "action": str, "status": int, "code": int, "message": str,
         "retry_after": int, "latency_ms": float, "times": int, "probability": float, "seed": int}


class FaultRuleError(ValueError):
    pass


def twilio_code(status):
    """Twilio's error code for an HTTP status: 401 -> 20003, otherwise 20000 + status (20429, 20500, 20503...)."""
    return 20003 if status == 401 else 20000 + status


def normalise(rule):
    """Validate a rule given as a dict; unknown keys and bad values are refused with their name."""
    unknown = set(rule) - set(DEFAULTS)
    if unknown:
        raise FaultRuleError(f"unknown fault rule fields: {', '.join(sorted(unknown))}")
    full = {**DEFAULTS, **rule}
    for name, kind in TYPES.items():
        if full[name] is not None and (kind is str) != isinstance(full[name], str):
            raise FaultRuleError(f"{name} must be {'text' if kind is str else 'a number'}, not {full[name]!r}")
        try:
            full[name] = None if full[name] is None else kind(full[name])
        except ValueError:
            raise FaultRuleError(f"{name} must be a number, not {full[name]!r}") from None
    if full["action"] not in ACTIONS:
        raise FaultRuleError(f"action must be one of {', '.join(ACTIONS)}")
    try:
        re.compile(full["path"])
    except re.error as exc:
        raise FaultRuleError(f"path is not a valid regex: {exc}") from None
    if not 400 <= full["status"] <= 599:
        raise FaultRuleError("status must be an HTTP error status (400-599)")
    if full["probability"] is not None and not 0 <= full["probability"] <= 1:
        raise FaultRuleError("probability must be between 0 and 1")
    if full["times"] is not None and full["times"] < 1:
        raise FaultRuleError("times must be at least 1")
    if full["retry_after"] is not None and full["retry_after"] < 0:
        raise FaultRuleError("retry_after must be 0 or more seconds")
    full["method"] = full["method"].upper()
    full["code"] = full["code"] if full["code"] is not None else twilio_code(full["status"])
    return full


def add(store, rule):
    full = normalise(rule)
    with store.tx() as db:
        cur = db.execute("INSERT INTO faults (rule, remaining) VALUES (?, ?)", (json.dumps(full), full["times"]))
    return {"id": cur.lastrowid, **full}


def listing(store):
    return [{"id": r["id"], "remaining": r["remaining"], "seen": r["seen"], "fired": r["fired"],
             **json.loads(r["rule"])} for r in store.read("SELECT * FROM faults ORDER BY id")]


def clear(store):
    with store.tx() as db:
        db.execute("DELETE FROM faults")


def _matches(rule, product, method, path):
    return ((rule["product"] in ("*", product)) and (rule["method"] in ("*", method))
            and re.search(rule["path"], path) is not None)


def _draw(rule, seen):
    """The n-th draw of a rule depends only on the rule itself (seed, target), never on database ids, so the
    same rule added to any sandbox fails the same requests."""
    key = f"{rule['seed']}:{rule['product']}:{rule['method']}:{rule['path']}:{seen}"
    return random.Random(key).random()


def pick(store, product, method, path):
    """Return the rules that fire for this request (consuming their counts), in id order."""
    if not store.read("SELECT 1 FROM faults LIMIT 1"):
        return []
    fired = []
    with store.tx() as db:
        for row in db.execute("SELECT * FROM faults ORDER BY id").fetchall():
            rule = json.loads(row["rule"])
            if not _matches(rule, product, method, path):
                continue
            if row["remaining"] is not None and row["remaining"] <= 0:
                continue
            fires = True
            if rule["probability"] is not None:
                fires = _draw(rule, row["seen"]) < rule["probability"]
            db.execute("UPDATE faults SET seen = seen + 1, fired = fired + ?, remaining = "
                       "CASE WHEN remaining IS NULL THEN NULL ELSE remaining - ? END WHERE id = ?",
                       (int(fires), int(fires), row["id"]))
            if fires:
                fired.append(rule)
    return fired
