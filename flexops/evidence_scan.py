"""First-message evidence across runs: the conversation scan that remembers (evidence_store.py).

Twilio lists conversations newest first when StartDate is given (its OpenAPI), so a run works in two passes per
conversation list (the default service's and every other service an address names):

1. **Newest first, down to the watermark.** From the top of the list down to the newest conversation the store
   already covers; every conversation not yet in the store costs one participants request, a known one nothing.
   Reaching the watermark widens the covered span to the new top. A run that stops earlier (the cap, an error, a
   kill) has stored what it scanned but moves no watermark: the next run lists from the top again, skips what it
   knows and goes on.
2. **Older, below the covered span**, while some wanted page still has no evidence and the covered span does not
   reach back to the window's start: the list again with EndDate at the day of the span's oldest conversation,
   scanning the conversations never seen. So a busy account whose window holds more conversations than one run's
   cap (`max_conversations` participants requests) is covered over a few runs, the newest first; until then the
   pages without evidence say so (`ScanResult.complete` is False) instead of failing.

Each page of the list is stored in one transaction, with the span it proves (evidence_store.record).
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone


from . import retry
from .address_spec import PREFIX
from .evidence import CONVERSATION_PAGE_SIZE, MAX_CONVERSATIONS, WORKERS, call, conversations_of
from .exceptions import TwilioCallFailed
from .progress import bar as progress_bar

HISTORY_DAYS = 90  # the store forgets conversations older than this (silence.py looks this far back)
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def stamp(value):
    """A conversation's date_created (datetime from the SDK, or text) as the store's `YYYY-MM-DDTHH:MM:SSZ`."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime(STAMP)
    return str(value)


def window_start(since_days, now=None):
    """The first instant of the evidence window: the start of the day `since_days` ago (Twilio's StartDate)."""
    return ((now or datetime.now(timezone.utc)) - timedelta(days=since_days)).strftime("%Y-%m-%dT00:00:00Z")


@dataclass
class ScanResult:
    found: dict  # {address: {"conversation_sid", "date_created", "chat_service_sid"}}
    notes: list = field(default_factory=list)
    complete: bool = True  # every list is covered from the window's start to now: a page without evidence has none
    fresh: bool = True  # every list is covered up to now: the newest conversation of each page is known
    scanned: int = 0  # participants requests this run
    covered_from: str = ""  # the oldest point covered over all lists (the cap note names it)
    window: str = ""


def scan(client, store, wanted, services=(None,), since_days=30, max_conversations=MAX_CONVERSATIONS,
         progress=None):
    """ScanResult for the wanted addresses, from the store and the conversations it has not seen yet."""
    now = datetime.now(timezone.utc)
    window = window_start(since_days, now)
    store.prune(min(window, window_start(HISTORY_DAYS, now)))
    run = _Run(client, store, list(wanted), window, max_conversations)
    with progress_bar(progress, desc="conversations scanned", unit=" conversations", leave=False) as bar, \
            ThreadPoolExecutor(WORKERS) as pool:
        run.pool, run.bar = pool, bar
        lists = [(service or "default", service, conversations_of(client, service)) for service in services]
        fresh = {scope: run.newest_first(scope, service, listing) for scope, service, listing in lists}
        for scope, service, listing in lists:
            if fresh[scope] and run.missing and run.remaining > 0:
                run.older(scope, service, listing)
    spans = {scope: store.coverage(scope) for scope, _, _ in lists}
    complete = all(fresh.values()) and all(s is not None and s.oldest <= window for s in spans.values())
    covered_from = max((s.oldest for s in spans.values() if s is not None), default=now.strftime(STAMP))
    if not complete and run.capped:
        run.notes.append(f"this run stopped at its cap of {max_conversations} conversations; the conversations "
                         f"since {covered_from[:10]} are scanned, the window goes back to {window[:10]}: the next "
                         "run continues with older ones")
    found = {page: {"conversation_sid": sid, "date_created": datetime.strptime(date, STAMP).replace(
        tzinfo=timezone.utc), "chat_service_sid": service} for page, (sid, date, service)
        in store.evidence(run.wanted, window).items()}
    return ScanResult(found, run.notes, complete, all(fresh.values()), run.scanned, covered_from, window)


