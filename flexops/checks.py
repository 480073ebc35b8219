"""Preflight and verification checks -> rows of (subject, check, status, detail, remedy).

Every failure says what to do in the Twilio Console in one sentence. Checks never raise for what they find
(a 401 is a failed row, not a traceback); only bad input raises ValidationError, before any API call.

verify() is built to stay cheap on big accounts: address configurations come from the list (50 per page), each
Studio flow and Conversations service is fetched once, and first-message evidence comes from the state store and
the conversations it has not seen yet (first_message.py), or without a store from evidence.py's one bounded scan.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import address_spec, addresses, first_message, path_checks, retry
from .evidence import MAX_CONVERSATIONS, WORKERS, call as _call
from .exceptions import CheckFailed, TwilioCallFailed
from .settings import mask_sid
from .studio import FlowCache

PASS, FAIL, WARN = "pass", "fail", "warn"
SYMBOLS = {PASS: "✓", FAIL: "✗", WARN: "!"}
COLUMNS = ("subject", "check", "status", "detail", "remedy")
FETCH_INDIVIDUALLY_UP_TO = 5  # more page ids than this: listing (50 per request) is cheaper than fetching each


@dataclass
class CheckResult:
    subject: str
    check: str
    status: str  # pass | fail | warn
    detail: str = ""
    remedy: str = ""
    unreachable: bool = False  # the target refused us or could not be reached: nothing else could be checked

    def __post_init__(self):
        if self.status not in SYMBOLS:
            raise ValueError(f"status must be one of {', '.join(SYMBOLS)}")

    @property
    def symbol(self):
        return SYMBOLS[self.status]

    @property
    def ok(self):
        return self.status != FAIL

    def to_dict(self):
        return {"subject": self.subject, "check": self.check, "status": self.status, "symbol": self.symbol,
                "detail": self.detail, "remedy": self.remedy}


def table(results):
    """A pandas DataFrame with columns subject, check, status (as ✓ ✗ !), detail, remedy."""
    import pandas as pd

    return pd.DataFrame([[r.subject, r.check, r.symbol, r.detail, r.remedy] for r in results], columns=COLUMNS)


def subject_table(results):
    """One row per subject (address): its worst status as ✓ ✗ !, its counts, and the checks that failed."""
    import pandas as pd

    groups = {}
    for row in results:
        groups.setdefault(row.subject, []).append(row)
    count = lambda rows, status: sum(r.status == status for r in rows)  # noqa: E731
    return pd.DataFrame([[subject, SYMBOLS[worst(r.status for r in rows)], count(rows, PASS), count(rows, FAIL),
                          count(rows, WARN), ", ".join(r.check for r in rows if r.status == FAIL)]
                         for subject, rows in groups.items()],
                        columns=["subject", "status", "passed", "failed", "warnings", "failed checks"])


def summary(results):
    results = list(results)
    count = lambda status: sum(r.status == status for r in results)  # noqa: E731
    return {"passed": count(PASS), "failed": count(FAIL), "warnings": count(WARN), "total": len(results),
            "unreachable": any(r.unreachable for r in results)}


def failed(results, required=None, strict=False):
    """The failing rows; `required` limits them to those check names; strict=True counts warnings too."""
    bad = (FAIL, WARN) if strict else (FAIL,)
    return [r for r in results if r.status in bad and (required is None or r.check in set(required))]


def require(results, required=None, strict=False):
    """Raise CheckFailed (a non-zero exit for headless runs) when `failed(...)` is not empty."""
    bad = failed(results, required, strict)
    if bad:
        names = "; ".join(f"{r.subject}: {r.check}" for r in bad[:5]) + (" …" if len(bad) > 5 else "")
        raise CheckFailed(f"{len(bad)} check{'s' if len(bad) != 1 else ''} failed: {names}")
    return results


# --- preflight -----------------------------------------------------------------------------------------------

def preflight(client, flows=None):
    """Is this account ready for Messenger on Flex? Credentials, Flex, default service, a Flex flow, addresses."""
    account = mask_sid(client.account_sid)
    rows = []
    add = lambda *args, **kw: rows.append(CheckResult(*args, **kw)) or rows[-1]  # noqa: E731

    try:
        fetched = client.api.v2010.accounts(client.account_sid).fetch
        info = _call(client, lambda: _account_summary(fetched()), "fetch the account")
    except TwilioCallFailed as exc:
        if exc.status == 401 or exc.code == 20003:
            add(account, "credentials", FAIL, "Twilio refused the credentials (401, error 20003)",
                "Check the Account SID and Auth Token (or API key and secret) in Console > Account > API keys "
                "& tokens and set them again.", unreachable=True)
        else:
            add(account, "credentials", FAIL, f"could not fetch the account: {exc}",
                "Check the network path to api.twilio.com and the Twilio status page, then run again.",
                unreachable=True)
        reason = "skipped: the credentials check failed"
        for check in ("Flex configured", "default Conversations service", "Studio Flex flow", "Messenger addresses"):
            add(account, check, WARN, reason, "Fix the credentials first.")
        return rows
    if info["status"] != "active":
        add(account, "credentials", FAIL, f"account {info['name']!r} is {info['status']}",
            "Reactivate or upgrade the account in Console > Account > General settings.")
    else:
        add(account, "credentials", PASS, f"account {info['name']!r} ({info['type']}) is active")

    flex = _flex_row(client, account, add)
    _default_service_row(client, account, add, flex)
    _flow_row(client, account, add, flows or FlowCache(client))
    try:
        count = len(addresses.list_messenger(client))
        add(account, "Messenger addresses", PASS, f"{count} Messenger address configuration"
            f"{'s' if count != 1 else ''} in the account")
    except TwilioCallFailed as exc:
        add(account, "Messenger addresses", FAIL, f"cannot list address configurations: {exc}",
            "Make sure the credentials may read Conversations (Console > Account > API keys & tokens).")
    return rows


def _account_summary(instance):
    """Copy the harmless fields out; the instance (which carries the auth token) is dropped right here."""
    return {"status": instance.status, "name": instance.friendly_name, "type": instance.type}


def _flex_row(client, account, add):
    try:
        flex = _call(client, retry.none_if_missing(client.flex_api.v1.configuration().fetch),
                     "fetch the Flex configuration")
    except TwilioCallFailed as exc:
        add(account, "Flex configured", FAIL, f"cannot read the Flex configuration: {exc}",
            "Make sure the credentials may read Flex, or open Flex once from the Twilio Console.")
        return None
    if flex is None or flex.status != "ok":
        state = "not set up" if flex is None else f"in state {flex.status!r}"
        add(account, "Flex configured", FAIL, f"Flex is {state} on this account",
            "Open Flex in the Twilio Console (Flex > Overview) and finish its setup.")
        return None
    add(account, "Flex configured", PASS,
        f"Flex status ok; Flex Conversations service {flex.flex_service_instance_sid}, chat service "
        f"{flex.chat_service_instance_sid}, TaskRouter workspace {flex.taskrouter_workspace_sid}")
    return flex


def _default_service_row(client, account, add, flex):
    if flex is None:
        add(account, "default Conversations service", WARN, "skipped: Flex is not configured",
            "Finish the Flex setup first.")
        return
    try:
        config = _call(client, client.conversations.v1.configuration().fetch, "fetch the Conversations configuration")
    except TwilioCallFailed as exc:
        add(account, "default Conversations service", FAIL, f"cannot read the Conversations configuration: {exc}",
            "Make sure the credentials may read Conversations.")
        return
    wanted = flex.flex_service_instance_sid
    if config.default_chat_service_sid == wanted:
        add(account, "default Conversations service", PASS, f"default service {wanted} is Flex's")
    else:
        add(account, "default Conversations service", FAIL,
            f"default service is {config.default_chat_service_sid}, Flex uses {wanted}",
            f"In Console > Conversations > Defaults, set the Default Conversation Service to {wanted} (Flex's).")


def _flow_row(client, account, add, flows):
    try:
        found = flows.published_flex_flows()
    except TwilioCallFailed as exc:
        add(account, "Studio Flex flow", FAIL, f"cannot read Studio flows: {exc}",
            "Make sure the credentials may read Studio.")
        return
    if found:
        names = ", ".join(f"'{f.friendly_name}' ({f.sid})" for f in found)
        add(account, "Studio Flex flow", PASS, f"published flow reaching Send to Flex: {names}")
    else:
        add(account, "Studio Flex flow", FAIL,
            "no published Studio flow whose Incoming Conversation trigger reaches Send to Flex",
            "In Console > Studio, connect the Trigger's Incoming Conversation to a Send to Flex widget "
            "(as in Flex's 'Messaging Flow') and publish the flow.")


# --- verify ----------------------------------------------------------------------------------------------------

def verify(client, page_ids=None, require_first_message=True, flows=None, since_days=30,
           max_conversations=MAX_CONVERSATIONS, progress=None, state_dir=None):
    """One row per (address, check) for the given pages, or for every Messenger address when page_ids is empty.
    `state_dir`: the state store's folder (None: FLEXOPS_STATE_DIR, else ~/.flexops/state; "" or "off": none)."""
    ids = validate_page_ids(page_ids)
    flows = flows or FlowCache(client)
    configs = _configurations(client, ids, progress)
    if not configs:  # "verify all" on an account without any: nothing reaches Flex, which must not pass silently
        return [CheckResult(mask_sid(client.account_sid), "Messenger addresses", FAIL,
                            "no Messenger address configuration in the account: nothing to verify",
                            REMEDY_CREATE.replace("Create it", "Create one"))]
    present = [c for c in configs.values() if c is not None]
    flow_sids = sorted({(c.auto_creation or {}).get("studio_flow_sid") for c in present
                        if (c.auto_creation or {}).get("type") == "studio"} - {None})
    service_sids = sorted({(c.auto_creation or {}).get("conversation_service_sid") for c in present} - {None})
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda sid: _prefetch(flows, sid), flow_sids))  # each flow fetched once, in parallel
        services = dict(zip(service_sids, pool.map(lambda sid: _service(client, sid), service_sids)))
    traffic = first_message.gather(client, present, services, since_days, max_conversations, progress, state_dir)
    rows = []
    for address, config in configs.items():
        rows.extend(_address_rows(address, config, flows, services, traffic, require_first_message))
    return path_checks.with_path_rows(client, configs, flows, rows, CheckResult, traffic.known_pages)


