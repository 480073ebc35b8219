"""Fleets: one check over many Twilio accounts — an ISV's or BPO's subaccount per customer or brand, whose Alarms
and Debugger are per account and never roll up.

`accounts` names the fleet: "" (the credentials' own account, as without a fleet), "all" (every subaccount of the
main account, plus the main account itself when it has Flex) or AC… SIDs. Resolution follows Twilio's rules: the
main account's credentials list the subaccounts (API 2010; the listing carries each one's auth token), and each
subaccount is then reached with its own credentials — a `Target` whose `Secret` lives in memory only, never in a
parameter, artifact, log or message. Accounts are checked concurrently, and every request of every account's client
passes one shared semaphore (the HTTP client's `gate`), so a fleet keeps one global bound on requests in flight.
An account that cannot be checked (suspended, credentials refused, Flex not set up) is one failed row with its
remedy; the others go on.
"""
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

from . import retry
from .checks import FAIL, CheckResult, worst
from .client import connect
from .coerce import as_list
from .exceptions import ConnectionFailed, FlexopsError, TwilioCallFailed, ValidationError
from .settings import Secret, Target, mask_sid

ALL = "all"
SID = re.compile(r"AC[0-9a-fA-F]{32}")
MAX_IN_FLIGHT = 64  # requests in flight over the whole fleet: well under Twilio's default 100 per account
LIST_PAGE_SIZE = 1000  # API 2010's maximum
DEADLINE = 30
ACCOUNT_CHECK = "account"
MAIN_KEY_HINT = ("listing subaccounts needs the main account's Auth Token or a Main API key (Console > Account > "
                 "API keys & tokens: a Standard key cannot list subaccounts)")


def parse_accounts(value):
    """"" | "all" | [AC…, ...] from text ("all", "AC1,AC2") or a list; ValidationError('accounts') before any call."""
    if isinstance(value, str) and value.strip().lower() == ALL:
        return ALL
    sids = as_list("accounts", value)
    if [s for s in sids if s.lower() == ALL]:
        raise ValidationError("accounts", "'all' cannot be combined with account SIDs", value)
    bad = [s for s in sids if not SID.fullmatch(s)]
    if bad:
        raise ValidationError("accounts", "must be blank, 'all', or comma-separated account SIDs (AC + 32 hex "
                              f"characters); not an account SID: {', '.join(bad[:3])}")
    return "" if not sids else list(dict.fromkeys(sids))


@dataclass(repr=False)
class Account:
    """One account of a fleet: its client when it can be checked, else the problem and its remedy."""

    sid: str
    name: str = ""
    client: object = None
    problem: str = ""
    remedy: str = ""
    flex_known: bool = False  # Flex already found set up (the main account, while resolving "all")

    @property
    def label(self):
        return f"{self.name} ({mask_sid(self.sid)})" if self.name else mask_sid(self.sid)

    def __repr__(self):
        return f"Account({self.label}{', ' + self.problem if self.problem else ''})"


@dataclass(repr=False)
class FleetResult(CheckResult):
    """A check row that says which account it is about."""

    account_sid: str = ""
    account_name: str = ""

    def to_dict(self):
        return {"account_sid": self.account_sid, "account_name": self.account_name, **super().to_dict()}


@dataclass
class Fleet:
    accounts: list
    gate: object = field(default_factory=nullcontext)
    main_sid: str = ""
    listed: int = 0  # subaccounts in the listing
    max_in_flight: int = MAX_IN_FLIGHT

    def clients(self):
        return [a.client for a in self.accounts if a.client is not None]


def _call(client, fn, what):
    return retry.call(fn, what=what, client=client, deadline=DEADLINE)


