"""Nightly verify with the state store: 2,000 Messenger addresses, 20,000 conversations in the 30-day window,
40 ms injected latency per request.

Run 1 starts with a cold store and hits the per-run cap (MAX_CONVERSATIONS participants requests): the pages it did
not reach yet are warnings naming the cap, never "no first message". Then every night NEW_PER_NIGHT customers
write and verify runs again, until every page has its evidence (the runs it took are printed), and once more: the
steady nightly run.

Budget per run (the issue's): list pages + new conversations + flows + 5, counted by the client per request kind
and by the sandbox (every HTTP request it received). "New conversations" are the ones the store had not seen —
those created since the last run, plus, while the window is still being covered, the older ones the run scanned
below the cap (printed apart). The steady run must stay within list pages + the night's new conversations + flows
+ 5. Zero addresses may be reported without a first message on any run.

Prints `name<TAB>value<TAB>target` lines; `main()` returns [(name, value, target, ok)].
"""
import collections
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_verify import FLOWS, LATENCY_MS, seed as seed_addresses  # noqa: E402

ADDRESSES = 2_000
CONVERSATIONS = 20_000
WINDOW_DAYS = 29  # the conversations' span, inside verify's 30-day window
NEW_PER_NIGHT = 50
SLACK = 5
MAX_RUNS = 8


def seed_conversations(store, account_sid, pages, count=CONVERSATIONS, days=WINDOW_DAYS):
    """`count` closed conversations (as Flex leaves them after wrap-up) spread evenly over the last `days` days,
    oldest first, each page in turn in a shuffled order (every page has count / len(pages) of them), through the
    sandbox's models as the inbound path makes them."""
    from flexops.sandbox.conversations.models import ConversationsBackend

    backend = ConversationsBackend(store, account_sid)
    service = backend.default_service_sid()
    start = datetime.now(timezone.utc) - timedelta(days=days)
    step = timedelta(days=days) / count
    with store.tx() as db:
        for n in range(count):
            at = (start + n * step).strftime("%Y-%m-%dT%H:%M:%SZ")
            conversation = backend.create_conversation(db, service, stamp=at, state="closed")
            backend.add_participant(db, conversation["sid"], f"messenger:{8_000_000 + n}",
                                    f"messenger:{pages[(n * 7919) % len(pages)]}", "messenger", stamp=at)


def write(store, account_sid, pages, count, start):
    """`count` customers write once each (the whole inbound path: conversation, Studio, Flex task)."""
    from flexops.sandbox import inbound

    for n in range(start, start + count):
        inbound.deliver(store, account_sid, pages[(n * 31) % len(pages)], str(9_000_000 + n), "hello")


class Counter:
    """The client's requests by kind: list pages, participants (one per conversation scanned), flows, others."""

    def __init__(self, client):
        self.calls = collections.Counter()
        client.http_client.listeners.append(self)

    def __call__(self, method, url, **_):
        path = urlsplit(url).path.rstrip("/")
        last = path.rsplit("/", 1)[-1]
        if last == "Participants":
            self.calls["participants"] += 1
        elif "/Flows/" in path and "studio" in urlsplit(url).hostname:
            self.calls["flows"] += 1
        elif not (len(last) == 34 and last[:2].isalpha()) and last not in ("Configuration", "Flex"):
            self.calls["list pages"] += 1
        else:
            self.calls["others"] += 1

    def take(self):
        calls, self.calls = self.calls, collections.Counter()
        return calls


def one_run(client, control, counter, store):
    from flexops import checks, evidence_store

    known_before = store.count() if store else 0
    control.reset_stats()
    started = time.perf_counter()
    rows = checks.verify(client, progress=False)
    took = time.perf_counter() - started
    served = control.stats()["total"]
    calls = counter.take()
    first = [r for r in rows if r.check == "first message"]
    store = store or evidence_store.open_store(client.account_sid)
    return {"seconds": round(took, 1), "served": served, "calls": calls, "rows": first,
            "stored": store.count() - known_before, "store": store,
            "wrong": sum(r.status == "fail" for r in first), "pending": sum(r.status == "warn" for r in first),
            "passed": sum(r.status == "pass" for r in first)}


