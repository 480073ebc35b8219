"""Undo exactly what one run changed, from its audit trail.

For each Messenger address the run touched, the trail gives the state before the run's first change (`before`)
and after its last committed one (`after`): what the run created is deleted, what it updated gets its previous
values back, what it deleted is re-created with its previous configuration. A change whose outcome the trail
cannot tell (a dropped connection, a 5xx) is settled by the run's recorded apply results when it has them.

A run killed with kill -9 may have had calls in flight: their `sent` line is in the trail, their answer never came
(Twilio may have committed them). Each is settled against the account: as before the run -> nothing to undo;
exactly as the run's recorded plan asked (or, for a run without a plan such as runbook 10, as the create's own
`sent` parameters asked) -> the run did it, undo it; anything else -> cannot be told, skipped.
Runs from before `sent` lines existed are covered by their plan alone (it names every change it meant to make).

Why refuse by default: if someone changed an address after the run, putting back the old values would silently
undo their work. Every such address is listed (what changed, field by field) and nothing is done unless `force`.
The rollback itself runs through plan.apply, so it is concurrent, resumable, locked, and audited like any apply.
"""
import re
from dataclasses import dataclass, field

from . import addresses, audit, repairs, run_folder
from .address_spec import MessengerAddress
from .addresses import state_of
from .atomic import read_json
from .coerce import plain
from .exceptions import NotReversible, RollbackRefused, ValidationError
from .plan import Change, Plan, apply, resource_json
from .settings import mask_sid

UNKNOWN = object()
ADDRESSES_PATH = "/v1/Configuration/Addresses"
CONVERSATION_PATH = re.compile(r"^/v1/(Services/IS[0-9a-fA-F]{32}/)?Conversations/(CH[0-9a-fA-F]{32})$")


@dataclass
class Conflict:
    address: str
    reason: str
    fields: dict = field(default_factory=dict)  # {field: (after the run, now)}
    restorable: bool = True  # False: skipped even with force

    def __str__(self):
        detail = "; ".join(f"{k}: {plain(a)} after the run, now {plain(b)}" for k, (a, b) in self.fields.items())
        return f"{self.address}: {self.reason}" + (f" ({detail})" if detail else "")

    def to_dict(self):
        return {"address": self.address, "reason": self.reason, "restorable": self.restorable,
                "fields": {k: {"after_run": plain(a), "now": plain(b)} for k, (a, b) in self.fields.items()}}


@dataclass
class Touched:
    """What one run did to one address: state before its first change, after its last, and whether known."""

    address: str
    initial: object = UNKNOWN
    final: object = UNKNOWN
    sid: str = None
    methods: list = field(default_factory=list)
    changed: bool = False  # a call committed, or may have
    planned: dict = None  # the run's planned change, for an address the trail says nothing of (killed mid-call)


# --- reading the trail ---------------------------------------------------------------------------------------

def _is_address_call(record):
    return (record.get("product") == "conversations" and record.get("method") in ("POST", "DELETE")
            and str(record.get("path", "")).startswith(ADDRESSES_PATH))


def _address_of(record, by_sid):
    params = record.get("parameters") or {}
    for state in (record.get("after"), record.get("before")):
        if isinstance(state, dict) and state.get("address"):
            return state["address"]
    if params.get("Address"):
        return params["Address"]
    last = record["path"].rstrip("/").rsplit("/", 1)[-1]
    if last.startswith(addresses.PREFIX):
        return last
    return by_sid.get(last) or by_sid.get(record.get("sid"))