def _listing(client):
    """[(sid, name, status, auth token)] of the accounts these credentials reach: the instances (which hold the
    tokens) are dropped right here."""
    try:
        found = _call(client, lambda: client.api.v2010.accounts.list(page_size=LIST_PAGE_SIZE),
                      "list the subaccounts")
    except TwilioCallFailed as exc:
        if exc.status in (401, 403):
            raise ConnectionFailed(f"Twilio refused to list the accounts of {mask_sid(client.account_sid)} "
                                   f"(HTTP {exc.status}): {MAIN_KEY_HINT}") from None
        raise
    return [(a.sid, a.friendly_name or "", a.status, a.auth_token) for a in found]


def flex_problem(client):
    """None when Flex is set up on the client's account, else (problem, remedy)."""
    try:
        flex = _call(client, retry.none_if_missing(client.flex_api.v1.configuration().fetch),
                     "fetch the Flex configuration")
    except TwilioCallFailed as exc:
        return problem_of(exc)
    if flex is None or flex.status != "ok":
        state = "not set up" if flex is None else f"in state {flex.status!r}"
        return (f"Flex is {state} on this account",
                "Open Flex in this account's Console (Flex > Overview) and finish its setup, or leave the account "
                "out of `accounts`.")
    return None


def problem_of(exc):
    """(problem, remedy) for an error that stopped an account's check; never a credential."""
    status = getattr(exc, "status", None)
    if status == 401 or getattr(exc, "code", None) == 20003:
        return (f"Twilio refused this account's credentials: {exc}",
                "Check the subaccount in Console > Account > Subaccounts: a suspended or closed subaccount must be "
                "reactivated (or left out of `accounts`); its auth token may have been rotated since the listing.")
    if status == 403:
        return f"Twilio forbade the call: {exc}", "Check the subaccount's status and permissions in the Console."
    return f"could not be checked: {exc}", "Check the network path to Twilio and the Twilio status page, then retry."


def _subaccount_client(main, sid, token):
    owner = main.flexops_target
    target = Target(owner.kind, sid, sid, Secret(token), region=owner.region, edge=owner.edge,
                    sandbox_url=owner.sandbox_url, source=f"the subaccount listing of {mask_sid(main.account_sid)}")
    return connect(target)


STATUS_REMEDY = {
    "suspended": "Reactivate the subaccount in Console > Account > Subaccounts (its Messenger traffic is stopped "
                 "while it is suspended), or leave it out of `accounts`.",
    "closed": "A closed subaccount cannot be reopened: take it out of `accounts`.",
}


def _account_from(main, sid, name, status, token):
    if sid == main.account_sid:
        return Account(sid, name, main)
    if status != "active":
        return Account(sid, name, problem=f"the subaccount is {status}", remedy=STATUS_REMEDY.get(status, ""))
    return Account(sid, name, _subaccount_client(main, sid, token))


def resolve(client, accounts="", max_in_flight=MAX_IN_FLIGHT):
    """The Fleet named by `accounts` (see parse_accounts) for the credentials of `client`.

    "all": every active subaccount, and each suspended one as a failed account (a customer whose Messenger is
    down must not vanish from the report); closed ones are left out. A listed SID that these credentials do not
    reach is a failed account too. Every client of the fleet, `client` included, shares one gate of
    `max_in_flight` requests (restore `client`'s own with `release(fleet, client)`).
    """
    chosen = parse_accounts(accounts)
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ValidationError("max_in_flight", "must be a whole number of requests, 1 or more", max_in_flight)
    gate = threading.BoundedSemaphore(max_in_flight)
    if chosen == "":
        return Fleet([Account(client.account_sid, "", client)], nullcontext(), client.account_sid, 0, max_in_flight)
    client.http_client.gate = gate
    with ThreadPoolExecutor(2) as pool:  # the main account's Flex is looked at while the listing comes
        main_flex = pool.submit(flex_problem, client) if chosen == ALL else None
        listing = _listing(client)
    found = {sid: (name, status, token) for sid, name, status, token in listing}
    names = {sid: entry[0] for sid, entry in found.items()}
    if chosen == ALL:
        picked = []
        if main_flex.result() is None:
            picked.append(Account(client.account_sid, names.get(client.account_sid, ""), client, flex_known=True))
        for sid, (name, status, token) in found.items():
            if sid != client.account_sid and status != "closed":
                picked.append(_account_from(client, sid, name, status, token))
    else:
        picked = [_account_from(client, sid, *found[sid]) if sid in found else
                  Account(sid, problem=f"not an account the credentials of {mask_sid(client.account_sid)} reach",
                          remedy="Check the SID: give the main account's credentials and SIDs of its subaccounts "
                                 "(Console > Account > Subaccounts).")
                  for sid in chosen]
    fleet = Fleet(picked, gate, client.account_sid, sum(sid != client.account_sid for sid in found), max_in_flight)
    for account in fleet.accounts:
        if account.client is not None:
            account.client.http_client.gate = gate
    return fleet


