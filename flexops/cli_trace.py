"""`flexops trace`: did a Messenger message reach an agent in Flex, and if not, which hop broke and why.

Exit codes as for runs: 0 the message reached Flex (or an agent, or the address's webhook), 1 broken or no message,
2 bad input, 3 Twilio unreachable or credentials refused.
"""
import json
import sys

import click

from . import fleet, trace as trace_api, trace_many
from .cli_changes import PROFILE_OPTION, TARGET_OPTION, text_table
from .cli_notify import note, notify_options
from .client import connect
from .exceptions import ValidationError


def _hop_rows(result):
    import pandas as pd

    rows = [{"": h.symbol, "hop": h.hop, "detail": h.detail,
             "evidence": ", ".join(f"{k}={v}" for k, v in h.evidence.items() if v not in (None, "")),
             "alerts": ", ".join(f"{a['error_code']}" for a in h.alerts)} for h in result.hops]
    return pd.DataFrame(rows)


def _show(result):
    click.echo(f"{result.address}: {result.verdict}" + (f" (broken at {result.broken_hop})"
                                                         if result.broken_hop else ""))
    click.echo(text_table(_hop_rows(result)))
    for alert in result.alerts:
        click.echo(f"alert {alert['error_code']} ({alert['log_level']}) on {alert['resource_sid'] or '-'}: "
                   f"{alert['title']}. {alert['remedy']} {alert['link']}")
    click.echo(result.summary())


class LiveLine:
    """One line on stderr that says how long we have waited and for what; silent without a terminal."""

    def __init__(self, what, enabled):
        self.what, self.enabled = what, enabled

    def __call__(self, elapsed):
        if self.enabled:
            click.echo(f"\r{elapsed:5.0f} s  waiting for {self.what} ...", nl=False, err=True)

    def done(self):
        if self.enabled:
            click.echo("\r" + " " * 70 + "\r", nl=False, err=True)


@click.command("trace")
@notify_options
@click.argument("page_id", required=False)
@click.option("--since", default="7d", show_default=True,
              help="How far back to look for the message (30m, 24h, 7d, ...).")
@click.option("--wait", "wait_seconds", type=click.FloatRange(0, 3600), default=None,
              help="Wait up to SECONDS for a NEW message to the Page (write to it from another Facebook profile), "
                   "then trace it.")
@click.option("--conversation", "conversations", multiple=True, metavar="CH…",
              help="Trace this known conversation instead (repeatable).")
@click.option("--all", "all_pages", is_flag=True,
              help="Every inbound conversation in --since, per Page: reached Flex, reached an agent, broken hops.")
@click.option("--accounts", default="", metavar="all|AC…,AC…",
              help="With --all, over a fleet: every subaccount of the main account (all) or these account SIDs.")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
def trace_command(page_id, since, wait_seconds, conversations, all_pages, accounts, as_json, target, profile,
                  progress):
    """Follow the newest Messenger message to PAGE_ID hop by hop — address, conversation, Studio (or webhook),
    Flex, agent — and say which hop broke, why, and what to do. Monitor alerts are shown on the hop they name.

    Without a message, the configuration of every hop is still checked and the first one that cannot work is named.
    """
    if all_pages == bool(page_id):
        raise ValidationError("page_id", "give a PAGE_ID, or --all for every Page (not both)")
    chosen = fleet.parse_accounts(accounts)
    if chosen and not all_pages:
        raise ValidationError("accounts", "goes with --all (a fleet's reach per account and Page)", accounts)
    progress = sys.stderr.isatty() if progress is None else progress
    client = connect(target, profile=profile)
    note(target=client.flexops_target.public())
    if chosen:
        return _trace_fleet(client, chosen, since, as_json)
    if all_pages:
        return _trace_all(client, since, as_json, progress)
    line = LiveLine(f"a new message to messenger:{page_id}", progress and not as_json)
    results = [trace_api.trace(client, page_id, since=since, conversation_sid=sid) for sid in conversations] or \
        [trace_api.trace(client, page_id, since=since, wait_seconds=wait_seconds, on_tick=line)]
    line.done()
    note(**{f"verdict {r.address}": r.verdict + (f" (broken at {r.broken_hop})" if r.broken_hop else "")
            for r in results})
    if as_json:
        body = [r.to_dict() for r in results]
        click.echo(json.dumps(body[0] if len(body) == 1 else body, indent=2, default=str))
    else:
        click.echo(f"target: {client.flexops_target.describe()}", err=True)
        for result in results:
            _show(result)
    sys.exit(max(r.exit_code for r in results))


def _trace_all(client, since, as_json, progress):
    before = client.http_client.request_count
    pages = trace_many.trace_all(client, since, progress=progress)
    requests = client.http_client.request_count - before
    if as_json:
        click.echo(json.dumps({"since": since, "requests": requests, "pages": [p.row() for p in pages]}, indent=2))
    else:
        click.echo(text_table(trace_many.table(pages)))
        click.echo(f"{sum(p.conversations for p in pages)} conversations on {len(pages)} Pages, "
                   f"{requests} requests", err=True)
    broken = sum(sum(p.broken.values()) for p in pages)
    sys.exit(1 if broken else 0)


def _trace_fleet(client, accounts, since, as_json):
    """--all over a fleet: one row per (account, Page), an account that could not be traced as a row saying why."""
    import pandas as pd

    before = client.http_client.request_count
    resolved = fleet.resolve(client, accounts)
    rows = fleet.trace_all(resolved, since)
    fleet.release(resolved, client)
    requests = sum(c.http_client.request_count for c in resolved.clients() if c is not client) + \
        client.http_client.request_count - before
    if as_json:
        click.echo(json.dumps({"since": since, "requests": requests, "pages": rows}, indent=2))
    else:
        table = pd.DataFrame([{**r, "broken": ", ".join(f"{k} {v}" for k, v in (r.get("broken") or {}).items())}
                              for r in rows]).fillna("")
        click.echo(text_table(table))
        click.echo(f"{len(resolved.accounts)} accounts, {requests} requests", err=True)
    broken = sum(sum((r.get("broken") or {}).values()) for r in rows) + sum(1 for r in rows if r.get("problem"))
    sys.exit(1 if broken else 0)
