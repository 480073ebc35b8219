"""Every address configuration of an account as one pandas DataFrame, with a fixed schema, and diffable.

`collect()` pages the raw SDK list at the API maximum (50) so a progress bar can follow, fetches each Studio
flow once (concurrently), and optionally joins a verification status per address. `frame()` gives any records the
same columns and dtypes (`report_io.load()` uses it to read a previous report back), so `diff()` compares like
with like. The columns are a stable,
documented interface: docs/reports.md describes each one (a test keeps it in step with COLUMNS and DTYPES).
"""
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import requests
from twilio.base.exceptions import TwilioException

from . import retry
from .exceptions import ValidationError
from .progress import bar as progress_bar
from .settings import mask_sid
from .studio import FlowCache

ADDRESS_TYPES = ("sms", "whatsapp", "messenger", "gbm", "email", "rcs", "apple", "chat")
PAGE_SIZE = 50  # the API maximum for address configurations
FLOW_WORKERS = 8

COLUMNS = ("sid", "type", "address", "page_id", "friendly_name", "integration", "auto_creation_enabled",
           "studio_flow_sid", "studio_flow_name", "studio_flow_status", "retry_count", "webhook_url",
           "webhook_method", "webhook_filters", "conversation_service_sid", "address_country", "date_created",
           "date_updated", "verification", "verification_notes", "account", "account_sid", "account_name", "generated_at")
BOOL_COLUMNS = ("auto_creation_enabled",)
INT_COLUMNS = ("retry_count",)
DATE_COLUMNS = ("date_created", "date_updated", "generated_at")
STRING_COLUMNS = tuple(c for c in COLUMNS if c not in BOOL_COLUMNS + INT_COLUMNS + DATE_COLUMNS)
DTYPES = {**{c: "string" for c in STRING_COLUMNS}, **{c: "boolean" for c in BOOL_COLUMNS},
          **{c: "Int64" for c in INT_COLUMNS}, **{c: "datetime64[ns, UTC]" for c in DATE_COLUMNS}}
# What diff() compares: the address configuration itself, not dates, derived flow state or who generated it.
CONFIG_FIELDS = ("type", "friendly_name", "integration", "auto_creation_enabled", "studio_flow_sid", "retry_count",
                 "webhook_url", "webhook_method", "webhook_filters", "conversation_service_sid", "address_country")


# --- collect -------------------------------------------------------------------------------------------------

def parse_types(types):
    """None (all types), "sms,messenger" or ["sms", ...] -> a checked, de-duplicated list (or None)."""
    if types is None:
        return None
    chosen = [t.strip().lower() for t in (types.split(",") if isinstance(types, str) else types)]
    chosen = [t for t in chosen if t]
    bad = [t for t in chosen if t not in ADDRESS_TYPES]
    if bad or not chosen:
        raise ValidationError("types", f"must be a non-empty subset of {', '.join(ADDRESS_TYPES)}",
                              ",".join(bad) if bad else None)
    return list(dict.fromkeys(chosen))


def _row(item):
    auto = item.auto_creation or {}
    filters = auto.get("webhook_filters")
    address = item.address or ""
    return {"sid": item.sid, "type": item.type, "address": address,
            "page_id": address.partition(":")[2] if item.type == "messenger" else None,
            "friendly_name": item.friendly_name, "integration": auto.get("type") or "default",
            "auto_creation_enabled": auto.get("enabled"), "studio_flow_sid": auto.get("studio_flow_sid"),
            "retry_count": auto.get("studio_retry_count"), "webhook_url": auto.get("webhook_url"),
            "webhook_method": (auto.get("webhook_method") or "").upper() or None,
            "webhook_filters": ";".join(sorted(filters)) if isinstance(filters, list) else filters,
            "conversation_service_sid": auto.get("conversation_service_sid"),
            "address_country": item.address_country, "date_created": item.date_created,
            "date_updated": item.date_updated}


def _failed(exc, what):
    """A Twilio or network error (already retried by the HTTP client for GETs) -> TwilioCallFailed, else as is."""
    failure = retry.classify(exc)
    if failure is None:
        raise exc
    return retry.failed(what, failure, 1)


