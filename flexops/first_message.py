"""verify's traffic rows: "first message" (has a customer's conversation reached the page in the window?) and
"page went silent", from the state store when it is on (evidence_scan, silence), else from one bounded scan
(evidence.scan, as without a store).

With the store a page without evidence fails only once the whole window has been scanned; while a busy account's
window is still being covered over runs (the per-run cap), it is a warning that says how far the scan got and that
the next run goes on.
"""
from dataclasses import dataclass, field

from . import evidence, evidence_scan, silence
from .evidence import MAX_CONVERSATIONS
from .evidence_store import open_store

PASS, FAIL, WARN = "pass", "fail", "warn"
CHECK = "first message"
REMEDY = "Send a message to the Facebook Page from Messenger, then run the verification again."


@dataclass
class Traffic:
    found: dict  # {address: {"conversation_sid", "date_created", "chat_service_sid"}}
    notes: list = field(default_factory=list)
    complete: bool = True  # False: the window is not covered yet (the store's scan continues next run)
    silent: dict = field(default_factory=dict)  # {address: silence.Silence}
    stored: bool = False  # the evidence came from the state store
    window: str = ""
    known_pages: object = None  # the store's {SID: page} lookup (path_checks asks no participants for those)


def gather(client, present, services, since_days=30, max_conversations=MAX_CONVERSATIONS, progress=None,
           state_dir=None):
    """Traffic of the address configurations `present` (`services`: {sid: "ok" | problem}, as checks.verify
    found them). `state_dir`: None (FLEXOPS_STATE_DIR, else ~/.flexops/state), a folder, or "" / "off"."""
    store = open_store(client.account_sid, state_dir)
    wanted = [c.address for c in present]
    if store is None or not wanted:
        found, notes = evidence.scan(client, present, services, since_days, max_conversations, progress)
        return Traffic(found, notes)
    with store.session():
        result = evidence_scan.scan(client, store, wanted, evidence.lists_to_scan(client, services), since_days,
                                    max_conversations, progress)
        silent = silence.silent_pages(store, wanted) if result.fresh else {}
    return Traffic(result.found, result.notes, result.complete, silent, True, result.window, store.pages_of)


def rows(address, traffic, require_first_message, make):
    """The traffic rows of one address, made with `make(address, check, status, detail, remedy)`."""
    out = []
    found = traffic.found.get(address)
    if found:
        when = found["date_created"]
        when = when.strftime("%Y-%m-%d %H:%M UTC") if hasattr(when, "strftime") else when
        out.append(make(address, CHECK, PASS, f"conversation {found['conversation_sid']} created {when}"))
    elif traffic.stored and not traffic.complete:
        out.append(make(address, CHECK, WARN, "no conversation from this page among those scanned so far ("
                        + "; ".join(traffic.notes) + ")", "Nothing to do yet: the next run scans older "
                        "conversations. " + REMEDY.replace("Send", "If this page is new, send")))
    else:
        since = f" since {traffic.window[:10]}" if traffic.window else ""
        detail = (f"no conversation from this page{since} yet" if traffic.stored else
                  "no recent conversation from this page yet") + (
            f" ({'; '.join(traffic.notes)})" if traffic.notes else "")
        out.append(make(address, CHECK, FAIL if require_first_message else WARN, detail, REMEDY))
    quiet = traffic.silent.get(address)
    if quiet is not None:
        out.append(make(address, silence.CHECK, WARN, quiet.detail, silence.REMEDY))
    return out
