"""One shape for every repair: a RepairPlan of Steps on the resources repairs touch (legacy Flex Flows, TaskRouter
workflows, Messenger address configurations), applied one after another, verified afterwards, undone by
`flexops rollback RUN`.

Why steps in order, not concurrently like `plan.apply`: a repair's steps depend on each other (the legacy Flex Flow
must be gone before the Page's Conversations address is created, or both claim the Page), and the Flex Flow API
allows about one update a second, so its calls are paced (FLEX_FLOW_PACE_S). A step of a group whose earlier step
failed is not started.

Why safe to repeat: every step converges (a delete finds the resource gone, a create finds it made) and a call
whose outcome is unknown (5xx, dropped connection) is reconciled against the account before any retry
(`retry.call(reconcile=...)`), so nothing is duplicated. Outcomes are recorded as each step ends, so a run killed
with kill -9 keeps what it did; re-planning from the account finishes the job.

Why the undo needs no trail replay: each step records the resource as planned (`before`) and as it makes it
(`desired`); `plan_undo` compares the account with both — as before: nothing to undo; as the step left it: undo;
anything else changed since the run: refused unless forced.
"""
import json
import os
import time
from dataclasses import asdict, dataclass, field

from . import addresses, repair_trace, retry
from .address_spec import MessengerAddress
from .coerce import plain
from .exceptions import FlexopsError, RollbackRefused
from .lock import AccountLock
from .plan import ApplyResult, Outcome, resource_json
from .settings import mask_sid

KINDS = ("flex_flow", "workflow", "address")
FLEX_FLOW_PACE_S = 1.0  # Twilio: Flex Flow updates are limited to about 1 request per second
FLOW_FIELDS = ("friendly_name", "chat_service_sid", "channel_type", "contact_identity", "enabled",
               "integration_type", "integration", "long_lived", "janitor_enabled")
INTEGRATION_ARGS = ("flow_sid", "url", "workspace_sid", "workflow_sid", "channel", "timeout", "priority",
                    "creation_on_message", "retry_count")


@dataclass
class Step:
    """One change to one resource. `before`: the resource as planned (None: absent); `desired`: what the step makes
    it (None: a delete); `spec`: a Messenger address's MessengerAddress parameters (address steps)."""

    action: str  # create | update | delete
    kind: str  # one of KINDS
    target: str  # what people recognise it by: FO… / WW… SID, messenger:<page>
    sid: str = None
    before: dict = None
    desired: dict = None
    spec: dict = None
    workspace_sid: str = None
    group: str = None  # steps of one group depend on each other: a failure skips the rest of the group
    note: str = ""
    diff: str = ""  # a before/after diff for people (workflow configurations)
    line = None

    @property
    def address(self):  # the name plan.Outcome / ApplyResult show
        return self.target

    @property
    def friendly_name(self):
        return (self.desired or self.before or {}).get("friendly_name")

    def describe(self):
        return self.note

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


@dataclass
class RepairPlan:
    """The plan of one repair; the same interface as plan.Plan, so `flexops apply`'s confirmation, lock, run folder
    and results code (cli_changes, plan.apply_recorded, ui.confirm_panel) run it unchanged."""

    repair: str  # legacy-retire | routing-fix | rollback
    steps: list
    account: str
    target: str
    source: str = None
    notes: list = field(default_factory=list)
    prune = False

    @property
    def changes(self):
        return self.steps

    @property
    def pending(self):
        return list(self.steps)

    def counts(self):
        return {a: sum(1 for s in self.steps if s.action == a) for a in ("create", "update", "delete")}

    def summary(self):
        return ", ".join(f"{n} to {a}" for a, n in self.counts().items())

    def table(self, include_noop=True):
        import pandas as pd

        rows = [{"action": s.action, "kind": s.kind, "address": s.target, "friendly_name": s.friendly_name,
                 "sid": s.sid, "changes": s.note, "line": None} for s in self.steps]
        frame = pd.DataFrame(rows, columns=["action", "kind", "address", "friendly_name", "sid", "changes", "line"])
        return frame.astype({"line": "Int64"})

    def to_dict(self):
        return {"repair": self.repair, "account": self.account, "target": self.target, "source": self.source,
                "notes": self.notes, "counts": self.counts(), "steps": [s.to_dict() for s in self.steps]}

    def apply_recorded(self, client, record, progress=False, lock=True, break_lock=False, **_):
        """Apply as a step of an audited run (plan.apply_recorded hands repair plans here): `repair`, each
        outcome as it ends (`apply`), the gaps, the verification and the `summary` go to record(key, value)."""
        record("repair", {"kind": self.repair, "steps": [s.to_dict() for s in self.steps]})
        held = AccountLock(client.account_sid, os.environ.get("FLEXOPS_RUN_ID")).acquire(break_lock) if lock and self.steps else None
        try:
            result = apply(client, self, record)
        finally:
            if held is not None:
                held.release()
        result.verification = verify(client, self, result, since=repair_trace.now())
        record("verify", result.verification)
        record("summary", result.summary())
        return result


