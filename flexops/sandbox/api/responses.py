"""API 2010 over HTTP: accounts (`.json` paths, RFC 2822 dates, API 2010's paging envelope)."""
from urllib.parse import urlencode

from ..context import json_response
from .models import AccountsBackend

LIST = "/2010-04-01/Accounts.json"


def backend(ctx):
    return AccountsBackend(ctx.store, ctx.account_sid)


def fetch_account(ctx, sid):
    return json_response(backend(ctx).account(sid))


def create_account(ctx):
    return json_response(backend(ctx).create_subaccount(ctx.form("FriendlyName")), 201)


def update_account(ctx, sid):
    return json_response(backend(ctx).update_account(sid, ctx.form("FriendlyName"), ctx.form("Status")))


def list_accounts(ctx):
    """API 2010's envelope: `accounts`, `uri`s relative to the host, `start`/`end`, PageToken `PT<rowid>`."""
    size, after, page_no, token = ctx.paging(maximum=1000)
    filters = [("FriendlyName", ctx.arg("FriendlyName")), ("Status", ctx.arg("Status"))]
    rows = backend(ctx).account_rows(ctx.arg("FriendlyName"), ctx.arg("Status"))(after, size + 1)
    more, rows = len(rows) > size, rows[:size]
    extra = [(k, v) for k, v in filters if v is not None]

    def uri(page, tok=None):
        return f"{LIST}?" + urlencode(extra + [("PageSize", size), ("Page", page)] +
                                      ([("PageToken", tok)] if tok else []))
    start = page_no * size
    return json_response({
        "accounts": [account for _, account in rows],
        "end": start + max(len(rows) - 1, 0), "first_page_uri": uri(0),
        "next_page_uri": uri(page_no + 1, f"PT{rows[-1][0]}") if more else None,
        "page": page_no, "page_size": size,
        "previous_page_uri": uri(page_no - 1) if page_no > 0 else None,
        "start": start, "uri": uri(page_no, token or None)})
