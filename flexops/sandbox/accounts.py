"""API 2010: the account resource, which is what a credentials check fetches."""
from werkzeug.routing import Rule

from .context import json_response
from .errors import TwilioError


def render(account):
    sid = account["sid"]
    uri = f"/2010-04-01/Accounts/{sid}.json"
    return {"auth_token": account["auth_token"], "date_created": account["date_created"],
            "date_updated": account["date_created"], "friendly_name": account["friendly_name"],
            "owner_account_sid": sid, "sid": sid, "status": account["status"], "type": "Full", "uri": uri,
            "subresource_uris": {"addresses": f"/2010-04-01/Accounts/{sid}/Addresses.json"}}


def fetch_account(ctx, sid):
    if sid != ctx.account_sid:
        raise TwilioError(401, 20003, "Authenticate")
    return json_response(render(ctx.store.account(sid)))


RULES = [Rule("/2010-04-01/Accounts/<sid>.json", methods=["GET"], endpoint=fetch_account)]