def _prefetch(flows, sid):
    try:
        flows.analyse(sid)
    except TwilioCallFailed:
        pass  # reported on the rows of the addresses using this flow


def validate_page_ids(page_ids):
    """Normalised page ids, or ValidationError('page_ids', ...): notebooks validate before any call."""
    if page_ids is None:
        return []
    if isinstance(page_ids, (str, int)):
        page_ids = [p for p in str(page_ids).replace(",", " ").split()]
    return list(dict.fromkeys(address_spec.normalise_page_id(p, "page_ids") for p in page_ids))


def _configurations(client, ids, progress=None):
    """{address: instance or None}, by fetching a few or listing all."""
    if ids and len(ids) <= FETCH_INDIVIDUALLY_UP_TO:
        return {addresses.PREFIX + p: addresses.find(client, p) for p in ids}
    listed = {c.address: c for c in addresses.list_messenger(client, progress=progress)}
    if not ids:
        return dict(sorted(listed.items()))
    return {addresses.PREFIX + p: listed.get(addresses.PREFIX + p) for p in ids}


def _service(client, sid):
    """'ok', 'missing', or the error text for a Conversations service."""
    try:
        found = _call(client, retry.none_if_missing(client.conversations.v1.services(sid).fetch),
                      f"fetch Conversations service {sid}")
    except TwilioCallFailed as exc:
        return str(exc)
    return "ok" if found is not None else "missing"


