"""After a repair: would a customer's message to each affected Page now reach Flex? One trace per Page says.

Why: a repair's own check ("the workflow is as the repair made it", "the conversation is closed") proves the change
landed, not that the path works — a second breakage on the same path (an address with auto-creation off, a legacy
Flex Flow, a draft flow) would still stop the next message. So each repair's verify ends with the trace of the
Pages it was for (routing fix: the Pages whose addresses reach the fixed workflow through their flow's Send to
Flex; legacy retire: the Pages given, or already holding, a Conversations address; janitor: the Pages of the
closed conversations).

What is traced: only messages written since the repair (`since`), so a message the broken path swallowed before
the repair does not fail it. Usually there is none yet: the trace then judges each hop's configuration, and a
path whose every hop passes is ok, with the note to send a test message to confirm. Cheap: one trace per Page (at
most MAX_PAGES, a few at a time), no waiting for a message. A trace that still finds a broken hop fails the
verify, with the trace's remedy.
"""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from . import addresses, trace, trace_collect
from .address_spec import address_of
from .exceptions import FlexopsError
from .studio import FlowCache, send_to_flex_state

MAX_PAGES = 25  # traces after one repair; the rest are named in a note
WORKERS = 4
NO_MESSAGE_NOTE = ("no message since the repair; every hop's configuration passes: send a test message to the "
                   "Page to confirm (flexops trace {page} --wait 120)")


def now():
    return datetime.now(timezone.utc)


def first_second_after(since):
    """The first whole second after `since`: Twilio stamps messages to the second, so one stamped in the repair's
    own second may have come before it — it is not taken as written since the repair."""
    return since.replace(microsecond=0) + timedelta(seconds=1)


def _stamped_from(stamp, start):
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return False
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)) >= start


def trace_after(client, page_id, since):
    """The Trace of the Page's newest inbound message written since `since` (UTC), or — when there is none, the
    usual case right after a repair — of the Page's configuration only (each hop's configuration judged). The
    steps of `trace.trace`, with a message older than the repair set aside: the broken path swallowed it."""
    start = first_second_after(since)
    address = address_of(page_id)
    config = trace_collect.address_config(client, address)
    service = ((config or {}).get("auto_creation") or {}).get("conversation_service_sid")
    found = None
    if config is not None:
        found = trace_collect.newest_message(client, trace_collect.page_conversations(client, address, start,
                                                                                      (service,)))
    if found and _stamped_from(found[2].get("date_created"), start):
        service, conversation, message = found
        return trace.analyse(trace_collect.evidence(client, page_id, config, conversation.sid, since, service,
                                                    message))
    return trace.analyse(trace_collect.evidence(client, page_id, config, None, since, service, None))


def row(page_id, traced):
    """One verify row from a Trace: {target, kind: trace, ok, verdict, broken_hop, detail, remedy, note}."""
    hop = next((h for h in traced.hops if h.hop == traced.broken_hop), None)
    if traced.verdict == "no_message":
        ok, note = hop is None, NO_MESSAGE_NOTE.format(page=page_id) if hop is None else ""
    else:
        ok, note = traced.exit_code == 0, ""
    return {"target": f"{addresses.PREFIX}{page_id}", "kind": "trace", "ok": ok, "verdict": traced.verdict,
            "broken_hop": traced.broken_hop, "detail": f"trace: {traced.summary()}",
            "remedy": hop.remedy if hop is not None and not ok else "", "note": note}


class Verified:
    """Mixed into an apply's result class: the verify rows after it (`verification`) count — a row not ok fails
    the result (exit 1, status "verify failed"), as a failed change does; `verify_failed` in its summary."""

    verification = ()

    @property
    def ok(self):
        return super().ok and all(r["ok"] for r in self.verification)

    def summary(self):
        summary = super().summary()
        bad = sum(not r["ok"] for r in self.verification)
        if bad and not summary.get("failed") and not self.interrupted:
            summary["status"] = "verify failed"
        return {**summary, "verify_failed": bad}


def trace_pages(client, page_ids, since):
    """A verify row per Page (see `row`), for messages written since `since` (UTC datetime); the Pages beyond
    MAX_PAGES are one row with a note (not a failure)."""
    pages = list(dict.fromkeys(str(p) for p in page_ids))
    traced, rest = pages[:MAX_PAGES], pages[MAX_PAGES:]

    def one(page_id):
        try:
            return row(page_id, trace_after(client, page_id, since))
        except FlexopsError as exc:  # a trace that cannot run is a failed check, not a crash
            return {"target": f"{addresses.PREFIX}{page_id}", "kind": "trace", "ok": False, "verdict": "unknown",
                    "broken_hop": None, "detail": f"trace: could not run: {exc}",
                    "remedy": f"Trace it yourself: flexops trace {page_id} (it names what it could not read).",
                    "note": ""}

    with ThreadPoolExecutor(min(WORKERS, max(1, len(traced)))) as pool:
        rows = list(pool.map(one, traced))
    if rest:
        rows.append({"target": f"{len(rest)} more Page(s)", "kind": "trace", "ok": True, "verdict": "not traced",
                     "broken_hop": None, "detail": f"not traced (at most {MAX_PAGES} per repair)", "remedy": "",
                     "note": "trace them with flexops trace --all"})
    return rows


def pages_through(client, workflow_sids):
    """Page IDs of the Messenger addresses whose Studio flow's Send to Flex widget uses one of the workflows."""
    wanted, flows, pages = set(workflow_sids), FlowCache(client), []
    for config in addresses.list_messenger(client):
        auto = config.auto_creation or {}
        if auto.get("type") != "studio" or not auto.get("studio_flow_sid"):
            continue
        flow = flows.get(auto["studio_flow_sid"])
        widget = send_to_flex_state(flow.definition) if flow is not None and flow.definition else None
        if ((widget or {}).get("properties") or {}).get("workflow") in wanted:
            pages.append(config.address[len(addresses.PREFIX):])
    return pages


def pages_of_repair(client, repair_plan, outcomes):
    """The Pages a repair plan was for (see the module's docstring). Legacy retire: the Pages given a
    Conversations address (--replace) and those of retired Flex Flows whose Page has one already (the collision
    the retire resolves); a Page left without an address has nothing to trace. [] for a rollback (it puts back
    what was there, broken or not) or a repair whose steps all failed."""
    done = [o.change for o in outcomes if o.status == "ok"]
    if repair_plan.repair == "routing-fix":
        fixed = [s.sid for s in done if s.kind == "workflow"]
        return pages_through(client, fixed) if fixed else []
    if repair_plan.repair != "legacy-retire":
        return []
    made = [s.target[len(addresses.PREFIX):] for s in done if s.kind == "address" and s.action == "create"]
    held = [str((s.before or {}).get("contact_identity") or "") for s in done if s.kind == "flex_flow"]
    held = [h[len(addresses.PREFIX):] for h in held if h.startswith(addresses.PREFIX)]
    return list(dict.fromkeys(made + [p for p in held if p not in made and p.isdigit()
                                      and addresses.find(client, p) is not None]))
