"""Flex v1 (flex-api.twilio.com): the account's Flex configuration."""
from werkzeug.routing import Rule

from .context import json_response
from .errors import not_found


def fetch_configuration(ctx):
    config = ctx.store.get(ctx.account_sid, "flex_configuration", sid="configuration")
    if config is None:
        raise not_found(ctx.path)
    return json_response(config)


RULES = [Rule("/v1/Configuration", methods=["GET"], endpoint=fetch_configuration)]
