"""Inventory at scale: 10,000 address configurations with 40 ms injected latency per request.

Baseline in the same run: the paging floor, i.e. 200 sequential raw page requests (requests.Session following
next_page_url), which no client can beat. `inventory.collect` must stay within 1.15x of it (no per-item calls, tiny
per-page overhead). Then the peak memory (max RSS) of a full report (all formats) in a fresh process: < 400 MB.

Prints `name<TAB>value<TAB>target` lines; `main()` returns [(name, value, target, ok)].
"""
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROWS = 10_000
LATENCY_MS = 40
RATIO_TARGET = 1.15
MEMORY_TARGET_MB = 400
ROUNDS = 3  # best of N for both the floor and collect, interleaved


def seed_rows(store, account_sid, flow_sid, rows=ROWS):
    """Insert `rows` address configurations shaped like the API's, in one transaction."""
    from flexops.sandbox.conversations import ADDRESS_KIND, LIST_PATH
    from flexops.sandbox.context import new_sid, now

    stamp = now()
    with store.tx() as db:
        for i in range(rows):
            sid, kind = new_sid("IG"), ("messenger", "messenger", "messenger", "whatsapp", "sms")[i % 5]
            address = {"messenger": f"messenger:{100000000000000 + i}", "whatsapp": f"whatsapp:+1555{i:07d}",
                       "sms": f"+1666{i:07d}"}[kind]
            auto = ({"enabled": True, "type": "studio", "studio_flow_sid": flow_sid, "studio_retry_count": 3}
                    if i % 3 else {"enabled": True, "type": "webhook", "webhook_url": "https://example.com/hook",
                                   "webhook_method": "POST", "webhook_filters": ["onMessageAdded"]})
            data = {"account_sid": account_sid, "sid": sid, "address": address, "type": kind,
                    "friendly_name": f"Page {i} ✓", "address_country": None, "auto_creation": auto,
                    "date_created": stamp, "date_updated": stamp,
                    "url": f"https://conversations.twilio.com{LIST_PATH}/{sid}"}
            store.insert(db, account_sid, ADDRESS_KIND, sid, data, key=address)


def paging_floor(url, auth):
    """Seconds for the sequential raw page requests of the whole list, and how many pages that was."""
    session = requests.Session()
    session.auth = auth
    next_url, pages = f"{url}/conversations/v1/Configuration/Addresses?PageSize=50", 0
    started = time.perf_counter()
    while next_url:
        reply = session.get(next_url, timeout=30)
        reply.raise_for_status()
        pages += 1
        link = reply.json()["meta"]["next_page_url"]
        next_url = link and link.replace("https://conversations.twilio.com", f"{url}/conversations", 1)
    return time.perf_counter() - started, pages


def timed_collect(client):
    from flexops import inventory

    started = time.perf_counter()
    df = inventory.collect(client, progress=False)
    return time.perf_counter() - started, len(df)


def memory_child(url, out_dir):
    """Run in a fresh process: a full report (collect + every format); prints its max RSS in MB."""
    from flexops import inventory, reports
    from flexops.client import connect, sandbox_target

    df = inventory.collect(connect(sandbox_target(url=url)), progress=False)
    reports.export(df, out_dir)
    print(json.dumps({"rows": len(df), "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    from flexops.client import connect, sandbox_target
    from flexops.sandbox.control import SandboxControl
    from flexops.sandbox.server import SandboxServer

    with tempfile.TemporaryDirectory() as tmp, SandboxServer(Path(tmp) / "bench.db") as server:
        control = SandboxControl(server.url)
        demo = control.seed()
        seed_rows(server.store, demo["account_sid"], demo["messaging_flow_sid"])
        client = connect(sandbox_target(url=server.url))
        auth = (demo["account_sid"], demo["auth_token"])
        control.set_latency(LATENCY_MS)
        floors, collects = [], []
        for _ in range(ROUNDS):
            floor, pages = paging_floor(server.url, auth)
            took, rows = timed_collect(client)
            floors.append(floor)
            collects.append(took)
        assert pages == ROWS // 50 and rows == ROWS, (pages, rows)
        floor, took = min(floors), min(collects)
        control.set_latency(0)
        child = subprocess.run([sys.executable, __file__, "--memory", server.url, str(Path(tmp) / "report")],
                               capture_output=True, text=True, timeout=600)
        if child.returncode != 0:
            raise RuntimeError(f"memory run failed: {child.stderr.strip()[-500:]}")
        memory = json.loads(child.stdout.strip().splitlines()[-1])["max_rss_mb"]
    ratio = took / floor
    return [("inventory_paging_floor_s", round(floor, 2), f"{pages} pages x {LATENCY_MS} ms", True),
            ("inventory_collect_s", round(took, 2), f"{ROWS} addresses", True),
            ("inventory_collect_vs_floor", round(ratio, 3), f"<= {RATIO_TARGET}", ratio <= RATIO_TARGET),
            ("inventory_report_peak_rss_mb", round(memory, 1), f"< {MEMORY_TARGET_MB}", memory < MEMORY_TARGET_MB)]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--memory":
        memory_child(sys.argv[2], sys.argv[3])
        sys.exit(0)
    figures = main()
    for name, value, target, _ in figures:
        print(f"{name}\t{value}\t{target}", flush=True)
    sys.exit(0 if all(ok for *_, ok in figures) else 1)
