"""Stale Messenger conversations: find them, close them, check they are closed.

Why: Twilio keeps one open conversation per (customer, Page). When the Flex task of a conversation ends but the
conversation stays active, the customer's next message lands in it, no Studio execution starts and no agent sees
it. Closing such a conversation frees the pair: the next message starts a new conversation, and Studio hands it to
Flex again. Closing cannot be undone: Twilio cannot reopen a closed conversation.

A conversation is stale when it is active, one of its participants is bound to a Messenger Page (for the Pages
asked for, or all), no task of Flex's workspace for it is open (pending, reserved, assigned or wrapping — TaskRouter
evaluates `conversationSid == '…'`), and its last message is older than `idle`.

Closing is `State=closed` on the conversation; a failed close (429, 5xx, no answer) is retried only after the
conversation has been read again: when it is closed already, that earlier call committed and nothing is sent twice.
Re-running after an interruption finds only what is still active, so it converges.
"""
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

from . import repair_trace, retry
from .address_spec import PREFIX, address_of, normalise_page_id
from .coerce import age_text, as_bool, as_duration, as_int, as_list
from .exceptions import FlexopsError, TwilioCallFailed
from .lock import AccountLock
from .plan import ApplyResult, check_concurrency
from .settings import choose_target

OPEN_TASK_STATUSES = ("pending", "reserved", "assigned", "wrapping")
DEFAULT_IDLE = "24h"
MAX_CONVERSATIONS = 5000
PAGE_SIZE = 100
WORKERS = 8
DEADLINE = 60
IRREVERSIBLE = ("Closing a conversation cannot be undone: Twilio cannot reopen a closed conversation. The "
                "customer's next message starts a new conversation (and a new Studio execution).")


def mask_customer(address):
    """`messenger:24738392011234` -> `messenger:…1234`: enough to tell customers apart in a plan, not to find them."""
    text = str(address or "")
    channel, _, ident = text.rpartition(":")
    return f"{channel + ':' if channel else ''}…{ident[-4:]}" if ident else "unknown"


