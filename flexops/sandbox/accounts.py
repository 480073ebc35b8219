"""API 2010: the account resource, which is what a credentials check fetches."""
from datetime import datetime
from email.utils import format_datetime

from werkzeug.routing import Rule

from .context import json_response
from .errors import TwilioError

SUBRESOURCES = {"addresses": "Addresses", "applications": "Applications", "balance": "Balance", "calls": "Calls",
                "incoming_phone_numbers": "IncomingPhoneNumbers", "keys": "Keys", "messages": "Messages",
                "queues": "Queues", "usage": "Usage"}


def rfc2822(stamp):
    """API 2010 writes dates as RFC 2822 (`Thu, 30 Jul 2015 20:00:00 +0000`), unlike the v1/v2 products."""
    return format_datetime(datetime.fromisoformat(stamp.replace("Z", "+00:00"))) if stamp else None


def render(account):
    sid = account["sid"]
    base = f"/2010-04-01/Accounts/{sid}"
    created = rfc2822(account["date_created"])
    return {"auth_token": account["auth_token"], "date_created": created, "date_updated": created,
            "friendly_name": account["friendly_name"], "owner_account_sid": sid, "sid": sid,
            "status": account["status"], "type": "Full", "uri": f"{base}.json",
            "subresource_uris": {key: f"{base}/{name}.json" for key, name in SUBRESOURCES.items()}}


def fetch_account(ctx, sid):
    if sid != ctx.account_sid:
        raise TwilioError(401, 20003, "Authenticate")
    return json_response(render(ctx.store.account(sid)))


RULES = [Rule("/2010-04-01/Accounts/<sid>.json", methods=["GET"], endpoint=fetch_account)]