def budget(run, new):
    c = run["calls"]
    return c["list pages"] + new + FLOWS + SLACK


def main():
    from flexops.client import connect, sandbox_target
    from flexops.evidence import MAX_CONVERSATIONS
    from flexops.sandbox.control import SandboxControl
    from flexops.sandbox.server import SandboxServer

    runs, figures = [], []
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(Path(tmp) / "bench.db") as server:
        os.environ["FLEXOPS_STATE_DIR"] = str(Path(tmp) / "state")
        control = SandboxControl(server.url, token=server.control_token)
        demo = control.seed()
        seed_addresses(server.store, demo, ADDRESSES, FLOWS)
        pages = [str(500000000000000 + i) for i in range(ADDRESSES)]
        seed_conversations(server.store, demo["account_sid"], pages)
        client = connect(sandbox_target(url=server.url))
        counter = Counter(client)
        control.set_latency(LATENCY_MS)
        runs.append(one_run(client, control, counter, None))
        written = 0
        while runs[-1]["pending"] and len(runs) < MAX_RUNS:
            write(server.store, demo["account_sid"], pages, NEW_PER_NIGHT, written)
            written += NEW_PER_NIGHT
            runs.append(one_run(client, control, counter, runs[0]["store"]))
        covering = len(runs)
        write(server.store, demo["account_sid"], pages, NEW_PER_NIGHT, written)
        runs.append(one_run(client, control, counter, runs[0]["store"]))
        control.set_latency(0)
    for n, run in enumerate(runs, 1):
        c = run["calls"]
        print(f"# run {n}: {sum(c.values())} requests (sandbox served {run['served']}) in {run['seconds']} s: "
              f"{c['list pages']} list pages, {c['participants']} participants (conversations new to the store: "
              f"{run['stored']}), {c['flows']} flows, {c['others']} others; first message: {run['passed']} pass, "
              f"{run['pending']} not reached yet (cap note), {run['wrong']} fail")
    cold, second, steady = runs[0], runs[1], runs[-1]
    second_new = second["calls"]["participants"]
    second_budget = budget(second, second_new)
    steady_budget = budget(steady, NEW_PER_NIGHT)
    total = lambda run: sum(run["calls"].values())  # noqa: E731
    wrong = sum(run["wrong"] for run in runs)
    cap_noted = all("cap of" in r.detail for r in cold["rows"] if r.status == "warn")
    figures += [
        ("cold_run_requests", total(cold), f"first run, cold store, cap {MAX_CONVERSATIONS} conversations per run; "
         f"{cold['pending']} pages not reached yet, each saying so", cap_noted),
        ("second_run_requests", total(second), f"<= {second_budget} (list pages {second['calls']['list pages']} + "
         f"new conversations {second_new}: {NEW_PER_NIGHT} written since run 1, {second_new - NEW_PER_NIGHT} older "
         f"ones below the cap + {FLOWS} flows + {SLACK})", total(second) <= second_budget),
        ("steady_run_requests", total(steady), f"<= {steady_budget} (list pages {steady['calls']['list pages']} + "
         f"{NEW_PER_NIGHT} new conversations + {FLOWS} flows + {SLACK}); sandbox served {steady['served']}",
         total(steady) <= steady_budget and steady["calls"]["participants"] == NEW_PER_NIGHT),
        ("runs_until_every_page_has_evidence", covering, f"{ADDRESSES} pages, {CONVERSATIONS} conversations",
         covering < MAX_RUNS),
        ("addresses_wrongly_without_first_message", wrong, "0 on every run", wrong == 0),
        ("cold_run_seconds", cold["seconds"], f"{LATENCY_MS} ms latency", True),
        ("steady_run_seconds", steady["seconds"], f"{LATENCY_MS} ms latency", True),
    ]
    return figures


if __name__ == "__main__":
    results = main()
    for name, value, target, _ in results:
        print(f"{name}\t{value}\t{target}", flush=True)
    sys.exit(0 if all(ok for *_, ok in results) else 1)