def touched(records, results=None):
    """{address: Touched} from a run's audit records (and its apply results for outcomes the trail lacks)."""
    calls = [r for r in audit.calls(records) if _is_address_call(r)]  # a call never answered: its sent line
    by_sid = {}
    for record in calls:
        for state in (record.get("after"), record.get("before")):
            if isinstance(state, dict) and state.get("sid") and state.get("address"):
                by_sid[state["sid"]] = state["address"]
    found, sent_creates = {}, {}
    for record in calls:
        address = _address_of(record, by_sid)
        if address is None or not address.startswith(addresses.PREFIX):
            continue
        item = found.get(address)
        status = record.get("status")
        is_create = record["path"].rstrip("/") == ADDRESSES_PATH
        if item is None:
            item = found[address] = Touched(address)
            if record.get("before_seen"):
                item.initial = record.get("before")
            elif is_create:
                item.initial = None  # a create is only sent for an address found absent
            item.final = item.initial
        if is_create and record.get("event") == "sent":
            sent_creates[address] = record.get("parameters") or {}
        answer = "in flight, never answered" if record.get("event") == "sent" else status or "no answer"
        item.methods.append(f"{record['method']} {answer}")
        item.sid = record.get("sid") or item.sid
        if status is not None and 200 <= status < 300:
            item.final = None if record["method"] == "DELETE" else record.get("after")
            item.changed = True
        elif status is None or status >= 500:
            item.final = UNKNOWN  # may or may not have committed
            item.changed = True
        # 4xx (throttled, refused, already absent): nothing changed
    for outcome in _outcomes(results):
        item = found.get(outcome.get("address"))
        if item is not None and item.final is UNKNOWN and outcome.get("status") == "ok":
            item.final = outcome.get("after") if outcome.get("action") != "delete" else None
            if item.final is None and outcome.get("action") != "delete":
                item.final = UNKNOWN
    answered = {o.get("address") for o in _outcomes(results)}
    for change in ((results or {}).get("plan") or {}).get("changes") or []:
        address = change.get("address")
        if change.get("action") not in ("create", "update", "delete"):
            continue
        item = found.get(address)
        if item is not None and item.final is UNKNOWN:
            item.planned = change  # settled against the account by what the run asked for
        elif item is None and address not in answered:
            initial = None if change["action"] == "create" else change.get("before")
            found[address] = Touched(address, initial, UNKNOWN, methods=["planned, no answer recorded"],
                                     changed=True, planned=change)
    for address, parameters in sent_creates.items():  # a run without a plan (runbook 10): its request is the plan
        item = found[address]
        if item.final is UNKNOWN and item.planned is None:
            item.planned = {"action": "create", "desired": _desired_of(address, parameters)}
    return {a: t for a, t in found.items() if t.changed}


SENT_FIELDS = {"FriendlyName": "friendly_name", "AutoCreation.Enabled": "auto_creation_enabled",
               "AutoCreation.Type": "integration", "AutoCreation.StudioFlowSid": "studio_flow_sid",
               "AutoCreation.StudioRetryCount": "retry_count", "AutoCreation.WebhookUrl": "webhook_url",
               "AutoCreation.WebhookMethod": "webhook_method", "AutoCreation.WebhookFilters": "webhook_filters",
               "AutoCreation.ConversationServiceSid": "conversation_service_sid"}


def _desired_of(address, parameters):
    """A create's form parameters (its `sent` line) as MessengerAddress parameters, like a plan's `desired`."""
    desired = {field: parameters[key] for key, field in SENT_FIELDS.items() if key in parameters}
    return {"page_id": address[len(addresses.PREFIX):], "allow_insecure_webhook": True, **desired}


def _as_planned(change, live):
    """`live` when it is exactly what the planned change asked for (so the run's call committed), else UNKNOWN."""
    desired = change.get("desired")
    if desired is None:  # a delete
        return None if live is None else UNKNOWN
    if live is None:
        return UNKNOWN
    try:
        spec = MessengerAddress.from_params(**{k: v for k, v in desired.items() if k != "address"})
    except ValidationError:
        return UNKNOWN
    return live if not addresses.diff(spec, live) else UNKNOWN


def _outcomes(results):
    apply_results = (results or {}).get("apply") or {}
    return apply_results.get("outcomes") or [] if isinstance(apply_results, dict) else []


# --- planning the rollback -----------------------------------------------------------------------------------

def spec_from_state(address, state):
    """A MessengerAddress that re-creates / restores `state` (a resource JSON) exactly."""
    current = state_of(state)
    params = {"page_id": address[len(addresses.PREFIX):], "friendly_name": current["friendly_name"],
              "integration": current["integration"], "auto_creation_enabled": current["auto_creation_enabled"],
              "studio_flow_sid": current["studio_flow_sid"], "retry_count": current["retry_count"],
              "webhook_url": current["webhook_url"], "webhook_method": current["webhook_method"],
              "webhook_filters": current["webhook_filters"],
              "conversation_service_sid": current["conversation_service_sid"], "allow_insecure_webhook": True}
    return MessengerAddress.from_params(**{k: v for k, v in params.items() if v not in (None, ())})


def _changed(expected, current, compare_sid=True):
    """{field: (expected, current)} where the live resource differs from `expected` (a state the run left or
    found); `compare_sid=False` ignores a re-creation (same configuration, new SID)."""
    if (expected is None) != (current is None):
        return {"exists": (expected is not None, current is not None)}
    if expected is None:
        return {}
    a, b = state_of(expected), state_of(current)
    out = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    if compare_sid and expected.get("sid") and current.get("sid") and expected["sid"] != current["sid"]:
        out["sid"] = (expected["sid"], current["sid"])
    return out


