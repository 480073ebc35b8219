"""Desired state -> Plan (create / update / delete / no-op) -> apply, concurrently and safely.

Why re-plan from the live account every time: an interrupted apply (Ctrl-C, kill -9) leaves some changes done and
some not; planning again sees what is there, so re-running the same apply converges and, after success, is a
no-op. Each change is safe on its own (addresses.create/update/delete reconcile before any retry of an unknown
outcome, so nothing is duplicated), and a change that meets an account that moved since planning (a create that
finds the address, an update that finds it gone) converges to the desired state instead of failing.

One apply at a time per account (lock.py). `apply_recorded()` is an apply as a step of an audited run (a CLI apply
or rollback in run_folder.CommandRun, or runbook 40 inside `flexops run`): the outcomes go to results.json.
"""
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import addresses, audit, retry
from .address_spec import MessengerAddress
from .atomic import write_json
from .coerce import as_int, plain
from .desired import DesiredState, load, resolve
from .exceptions import FlexopsError, TwilioCallFailed
from .lock import AccountLock
from .settings import mask_sid

ACTIONS = ("create", "update", "delete", "noop")
MAX_CONCURRENCY = 32


# --- the plan ------------------------------------------------------------------------------------------------

def resource_json(resource):
    """An AddressConfigurationInstance as Twilio's JSON (the SDK keeps attributes, not the payload)."""
    if resource is None or isinstance(resource, dict):
        return resource
    stamp = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(d, "strftime") else d  # noqa: E731
    return {"sid": resource.sid, "account_sid": resource.account_sid, "type": resource.type,
            "address": resource.address, "friendly_name": resource.friendly_name,
            "auto_creation": resource.auto_creation, "date_created": stamp(resource.date_created),
            "date_updated": stamp(resource.date_updated), "url": resource.url,
            "address_country": resource.address_country}


@dataclass
class Change:
    """One change: `spec` is the desired configuration (None for a delete), `diff` {field: (current, desired)}."""

    action: str
    address: str
    sid: str = None
    spec: MessengerAddress = None
    diff: dict = field(default_factory=dict)
    before: dict = None  # the resource's JSON when planned (None when absent)
    line: int = None  # where the desired-state file asks for it
    note: str = ""

    @property
    def friendly_name(self):
        if self.spec is not None and self.spec.friendly_name is not None:
            return self.spec.friendly_name
        return (self.before or {}).get("friendly_name")

    def describe(self):
        if self.action == "create":
            return ", ".join(f"{k}={plain(v)!r}" for k, v in self.spec.desired_state().items()
                             if v not in (None, ()))
        if self.action == "update":
            return "; ".join(f"{k}: {plain(c)!r} → {plain(d)!r}" for k, (c, d) in self.diff.items())
        return self.note

    def to_dict(self):
        return {"action": self.action, "address": self.address, "sid": self.sid, "line": self.line,
                "friendly_name": self.friendly_name, "note": self.note or None,
                "diff": {k: {"current": plain(c), "desired": plain(d)} for k, (c, d) in self.diff.items()},
                "desired": self.spec.to_dict() if self.spec is not None else None, "before": self.before}


@dataclass
class Plan:
    changes: list
    account: str  # masked account SID
    target: str  # Target.describe()
    source: str = None
    prune: bool = False
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def pending(self):
        return [c for c in self.changes if c.action != "noop"]

    def counts(self):
        return {action: sum(1 for c in self.changes if c.action == action) for action in ACTIONS}

    def summary(self):
        counts = self.counts()
        return ", ".join(f"{counts[a]} to {a}" for a in ACTIONS[:3]) + f", {counts['noop']} unchanged"

    def table(self, include_noop=True):
        """The plan as a pandas DataFrame: one row per address, what happens and why."""
        import pandas as pd

        rows = [{"action": c.action, "address": c.address, "friendly_name": c.friendly_name, "sid": c.sid,
                 "changes": c.describe(), "line": c.line}
                for c in self.changes if include_noop or c.action != "noop"]
        frame = pd.DataFrame(rows, columns=["action", "address", "friendly_name", "sid", "changes", "line"])
        return frame.astype({"line": "Int64"})

    def to_dict(self):
        return {"created_at": self.created_at, "account": self.account, "target": self.target,
                "source": self.source, "prune": self.prune, "counts": self.counts(),
                "changes": [c.to_dict() for c in self.changes]}

    def to_json(self, path):
        """Save the plan as JSON (atomically: a reader never sees half a plan)."""
        return write_json(path, self.to_dict())