class RepairResult(repair_trace.Verified, ApplyResult):
    """An apply's result whose verify (the resources as made, the Pages' traces) counts toward ok / exit code."""


def new_plan(client, repair, steps, source=None, notes=()):
    target = client.flexops_target
    return RepairPlan(repair, list(steps), mask_sid(target.account_sid), target.describe(), source, list(notes))


# --- the resources ------------------------------------------------------------------------------------------

def _flows(client):
    return client.flex_api.v1.flex_flow


def flow_json(flow):
    """A FlexFlowInstance (or its JSON) as a plain dict of Twilio's fields."""
    if flow is None or isinstance(flow, dict):
        return flow
    return {"sid": flow.sid, "account_sid": flow.account_sid, **{k: getattr(flow, k) for k in FLOW_FIELDS}}


def flow_state(flow):
    return {k: (flow or {}).get(k) for k in FLOW_FIELDS} if flow is not None else None


def fetch_flow(client, sid):
    found = retry.call(retry.none_if_missing(lambda: _flows(client)(sid).fetch()), what=f"fetch Flex Flow {sid}",
                       client=client)
    return flow_json(found)


def list_flows(client):
    return [flow_json(f) for f in retry.call(lambda: _flows(client).list(page_size=50), what="list Flex Flows",
                                             client=client)]


def flow_args(state):
    """SDK create/update keyword arguments that make a Flex Flow as `state` says."""
    args = {k: v for k, v in state.items() if k in FLOW_FIELDS and k != "integration" and v is not None}
    for key, value in (state.get("integration") or {}).items():
        if key in INTEGRATION_ARGS and value is not None:
            args[f"integration_{key}"] = value
    return args


def _holding(client, identity):
    return next((f for f in list_flows(client) if identity and f.get("contact_identity") == identity), None)


def _workflows(client, step):
    return client.taskrouter.v1.workspaces(step.workspace_sid).workflows


def workflow_json(workflow):
    if workflow is None or isinstance(workflow, dict):
        return workflow
    return {"sid": workflow.sid, "friendly_name": workflow.friendly_name, "configuration": workflow.configuration,
            "workspace_sid": workflow.workspace_sid, "date_updated": plain(workflow.date_updated)}


def fetch_workflow(client, workspace_sid, sid):
    found = retry.call(retry.none_if_missing(
        lambda: client.taskrouter.v1.workspaces(workspace_sid).workflows(sid).fetch()),
        what=f"fetch workflow {sid}", client=client)
    return workflow_json(found)


def configuration_of(value):
    """A workflow configuration (JSON text or dict) as a dict, for comparing meaning rather than spacing."""
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


# --- one step: converge, look, compare ------------------------------------------------------------------------

def live(client, step):
    """The resource of `step` as the account holds it now (JSON), or None when absent."""
    if step.kind == "flex_flow":
        if step.sid:
            return fetch_flow(client, step.sid)
        return _holding(client, (step.desired or step.before or {}).get("contact_identity"))
    if step.kind == "workflow":
        return fetch_workflow(client, step.workspace_sid, step.sid)
    return resource_json(addresses.find(client, step.target))