def _pages(client, kind, bar):
    """Rows of one listing (all types when `kind` is None), one request per page of 50.

    The next page is requested (in a helper thread) while this one is converted, so the listing costs the
    round trips and almost nothing more: paging is sequential by nature (each page names the next).
    """
    listing = client.conversations.v1.address_configurations
    what = f"list {kind or 'all'} address configurations"
    rows, pages = [], 0
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="flexops-page") as ahead:
            page = listing.page(page_size=PAGE_SIZE, **({"type": kind} if kind else {}))
            while page is not None:
                pages += 1
                following = ahead.submit(page.next_page)
                batch = [_row(item) for item in page]
                rows.extend(batch)
                bar.update(len(batch))
                page = following.result()
    except (TwilioException, requests.RequestException) as exc:
        raise _failed(exc, what) from None
    return rows, pages


def studio_flows(client, sids, workers=FLOW_WORKERS, flows=None):
    """{flow sid: (friendly_name, status)}; each flow fetched once (a FlowCache), concurrently; 404 -> missing."""
    flows = flows or FlowCache(client)
    unique = sorted({s for s in sids if isinstance(s, str) and s})
    if not unique:
        return {}

    def one(sid):
        flow = flows.get(sid)
        return sid, (None, "missing") if flow is None else (flow.friendly_name, flow.status)
    with ThreadPoolExecutor(max_workers=min(workers, len(unique)), thread_name_prefix="flexops-flow") as pool:
        return dict(pool.map(one, unique))


def collect(client, types=None, progress=True, verify=None):
    """The account's address configurations as a DataFrame with COLUMNS (see DTYPES).

    `types`: None (all, one unfiltered listing) or a subset of ADDRESS_TYPES (one server-filtered listing each).
    `verify`: optional callable(client, df) -> {address: "pass"|"fail"|"warn" or (that, notes)}; joined as
    `verification` and `verification_notes` (what was not a pass, e.g. "page went silent: …").
    """
    chosen = parse_types(types)
    if verify is not None and not callable(verify):
        raise ValidationError("verify", "must be a callable(client, df) -> {address: status} or None",
                              type(verify).__name__)
    generated_at = pd.Timestamp.now(tz="UTC").floor("s")
    rows, pages = [], 0
    with progress_bar(bool(progress), desc="address configurations", unit=" addr", leave=False) as bar:
        for kind in chosen or [None]:
            found, n = _pages(client, kind, bar)
            rows.extend(found)
            pages += n
    flows = studio_flows(client, (r["studio_flow_sid"] for r in rows))
    account = mask_sid(getattr(client, "account_sid", None))
    for row in rows:
        row["studio_flow_name"], row["studio_flow_status"] = flows.get(row["studio_flow_sid"], (None, None))
        row["account"], row["generated_at"] = account, generated_at
    df = frame(rows)
    if verify is not None:
        statuses = verify(client, df) or {}
        verdicts = {a: v if isinstance(v, (tuple, list)) else (v, None) for a, v in statuses.items()}
        df["verification"] = _strings(df["address"].map(lambda a: verdicts.get(a, (None, None))[0]))
        df["verification_notes"] = _strings(df["address"].map(lambda a: verdicts.get(a, (None, None))[1]))
    target = getattr(client, "flexops_target", None)
    df.attrs["flexops"] = {"generated_at": generated_at.isoformat().replace("+00:00", "Z"), "account": account,
                           "target": target.public() if target is not None else None,
                           "types": chosen or "all", "list_pages": pages, "verified": verify is not None}
    return df


# --- the schema ----------------------------------------------------------------------------------------------

def _missing(value):
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _strings(values):
    return pd.Series(values, dtype=object).map(
        lambda v: None if _missing(v) or v == "" else str(v)).astype("string")


def _booleans(values):
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

    def one(v):
        if _missing(v) or v == "":
            return None
        return bool(v) if not isinstance(v, str) else words.get(v.strip().lower())
    return pd.Series(values, dtype=object).map(one).astype("boolean")


def _integers(values):
    cleaned = pd.Series(values, dtype=object).map(lambda v: None if _missing(v) or v == "" else v)
    return pd.to_numeric(cleaned, errors="coerce").astype("Int64")