def release(fleet, client):
    """Give `client` (the credentials' own) its unbounded gate back after the fleet's work."""
    client.http_client.gate = nullcontext()


def run(fleet, work, check_flex=True):
    """[(account, result or None)]: `work(client)` for every account that can be checked, concurrently. An account
    whose Flex is not set up (checked alongside its work) or whose work raised gets `problem`/`remedy` set."""
    def one(account):
        if account.client is None:
            return account, None
        with ThreadPoolExecutor(2) as pool:
            flex = pool.submit(flex_problem, account.client) if check_flex and not account.flex_known else None
            job = pool.submit(work, account.client)
            problem = flex.result() if flex is not None else None
            try:
                result = job.result()
            except Exception as exc:  # noqa: BLE001 - a Twilio or network error stops this account only
                failure = None if isinstance(exc, FlexopsError) else retry.classify(exc)
                if failure is None and not isinstance(exc, FlexopsError):
                    raise
                error = exc if failure is None else retry.failed("check the account", failure, 1)
                problem, result = problem or problem_of(error), None
        if problem:
            account.problem, account.remedy = problem
            return account, None
        return account, result

    workers = max(1, min(len(fleet.accounts), fleet.max_in_flight))
    with ThreadPoolExecutor(workers, thread_name_prefix="flexops-fleet") as pool:
        return list(pool.map(one, fleet.accounts))


def failed_row(account):
    return FleetResult(account.label, ACCOUNT_CHECK, FAIL, account.problem, account.remedy,
                       account_sid=account.sid, account_name=account.name)


def tag(rows, account):
    """Check rows of one account, as FleetResults naming it."""
    return [FleetResult(r.subject, r.check, r.status, r.detail, r.remedy, r.unreachable, account_sid=account.sid,
                        account_name=account.name) for r in rows]


def verify(fleet, page_ids=None, require_first_message=True, state_dir=None):
    """checks.verify on every account of the fleet: the rows of each, tagged with its account; one failed
    `account` row for an account that could not be checked. Each account has its own state file in `state_dir`."""
    from . import checks

    done = run(fleet, lambda c: checks.verify(c, page_ids=page_ids or None, require_first_message=require_first_message,
                                              progress=False, state_dir=state_dir))
    rows = []
    for account, result in done:
        rows.extend(tag(result, account) if result is not None else [failed_row(account)])
    return rows


def account_summary(rows):
    """One dict per account, in the fleet's order: status, counts, addresses, what failed (results.json keeps it)."""
    groups = {}
    for row in rows:
        groups.setdefault(row.account_sid, []).append(row)
    out = []
    for sid, group in groups.items():
        status = worst(r.status for r in group)
        unusable = next((r for r in group if r.check == ACCOUNT_CHECK), None)
        failed = [r for r in group if r.status == FAIL]
        out.append({"account_sid": sid, "account_name": group[0].account_name, "status": status,
                    "addresses": 0 if unusable else len({r.subject for r in group}),
                    "passed": sum(r.status == "pass" for r in group), "failed": len(failed),
                    "warnings": sum(r.status == "warn" for r in group),
                    "failed_checks": ", ".join(dict.fromkeys(r.check for r in failed)),
                    "remedy": failed[0].remedy if failed else ""})
    return out


