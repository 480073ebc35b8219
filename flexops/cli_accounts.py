"""`flexops accounts`: the accounts a fleet check covers (`accounts` as runbooks 20 and 30 and `flexops report`
read it), so that a scheduler can fan out one task per account (examples/airflow/flexops_dag.py).

Prints SIDs, names and why an account cannot be checked — never a credential: the subaccount listing's auth
tokens stay in this process's memory. An account that cannot be checked (suspended, not reached) is listed with
its problem rather than left out, so that its task fails loudly instead of the account vanishing from the night.
"""
import json

import click

from . import fleet
from .cli_changes import PROFILE_OPTION, TARGET_OPTION, text_table
from .client import connect


@click.command("accounts")
@click.option("--accounts", default=fleet.ALL, show_default=True, metavar="all|AC…,AC…",
              help="all: every subaccount of the main account, plus the main account itself when it has Flex; "
                   "or these account SIDs; '' just the credentials' own account.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON list: account_sid, account_name, problem, remedy per account.")
@click.option("--sids", "sids_only", is_flag=True, help="Only the SIDs, comma-separated on one line.")
@TARGET_OPTION
@PROFILE_OPTION
def accounts_command(accounts, as_json, sids_only, target, profile):
    """List the accounts a fleet check covers: what a scheduler runs one verification per account over."""
    chosen = fleet.parse_accounts(accounts)  # bad input: exit 2 before any call
    client = connect(target, profile=profile)
    resolved = fleet.resolve(client, chosen)
    fleet.release(resolved, client)
    rows = [{"account_sid": a.sid, "account_name": a.name, "problem": a.problem, "remedy": a.remedy}
            for a in resolved.accounts]
    if as_json:
        click.echo(json.dumps(rows))
    elif sids_only:
        click.echo(",".join(row["account_sid"] for row in rows))
    else:
        import pandas as pd

        click.echo(text_table(pd.DataFrame(rows, columns=["account_sid", "account_name", "problem"])))
        click.echo(f"{len(rows)} accounts, {sum(not r['problem'] for r in rows)} can be checked", err=True)
