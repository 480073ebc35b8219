"""Silent pages: a Messenger page with steady inbound traffic that has gone quiet for far longer than usual.

Nothing in Twilio says so when a Facebook Page stops delivering (a Page disconnected in the Console, or its Facebook
authorization invalidated by a Page admin's password or 2FA change): messages simply stop. The evidence store
(evidence_store.py) keeps the inbound conversations per page per day, and the rule below reads them.

The rule, for one page, over the last HISTORY_DAYS days of the store:
- **active days**: the days with at least one new conversation; **gaps**: the days between consecutive active days.
- **steady**: at least MIN_ACTIVE_DAYS active days (a new or rarely used page never warns).
- **silence**: the time since the page's newest conversation.
- **far longer than usual**: silence > max(GAP_FACTOR × the median gap, MIN_SILENCE) *and* longer than every gap
  already in its history (an irregular page, which has been this quiet before and came back, does not warn).
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from statistics import median

MIN_ACTIVE_DAYS = 7
GAP_FACTOR = 4
MIN_SILENCE = timedelta(hours=48)
HISTORY_DAYS = 90
CHECK = "page went silent"
REMEDY = ("In the Twilio Console (Explore Products > Channels > Facebook Messenger), check that this Facebook Page "
          "is still connected; if it is not, or a Page admin changed their Facebook password or two-factor "
          "authentication (which invalidates the Page's token), click 'Connect with Facebook' again and re-select "
          "the Page. Then send a test message to the Page from Messenger and run the verification again.")


@dataclass(frozen=True)
class Silence:
    page: str
    active_days: int
    usual_gap_days: float
    longest_gap_days: int
    silent_for: timedelta
    last_conversation: str  # ISO 8601 `…Z`

    @property
    def detail(self):
        hours = self.silent_for.total_seconds() / 3600
        quiet = f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} hours"
        usual = "every day" if self.usual_gap_days == 1 else f"every {self.usual_gap_days:g} days"
        return (f"usually a new conversation {usual} ({self.active_days} days with traffic in the last "
                f"{HISTORY_DAYS} days, longest gap {self.longest_gap_days} days); none for {quiet} now (last "
                f"{self.last_conversation[:16].replace('T', ' ')} UTC). Usual causes: the Page was disconnected in "
                "the Console, or its Facebook token was invalidated by a password or 2FA change")


def judge(page, days, last, now=None):
    """Silence for a page that went quiet by the rule above, else None. `days`: {"YYYY-MM-DD": conversations},
    `last`: the newest conversation's date_created (`…Z`)."""
    now = now or datetime.now(timezone.utc)
    active = sorted(date.fromisoformat(d) for d, n in days.items() if n > 0)
    if len(active) < MIN_ACTIVE_DAYS or not last:
        return None
    gaps = [(b - a).days for a, b in zip(active, active[1:])]
    usual = median(gaps)
    silent_for = now - datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    threshold = max(timedelta(days=GAP_FACTOR * usual), MIN_SILENCE)
    if silent_for > threshold and silent_for > timedelta(days=max(gaps)):
        return Silence(page, len(active), usual, max(gaps), silent_for, last)
    return None


def silent_pages(store, pages, now=None):
    """{page: Silence} for the pages of `pages` that went quiet, from the store's history."""
    now = now or datetime.now(timezone.utc)
    since = (now - timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%dT00:00:00Z")
    history, last = store.days(pages, since), store.last_seen(pages)
    found = {page: judge(page, history.get(page, {}), last.get(page), now) for page in pages}
    return {page: silence for page, silence in found.items() if silence is not None}
