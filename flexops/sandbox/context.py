"""What a handler gets: the store, the authenticated account, the request, and URL helpers."""
import json
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from .core import epoch, new_sid, now  # noqa: F401  (new_sid, now: re-exported for the handlers)
from .errors import invalid, not_found


class Ctx:
    def __init__(self, store, account_sid, request, product, path):
        self.store = store
        self.account_sid = account_sid
        self.request = request
        self.product = product
        self.path = path  # the Twilio path, e.g. /v1/Configuration/Addresses

    def url(self, path, query=""):
        """Absolute Twilio URL, as the real API writes it (the client re-routes it to the sandbox)."""
        return f"https://{self.product}.twilio.com{path}" + (f"?{query}" if query else "")

    def get(self, kind, sid=None, key=None):
        """The account's resource of `kind` by SID (or natural key), or Twilio's 404 for this path."""
        found = self.store.get(self.account_sid, kind, sid=sid, key=key)
        if found is None:
            raise not_found(self.path)
        return found

    def form(self, name, default=None):
        return self.request.form.get(name, default)

    def form_list(self, name):
        return self.request.form.getlist(name)

    def form_bool(self, name, default=None):
        value = self.request.form.get(name)
        if value is None:
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise invalid(f"Invalid value for {name}: must be true or false")

    def form_int(self, name, default=None):
        value = self.request.form.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise invalid(f"Invalid value for {name}: must be an integer") from None

    def arg(self, name, default=None):
        return self.request.args.get(name, default)

    def page_size(self, maximum, default=50):
        raw = self.request.args.get("PageSize")
        if raw is None:
            return default
        try:
            size = int(raw)
        except ValueError:
            raise invalid("Invalid PageSize: must be an integer") from None
        if not 1 <= size <= maximum:
            raise invalid(f"Invalid PageSize {size}: must be between 1 and {maximum}")
        return size

    def paging(self, maximum, default=50):
        """(page size, position after which the page starts, page number, token as sent) from the query."""
        size = self.page_size(maximum, default)
        token = self.request.args.get("PageToken", "")
        try:
            after = int(token[2:]) if token else 0
            page_no = int(self.request.args.get("Page", "0"))
        except ValueError:
            raise invalid("Invalid PageToken or Page") from None
        if page_no < 0:
            raise invalid(f"Invalid Page {page_no}: must be 0 or more")
        return size, after, page_no, token

    def list_page(self, kind, key, path, maximum=50, parent="", where=None, render=None, extra_query=(),
                  fetch=None):
        """One page of a list with Twilio's `meta` envelope; PageToken is `PT<seq of last item>`.

        `fetch(after_seq, limit) -> [(seq, resource)]` comes from the product's model; without it, rows of `kind`
        are read directly (kept for products not yet on a model)."""
        size, after, page_no, token = self.paging(maximum)
        if fetch is None:
            def fetch(after_seq, limit):
                return self.store.page(self.account_sid, kind, after_seq, limit, parent=parent, where=where)
        rows = fetch(after, size + 1)
        render = render or (lambda data: data)
        return self._page(key, path, [(seq, render(data)) for seq, data in rows[:size]], len(rows) > size,
                          size, page_no, token, extra_query)

    def filtered_page(self, rows, key, path, maximum=1000, extra_query=()):
        """One page of an already filtered list (expressions, date ranges: what the store cannot page by).
        `rows` are (seq, rendered item) in list order; the token names the last item shown."""
        size, after, page_no, token = self.paging(maximum)
        start = 0
        if token:
            seqs = [seq for seq, _ in rows]
            start = seqs.index(after) + 1 if after in seqs else sum(1 for seq in seqs if seq <= after)
        return self._page(key, path, rows[start:start + size], len(rows) > start + size, size, page_no, token,
                          extra_query)

    def _page(self, key, path, shown, more, size, page_no, token, extra_query):
        """Twilio's list envelope: the items, and `meta` with the page URLs (PageToken `PT<seq>`)."""
        extra = [(k, v) for k, v in extra_query if v is not None]

        def page_url(page, tok=None):
            query = [("PageSize", size), ("Page", page)] + ([("PageToken", tok)] if tok else []) + extra
            return self.url(path, urlencode(query, doseq=True))

        meta = {
            "page": page_no,
            "page_size": size,
            "first_page_url": page_url(0),
            "previous_page_url": page_url(page_no - 1) if page_no > 0 else None,
            "url": page_url(page_no, token or None),
            "next_page_url": page_url(page_no + 1, f"PT{shown[-1][0]}") if more else None,
            "key": key,
        }
        return json_response({key: [item for _, item in shown], "meta": meta})

    def date_arg(self, name):
        """A date-time query parameter (ISO 8601) as epoch seconds, None when absent, 400 when unreadable."""
        value = self.request.args.get(name)
        if value is None:
            return None
        try:
            return epoch(value)
        except ValueError:
            raise invalid(f"Invalid {name} {value!r}: must be an ISO 8601 date-time") from None



def json_response(body, status=200):
    return Response(json.dumps(body), status=status, content_type="application/json")


def no_content():
    return Response(b"", status=204)