def make_plan(client, desired, prune=None):
    """Compare the desired state (a DesiredState or a path) with the account; nothing is changed."""
    state = desired if isinstance(desired, DesiredState) else load(desired)
    prune = state.prune if prune is None else bool(prune)
    wanted = resolve(client, state)  # flow names -> SIDs; all unknown flows reported at once
    existing = {}
    for item in addresses.list_messenger(client):
        if item.type == addresses.ADDRESS_TYPE:
            existing[item.address] = item
    changes = []
    for entry, spec in wanted:
        current = existing.get(spec.address)
        if current is None:
            changes.append(Change("create", spec.address, spec=spec, line=entry.line))
            continue
        diff = addresses.diff(spec, current)
        changes.append(Change("update" if diff else "noop", spec.address, sid=current.sid, spec=spec, diff=diff,
                              before=resource_json(current), line=entry.line))
    listed = {spec.address for _, spec in wanted}
    for address, current in existing.items():
        if address not in listed:
            if prune:
                changes.append(Change("delete", address, sid=current.sid, before=resource_json(current),
                                      note="not in the desired state (prune: true)"))
    target = client.flexops_target
    return Plan(changes=changes, account=mask_sid(target.account_sid), target=target.describe(),
                source=state.path, prune=prune)


# --- apply ---------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    change: Change
    status: str  # ok | failed | skipped
    result: str = ""  # created | updated | deleted | already absent | ...
    sid: str = None
    code: int = None  # Twilio error code
    http_status: int = None
    message: str = ""
    elapsed_s: float = 0.0
    after: dict = None

    def to_dict(self):
        return {"action": self.change.action, "address": self.change.address, "status": self.status,
                "result": self.result, "sid": self.sid or self.change.sid, "code": self.code,
                "http_status": self.http_status, "message": self.message, "elapsed_s": round(self.elapsed_s, 3),
                "after": self.after}


@dataclass
class ApplyResult:
    outcomes: list
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def failed(self):
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self):
        return not self.failed and not self.interrupted and all(o.status == "ok" for o in self.outcomes)

    @property
    def partial(self):
        return not self.ok

    @property
    def exit_code(self):
        return 130 if self.interrupted else 0 if self.ok else 1

    def summary(self):
        count = lambda s: sum(1 for o in self.outcomes if o.status == s)  # noqa: E731
        return {"total": len(self.outcomes), "ok": count("ok"), "failed": count("failed"),
                "skipped": count("skipped"), "interrupted": self.interrupted, "elapsed_s": round(self.elapsed_s, 2),
                "status": "succeeded" if self.ok else "interrupted" if self.interrupted else "partial failure"}

    TABLE_COLUMNS = ("action", "address", "status", "result", "sid", "code", "message")

    def table(self):
        import pandas as pd

        columns = list(self.TABLE_COLUMNS)
        return pd.DataFrame([{k: o.to_dict()[k] for k in columns} for o in self.outcomes], columns=columns)

    def to_dict(self):
        return {"summary": self.summary(), "outcomes": [o.to_dict() for o in self.outcomes]}


def _attach_audit(client, where):
    if where is None:
        return None
    if isinstance(where, audit.AuditLog):
        return audit.attach(client, where.path, where.run_id)
    return audit.attach(client, where)


def _state(resource):
    return resource_json(resource) if resource is not None else None


def _converge(client, change):
    """Make one address as the change wants; returns (result, sid, resource JSON after)."""
    if change.action == "delete":
        deleted = addresses.delete(client, change.sid or change.address)
        return ("deleted" if deleted else "already absent"), change.sid, None
    spec = change.spec
    if change.action == "create":
        try:
            made = addresses.create(client, spec)
            return "created", made.sid, _state(made)
        except TwilioCallFailed:
            current = addresses.find(client, spec.address)  # created meanwhile (another tool, a stale plan)?
            if current is None:
                raise
            return _update_if_needed(client, spec, current, "already existed: ")
    try:
        updated = addresses.update(client, change.sid, spec)
        return "updated", updated.sid, _state(updated)
    except TwilioCallFailed as exc:
        if exc.status != 404:
            raise
    current = addresses.find(client, spec.address)  # deleted since planning: the desired state says it exists
    if current is None:
        made = addresses.create(client, spec)
        return "re-created (was deleted since planning)", made.sid, _state(made)
    return _update_if_needed(client, spec, current, "moved since planning: ")