def matches(step, state, desired):
    """Is `state` (live JSON or None) the same resource configuration as `desired` (a state dict or None)?"""
    if desired is None or state is None:
        return desired is None and state is None
    if step.kind == "flex_flow":
        return all(state.get(k) == v for k, v in flow_state(desired).items() if v is not None)
    if step.kind == "workflow":
        return configuration_of(state.get("configuration")) == configuration_of(desired.get("configuration"))
    return not addresses.diff(MessengerAddress.from_params(**step.spec), state)


def _converge(client, step):
    """Make the resource as the step wants; returns (result, sid, JSON after). Safe to repeat."""
    if step.kind == "flex_flow":
        if step.action == "delete":
            gone = retry.call(retry.none_if_missing(lambda: _flows(client)(step.sid).delete(), missing=False),
                              reconcile=lambda: True if fetch_flow(client, step.sid) is None else None,
                              what=f"delete Flex Flow {step.sid}", client=client)
            return ("deleted" if gone else "already absent"), step.sid, None
        if step.action == "update":
            made = retry.call(lambda: _flows(client)(step.sid).update(**flow_args(step.desired)),
                              what=f"update Flex Flow {step.sid}", client=client)
            return "updated", step.sid, flow_json(made)
        existing = _holding(client, step.desired.get("contact_identity"))
        if existing is not None and matches(step, existing, step.desired):
            return "already existed", existing["sid"], existing
        made = retry.call(lambda: _flows(client).create(**flow_args(step.desired)),
                          reconcile=lambda: _holding(client, step.desired.get("contact_identity")),
                          what=f"re-create Flex Flow {step.target}", client=client)
        made = flow_json(made)
        return "re-created (new SID)", made["sid"], made
    if step.kind == "workflow":
        configuration = json.dumps(configuration_of(step.desired["configuration"]))
        made = retry.call(lambda: _workflows(client, step)(step.sid).update(configuration=configuration),
                          what=f"update workflow {step.sid}", client=client)
        return "updated", step.sid, workflow_json(made)
    if step.action == "delete":
        gone = addresses.delete(client, step.target)
        return ("deleted" if gone else "already absent"), step.sid, None
    spec = MessengerAddress.from_params(**step.spec)
    result = addresses.ensure(client, spec, update_existing=True)  # looks first; a lost create is looked up again
    return result.action, result.sid, live(client, step)


def _outcome(step, started, error=None, result="", sid=None, after=None):
    elapsed = time.monotonic() - started
    if error is None:
        return Outcome(step, "ok", result, sid, elapsed_s=elapsed, after=after)
    text = str(error) if isinstance(error, FlexopsError) else f"{type(error).__name__}: {error}"
    return Outcome(step, "failed", "failed", step.sid, getattr(error, "code", None), getattr(error, "status", None),
                   text[:1000], elapsed)


def apply(client, plan, record=None):
    """Run the plan's steps in order (Flex Flow calls paced); a group stops at its first failure. Ctrl-C stops
    before the next step and marks the result interrupted. Each outcome is recorded as it ends."""
    retry.watch(client)
    started, outcomes, interrupted, failed_groups, last_flow, answered = time.monotonic(), [], False, set(), None, {}
    gaps = []
    try:
        for step in plan.steps:
            if step.group and step.group in failed_groups:
                outcomes.append(Outcome(step, "skipped", "not started: an earlier step for it failed"))
                continue
            if step.kind == "flex_flow" and last_flow is not None:
                time.sleep(max(0.0, last_flow + FLEX_FLOW_PACE_S - time.monotonic()))
            began = time.monotonic()
            try:
                result, sid, after = _converge(client, step)
                outcome = _outcome(step, began, result=result, sid=sid, after=after)
            except (FlexopsError, ValueError) as exc:  # reported; the other groups go on
                outcome = _outcome(step, began, exc)
                failed_groups.add(step.group)
            if step.kind == "flex_flow":
                last_flow = time.monotonic()
            if step.group and step.group in answered and outcome.status == "ok":
                gap = round(time.monotonic() - answered[step.group], 3)
                gaps.append({"group": step.group, "gap_s": gap})
                outcome.result += f" ({gap:.2f} s after the previous step for {step.group})"
            answered[step.group] = time.monotonic()
            outcomes.append(outcome)
            if record is not None:
                record("apply", ApplyResult(outcomes, False, time.monotonic() - started).to_dict())
                record("gaps", gaps)
    except KeyboardInterrupt:
        interrupted = True
    done = {id(o.change) for o in outcomes}
    outcomes += [Outcome(s, "skipped", "not started (interrupted)") for s in plan.steps if id(s) not in done]
    result = RepairResult(outcomes, interrupted, time.monotonic() - started)
    result.gaps = gaps
    if record is not None:
        record("apply", result.to_dict())
    return result


