"""Silent pages: a Messenger page with steady inbound traffic that has gone quiet for far longer than usual.

Nothing in Twilio says so when a Facebook Page stops delivering (a Page disconnected in the Console, or its Facebook
authorization invalidated by a Page admin's password or 2FA change): messages simply stop. The evidence store
(evidence_store.py) keeps when each inbound conversation of a page was created, and the rule below reads them.

The rule, for one page, over its stored conversations of the last HISTORY_DAYS days:
- **steady**: conversations on at least MIN_ACTIVE_DAYS different days (a new or rarely used page never warns);
- **usual gap**: the median time between consecutive conversations; **silence**: the time since the newest one;
- **far longer than usual**: silence > max(GAP_FACTOR × the usual gap, MIN_SILENCE) *and* longer than every gap
  already in its history (an irregular page, which has been this quiet before and came back, does not warn).
So a page with a conversation every hour warns after 48 hours of silence, a daily one after 4 days, a weekly one
after 4 weeks.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from statistics import median

MIN_ACTIVE_DAYS = 7
GAP_FACTOR = 4
MIN_SILENCE = timedelta(hours=48)
HISTORY_DAYS = 90
CHECK = "page went silent"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
REMEDY = ("In the Twilio Console (Explore Products > Channels > Facebook Messenger), check that this Facebook Page "
          "is still connected; if it is not, or a Page admin changed their Facebook password or two-factor "
          "authentication (which invalidates the Page's token), click 'Connect with Facebook' again and re-select "
          "the Page. Then send a test message to the Page from Messenger and run the verification again.")


def span(delta):
    """`40 minutes` under an hour, `5 hours` under two days, else `3.5 days`."""
    minutes = round(delta.total_seconds() / 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"{hours} hour{'s' if hours != 1 else ''}" if minutes < 48 * 60 else f"{minutes / 1440:.1f} days"


@dataclass(frozen=True)
class Silence:
    page: str
    active_days: int
    usual_gap: timedelta
    longest_gap: timedelta
    silent_for: timedelta
    last_conversation: str  # ISO 8601 `…Z`

    @property
    def detail(self):
        return (f"usually a new conversation every {span(self.usual_gap)} (on {self.active_days} days in the last "
                f"{HISTORY_DAYS}, longest gap {span(self.longest_gap)}); none for {span(self.silent_for)} now (last "
                f"{self.last_conversation[:16].replace('T', ' ')} UTC). Usual causes: the Page was disconnected in "
                "the Console, or its Facebook token was invalidated by a password or 2FA change")


def judge(page, stamps, now=None):
    """Silence for a page that went quiet by the rule above, else None. `stamps`: its conversations' date_created
    (`…Z`), in any order."""
    now = now or datetime.now(timezone.utc)
    times = sorted(datetime.strptime(s, STAMP).replace(tzinfo=timezone.utc) for s in stamps)
    if len({t.date() for t in times}) < MIN_ACTIVE_DAYS:
        return None
    gaps = [b - a for a, b in zip(times, times[1:])]
    usual, longest, silent_for = median(gaps), max(gaps), now - times[-1]
    if silent_for > max(GAP_FACTOR * usual, MIN_SILENCE) and silent_for > longest:
        return Silence(page, len({t.date() for t in times}), usual, longest, silent_for, times[-1].strftime(STAMP))
    return None


def silent_pages(store, pages, now=None):
    """{page: Silence} for the pages of `pages` that went quiet, from the store's history."""
    now = now or datetime.now(timezone.utc)
    since = (now - timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%dT00:00:00Z")
    found = {page: judge(page, stamps, now) for page, stamps in store.history(pages, since).items()}
    return {page: silence for page, silence in found.items() if silence is not None}