def _stamp(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass
class Stale:
    """One conversation the janitor would close, and why."""

    conversation_sid: str
    service_sid: str
    page_id: str
    customer: str  # masked
    last_message_at: str
    idle_s: float
    reason: str

    def to_dict(self):
        return {**asdict(self), "age": age_text(self.idle_s)}


@dataclass
class JanitorPlan:
    target: str
    idle_s: float
    pages: list
    stale: list = field(default_factory=list)
    scanned: int = 0
    skipped: dict = field(default_factory=dict)  # {reason: count}: active conversations left alone
    workspace: str = None  # Flex's TaskRouter workspace (its open tasks are looked at again before closing)

    def to_dict(self):
        return {"target": self.target, "idle_s": self.idle_s, "pages": self.pages, "scanned": self.scanned,
                "skipped": self.skipped, "stale": [s.to_dict() for s in self.stale]}

    def table(self):
        import pandas as pd

        columns = ["conversation", "page", "customer", "last message", "age", "why"]
        return pd.DataFrame([[s.conversation_sid, s.page_id, s.customer, s.last_message_at, age_text(s.idle_s),
                              s.reason] for s in self.stale], columns=columns)

    def summary(self):
        kept = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return f"{len(self.stale)} stale of {self.scanned} active Messenger conversation(s); left alone: {kept}"


# --- finding -------------------------------------------------------------------------------------------------

def _call(client, fn, what):
    return retry.call(fn, what=what, client=client, deadline=DEADLINE)


def _conversations(client, service):
    return client.conversations.v1.services(service).conversations


def services_of(client):
    """The Conversations services Messenger conversations can live in: each Messenger address's, else the default."""
    from .addresses import list_messenger

    default = _call(client, lambda: client.conversations.v1.configuration().fetch(),
                    "fetch the Conversations configuration").default_chat_service_sid
    found = []
    for config in list_messenger(client):
        service = (config.auto_creation or {}).get("conversation_service_sid") or default
        if service and service not in found:
            found.append(service)
    return found or ([default] if default else [])


def _open_tasks(client, workspace, conversation_sid):
    if not workspace:
        return []
    tasks = _call(client, lambda: client.taskrouter.v1.workspaces(workspace).tasks.list(
        evaluate_task_attributes=f"conversationSid == '{conversation_sid}'", page_size=50, limit=50),
        f"list the tasks of {conversation_sid}")
    return [t for t in tasks if t.assignment_status in OPEN_TASK_STATUSES]


def _judge(client, service, conversation, pages, workspace, idle, now):
    """(Stale, None) or (None, why it is left alone)."""
    sid = conversation.sid
    participants = _call(client, lambda: _conversations(client, service)(sid).participants.list(page_size=50),
                         f"list participants of {sid}")
    bound = [(p.messaging_binding or {}) for p in participants]
    messenger = [b for b in bound if str(b.get("proxy_address") or "").startswith(PREFIX)]
    if not messenger:
        return None, "not Messenger"
    binding = messenger[0]
    page = binding["proxy_address"][len(PREFIX):]
    if pages and page not in pages:
        return None, "another Page"
    last = _call(client, lambda: _conversations(client, service)(sid).messages.list(order="desc", page_size=1,
                                                                                     limit=1),
                 f"list messages of {sid}")
    last_at = _stamp(last[0].date_created) if last else _stamp(conversation.date_created)
    idle_for = (now - last_at).total_seconds()
    if idle_for < idle.total_seconds():
        return None, "recent message"
    if _open_tasks(client, workspace, sid):
        return None, "open Flex task"
    why = f"no open Flex task, last message {age_text(idle_for)} ago (idle limit {age_text(idle.total_seconds())})"
    return Stale(sid, service, page, mask_customer(binding.get("address")),
                 last_at.strftime("%Y-%m-%dT%H:%M:%SZ"), round(idle_for, 1), why), None


def find_stale(client, page_ids=(), idle=DEFAULT_IDLE, max_conversations=MAX_CONVERSATIONS, progress=False):
    """The JanitorPlan: every stale Messenger conversation (for `page_ids`, or every Page). Changes nothing.
    Bad input raises ValidationError before any call."""
    from tqdm.auto import tqdm

    idle = as_duration("idle", idle)
    pages = sorted({normalise_page_id(p, "page") for p in (page_ids or ())})
    max_conversations = as_int("max_conversations", max_conversations, 1, 100_000)
    now = datetime.now(timezone.utc)
    flex = _call(client, retry.none_if_missing(lambda: client.flex_api.v1.configuration().fetch()),
                 "fetch the Flex configuration")
    workspace = flex.taskrouter_workspace_sid if flex is not None else None
    target = client.flexops_target.describe()
    plan = JanitorPlan(target, idle.total_seconds(), [address_of(p)[len(PREFIX):] for p in pages],
                       workspace=workspace)
    active = []
    for service in services_of(client):
        found = _call(client, lambda: _conversations(client, service).list(state="active", page_size=PAGE_SIZE,
                                                                           limit=max_conversations),
                      f"list active conversations of {service}")
        active.extend((service, c) for c in found)
    plan.scanned = len(active)
    with ThreadPoolExecutor(WORKERS) as pool, \
            tqdm(total=len(active), desc="scan", unit="conv", disable=not progress or not active) as bar:
        futures = [pool.submit(_judge, client, service, c, set(pages), workspace, idle, now) for service, c in active]
        for future in futures:
            stale, why = future.result()
            bar.update(1)
            if stale:
                plan.stale.append(stale)
            else:
                plan.skipped[why] = plan.skipped.get(why, 0) + 1
    plan.stale.sort(key=lambda s: (s.page_id, s.last_message_at, s.conversation_sid))
    return plan


# --- closing -------------------------------------------------------------------------------------------------

@dataclass
class Closed:
    conversation_sid: str
    status: str  # ok | failed | skipped
    result: str
    code: int = None
    message: str = None
    elapsed_s: float = 0.0

    def to_dict(self):
        return asdict(self)


def drift(client, stale, workspace):
    """Why the conversation is no longer stale since the plan, or None: a message after the last one the plan saw,
    or a Flex task opened for it (an agent took it up). Looked at right before closing, which cannot be undone."""
    sid, conversations = stale.conversation_sid, _conversations(client, stale.service_sid)
    last = _call(client, lambda: conversations(sid).messages.list(order="desc", page_size=1, limit=1),
                 f"list messages of {sid}")
    if last and _stamp(last[0].date_created).strftime("%Y-%m-%dT%H:%M:%SZ") > stale.last_message_at:
        return "a new message since the plan"
    if _open_tasks(client, workspace, sid):
        return "a Flex task was opened for it since the plan"
    return None


def close_one(client, stale, deadline=DEADLINE, workspace=None):
    """Close one conversation unless it changed since the plan (`drift`: then left alone, skipped); a retry
    re-reads it first, so a close that committed is never sent again."""
    conversation = _conversations(client, stale.service_sid)(stale.conversation_sid)
    try:
        changed = drift(client, stale, workspace)
    except FlexopsError as exc:
        return Closed(stale.conversation_sid, "failed", "failed", getattr(exc, "code", None), str(exc)[:1000])
    if changed:
        return Closed(stale.conversation_sid, "skipped", f"not closed: {changed}", None,
                      "it is no longer stale: run the janitor again to re-plan")
    attempts = {"n": 0, "already": False}

    def close():
        attempts["n"] += 1
        if attempts["n"] > 1:  # reconcile before retrying: did the failed call commit after all?
            now = conversation.fetch()
            if now.state == "closed":
                attempts["already"] = True
                return now
        return conversation.update(state="closed")

    started = time.monotonic()
    try:
        done = retry.call(close, what=f"close {stale.conversation_sid}", client=client, deadline=deadline)
    except Exception as exc:  # noqa: BLE001 - one failed close must not stop the others; it is reported
        text = str(exc) if isinstance(exc, FlexopsError) else f"{type(exc).__name__}: {exc}"
        return Closed(stale.conversation_sid, "failed", "failed", getattr(exc, "code", None), text[:1000],
                      round(time.monotonic() - started, 3))
    result = "already closed (an earlier attempt committed)" if attempts["already"] else "closed"
    if done.state != "closed":
        return Closed(stale.conversation_sid, "failed", f"still {done.state}", None, "Twilio did not close it",
                      round(time.monotonic() - started, 3))
    return Closed(stale.conversation_sid, "ok", result, elapsed_s=round(time.monotonic() - started, 3))


class _Closes(ApplyResult):
    TABLE_COLUMNS = ("conversation_sid", "status", "result", "code", "message")

    def summary(self):
        count = {s: sum(o.status == s for o in self.outcomes) for s in ("ok", "failed", "skipped")}
        status = "succeeded" if self.ok else "interrupted" if self.interrupted else "failed"
        return {"total": len(self.outcomes), **count, "status": status, "elapsed_s": round(self.elapsed_s, 2)}


class CloseResult(repair_trace.Verified, _Closes):
    """The janitor's outcomes: an apply's result (failed / ok / exit code / table), per conversation; the check
    after closing (closed, the Pages' traces) counts toward ok and the exit code."""


def close_all(client, plan, concurrency=8, progress=True):
    """Close every stale conversation of the plan, `concurrency` at a time. Ctrl-C stops starting new closes and
    returns a result marked interrupted (running the janitor again finishes the job)."""
    from tqdm.auto import tqdm

    concurrency = check_concurrency(concurrency)
    retry.watch(client)
    started, outcomes, interrupted, futures = time.monotonic(), {}, False, {}
    bar = tqdm(total=len(plan.stale), desc="close", unit="conv", disable=not progress or not plan.stale)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="flexops-janitor")
    try:
        futures = {pool.submit(close_one, client, stale, DEADLINE, plan.workspace): i
                   for i, stale in enumerate(plan.stale)}
        for future in as_completed(futures):
            outcomes[futures[future]] = future.result()
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        for future in futures:
            future.cancel()
    finally:
        pool.shutdown(wait=True)
        bar.close()
    for future, index in futures.items():
        if index not in outcomes and future.done() and not future.cancelled():
            outcomes[index] = future.result()
    ordered = [outcomes.get(i) or Closed(s.conversation_sid, "skipped", "not started (interrupted)")
               for i, s in enumerate(plan.stale)]
    return CloseResult(ordered, interrupted, time.monotonic() - started)