def verify(client, plan, result, since=None):
    """Look at every resource a step changed: is it now as the step made it? [{target, kind, ok, detail}]; then,
    with `since` (when the repair ended, UTC), trace the Pages it was for (repair_trace)."""
    rows = []
    for outcome in result.outcomes:
        if outcome.status != "ok":
            continue
        step = outcome.change
        probe = Step.from_dict({**step.to_dict(), "sid": outcome.sid or step.sid})
        now = live(client, probe)
        ok = matches(step, now, step.desired)
        rows.append({"target": step.target, "kind": step.kind, "ok": ok,
                     "detail": "as the repair made it" if ok else "differs from what the repair made"})
    if since is not None and all(r["ok"] for r in rows):
        rows += repair_trace.trace_pages(client, repair_trace.pages_of_repair(client, plan, result.outcomes), since)
    return rows


# --- undo -----------------------------------------------------------------------------------------------------

@dataclass
class Drift:
    address: str
    reason: str
    restorable: bool = True

    def __str__(self):
        return f"{self.address}: {self.reason}"

    def to_dict(self):
        return {"address": self.address, "reason": self.reason, "restorable": self.restorable, "fields": {}}


def is_repair_run(results):
    return isinstance((results or {}).get("repair"), dict)


def _done_sids(results):
    outcomes = ((results.get("apply") or {}).get("outcomes") or []) if isinstance(results.get("apply"), dict) else []
    return [o.get("sid") for o in outcomes]


def _inverse(step, now, made_sid):
    """The step that brings the resource back from `now` to `step.before`."""
    common = {"kind": step.kind, "target": step.target, "workspace_sid": step.workspace_sid, "group": step.group,
              "spec": step.spec}
    if step.before is None:
        return Step("delete", sid=(now or {}).get("sid") or made_sid, before=now, desired=None,
                    note=f"made by the run: delete {step.kind.replace('_', ' ')}", **common)
    if now is None:
        return Step("create", sid=None, before=None, desired=step.before,
                    note="deleted by the run: re-create it as it was (a Flex Flow gets a new SID)", **common)
    return Step("update", sid=now.get("sid"), before=now, desired=step.before,
                note="restore the configuration before the run", diff=step.diff, **common)


def plan_undo(client, run_id, results, force=False):
    """(RepairPlan, [Drift]) undoing the repair run's steps, last first; RollbackRefused on drift unless forced."""
    steps = [Step.from_dict(s) for s in results["repair"].get("steps") or []]
    made = _done_sids(results)
    undo, drifts = [], []
    for index, step in reversed(list(enumerate(steps))):
        made_sid = made[index] if index < len(made) else None
        probe = Step.from_dict({**step.to_dict(), "sid": step.sid or made_sid})
        now = live(client, probe)
        if now is None and step.kind == "flex_flow" and step.before is not None:  # re-created with a new SID?
            now = _holding(client, step.before.get("contact_identity")) or now
        if matches(step, now, step.before):
            continue  # never done, or already undone
        if not matches(step, now, step.desired):
            what = "is gone" if now is None else "was changed"
            drifts.append(Drift(step.target, f"{step.kind.replace('_', ' ')} {what} since run {run_id}"))
            if not force:
                continue
        undo.append(_inverse(step, now, made_sid))
    if drifts and not force:
        raise RollbackRefused(run_id, drifts)
    if any(not d.restorable for d in drifts):
        skipped = {d.address for d in drifts if not d.restorable}
        undo = [s for s in undo if s.target not in skipped]
    return new_plan(client, "rollback", undo, source=f"rollback of {run_id}"), drifts