def _update_if_needed(client, spec, current, prefix):
    if not addresses.diff(spec, current):
        return prefix + "unchanged", current.sid, _state(current)
    updated = addresses.update(client, current.sid, spec)
    return prefix + "updated", updated.sid, _state(updated)


def _run(client, change):
    started = time.monotonic()
    try:
        result, sid, after = _converge(client, change)
        return Outcome(change, "ok", result, sid, elapsed_s=time.monotonic() - started, after=after)
    except Exception as exc:  # noqa: BLE001 - one failed change must not stop the others; it is reported
        text = str(exc) if isinstance(exc, FlexopsError) else f"{type(exc).__name__}: {exc}"
        return Outcome(change, "failed", "failed", change.sid, getattr(exc, "code", None),
                       getattr(exc, "status", None), text[:1000], time.monotonic() - started)


def apply(client, plan, concurrency=8, progress=True, audit=None, lock=True, break_lock=False, run_id=None):
    """Run the plan's changes, `concurrency` at a time, each to completion or a reported failure.

    `audit`: an audit file path (or AuditLog) to record every mutating call in (one is already attached inside a
    run). `lock`: take the account's apply lock (False when the caller holds it). Ctrl-C stops starting new changes,
    lets the running ones finish, and returns a result marked interrupted (re-running the apply completes it).
    """
    concurrency = check_concurrency(concurrency)
    _attach_audit(client, audit)
    retry.watch(client)
    pending = plan.pending
    run_id = run_id or os.environ.get("FLEXOPS_RUN_ID")  # inside `flexops run`: the lock names the run
    held = AccountLock(client.account_sid, run_id).acquire(break_lock) if lock and pending else None
    try:
        return _execute(client, pending, concurrency, progress)
    finally:
        if held is not None:
            held.release()


def check_concurrency(value):
    """How many changes may be in flight at once: a whole number from 1 to MAX_CONCURRENCY."""
    return as_int("concurrency", value, 1, MAX_CONCURRENCY)


def _execute(client, pending, concurrency, progress):
    from tqdm.auto import tqdm

    started = time.monotonic()
    outcomes, interrupted, futures = {}, False, {}
    bar = tqdm(total=len(pending), desc="apply", unit="change", disable=not progress or not pending, leave=True)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="flexops-apply")
    try:
        futures = {pool.submit(_run, client, change): i for i, change in enumerate(pending)}
        failed = 0
        for future in as_completed(futures):
            outcome = outcomes[futures[future]] = future.result()
            bar.update(1)
            if outcome.status == "failed":
                failed += 1
                bar.set_postfix(failed=failed)
    except KeyboardInterrupt:
        interrupted = True
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)  # the changes already running finish (each is bounded by its deadline)
        for future, index in futures.items():
            if index not in outcomes and future.done() and not future.cancelled():
                outcomes[index] = future.result()
    finally:
        pool.shutdown(wait=True)
        bar.close()
    ordered = [outcomes.get(i) or Outcome(change, "skipped", "not started (interrupted)")
               for i, change in enumerate(pending)]
    return ApplyResult(ordered, interrupted, time.monotonic() - started)


def apply_recorded(client, plan, record, concurrency=8, progress=True, lock=True, break_lock=False):
    """apply() as a step of an audited run: each change's outcome and the summary go to `record(key, value)`
    (results.json `apply` and `summary`) as soon as the apply ends, so an interrupted or partly failed run keeps
    what it did and rollback can read it. `flexops apply`, `flexops rollback` and runbook 40 (its headless cell and
    its Apply button) all apply through here. A repair plan (repairs.RepairPlan) applies its own steps."""
    if hasattr(plan, "apply_recorded"):
        return plan.apply_recorded(client, record, progress=progress, lock=lock, break_lock=break_lock)
    result = apply(client, plan, concurrency=concurrency, progress=progress, lock=lock, break_lock=break_lock)
    record("apply", result.to_dict())
    record("summary", result.summary())
    return result
