"""One apply at a time per account: a lock file `~/.flexops/locks/<account sid>.lock`.

Why in the home folder, not the working folder: the lock is per account, and a JupyterLab kernel (working folder
`notebooks/`), a cron job and a shell in the project folder must all see the same one. Users sharing an account on
one machine point FLEXOPS_LOCK_DIR at a folder they can all write.

The file is created with O_CREAT|O_EXCL, so exactly one process wins, and holds who holds it (run id, pid, host,
start time) so a refusal can say who and for how long. A lock whose pid is dead on this host is stale and is taken
over (the takeover is reported); a lock from another host cannot be judged from here: `break_lock=True`
(`--break-lock`) removes it. A holder still running on this host is never broken: stop it first.
"""
import json
import os
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from .coerce import age_text
from .exceptions import LockHeld, ValidationError


def lock_dir():
    """FLEXOPS_LOCK_DIR, else `~/.flexops/locks` (the same for every working folder of this user)."""
    return Path(os.environ.get("FLEXOPS_LOCK_DIR") or Path.home() / ".flexops" / "locks")


def pid_alive(pid, started_at=None):
    """Is `pid` running — and, when its start time was recorded, still the same process (pids get reused)?"""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except (TypeError, ValueError, OverflowError):
        return False
    if started_at is not None:
        started = _process_start(pid)
        return started is None or abs(started - float(started_at)) < 1
    return True


def _process_start(pid):
    try:
        import psutil

        return psutil.Process(int(pid)).create_time()
    except Exception:  # noqa: BLE001 - psutil missing or the process just ended: cannot tell
        return None


def _age(holder):
    try:
        started = datetime.fromisoformat(holder["started"])
    except (KeyError, TypeError, ValueError):
        return None
    return (datetime.now(timezone.utc) - started).total_seconds()


def describe(holder):
    """`run R (pid P on host H), held for 3m 12s` — for refusals and status lines."""
    if not holder:
        return "an unknown holder (the lock file is empty or unreadable)"
    age = _age(holder)
    held = f", held for {age_text(age)}" if age is not None else ""
    return f"run {holder.get('run_id')} (pid {holder.get('pid')} on host {holder.get('host')}){held}"


class AccountLock:
    """`with AccountLock(account_sid, run_id): ...` — or acquire()/release(). Not re-entrant."""

    def __init__(self, account_sid, run_id=None, directory=None):
        if not account_sid or not str(account_sid).replace("_", "").isalnum():
            raise ValidationError("account_sid", "must be an account SID", account_sid)
        self.account_sid = account_sid
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.path = Path(directory or lock_dir()) / f"{account_sid}.lock"
        self.token = uuid.uuid4().hex  # tells our lock from a later holder's with the same run id
        self.held = False
        self.took_over = None  # the stale holder we replaced, if any

    def holder(self):
        """The current holder's record, {} when the file is unreadable, None when nobody holds the lock."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return {}

    def is_stale(self, holder):
        """Stale = recorded on this host with a pid that is no longer running. Other hosts: unknowable."""
        return self._local(holder) and not pid_alive(holder.get("pid"), holder.get("pid_started"))

    def is_running_here(self, holder):
        """The holder is a live process on this host: breaking its lock would let two applies run at once."""
        return self._local(holder) and pid_alive(holder.get("pid"), holder.get("pid_started"))

    @staticmethod
    def _local(holder):
        return bool(holder) and holder.get("host") == socket.gethostname()

    def _create(self):
        record = {"run_id": self.run_id, "pid": os.getpid(), "pid_started": _process_start(os.getpid()),
                  "host": socket.gethostname(),
                  "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "account_sid": self.account_sid, "token": self.token}
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            os.write(fd, json.dumps(record).encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove(self, expected):
        """Remove the lock only if it still holds `expected` (rename first so we never delete a newer holder's)."""
        aside = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.removed")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            current = json.loads(aside.read_text() or "{}")
        except ValueError:
            current = {}
        if expected is not None and current.get("token") != expected.get("token"):
            try:  # not the one we meant: put it back unless someone already took the lock
                os.link(aside, self.path)
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)

    def acquire(self, break_lock=False):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                self._create()
                self.held = True
                return self
            except FileExistsError:
                holder = self.holder()
            if holder is None:
                continue  # released meanwhile
            if not holder and not break_lock:
                age = time.time() - self.path.stat().st_mtime if self.path.exists() else 0
                if age < 5:  # being written right now by its creator
                    time.sleep(0.2)
                    continue
            running_here = self.is_running_here(holder)
            if (break_lock and not running_here) or self.is_stale(holder) or not holder:
                self.took_over = holder or {}
                self._remove(holder if holder else None)
                continue
            if running_here:
                raise LockHeld(f"another apply holds the lock for account {self.account_sid}: {describe(holder)}, "
                               f"and that process is still running on this host. Wait for it to finish, or stop "
                               f"it (kill {holder.get('pid')}); its lock is then taken over automatically. "
                               f"--break-lock never breaks a running holder's lock (lock file {self.path})")
            raise LockHeld(f"another apply holds the lock for account {self.account_sid}: {describe(holder)}. "
                           f"Wait for it to finish; if it is dead, remove the lock with --break-lock "
                           f"(lock file {self.path})")
        raise LockHeld(f"could not take the lock for account {self.account_sid} ({self.path}): it keeps changing "
                       "hands; try again")

    def release(self):
        if self.held:
            holder = self.holder()
            if holder and holder.get("token") == self.token:
                self._remove(holder)
            self.held = False

    def __enter__(self):
        return self if self.held else self.acquire()

    def __exit__(self, *exc):
        self.release()