def verify_closed(client, plan, since=None):
    """After closing: {conversation SID: its state now}, whether every planned one is closed, and — with `since`
    (when the closing ended, UTC) — the trace of each Page of a closed one (repair_trace): `ok` when all hold."""
    states = {}
    for stale in plan.stale:
        try:
            found = _call(client, retry.none_if_missing(
                lambda: _conversations(client, stale.service_sid)(stale.conversation_sid).fetch()),
                f"fetch {stale.conversation_sid}")
        except TwilioCallFailed as exc:
            states[stale.conversation_sid] = f"unknown ({exc.status})"
            continue
        states[stale.conversation_sid] = found.state if found is not None else "gone"
    all_closed = all(v in ("closed", "gone") for v in states.values())
    pages = [s.page_id for s in plan.stale if states.get(s.conversation_sid) in ("closed", "gone") and s.page_id]
    traces = repair_trace.trace_pages(client, pages, since) if since is not None and all_closed else []
    return {"states": states, "all_closed": all_closed, "traces": traces,
            "ok": all_closed and all(t["ok"] for t in traces)}


def close_recorded(client, plan, record, concurrency=8, progress=False, lock=True, break_lock=False):
    """close_all() as a step of an audited run (runbook 60 and its Close button; `flexops janitor` holds the lock
    itself and passes lock=False): the account's lock held, outcomes, summary and the check after closing recorded
    with `record(key, value)`. Returns (CloseResult, verify dict)."""
    held = AccountLock(client.account_sid, os.environ.get("FLEXOPS_RUN_ID")).acquire(break_lock) \
        if lock and plan.stale else None
    try:
        result = close_all(client, plan, concurrency=concurrency, progress=progress)
    finally:
        if held is not None:
            held.release()
    attempted = {o.conversation_sid for o in result.outcomes if o.status != "skipped"}
    check = verify_closed(client, replace(plan, stale=[s for s in plan.stale if s.conversation_sid in attempted]),
                          since=repair_trace.now())
    result.verification = [{"target": f"{len(check['states'])} conversation(s)", "kind": "closed",
                            "ok": check["all_closed"], "detail": "all closed" if check["all_closed"] else
                            "not all closed: run the janitor again"}] + check["traces"]
    record("close", result.to_dict())
    record("summary", result.summary())
    record("verify", check)
    return result, check


def janitor_params(target="auto", page_ids="", idle=DEFAULT_IDLE, confirm=False, concurrency=8, interactive=False):
    """Runbook 60's parameters, checked before any call (page IDs kept strings)."""
    as_duration("idle", idle)
    return {"target": choose_target(target),
            "page_ids": [normalise_page_id(p, "page_ids") for p in as_list("page_ids", page_ids)],
            "idle": str(idle).strip(), "confirm": as_bool("confirm", confirm),
            "concurrency": check_concurrency(concurrency), "interactive": as_bool("interactive", interactive)}
