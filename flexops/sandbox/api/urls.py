"""API 2010 routes (api.twilio.com)."""
from werkzeug.routing import Rule

from . import responses as r

RULES = [
    Rule(r.LIST, methods=["GET"], endpoint=r.list_accounts),
    Rule(r.LIST, methods=["POST"], endpoint=r.create_account),
    Rule("/2010-04-01/Accounts/<sid>.json", methods=["GET"], endpoint=r.fetch_account),
    Rule("/2010-04-01/Accounts/<sid>.json", methods=["POST"], endpoint=r.update_account),
]