def load_run(run, runs_dir=None):
    """(run id, audit records, results) of a run folder given by path, id, id fragment or `latest`."""
    folder = run_folder.find_run(run, runs_dir)
    ok, line, message = run_folder.verify_run(folder)  # the chain, and that it ends where the manifest pinned it
    if not ok:
        raise ValidationError("run", f"its audit trail fails verification ({message}); it cannot be trusted to "
                                     "roll back from", str(folder))
    return folder.name, audit.read(folder / run_folder.AUDIT), read_json(folder / run_folder.RESULTS, {})


def plan_rollback(client, run, force=False, runs_dir=None):
    """(Plan of the undo, [Conflict]) — raises RollbackRefused when there are conflicts and not `force`."""
    run_id, records, results = load_run(run, runs_dir)
    _check_account(client, records, run_id)
    _refuse_irreversible(run_id, records)
    if repairs.is_repair_run(results):  # a repair run (legacy Flex Flows, routing): undone from its recorded steps
        return repairs.plan_undo(client, run_id, results, force=force)
    items = touched(records, results)
    current = {i.address: i for i in addresses.list_messenger(client)} if items else {}
    changes, conflicts = [], []
    for address, item in sorted(items.items()):
        live = resource_json(current.get(address))
        if item.initial is not UNKNOWN and not _changed(item.initial, live, compare_sid=False):
            continue  # already as before the run (rolled back earlier, or a resumed rollback): nothing to undo
        if item.planned is not None:
            item.final = _as_planned(item.planned, live)
        if item.initial is UNKNOWN or item.final is UNKNOWN:
            which = "before" if item.initial is UNKNOWN else "after"
            conflicts.append(Conflict(address, f"the state {which} the run is not in its audit trail "
                                               f"({', '.join(item.methods)}); cannot restore it", restorable=False))
            continue
        drift = _changed(item.final, live)
        if drift:
            conflicts.append(Conflict(address, f"changed since run {run_id}", drift))
        change = _undo(address, item.initial, live)
        if isinstance(change, Conflict):
            conflicts.append(change)
        elif change is not None:
            changes.append(change)
    if conflicts and not force:
        raise RollbackRefused(run_id, conflicts)
    if force:
        skipped = {c.address for c in conflicts if not c.restorable}
        changes = [c for c in changes if c.address not in skipped]
    target = client.flexops_target
    plan = Plan(changes=changes, account=mask_sid(target.account_sid), target=target.describe(),
                source=f"rollback of {run_id}")
    return plan, conflicts


def _undo(address, initial, live):
    """The change that brings `live` back to `initial` (None when already there)."""
    note = "restore the state before the run"
    if initial is None:
        if live is None:
            return None
        return Change("delete", address, sid=live["sid"], before=live, note="created by the run: delete it")
    try:
        spec = spec_from_state(address, initial)
    except ValidationError as exc:
        return Conflict(address, f"its previous configuration cannot be restored by flexops ({exc})",
                        restorable=False)
    if live is None:
        return Change("create", address, spec=spec, note="deleted by the run: re-create it")
    diff = addresses.diff(spec, live)
    if not diff:
        return None
    return Change("update", address, sid=live["sid"], spec=spec, diff=diff, before=live, note=note)


def _refuse_irreversible(run_id, records):
    """A run that closed conversations (`flexops janitor`, runbook 60) cannot be rolled back, even with force:
    Twilio cannot reopen a closed conversation."""
    closed = {}
    for record in audit.calls(records):
        match = CONVERSATION_PATH.match(str(record.get("path", "")))
        if (record.get("product") == "conversations" and record.get("method") == "POST" and match
                and str((record.get("parameters") or {}).get("State", "")).lower() == "closed"):
            closed[match[2]] = Conflict(match[2], "closed by the run", restorable=False)
    if closed:
        raise NotReversible(run_id, list(closed.values()),
                            f"it closed {len(closed)} conversation(s), and Twilio cannot reopen a closed conversation "
                            "(the customer's next message starts a new one).")


def _check_account(client, records, run_id):
    accounts = {s.get("account_sid") for r in records for s in (r.get("after"), r.get("before"))
                if isinstance(s, dict) and s.get("account_sid")}
    if accounts and client.account_sid not in accounts:
        raise ValidationError("run", f"{run_id} changed account {mask_sid(next(iter(accounts)))}, but this "
                                     f"connection is to {mask_sid(client.account_sid)}")


def rollback(client, run, force=False, concurrency=8, progress=True, audit=None, runs_dir=None, lock=True,
             break_lock=False):
    """Plan and apply the undo of `run`: (Plan, [Conflict], ApplyResult)."""
    plan, conflicts = plan_rollback(client, run, force=force, runs_dir=runs_dir)
    if isinstance(plan, repairs.RepairPlan):
        return plan, conflicts, repairs.apply(client, plan)
    result = apply(client, plan, concurrency=concurrency, progress=progress, audit=audit, lock=lock,
                   break_lock=break_lock)
    return plan, conflicts, result