class _Run:
    """One run's shared state: its budget of participants requests and the wanted pages still without evidence."""

    def __init__(self, client, store, wanted, window, cap):
        self.client, self.store, self.wanted, self.window = client, store, wanted, window
        self.remaining, self.scanned, self.capped, self.notes = cap, 0, False, []
        self.missing = set(wanted) - set(store.evidence(wanted, window))
        self.pool = self.bar = None

    def _first_page(self, listing, what, **dates):
        return call(self.client, lambda: listing.page(start_date=self.window, page_size=CONVERSATION_PAGE_SIZE,
                                                      **dates), what)

    def newest_first(self, scope, service, listing):
        """Pass 1. True when the list is now covered up to its top (the watermark was reached, or the window's
        start), False when the run stopped before (cap, error: noted)."""
        what = "list conversations of " + ("the default service" if service is None else f"service {service}")
        span = self.store.coverage(scope)
        top = None
        try:
            page = self._first_page(listing, what)
            while page is not None:
                items = list(page)
                service_sid = service or (items[0].chat_service_sid if items else span and span.service_sid)
                if span is not None and span.service_sid != service_sid:
                    self.store.forget(scope)  # the default service was switched: its list is another one now
                    span = None
                top = top or (stamp(items[0].date_created) if items else self.window)
                reached = next((i for i, c in enumerate(items)
                                if span is not None and stamp(c.date_created) < span.newest), None)
                chunk = items if reached is None else items[:reached]
                rows, done, stopped = self._scan(chunk, listing)
                if reached is not None and stopped is None:
                    self.store.record(scope, service_sid, rows, (stamp(items[reached].date_created), top))
                    return True
                if stopped is None and not page.next_page_url:
                    self.store.record(scope, service_sid, rows, (self.window, top))
                    return True
                claim = (stamp(chunk[done - 1].date_created), top) if span is None and done else None
                self.store.record(scope, service_sid, rows, claim)
                if stopped is not None:
                    return False
                page = call(self.client, page.next_page, what)
        except TwilioCallFailed as exc:
            self.notes.append(str(exc))
            return False
        return True

    def older(self, scope, service, listing):
        """Pass 2: below the covered span, down to the window's start, while pages lack evidence and budget
        remains."""
        span = self.store.coverage(scope)
        if span is None or span.oldest <= self.window:
            return
        what = ("list older conversations of " + ("the default service" if service is None
                                                   else f"service {service}"))
        try:
            page = self._first_page(listing, what, end_date=span.oldest[:10] + "T23:59:59Z")
            while page is not None and self.missing and self.remaining > 0:
                items = list(page)
                rows, done, stopped = self._scan(items, listing)
                claim = None
                if done:
                    claim = (min(stamp(items[done - 1].date_created), span.oldest), span.oldest)
                if stopped is None and not page.next_page_url:
                    claim = (self.window, span.oldest)
                self.store.record(scope, span.service_sid, rows, claim)
                if stopped is not None or not page.next_page_url:
                    return
                page = call(self.client, page.next_page, what)
        except TwilioCallFailed as exc:
            self.notes.append(str(exc))

    def _scan(self, chunk, listing):
        """(rows to store, how many leading conversations of `chunk` are done, None | "cap" | "error"): the
        unknown ones get their participants asked (in parallel) within the budget; the first that cannot be read
        ends the chunk there, so no span is claimed past it (what was read after it is stored all the same)."""
        known = self.store.known(c.sid for c in chunk)
        todo = [i for i, c in enumerate(chunk) if c.sid not in known]
        allowed = todo[:max(self.remaining, 0)]
        done = len(chunk) if len(allowed) == len(todo) else todo[len(allowed)]
        stopped = None if done == len(chunk) else "cap"
        self.capped = self.capped or stopped == "cap"
        self.remaining -= len(allowed)
        pages = self.pool.map(lambda c: self._page_of(listing, c), [chunk[i] for i in allowed])
        rows = []
        for i, (page, error) in zip(allowed, pages):
            if error is not None:
                if i < done:
                    done, stopped = i, "error"
                    self.notes.append(f"{error} (the next run retries it)")
                continue
            c = chunk[i]
            rows.append((c.sid, c.chat_service_sid, page, stamp(c.date_created)))
            self.missing.discard(page)
        self.scanned += len(allowed)
        self.bar.update(len(allowed))
        return rows, done, stopped

    def _page_of(self, listing, conversation):
        """(the Messenger page the conversation belongs to or None, None) or (None, the error): one request. A
        conversation removed meanwhile (404) belongs to no page."""
        fetch = retry.none_if_missing(lambda: listing(conversation.sid).participants.list(
            page_size=CONVERSATION_PAGE_SIZE))
        try:
            found = call(self.client, fetch, f"list participants of conversation {conversation.sid}")
        except TwilioCallFailed as exc:
            if exc.status != 404:  # a list's 404 arrives as a failed page, not as the SDK's TwilioRestException
                return None, exc
            found = None
        proxies = sorted({(p.messaging_binding or {}).get("proxy_address") or "" for p in found or ()})
        return next((p for p in proxies if p.startswith(PREFIX)), None), None