def _dates(values):
    cleaned = pd.Series(values, dtype=object).map(lambda v: None if _missing(v) or v == "" else v)
    return pd.to_datetime(cleaned, utc=True, errors="coerce", format="ISO8601").astype("datetime64[ns, UTC]")


CONVERTERS = {"string": _strings, "boolean": _booleans, "Int64": _integers, "datetime64[ns, UTC]": _dates}


def frame(records):
    """Records (dicts, or a DataFrame with some of COLUMNS) -> a DataFrame with exactly COLUMNS and DTYPES."""
    source = records if isinstance(records, pd.DataFrame) else pd.DataFrame.from_records(list(records))
    n = len(source)
    data = {c: CONVERTERS[DTYPES[c]](source[c].tolist() if c in source.columns else [None] * n) for c in COLUMNS}
    return pd.DataFrame(data, columns=list(COLUMNS))


# --- load ----------------------------------------------------------------------------------------------------

# --- diff ----------------------------------------------------------------------------------------------------

def plain_value(value):
    """A DataFrame value as a plain Python value: None for any missing marker, datetimes as datetime."""
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _by_address(df, fields):
    df = frame(df)
    keep = ["address", "sid", *fields]
    keep = list(dict.fromkeys(keep))
    return {r["address"]: r for r in ({k: plain_value(v) for k, v in zip(keep, row)}
                                      for row in df[keep].itertuples(index=False, name=None))}


@dataclass
class InventoryDiff:
    """Changes between two inventories, keyed by address (a re-created address keeps its address, not its SID)."""

    added: list = field(default_factory=list)  # [{address, sid, type, friendly_name, integration}]
    removed: list = field(default_factory=list)
    changed: list = field(default_factory=list)  # [{address, fields: {field: (old, new)}}]
    counts: dict = field(default_factory=dict)  # added / removed / changed / unchanged
    types: list = None  # the address types compared, when one side covered only some; None: all

    def __bool__(self):
        return bool(self.added or self.removed or self.changed)

    def to_dict(self):
        return {"added": self.added, "removed": self.removed,
                "changed": [{"address": c["address"], "fields": {k: list(v) for k, v in c["fields"].items()}}
                            for c in self.changed], "counts": self.counts, "types": self.types}


def covered_types(df):
    """The address types an inventory listed (from collect()/load() metadata), or None for all or unknown."""
    types = (df.attrs.get("flexops") or {}).get("types")
    return set(types) if isinstance(types, (list, tuple)) else None


def _brief(record):
    return {k: record.get(k) for k in ("address", "sid", "type", "friendly_name", "integration")}


def diff(old, new, fields=CONFIG_FIELDS):
    """What changed from `old` to `new` (inventory DataFrames), comparing `fields` only.

    When either side listed only some address types (`--types`), only the types both covered are compared:
    a messenger-only report is not "every SMS number removed".
    """
    for name, side in (("old", old), ("new", new)):
        if not isinstance(side, pd.DataFrame):
            raise ValidationError(name, "must be an inventory DataFrame (collect(), or report_io.load() of a report)",
                                  type(side).__name__)
    unknown = [f for f in fields if f not in COLUMNS]
    if unknown:
        raise ValidationError("fields", f"unknown column(s) {', '.join(unknown)}")
    scopes = [t for t in (covered_types(old), covered_types(new)) if t is not None]
    scope = sorted(set.intersection(*scopes)) if scopes else None
    if scope is not None:
        old, new = (frame(df)[lambda d: d["type"].isin(scope).fillna(False)] for df in (old, new))
    before, after = _by_address(old, fields), _by_address(new, fields)
    result = InventoryDiff(types=scope)
    result.added = [_brief(after[a]) for a in sorted(after.keys() - before.keys())]
    result.removed = [_brief(before[a]) for a in sorted(before.keys() - after.keys())]
    for address in sorted(before.keys() & after.keys()):
        changes = {f: (before[address][f], after[address][f]) for f in fields
                   if before[address][f] != after[address][f]}
        if changes:
            result.changed.append({"address": address, "fields": changes})
    common = len(before.keys() & after.keys())
    result.counts = {"added": len(result.added), "removed": len(result.removed), "changed": len(result.changed),
                     "unchanged": common - len(result.changed)}
    return result
