"""Stopping a flexops command half-way, as an operator's kill -9 or Ctrl-C would."""
import os
import signal
import subprocess
import sys
import time


def flexops_stopped_when(args, ready, cwd, sig=signal.SIGKILL, timeout=60, poll=0.02):
    """Start `python -m flexops.cli ARGS` in its own session, send `sig` to the whole session (the CLI and any kernel
    it started) once `ready()` is true, and return the finished process. Fails if the command ends first or
    `ready()` stays false for `timeout` seconds."""
    proc = subprocess.Popen([sys.executable, "-m", "flexops.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(poll)
        os.killpg(proc.pid, sig)
    finally:
        proc.wait(timeout=30)
    return proc
