"""What GETs in this process last returned, so an audit line can carry the state a change replaced.

GET responses are remembered in memory (redacted by the caller, never written anywhere), by SID, by address and by
path, so a POST/DELETE line can carry the last state this process saw of that resource as `before` (audit.py).
"""
import collections
import threading
from urllib.parse import unquote, urlsplit


class StateCache:
    """What GETs in this process last returned, by (account, product, kind, key). Memory only, redacted."""

    ABSENT = object()

    def __init__(self, limit=20000):
        self.limit = limit
        self._items = collections.OrderedDict()  # key -> (sequence, state)
        self._sequence = 0
        self._lock = threading.Lock()

    def _put(self, key, state):
        with self._lock:
            self._sequence += 1
            self._items[key] = (self._sequence, state)
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def remember(self, account, product, state, path=None):
        """Remember one resource (a dict with sid/address) or every resource of a list envelope."""
        if path:
            self._put((account, product, "path", path), state)
        if isinstance(state, dict):
            for kind in ("sid", "address"):
                if state.get(kind):
                    self._put((account, product, kind, str(state[kind])), state)
            if isinstance(state.get("url"), str):
                self._put((account, product, "path", unquote(urlsplit(state["url"]).path)), state)

    def remember_page(self, account, product, body):
        for value in body.values():
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and item.get("sid"):
                        self.remember(account, product, item)

    def forget(self, account, product, keys):
        for kind, key in keys:
            if key:
                self._put((account, product, kind, str(key)), self.ABSENT)

    def lookup(self, account, product, keys):
        """(seen, state) by the most recently seen of `keys` (one resource has several: SID, address, path);
        state None when the resource was last seen absent."""
        with self._lock:
            found = [self._items[k] for k in ((account, product, kind, str(key)) for kind, key in keys if key)
                     if k in self._items]
        if not found:
            return False, None
        state = max(found, key=lambda item: item[0])[1]
        return True, None if state is self.ABSENT else state

    def clear(self):
        with self._lock:
            self._items.clear()


seen = StateCache()
