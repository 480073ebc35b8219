"""API 2010 accounts and subaccounts, with Twilio's rules: a main account's credentials reach it and its
subaccounts; a subaccount's credentials reach only that subaccount; closing is final. No HTTP."""
import secrets
from datetime import datetime
from email.utils import format_datetime

from ..core import new_sid, now
from ..errors import TwilioError, invalid

STATUSES = ("active", "suspended", "closed")
SUBRESOURCES = {"addresses": "Addresses", "applications": "Applications", "balance": "Balance", "calls": "Calls",
                "incoming_phone_numbers": "IncomingPhoneNumbers", "keys": "Keys", "messages": "Messages",
                "queues": "Queues", "usage": "Usage"}


def rfc2822(stamp):
    """API 2010 writes dates as RFC 2822 (`Thu, 30 Jul 2015 20:00:00 +0000`), unlike the v1/v2 products."""
    return format_datetime(datetime.fromisoformat(stamp.replace("Z", "+00:00"))) if stamp else None


def render(account):
    sid = account["sid"]
    base = f"/2010-04-01/Accounts/{sid}"
    return {"auth_token": account["auth_token"], "date_created": rfc2822(account["date_created"]),
            "date_updated": rfc2822(account.get("date_updated") or account["date_created"]),
            "friendly_name": account["friendly_name"], "owner_account_sid": account.get("owner_sid") or sid,
            "sid": sid, "status": account["status"], "type": "Full", "uri": f"{base}.json",
            "subresource_uris": {key: f"{base}/{name}.json" for key, name in SUBRESOURCES.items()}}


def check_status(status):
    if status is not None and status not in STATUSES:
        raise invalid(f"Invalid Status {status!r}: must be one of {', '.join(STATUSES)}")
    return status


def unauthorized():
    return TwilioError(401, 20003, "Authenticate")


class AccountsBackend:
    """Accounts as seen with the credentials of `account_sid`."""

    def __init__(self, store, account_sid):
        self.store = store
        self.account_sid = account_sid

    def create_account(self, friendly_name, status="active", owner_sid=None, account_sid=None, auth_token=None,
                       api_key=True):
        """A new account (a subaccount when `owner_sid`); returns its credentials (with an API key)."""
        if check_status(status) is None:
            raise invalid("Invalid Status: must be one of " + ", ".join(STATUSES))
        sid, token = account_sid or new_sid("AC"), auth_token or secrets.token_hex(16)
        key_sid, key_secret = new_sid("SK"), secrets.token_urlsafe(24)
        with self.store.tx() as db:
            self.store.add_account(db, sid, token, status, friendly_name, now(), owner_sid=owner_sid)
            if api_key:
                self.store.add_api_key(db, key_sid, sid, key_secret, "flexops")
        creds = {"account_sid": sid, "auth_token": token}
        if api_key:
            creds.update(api_key=key_sid, api_secret=key_secret)
        return creds

    def _reachable(self, sid):
        """The account row if these credentials may see it (itself, or a subaccount it owns)."""
        account = self.store.account(sid)
        if account is None or (sid != self.account_sid and account.get("owner_sid") != self.account_sid):
            raise unauthorized()  # Twilio answers 401 for an account the credentials do not reach
        return account

    def account(self, sid):
        return render(self._reachable(sid))

    def create_subaccount(self, friendly_name=None):
        caller = self.store.account(self.account_sid)
        if caller.get("owner_sid"):
            # Twilio: subaccounts cannot have subaccounts of their own.
            raise TwilioError(403, 20403, "A subaccount cannot create subaccounts")
        name = friendly_name or f"SubAccount Created at {datetime.now():%Y-%m-%d %I:%M %p}"
        creds = self.create_account(name, owner_sid=self.account_sid, api_key=False)
        return render(self.store.account(creds["account_sid"]))

    def update_account(self, sid, friendly_name=None, status=None):
        check_status(status)
        account = self._reachable(sid)
        if status is not None and status != account["status"]:
            if not account.get("owner_sid") or sid == self.account_sid:
                raise TwilioError(403, 20403, "Only the main account can change a subaccount's status")
            if account["status"] == "closed":
                raise invalid(f"Account {sid} is closed: a closed account cannot be reopened")
        fields = {"date_updated": now()}
        if friendly_name is not None:
            fields["friendly_name"] = friendly_name
        if status is not None:
            fields["status"] = status
        with self.store.tx() as db:
            self.store.update_account(db, sid, **fields)
        return render(self.store.account(sid))

    def account_rows(self, friendly_name=None, status=None):
        """Page fetcher: the credentials' own account and, for a main account, its subaccounts."""
        check_status(status)

        def fetch(after, limit):
            rows = self.store.account_page(self.account_sid, after, limit, friendly_name, status)
            return [(rowid, render(account)) for rowid, account in rows]
        return fetch
