"""SQLite state of the sandbox: one file, so state survives between notebook kernels and processes.

Resources of every product live in one table keyed by (account, kind, sid); `key` is the natural unique key
(the address string for address configurations). `seq` orders lists and is what page tokens point at.

Every request needs the credentials, the latency setting and whether fault rules exist. Those change rarely, so
`control_state()` keeps them in memory and re-reads them only when `generation.n` moved: triggers bump it on any
write to accounts, api_keys, settings or faults, whoever writes (this process, another one, a test's own SQL).
"""
import json
import os
import re
import sqlite3
import threading
import weakref
from contextlib import contextmanager
from typing import NamedTuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (sid TEXT PRIMARY KEY, auth_token TEXT NOT NULL, status TEXT NOT NULL,
    friendly_name TEXT, date_created TEXT, owner_sid TEXT, date_updated TEXT);
CREATE TABLE IF NOT EXISTS api_keys (sid TEXT PRIMARY KEY, account_sid TEXT NOT NULL, secret TEXT NOT NULL,
    friendly_name TEXT);
CREATE TABLE IF NOT EXISTS resources (seq INTEGER PRIMARY KEY AUTOINCREMENT, account_sid TEXT NOT NULL,
    kind TEXT NOT NULL, sid TEXT NOT NULL, key TEXT NOT NULL, parent TEXT NOT NULL DEFAULT '', data TEXT NOT NULL,
    UNIQUE (kind, sid), UNIQUE (account_sid, kind, key));
CREATE INDEX IF NOT EXISTS resources_list ON resources (account_sid, kind, parent, seq);
CREATE INDEX IF NOT EXISTS taskrouter_task_deadlines ON resources (account_sid, parent,
    json_extract(data, '$.assignment_status'), json_extract(data, '$._created_at') + json_extract(data, '$.timeout'))
    WHERE kind = 'taskrouter_task';