REMEDY_CREATE = ("Create it with the 10_create_messenger_address runbook (or Console > Conversations > "
                 "Addresses > Add a Facebook Messenger address).")
REMEDY_EDIT = "In Console > Conversations > Addresses, edit this Messenger address and "


def _address_rows(address, config, flows, services, traffic, require_first_message):
    rows = []
    add = lambda *args: rows.append(CheckResult(address, *args))  # noqa: E731
    if config is None:
        add("exists", FAIL, "no address configuration for this page", REMEDY_CREATE)
        return rows
    auto = config.auto_creation or {}
    add("exists", PASS, f"{config.sid}" + (f" '{config.friendly_name}'" if config.friendly_name else ""))
    if config.type == addresses.ADDRESS_TYPE:
        add("type", PASS, "messenger")
    else:
        add("type", FAIL, f"type is {config.type!r}, not messenger",
            "Delete this address and add it again as a Facebook Messenger address.")
    if auto.get("enabled"):
        add("auto-creation", PASS, "conversations are created for new messages")
    else:
        add("auto-creation", FAIL, "auto-creation is off: new messages create no conversation",
            REMEDY_EDIT + "turn on 'Autocreate a Conversation'.")
    kind = auto.get("type")
    if kind == "studio":
        rows.extend(_studio_rows(address, auto, flows))
    elif kind == "webhook":
        rows.extend(_webhook_rows(address, auto))
    else:
        add("integration", FAIL, f"integration is {kind!r}: nothing routes the conversation to Flex",
            REMEDY_EDIT + "set the integration to Studio with your Flex messaging flow.")
    service = auto.get("conversation_service_sid")
    if service:
        state = services.get(service)
        if state == "ok":
            add("conversation service", PASS, f"{service} exists")
        else:
            detail = f"{service} does not exist" if state == "missing" else f"{service}: {state}"
            add("conversation service", FAIL, detail,
                REMEDY_EDIT + "pick an existing Conversation Service (or leave it empty for the default one).")
    return rows + first_message.rows(address, traffic, require_first_message, CheckResult)