def account_table(rows):
    """account_summary as a DataFrame with ✓ ✗ ! for the status: the table a fleet's runbook shows first."""
    import pandas as pd

    from .checks import SYMBOLS

    summary = account_summary(rows)
    return pd.DataFrame([{**s, "status": SYMBOLS[s["status"]]} for s in summary],
                        columns=["account_name", "account_sid", "status", "addresses", "passed", "failed",
                                 "warnings", "failed_checks", "remedy"])


def check_table(rows):
    """Every row of a fleet's verification, the account first."""
    import pandas as pd

    return pd.DataFrame([[r.account_name, r.account_sid, r.subject, r.check, r.symbol, r.detail, r.remedy]
                         for r in rows], columns=["account_name", "account_sid", "subject", "check", "status",
                                                  "detail", "remedy"])


# --- inventory over a fleet ------------------------------------------------------------------------------------

def collect(fleet, types=None, verify=None):
    """(one inventory DataFrame over the fleet, one figures dict per account): inventory.collect on every account,
    each row naming its account (`account_sid`, `account_name`); an account that could not be listed has no rows
    and its problem and remedy in its figures."""
    import pandas as pd

    from . import inventory

    done = run(fleet, lambda c: inventory.collect(c, types=types, progress=False, verify=verify))
    frames, figures = [], []
    for account, df in done:
        if df is not None:
            df = df.assign(account_sid=account.sid, account_name=account.name or None)
            frames.append(df)
        figures.append(account_figures(account, df))
    combined = inventory.frame(pd.concat(frames, ignore_index=True) if frames else [])
    first = next((f.attrs.get("flexops") for f in frames if f.attrs.get("flexops")), {}) or {}
    combined.attrs["flexops"] = {**first, "account": f"fleet of {len(fleet.accounts)} accounts",
                                 "list_pages": sum((f.attrs.get("flexops") or {}).get("list_pages", 0)
                                                   for f in frames), "accounts": figures}
    return combined, figures


def account_figures(account, df):
    """What the fleet report's per-account table shows (and results.json keeps) for one account."""
    base = {"account_sid": account.sid, "account_name": account.name, "problem": account.problem,
            "remedy": account.remedy}
    if df is None:
        return {**base, "status": FAIL, "addresses": 0, "messenger": 0, "verification_fail": 0,
                "verification_warn": 0, "flows_draft": 0, "flows_missing": 0}
    flows = df["studio_flow_status"].astype(object)
    verdicts = df["verification"].astype(object)
    figures = {"addresses": len(df), "messenger": int((df["type"] == "messenger").sum()),
               "verification_fail": int((verdicts == "fail").sum()), "verification_warn": int((verdicts == "warn").sum()),
               "flows_draft": int((flows == "draft").sum()), "flows_missing": int((flows == "missing").sum())}
    bad = figures["verification_fail"] or figures["flows_draft"] or figures["flows_missing"]
    status = FAIL if bad else "warn" if figures["verification_warn"] else "pass"
    if bad and not account.problem:
        base["problem"] = ", ".join(f"{n} {what}" for n, what in (
            (figures["verification_fail"], "address(es) failed verification"),
            (figures["flows_draft"], "address(es) on a draft Studio flow"),
            (figures["flows_missing"], "address(es) whose Studio flow is missing")) if n)
        base["remedy"] = "Run the verification runbook (20) on this account for the remedy of each address."
    return {**base, "status": status, **figures}


# --- reach over a fleet ---------------------------------------------------------------------------------------

def trace_all(fleet, since="7d"):
    """trace_many.trace_all on every account: [dict] one per (account, Page) — the Page's reach and the account
    — and one per account that could not be traced, with its problem and remedy."""
    from . import trace_many

    rows = []
    for account, pages in run(fleet, lambda c: trace_many.trace_all(c, since, progress=False)):
        named = {"account_sid": account.sid, "account_name": account.name}
        if pages is None:
            rows.append({**named, "problem": account.problem, "remedy": account.remedy})
        rows.extend({**named, **page.row()} for page in pages or ())
    return rows
