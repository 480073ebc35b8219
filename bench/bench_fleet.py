"""Fleet verification: 50 subaccounts x 40 Messenger addresses, 40 ms injected latency per request.

`fleet.verify(fleet.resolve(client, "all"))` (the subaccount listing, then every account's checks.verify and its
Flex check, concurrently under one global bound on requests in flight) against two baselines of the same run:
- the sequential per-account loop: the same listing, then checks.verify on one account after the other;
- the slowest single account's own verify time (measured in that loop, after one untimed warm-up verify, so that
  no account pays for first imports and the first connection alone).
No customer has written yet (a missing first message is a warning on both sides). Targets: at least 8x faster than
the loop, and at most 1.5x the slowest account. Request counts are the sandbox's (every HTTP request it received,
retries included). The sandbox serves from its own process (`flexops sandbox serve`), as Twilio would.

The fleet does 50 accounts' work on one machine: its CPU is a floor under its time that latency cannot hide.
`fleet_client_cpu_seconds` is this process's CPU (requests/urllib3/the SDK building and parsing ~11 calls per
account; one process, so at most one core's worth of Python at a time), `fleet_server_cpu_seconds` the sandbox
process's; `fleet_cpu_floor_seconds` = max(client CPU, (client + server CPU) / cores), and
`cpu_floor_vs_slowest_account` says how far above the 1.5x target that floor alone already is on this machine.

Prints `name<TAB>value<TAB>target` lines; `main()` returns [(name, value, target, ok)].
"""
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

SUBACCOUNTS = 50
ADDRESSES = 40
LATENCY_MS = 40
SPEEDUP_TARGET = 8.0
SLOWEST_TARGET = 1.5


def warm_up(client):
    """One untimed verify (first imports, the SDK's lazy modules), so the loop's first account is not the slowest
    for reasons no other account shares."""
    from flexops import checks, fleet

    resolved = fleet.resolve(client, "all")
    checks.verify(next(a for a in resolved.accounts if a.client is not None).client, require_first_message=False,
                  progress=False)
    fleet.release(resolved, client)


def sequential(client):
    """(seconds of the whole loop, seconds of the slowest account): list, then one account after another."""
    from flexops import checks, fleet

    started = time.perf_counter()
    resolved = fleet.resolve(client, "all")
    slowest = 0.0
    for account in resolved.accounts:
        began = time.perf_counter()
        checks.verify(account.client, require_first_message=False, progress=False)
        slowest = max(slowest, time.perf_counter() - began)
    fleet.release(resolved, client)
    return time.perf_counter() - started, slowest


def concurrent(client):
    """(seconds, rows): the fleet's verification, the listing included."""
    from flexops import fleet

    started = time.perf_counter()
    resolved = fleet.resolve(client, "all")
    rows = fleet.verify(resolved, require_first_message=False)
    fleet.release(resolved, client)
    return time.perf_counter() - started, rows


@contextmanager
def served(db):
    """`flexops sandbox serve` on `db` in its own process: (url, control token)."""
    proc = subprocess.Popen([sys.executable, "-m", "flexops.cli", "sandbox", "serve", "--port", "0", "--db", str(db),
                             "--seed", "none"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = proc.stdout.readline().split()[-1]
        proc.stdout.readline()
        yield url, proc.stdout.readline().split()[1].partition("=")[2], proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cpu_seconds(pid):
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def main():
    from flexops import fleet
    from flexops.client import connect, sandbox_target
    from flexops.sandbox.control import SandboxControl
    from flexops.sandbox.seed import seed_fleet
    from flexops.sandbox.server import private_database
    from flexops.sandbox.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        private_database(db)
        made = seed_fleet(Store(db), SUBACCOUNTS, ADDRESSES, first_messages=False)
        with served(db) as (url, token, server_pid):
            control = SandboxControl(url, token=token)
            os.environ["FLEXOPS_SANDBOX_TOKEN"] = token
            client = connect(sandbox_target(url=url, account_sid=made["account_sid"]))
            control.set_latency(LATENCY_MS)
            warm_up(client)
            control.reset_stats()
            loop, slowest = sequential(client)
            loop_requests = control.stats()["total"]
            control.reset_stats()
            cpu, server_cpu = time.process_time(), cpu_seconds(server_pid)
            took, rows = concurrent(client)
            cpu, server_cpu = time.process_time() - cpu, cpu_seconds(server_pid) - server_cpu
            fleet_requests = control.stats()["total"]
    summary = fleet.account_summary(rows)
    statuses = [s["status"] for s in summary]
    assert len(summary) == SUBACCOUNTS and statuses.count("fail") == 1, statuses  # the one broken on purpose
    assert all(s["addresses"] == ADDRESSES for s in summary)
    speedup, versus_slowest = loop / took, took / slowest
    cores = len(os.sched_getaffinity(0))
    floor = max(cpu, (cpu + server_cpu) / cores)
    return [("fleet_verify_seconds", round(took, 3), f"{SUBACCOUNTS} subaccounts x {ADDRESSES} addresses, "
             f"{LATENCY_MS} ms latency, at most {fleet.MAX_IN_FLIGHT} requests in flight", True),
            ("sequential_loop_seconds", round(loop, 3), "the listing, then checks.verify one account after another",
             True),
            ("slowest_account_seconds", round(slowest, 3), "one account's own checks.verify, alone", True),
            ("fleet_vs_sequential_speedup", round(speedup, 1), f">= {SPEEDUP_TARGET}", speedup >= SPEEDUP_TARGET),
            ("fleet_vs_slowest_account", round(versus_slowest, 2), f"<= {SLOWEST_TARGET}",
             versus_slowest <= SLOWEST_TARGET),
            ("fleet_client_cpu_seconds", round(cpu, 3), "this process's CPU during the fleet verification", True),
            ("fleet_server_cpu_seconds", round(server_cpu, 3), "the sandbox process's CPU meanwhile", True),
            ("fleet_cpu_floor_seconds", round(floor, 3), f"max(client, (client + server) / {cores} cores): "
             f"no schedule beats it on this machine (load average {os.getloadavg()[0]:.1f} at the end)", True),
            ("cpu_floor_vs_slowest_account", round(floor / slowest, 2), f"the CPU floor alone; the target "
             f"<= {SLOWEST_TARGET} is out of reach here when this is above it", True),
            ("fleet_http_requests", fleet_requests, "listing + per account: its checks and its Flex check", True),
            ("sequential_http_requests", loop_requests, "listing + per account: its checks", True)]


if __name__ == "__main__":
    figures = main()
    for name, value, target, _ in figures:
        print(f"{name}\t{value}\t{target}", flush=True)
    sys.exit(0 if all(ok for *_, ok in figures) else 1)
