"""Verification at scale: 2,000 Messenger addresses over 20 Studio flows, 40 ms injected latency per request.

`flexops.checks.verify(client)` must stay within the list pages + one fetch per flow + the path checks' 7 + 5 requests
(40 + 20 + 7 + 5 = 72), counted by the sandbox (every HTTP request it received, retries included) and by the client. Baseline in the
same run: the naive loop (list the addresses, then fetch and analyse each address's flow, one after the other).
That loop makes 2,040 requests (~90 s at 40 ms), so its flow fetches are timed on a random sample of SAMPLE
addresses and extrapolated to all of them (the listing is timed in full); the script says so when it does.
`python bench/bench_verify.py --full` times the naive loop on every address instead.

Prints `name<TAB>value<TAB>target` lines; `main()` returns [(name, value, target, ok)].
"""
import collections
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ADDRESSES = 2_000
FLOWS = 20
LATENCY_MS = 40
PAGE_SIZE = 50
SLACK = 5
# verify's Flex-side path checks, once per account (path_checks.py): Flex configuration, the one workflow, task
# channels, open tasks, active conversations, legacy Flex Flows, Monitor alerts
PATH_CHECKS = 7
SAMPLE = 200  # addresses whose flow the naive loop fetches; the rest is extrapolated
RATIO_TARGET = 0.1


def seed(store, demo, addresses=ADDRESSES, flows=FLOWS):
    """`flows` published flows reaching Send to Flex (Flex's own workflow and chat channel), and `addresses`
    Messenger addresses using them in turn, made through the sandbox's models as the API makes them."""
    from flexops.sandbox.conversations.models import ConversationsBackend
    from flexops.sandbox.seed import add_flow, messaging_flow_definition

    account_sid = demo["account_sid"]
    definition = messaging_flow_definition(demo["workflow_sid"], demo["chat_channel_sid"])
    flow_sids = [add_flow(store, account_sid, f"Messaging Flow {i + 1}", definition, "published")["sid"]
                 for i in range(flows)]
    backend = ConversationsBackend(store, account_sid)
    for i in range(addresses):
        backend.create_address("messenger", f"messenger:{500000000000000 + i}", friendly_name=f"Page {i}",
                               auto_creation={"enabled": True, "type": "studio", "studio_flow_sid": flow_sids[i % flows],
                                              "studio_retry_count": 3})
    return flow_sids


def timed_verify(client):
    """(seconds, rows, requests counted by the client, {"METHOD product path-shape": count})."""
    from flexops import checks

    calls = collections.Counter()

    def listener(method, url, **_):
        parts = urlsplit(url)
        shape = "/".join("{sid}" if len(p) == 34 and p[:2].isalpha() else p for p in parts.path.split("/"))
        calls[f"{method} {parts.hostname.split('.')[0]}{shape}"] += 1

    client.http_client.listeners.append(listener)
    before = client.http_client.request_count
    started = time.perf_counter()
    rows = checks.verify(client, progress=False)
    took = time.perf_counter() - started
    client.http_client.listeners.remove(listener)
    return took, rows, client.http_client.request_count - before, calls


def timed_naive(client, sample=SAMPLE):
    """Seconds of the naive loop (extrapolated when `sample` < the number of addresses), and how many it fetched."""
    from tqdm.auto import tqdm

    from flexops.studio import reaches_send_to_flex

    started = time.perf_counter()
    configs = client.conversations.v1.address_configurations.list(type="messenger", page_size=PAGE_SIZE)
    listing = time.perf_counter() - started
    chosen = random.Random(0).sample(configs, sample) if sample < len(configs) else configs
    started = time.perf_counter()
    for config in tqdm(chosen, desc="naive loop (flow per address)", leave=False, disable=None):
        flow = client.studio.v2.flows(config.auto_creation["studio_flow_sid"]).fetch()
        assert reaches_send_to_flex(flow.definition)[0]
    per_address = (time.perf_counter() - started) / len(chosen)
    return listing + per_address * len(configs), len(chosen), len(configs)


def main(sample=SAMPLE):
    from flexops.client import connect, sandbox_target
    from flexops.sandbox.control import SandboxControl
    from flexops.sandbox.server import SandboxServer

    budget = ADDRESSES // PAGE_SIZE + FLOWS + PATH_CHECKS + SLACK
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(Path(tmp) / "bench.db") as server:
        control = SandboxControl(server.url)
        demo = control.seed()
        seed(server.store, demo)
        client = connect(sandbox_target(url=server.url))
        control.set_latency(LATENCY_MS)
        control.reset_stats()
        took, rows, client_requests, calls = timed_verify(client)
        served = control.stats()["total"]
        naive, fetched, total = timed_naive(client, sample)
        control.set_latency(0)
    addresses = {r.subject for r in rows}
    failing = sorted({f"{r.check}: {r.detail}" for r in rows if r.status == "fail" and r.check != "first message"})
    assert len(addresses) == ADDRESSES, f"verify covered {len(addresses)} addresses, not {ADDRESSES}"
    assert not failing, f"unexpected failures on healthy addresses: {failing[:3]}"
    if fetched < total:
        print(f"# naive loop: flows fetched for a random sample of {fetched} of {total} addresses and extrapolated "
              f"(all {total} would take ~{naive:.0f} s at {LATENCY_MS} ms per request)")
    if served > budget:
        print("# requests by verify: " + ", ".join(f"{k} x{n}" for k, n in calls.most_common()))
    ratio = took / naive
    return [("verify_http_requests", served, f"<= {budget} ({ADDRESSES // PAGE_SIZE} list pages + {FLOWS} flows + "
             f"{PATH_CHECKS} path checks + {SLACK}); client counted {client_requests}", served <= budget),
            ("verify_seconds", round(took, 2), f"{ADDRESSES} addresses, {FLOWS} flows, {LATENCY_MS} ms latency", True),
            ("naive_loop_seconds", round(naive, 1), "list + one flow fetch per address"
             + (f" (sampled {fetched}, extrapolated)" if fetched < total else ""), True),
            ("verify_vs_naive_time", round(ratio, 3), f"<= {RATIO_TARGET}", ratio <= RATIO_TARGET)]


if __name__ == "__main__":
    figures = main(ADDRESSES if "--full" in sys.argv[1:] else SAMPLE)
    for name, value, target, _ in figures:
        print(f"{name}\t{value}\t{target}", flush=True)
    sys.exit(0 if all(ok for *_, ok in figures) else 1)
