"""`flexops sandbox import`: a twin of an account in a new sandbox database, to rehearse repairs on first."""
import os
import sys

import click

from . import fleet, twin_fleet
from .cli_changes import PROFILE_OPTION, TARGET_OPTION, text_table
from .client import connect


@click.command("import")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="The new sandbox database file to write the twin into (refused when it already holds one).")
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--accounts", default="", metavar="all|SID,…",
              help="Also copy subaccounts, as fleet commands name them: all (every subaccount of the main account) "
                   "or comma-separated AC SIDs; the credentials must be the main account's. Blank: only the "
                   "credentials' own account.")
@click.option("--conversations", default=0, show_default=True, type=click.IntRange(0, 1000),
              help="Also copy the N most recent conversations (customer identifiers pseudonymised).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
def import_command(db_path, target, profile, accounts, conversations, progress):
    """Copy an account's configuration into a new sandbox database: a twin to rehearse a repair on.

    Reads (GET only) the account the usual target settings point at — a running sandbox included — and writes
    its address configurations, Studio flows (definition, status, revision), Flex and Conversations configuration,
    Conversations services, TaskRouter workspaces (workflows, queues, task channels, activities) and legacy Flex
    Flows into DB, SIDs kept, so a plan against the twin reads like the plan against the account. No credential or
    secret is copied: the twin has its own, printed below. With --accounts (the main account's credentials), the
    chosen subaccounts are copied too, each a subaccount of the twin's main account with its own fresh auth token
    (printed below, and in the main account's listing, as on Twilio). Then:

    \b
      flexops sandbox serve --db DB --port 8799     # in another shell; or FLEXOPS_SANDBOX_DB=DB
      FLEXOPS_SANDBOX_URL=http://127.0.0.1:8799 flexops <repair> --target sandbox

    \b
    Exit codes:
      0    copied
      2    bad options, DB already holds a sandbox, or an --accounts SID the credentials do not reach
      3    source unreachable, credentials refused, or an account could not be read (nothing written)
    """
    chosen = fleet.parse_accounts(accounts)  # bad input is refused before any call
    client = connect(target, profile=profile)
    click.echo(f"source: {client.flexops_target.describe()} (read only)", err=True)
    progress = sys.stderr.isatty() if progress is None else progress
    copied = twin_fleet.import_accounts(client, db_path, chosen, conversations=conversations, progress=progress)
    click.echo(text_table(twin_fleet.summary(copied)))
    main, subaccounts = copied[0], copied[1:]
    click.echo(f"twin written to {os.path.abspath(db_path)}")
    click.echo(f"  account SID: {main.sid}   (the source's, kept)")
    click.echo(f"  auth token:  {main.creds['auth_token']}   (the twin's own; sandbox only)")
    for sub in subaccounts:
        click.echo(f"  subaccount {sub.sid} {sub.name!r} ({sub.status}): auth token {sub.creds['auth_token']}   "
                   "(the twin's own; also in the main account's listing)")
    click.echo(f"  serve it:    flexops sandbox serve --db {db_path}")
