"""The local state store of scheduled checks: one SQLite file per account (`<state dir>/<AC…>.sqlite3`).

It remembers which conversations a verify already scanned, the page (the Messenger proxy address) each belongs to
(a conversation's page never changes) and its creation date, and per conversation list (`scope`: "default" or a
Conversations service SID) the span of creation dates whose conversations have all been scanned (`coverage`:
oldest..newest). So the next run asks Twilio only about conversations it has not seen (evidence_scan.py).

Only what the checks need is kept: conversation SID, page address, date, service SID. No customer address, no
message, no credential. Every write is one short transaction (`BEGIN IMMEDIATE`); the file is in WAL mode with a
busy timeout, so concurrent runs for one account wait for each other instead of corrupting it, and a run killed
mid-scan leaves only what it had fully scanned (a coverage span is only ever widened by a claim a run proved).
"""
import fcntl
import os
import sqlite3
import threading
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .exceptions import ConfigurationError
from .settings import mask_sid, state_dir

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30
SUFFIX = ".sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
    sid TEXT PRIMARY KEY, service_sid TEXT, page TEXT, date_created TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_page ON conversations (page, date_created);
CREATE INDEX IF NOT EXISTS conversations_by_date ON conversations (date_created);
CREATE TABLE IF NOT EXISTS coverage (
    scope TEXT PRIMARY KEY, service_sid TEXT, oldest TEXT NOT NULL, newest TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Coverage:
    """Every conversation of `scope` created after `oldest` and up to `newest` (ISO 8601 `…Z` stamps) is in the
    store; ones created exactly at `oldest` may not all be (a run can stop inside one second)."""

    scope: str
    service_sid: str
    oldest: str
    newest: str


def store_path(account_sid, folder=None):
    """The state file of an account under `folder` (default: settings.state_dir()); None when the store is off."""
    chosen = state_dir(folder)
    return None if chosen is None else chosen / f"{account_sid}{SUFFIX}"


def open_store(account_sid, folder=None):
    """The account's EvidenceStore, or None when the store is off (`folder` "" / "off", FLEXOPS_STATE_DIR=off)."""
    path = store_path(account_sid, folder)
    return None if path is None else EvidenceStore(path, account_sid)


class EvidenceStore:
    def __init__(self, path, account_sid):
        self.path = Path(path)
        self.account_sid = account_sid
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # pages and conversation SIDs are the account's business: owner only
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                # Runs that open the store at once take turns here: switching to WAL needs the file to itself, and
                # SQLite's busy timeout does not cover that switch.
                fcntl.flock(fd, fcntl.LOCK_EX)
                with self._connection() as db:
                    db.execute("PRAGMA journal_mode = WAL")  # concurrent runs: readers never wait for the writer
                    db.executescript(SCHEMA)
                    db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('account_sid', ?)",
                               (str(SCHEMA_VERSION), account_sid))
                    owner = db.execute("SELECT value FROM meta WHERE key = 'account_sid'").fetchone()[0]
            finally:
                os.close(fd)  # and with it the lock
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot use the state store {self.path} ({exc}): point FLEXOPS_STATE_DIR at "
                                     "a folder you can write, or switch the store off (FLEXOPS_STATE_DIR=off)") \
                from None
        if owner != account_sid:
            raise ConfigurationError(f"the state store {self.path} belongs to account {mask_sid(owner)}, not "
                                     f"{mask_sid(account_sid)}: move it away or use another FLEXOPS_STATE_DIR")

    def __repr__(self):
        return f"EvidenceStore({self.path})"

    @contextmanager
    def session(self):
        """Within it, this thread's reads and writes share one connection: a verify makes a dozen in a row, and
        opening (and closing) a connection costs more than any of them."""
        with closing(self._connect()) as db:
            self._local.db = db
            try:
                yield self
            finally:
                self._local.db = None

    def _connect(self):
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    @contextmanager
    def _connection(self):
        """The session's connection, else one for this use only (the file may be renamed or removed between runs;
        WAL mode, set once when the store is opened, stays with the file)."""
        shared = getattr(self._local, "db", None)
        if shared is not None:
            yield shared
            return
        with closing(self._connect()) as db:
            yield db

    @contextmanager
    def _write(self):
        """One transaction that takes the write lock up front: all of it lands, or none of it."""
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- reading ---------------------------------------------------------------------------------------------

    def known(self, sids):
        """The SIDs among `sids` already scanned."""
        return set(self.pages_of(sids))

    def _select_in(self, sql, values, *after):
        """The rows of `sql` whose `IN ({marks})` takes `values`, 500 at a time (SQLite bounds a statement's
        parameters); `after`: the parameters that follow the list."""
        values = list(values)
        with self._connection() as db:
            for start in range(0, len(values), 500):
                chunk = values[start:start + 500]
                yield from db.execute(sql.format(marks=",".join("?" * len(chunk))), [*chunk, *after])

    def pages_of(self, sids):
        """{SID: its page (None: no Messenger page)} for the SIDs among `sids` already scanned."""
        return dict(self._select_in("SELECT sid, page FROM conversations WHERE sid IN ({marks})", sids))

    def count(self):
        """How many conversations the store knows."""
        with self._connection() as db:
            return db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]

    def coverage(self, scope):
        with self._connection() as db:
            row = db.execute("SELECT scope, service_sid, oldest, newest FROM coverage WHERE scope = ?",
                             (scope,)).fetchone()
        return Coverage(*row) if row else None

    def evidence(self, pages, since):
        """{page: (conversation SID, date_created, service SID)}: the newest stored conversation of each of `pages`
        created at or after `since`."""
        return {page: (sid, date, service) for page, sid, date, service in self._select_in(
            "SELECT page, sid, MAX(date_created), service_sid FROM conversations "
            "WHERE page IN ({marks}) AND date_created >= ? GROUP BY page", pages, since)}

    def history(self, pages, since):
        """{page: [date_created, oldest first]} of the stored conversations of `pages` from `since` on: each
        page's inbound traffic (silence.py)."""
        out = {}
        for page, date in self._select_in("SELECT page, date_created FROM conversations WHERE page IN ({marks}) "
                                          "AND date_created >= ? ORDER BY page, date_created", pages, since):
            out.setdefault(page, []).append(date)
        return out

    # --- writing ---------------------------------------------------------------------------------------------

    def record(self, scope, service_sid, rows, claim=None):
        """In one transaction: the scanned conversations `rows` [(sid, service SID, page or None, date_created)]
        and, when given, `claim` = (oldest, newest), a span of `scope` whose conversations are now all scanned.

        A claim only ever widens the stored span, and only when it touches it (or there is none yet): coverage
        never says more than some run proved. A list whose service changed (the default service was switched)
        starts a new span."""
        with self._write() as db:
            db.executemany("INSERT OR IGNORE INTO conversations VALUES (?, ?, ?, ?)", rows)
            if claim is None:
                return
            low, high = claim
            row = db.execute("SELECT service_sid, oldest, newest FROM coverage WHERE scope = ?", (scope,)).fetchone()
            if row is None or row[0] != service_sid:
                db.execute("INSERT OR REPLACE INTO coverage VALUES (?, ?, ?, ?)", (scope, service_sid, low, high))
            elif low <= row[2] and high >= row[1]:
                db.execute("UPDATE coverage SET oldest = ?, newest = ? WHERE scope = ?",
                           (min(low, row[1]), max(high, row[2]), scope))

    def forget(self, scope):
        """Drop a scope's coverage (its conversations stay known): the next run scans its list from the top."""
        with self._write() as db:
            db.execute("DELETE FROM coverage WHERE scope = ?", (scope,))

    def prune(self, before):
        """Forget conversations created before `before`: the store keeps a bounded history."""
        with self._write() as db:
            db.execute("DELETE FROM conversations WHERE date_created < ?", (before,))
            db.execute("DELETE FROM coverage WHERE newest < ?", (before,))
            db.execute("UPDATE coverage SET oldest = ? WHERE oldest < ?", (before, before))
