"""`flexops sandbox import`: a twin of an account in a new sandbox database, to rehearse repairs on first."""
import os
import sys

import click

from . import twin
from .cli_changes import PROFILE_OPTION, TARGET_OPTION, text_table
from .client import connect
from .exceptions import ValidationError
from .settings import mask_sid


@click.command("import")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="The new sandbox database file to write the twin into (refused when it already holds one).")
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--accounts", default=None, metavar="SID",
              help="Which account to copy: only the account of the credentials is supported here (its SID, or "
                   "leave it out).")
@click.option("--conversations", default=0, show_default=True, type=click.IntRange(0, 1000),
              help="Also copy the N most recent conversations (customer identifiers pseudonymised).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
def import_command(db_path, target, profile, accounts, conversations, progress):
    """Copy an account's configuration into a new sandbox database: a twin to rehearse a repair on.

    Reads (GET only) the account the usual target settings point at — a running sandbox included — and writes
    its address configurations, Studio flows (definition, status, revision), Flex and Conversations configuration,
    Conversations services, TaskRouter workspaces (workflows, queues, task channels, activities) and legacy Flex
    Flows into DB, SIDs kept, so a plan against the twin reads like the plan against the account. No credential or
    secret is copied: the twin has its own, printed below. Then:

    \b
      flexops sandbox serve --db DB --port 8799     # in another shell; or FLEXOPS_SANDBOX_DB=DB
      FLEXOPS_SANDBOX_URL=http://127.0.0.1:8799 flexops <repair> --target sandbox

    \b
    Exit codes:
      0    copied
      2    bad options, or DB already holds a sandbox
      3    source unreachable or credentials refused
    """
    client = connect(target, profile=profile)
    if accounts not in (None, "", client.account_sid):
        raise ValidationError("accounts", "only the account of the credentials can be copied "
                                          f"({mask_sid(client.account_sid)}); subaccount fleets are not supported "
                                          "by this command yet", mask_sid(accounts))
    click.echo(f"source: {client.flexops_target.describe()} (read only)", err=True)
    progress = sys.stderr.isatty() if progress is None else progress
    counts, creds = twin.import_account(client, db_path, conversations=conversations, progress=progress)
    import pandas as pd

    table = pd.DataFrame([{"copied": kind, "count": n} for kind, n in counts.items()])
    click.echo(text_table(table))
    click.echo(f"twin written to {os.path.abspath(db_path)}")
    click.echo(f"  account SID: {creds['account_sid']}   (the source's, kept)")
    click.echo(f"  auth token:  {creds['auth_token']}   (the twin's own; sandbox only)")
    click.echo(f"  serve it:    flexops sandbox serve --db {db_path}")