CREATE TABLE IF NOT EXISTS pages (account_sid TEXT NOT NULL, page_id TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (account_sid, page_id));
CREATE TABLE IF NOT EXISTS faults (id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL,
    remaining INTEGER, seen INTEGER NOT NULL DEFAULT 0, fired INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO generation (id, n) VALUES (1, 0);
""" + "".join(
    f"CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_bumps AFTER {event} ON {table} "
    f"BEGIN UPDATE generation SET n = n + 1; END;\n"
    for table, events in {"accounts": ("INSERT", "UPDATE", "DELETE"), "api_keys": ("INSERT", "UPDATE", "DELETE"),
                          "settings": ("INSERT", "UPDATE", "DELETE"), "faults": ("INSERT", "DELETE")}.items()
    for event in events)  # fault counters (UPDATE) change on every faulty request: no need to reload for those


OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
FIELD = re.compile(r"[a-z_]+(\.[a-z_]+)*")


class ControlState(NamedTuple):
    """What every Twilio request needs, as of `generation`."""
    generation: int
    latency_ms: float
    has_faults: bool
    logins: dict  # username (account SID or API key SID) -> (password, account SID)


class _Lease:
    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn):
        self.conn = conn


class Store:
    """Thread-safe access to the sandbox database (one connection per thread, WAL, busy timeout)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._local = threading.local()
        self._idle = []  # connections of threads that ended, ready for new threads
        conn = self._conn()
        conn.executescript(SCHEMA)
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(accounts)")}
        for column in ("owner_sid", "date_updated"):  # databases written before subaccounts existed
            if column not in columns:
                conn.execute(f"ALTER TABLE accounts ADD COLUMN {column} TEXT")
        self._state = None

    def _conn(self):
        """This thread's connection. The server runs a thread per client connection, so a connection goes back to
        `_idle` when its thread ends (the thread-local `_Lease` is then collected) and the next thread reuses it."""
        lease = getattr(self._local, "lease", None)
        if lease is None:
            try:
                conn = self._idle.pop()
            except IndexError:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            lease = self._local.lease = _Lease(conn)
            weakref.finalize(lease, self._idle.append, conn)
        return lease.conn

    @contextmanager
    def tx(self):
        """A write transaction, taken up front so concurrent writers queue instead of deadlocking."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(self, sql, args=()):
        return self._conn().execute(sql, args).fetchall()

    # --- accounts and keys -------------------------------------------------------------------------------

    def account(self, sid):
        rows = self.read("SELECT * FROM accounts WHERE sid = ?", (sid,))
        return dict(rows[0]) if rows else None

    def accounts(self):
        return [dict(r) for r in self.read("SELECT * FROM accounts ORDER BY date_created, sid")]

    def api_keys(self, account_sid):
        return [dict(r) for r in self.read("SELECT * FROM api_keys WHERE account_sid = ?", (account_sid,))]

    def add_account(self, db, sid, auth_token, status, friendly_name, stamp, owner_sid=None):
        db.execute("INSERT INTO accounts (sid, auth_token, status, friendly_name, date_created, date_updated, "
                   "owner_sid) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (sid, auth_token, status, friendly_name, stamp, stamp, owner_sid))

    def add_api_key(self, db, sid, account_sid, secret, friendly_name):
        db.execute("INSERT INTO api_keys (sid, account_sid, secret, friendly_name) VALUES (?, ?, ?, ?)",
                   (sid, account_sid, secret, friendly_name))

    def update_account(self, db, sid, **fields):
        """Set columns of one account (names are the code's, never the caller's); False when it does not exist."""
        assignments = ", ".join(f"{name} = ?" for name in fields)
        return db.execute(f"UPDATE accounts SET {assignments} WHERE sid = ?", (*fields.values(), sid)).rowcount > 0

    def account_page(self, sids_of, after_rowid=0, limit=50, friendly_name=None, status=None):
        """Accounts that are `sids_of` or owned by it, in creation order, after a rowid: [(rowid, account)]."""
        sql = "SELECT rowid, * FROM accounts WHERE (sid = ? OR owner_sid = ?) AND rowid > ?"
        args = [sids_of, sids_of, after_rowid]
        if friendly_name is not None:
            sql += " AND friendly_name = ?"
            args.append(friendly_name)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        rows = self.read(sql + " ORDER BY rowid LIMIT ?", (*args, limit))
        return [(r["rowid"], dict(r)) for r in rows]

    # --- connected Facebook Pages (what the Meta side of the demo would list) --------------------------

    def add_page(self, db, account_sid, page_id, name):
        db.execute("INSERT OR REPLACE INTO pages (account_sid, page_id, name) VALUES (?, ?, ?)",
                   (account_sid, str(page_id), name))

    def pages(self, account_sid):
        return [dict(r) for r in self.read("SELECT page_id, name FROM pages WHERE account_sid = ? ORDER BY page_id",
                                           (account_sid,))]

    # --- generic resources -------------------------------------------------------------------------------

    def get(self, account_sid, kind, sid=None, key=None):
        column, value = ("sid", sid) if sid is not None else ("key", key)
        rows = self.read(f"SELECT data FROM resources WHERE account_sid = ? AND kind = ? AND {column} = ?",
                         (account_sid, kind, value))
        return json.loads(rows[0]["data"]) if rows else None

    def insert(self, db, account_sid, kind, sid, data, key=None, parent=""):
        """Insert inside a transaction; returns False when the natural key already exists."""
        try:
            db.execute("INSERT INTO resources (account_sid, kind, sid, key, parent, data) VALUES (?, ?, ?, ?, ?, ?)",
                       (account_sid, kind, sid, key if key is not None else sid, parent, json.dumps(data)))
        except sqlite3.IntegrityError:
            return False
        return True

    def replace(self, db, account_sid, kind, sid, data):
        db.execute("UPDATE resources SET data = ? WHERE account_sid = ? AND kind = ? AND sid = ?",
                   (json.dumps(data), account_sid, kind, sid))

    def delete(self, db, account_sid, kind, sid):
        return db.execute("DELETE FROM resources WHERE account_sid = ? AND kind = ? AND sid = ?",
                          (account_sid, kind, sid)).rowcount > 0

    def page(self, account_sid, kind, after_seq=0, limit=50, parent="", where=None, conditions=(),
             descending=False, containing=()):
        """Rows after `after_seq` in creation order (or before it, newest first, when `descending`; 0 = from the
        start); `where` is a {json_field: value} filter, `conditions` more (json_field, operator, value) tests,
        e.g. ("date_created", ">=", "2026-01-01T00:00:00Z"); `containing` texts the stored JSON must hold (a
        prefilter SQLite applies before any row is decoded: the caller still tests what it means)."""
        sql = "SELECT seq, data FROM resources WHERE account_sid = ? AND kind = ? AND parent = ?"
        args = [account_sid, kind, parent]
        for text in containing:
            sql += " AND instr(data, ?) > 0"
            args.append(text)
        if after_seq:
            sql += " AND seq < ?" if descending else " AND seq > ?"
            args.append(after_seq)
        tests = [(field, "=", value) for field, value in (where or {}).items()] + list(conditions)
        for field, operator, value in tests:
            if operator not in OPERATORS or not FIELD.fullmatch(field):
                raise ValueError(f"unsupported filter {field} {operator}")
            sql += f" AND json_extract(data, '$.{field}') {operator} ?"
            args.append(value)
        sql += " ORDER BY seq DESC LIMIT ?" if descending else " ORDER BY seq LIMIT ?"
        args.append(limit)
        return [(r["seq"], json.loads(r["data"])) for r in self.read(sql, args)]

    def keyed_range(self, account_sid, kind, prefix):
        """Resources whose natural key starts with `prefix`, newest first (an index range, not a scan)."""
        rows = self.read("SELECT data FROM resources WHERE account_sid = ? AND kind = ? AND key >= ? AND key < ? "
                         "ORDER BY seq DESC", (account_sid, kind, prefix, prefix + "\uffff"))
        return [json.loads(r["data"]) for r in rows]

    def count(self, account_sid, kind, parent=""):
        return self.read("SELECT COUNT(*) AS n FROM resources WHERE account_sid = ? AND kind = ? AND parent = ?",
                         (account_sid, kind, parent))[0]["n"]

    # --- what every request needs ------------------------------------------------------------------------

    def control_state(self):
        """The cached ControlState, reloaded when the generation moved: one small query on the hot path."""
        generation = self.read("SELECT n FROM generation")[0][0]
        state = self._state
        if state is None or state.generation != generation:
            # The generation is read before the data, so a write in between only causes one more reload.
            logins = {r["sid"]: (r["auth_token"], r["sid"]) for r in self.read("SELECT sid, auth_token FROM accounts")}
            logins.update((r["sid"], (r["secret"], r["account_sid"]))
                          for r in self.read("SELECT sid, secret, account_sid FROM api_keys"))
            state = self._state = ControlState(generation, self.setting("latency_ms", 0),
                                               bool(self.read("SELECT 1 FROM faults LIMIT 1")), logins)
        return state

    # --- settings ----------------------------------------------------------------------------------------

    def setting(self, key, default=None):
        rows = self.read("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set_setting(self, key, value):
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def reset(self):
        with self.tx() as db:
            for table in ("accounts", "api_keys", "resources", "pages", "faults", "settings"):
                db.execute(f"DELETE FROM {table}")

    # --- control plane (control-plane branch) --------------------------------------------------------------
    # The control token lives in its own table, which reset() leaves alone: a reset wipes the sandbox's state,
    # not the key of its control plane (clients holding it keep working).

    CONTROL_TABLE = "CREATE TABLE IF NOT EXISTS control_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)"

    def ensure_control_token(self, candidate):
        """The database's control token; `candidate` becomes it when there is none yet (first writer wins)."""
        with self.tx() as db:
            db.execute(self.CONTROL_TABLE)
            db.execute("INSERT OR IGNORE INTO control_secrets (name, value) VALUES ('control_token', ?)", (candidate,))
            return db.execute("SELECT value FROM control_secrets WHERE name = 'control_token'").fetchone()[0]

    @staticmethod
    def peek_control_token(path):
        """The control token of the database at `path`, read-only: None when there is no such (readable) file or
        it has no token yet. Never creates anything."""
        from pathlib import Path

        try:
            conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return None
        try:
            row = conn.execute("SELECT value FROM control_secrets WHERE name = 'control_token'").fetchone()
        except sqlite3.Error:  # no such table, not a database, unreadable
            return None
        finally:
            conn.close()
        return row[0] if row else None

    def set_account_status(self, account_sid, status):
        """False when there is no such account."""
        with self.tx() as db:
            return db.execute("UPDATE accounts SET status = ? WHERE sid = ?", (status, account_sid)).rowcount > 0

    def put_page(self, account_sid, page_id, name):
        """Connect (or rename) a Facebook Page on the account."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO pages (account_sid, page_id, name) VALUES (?, ?, ?)",
                       (account_sid, str(page_id), name))
