"""Query helpers for filtered lists: one page of an already filtered list, with the same `meta` envelope and
`PT<seq>` tokens as `Ctx.list_page` (which pages straight from the store and so cannot apply filters such as
expressions or date ranges), and date-time query parameters."""
from urllib.parse import urlencode

from ..context import json_response
from ..errors import invalid
from .records import epoch


def date_arg(ctx, name):
    """A date-time query parameter (ISO 8601) as epoch seconds, None when absent, 400 when unreadable."""
    value = ctx.request.args.get(name)
    if value is None:
        return None
    try:
        return epoch(value)
    except ValueError:
        raise invalid(f"Invalid {name} {value!r}: must be an ISO 8601 date-time") from None


def page_of(ctx, rows, key, path, maximum=1000, extra_query=()):
    """`rows` are (seq, rendered item) in list order; the token names the last item shown."""
    size = ctx.page_size(maximum)
    token = ctx.request.args.get("PageToken", "")
    try:
        after = int(token[2:]) if token else None
        page_no = int(ctx.request.args.get("Page", "0"))
    except ValueError:
        raise invalid("Invalid PageToken or Page") from None
    if page_no < 0:
        raise invalid(f"Invalid Page {page_no}: must be 0 or more")
    start = 0
    if after is not None:
        seqs = [seq for seq, _ in rows]
        start = seqs.index(after) + 1 if after in seqs else sum(1 for seq in seqs if seq <= after)
    shown = rows[start:start + size]
    more = len(rows) > start + size
    extra = [(k, v) for k, v in extra_query if v is not None]

    def page_url(page, tok=None):
        query = [("PageSize", size), ("Page", page)] + ([("PageToken", tok)] if tok else []) + extra
        return ctx.url(path, urlencode(query, doseq=True))

    meta = {"page": page_no, "page_size": size, "first_page_url": page_url(0),
            "previous_page_url": page_url(page_no - 1) if page_no > 0 else None,
            "url": page_url(page_no, token or None),
            "next_page_url": page_url(page_no + 1, f"PT{shown[-1][0]}") if more else None, "key": key}
    return json_response({key: [item for _, item in shown], "meta": meta})