def _studio_rows(address, auto, flows):
    rows = []
    add = lambda *args: rows.append(CheckResult(address, *args))  # noqa: E731
    sid = auto.get("studio_flow_sid")
    if not sid:
        add("flow exists", FAIL, "no Studio flow is set", REMEDY_EDIT + "choose your Flex messaging flow.")
        return rows
    try:
        flow = flows.analyse(sid)
    except TwilioCallFailed as exc:
        add("flow exists", FAIL, f"cannot fetch {sid}: {exc}", "Check the network and the credentials, then retry.")
        return rows
    if not flow.found:
        add("flow exists", FAIL, f"no Studio flow {sid} in the account",
            REMEDY_EDIT + "choose an existing Flex messaging flow.")
        return rows
    add("flow exists", PASS, flow.label)
    if flow.published:
        add("flow published", PASS, f"{flow.label} is published")
    else:
        add("flow published", FAIL, f"{flow.label} is {flow.status}",
            "Open the flow in Console > Studio and click Publish.")
    if flow.valid:
        add("flow valid", PASS, "Studio reports no errors")
    else:
        add("flow valid", FAIL, "Studio reports errors: " + ("; ".join(flow.errors) or "unknown"),
            "Open the flow in Console > Studio, fix the widgets marked in red and publish.")
    if flow.reaches_flex:
        add("flow reaches Send to Flex", PASS, flow.detail)
    else:
        add("flow reaches Send to Flex", FAIL, flow.detail,
            "In Console > Studio, connect the Trigger's Incoming Conversation transition to a Send to Flex "
            "widget and publish the flow.")
    count = auto.get("studio_retry_count")
    if count is None:
        add("retry count", WARN, "no Studio retry count is set", REMEDY_EDIT + "set the Studio retry count (0-3).")
    else:
        add("retry count", PASS, f"Studio retry count {count}")
    return rows


def _webhook_rows(address, auto):
    rows = []
    add = lambda *args: rows.append(CheckResult(address, *args))  # noqa: E731
    url = auto.get("webhook_url") or ""
    if url.startswith("https://"):
        add("webhook https", PASS, url)
    else:
        add("webhook https", FAIL, f"webhook URL {url!r} is not https",
            REMEDY_EDIT + "use an https:// webhook URL.")
    method = (auto.get("webhook_method") or "").upper()
    if method in address_spec.WEBHOOK_METHODS:
        add("webhook method", PASS, method)
    else:
        add("webhook method", FAIL, f"webhook method {method!r}", REMEDY_EDIT + "set the webhook method to POST.")
    filters = list(auto.get("webhook_filters") or [])
    unknown = [f for f in filters if f not in address_spec.WEBHOOK_EVENTS]
    if unknown:
        add("webhook filters", FAIL, f"unknown events: {', '.join(unknown)}",
            REMEDY_EDIT + "keep only documented webhook events.")
    elif "onMessageAdded" not in filters:
        add("webhook filters", WARN, "onMessageAdded is not among the filters: the webhook hears no new messages"
            if filters else "no webhook filters are set", REMEDY_EDIT + "add onMessageAdded to the webhook filters.")
    else:
        add("webhook filters", PASS, ", ".join(filters))
    return rows


def worst(statuses):
    """fail > warn > pass: the status of a group of rows."""
    statuses = set(statuses)
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


def verify_inventory(client, df):
    """{address: (pass|fail|warn, notes)} for the Messenger rows of an inventory DataFrame (reports --verify);
    notes: `check: detail` of each row that did not pass, joined by " · " (None when all passed).

    A missing first message is a warning here: an inventory describes configuration, not traffic.
    """
    if df is None or len(df) == 0 or "address" not in df:
        return {}
    messenger = [a for a in df["address"].dropna().astype(str) if a.startswith(addresses.PREFIX)]
    if not messenger:
        return {}
    by_address = {}
    for row in verify(client, [a[len(addresses.PREFIX):] for a in messenger], require_first_message=False,
                      progress=False):
        by_address.setdefault(row.subject, []).append(row)
    return {address: (worst(r.status for r in rows), " · ".join(f"{r.check}: {r.detail}" for r in rows
                                                                 if r.status != PASS) or None)
            for address, rows in by_address.items()}
