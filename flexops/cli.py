"""The `flexops` command: a thin click layer over the Python API.

Exit codes a scheduler can act on: 0 success, 1 a check or step failed, 2 bad parameters or input,
3 could not reach or authenticate the target, 130 interrupted.
"""
import json
import sys

import click

from .exceptions import FlexopsError


class FlexopsGroup(click.Group):
    """Turn flexops errors into one clear line and the documented exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FlexopsError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("interrupted", fg="yellow", err=True)
            sys.exit(130)


@click.group(cls=FlexopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flexops")
def main():
    """Put Facebook Messenger on Twilio Flex and keep it healthy.

    Runbooks (notebooks/) walk you through connect -> create -> verify -> report; `flexops run` executes them
    headless as audited runs. Without Twilio credentials everything runs against a local Twilio sandbox.

    Target selection: --target / FLEXOPS_TARGET = auto (default: real Twilio when TWILIO_* credentials or a
    twilio-cli profile are configured, else the sandbox) | sandbox | twilio.
    """


# --- sandbox --------------------------------------------------------------------------------------------------

@main.group()
def sandbox():
    """The local stateful Twilio used by default when no credentials are configured."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback unless told).")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 = any free port).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="SQLite state file [default: FLEXOPS_SANDBOX_DB or .flexops/sandbox.db].")
@click.option("--seed", type=click.Choice(["demo", "none"]), default="demo", show_default=True,
              help="Seed the demo account when the database has no account yet.")
@click.option("--reset", is_flag=True, help="Wipe the database before serving.")
def sandbox_serve(host, port, db_path, seed, reset):
    """Serve the sandbox over HTTP until Ctrl-C; prints the base URL and the demo credentials.

    Point flexops at it from another shell with FLEXOPS_SANDBOX_URL=<url>.
    """
    from .sandbox import seed as seeding
    from .sandbox.app import credentials
    from .sandbox.server import SandboxServer
    from .settings import sandbox_db_path

    server = SandboxServer(db_path or sandbox_db_path(), host=host, port=port)
    store = server.store
    if reset:
        store.reset()
    if seed == "demo" and not store.setting("default_account"):
        created = seeding.seed_demo(store)
        store.set_setting("default_account", created["account_sid"])
    click.echo(f"flexops sandbox listening on {server.url}")
    click.echo(f"  export FLEXOPS_SANDBOX_URL={server.url}")
    if store.setting("default_account"):
        creds = credentials(store, store.setting("default_account"))
        click.echo(f"  account SID: {creds['account_sid']}")
        click.echo(f"  auth token:  {creds['auth_token']}   (sandbox only; `flexops sandbox credentials --json`)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.secho(f"warning: bound to {host}, not loopback: anyone who can reach it can use it", fg="yellow")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")


@sandbox.command("credentials")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None, help="SQLite state file.")
@click.option("--url", default=None, help="Ask a running sandbox instead [default: FLEXOPS_SANDBOX_URL].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON {account_sid, auth_token, api_key, api_secret}.")
def sandbox_credentials(db_path, url, as_json):
    """Print the sandbox demo account's credentials (they only work against the sandbox)."""
    import os

    from .sandbox.app import credentials
    from .sandbox.control import SandboxControl
    from .sandbox.store import Store
    from .settings import sandbox_db_path

    url = url or (None if db_path else os.environ.get("FLEXOPS_SANDBOX_URL"))
    if url:
        creds = SandboxControl(url).credentials()
    else:
        store = Store(db_path or sandbox_db_path())
        account = store.setting("default_account")
        if not account:
            raise click.ClickException("this sandbox database has no account yet: run `flexops sandbox serve` first")
        creds = credentials(store, account)
    if as_json:
        click.echo(json.dumps(creds, indent=2))
    else:
        for key, value in creds.items():
            click.echo(f"{key}: {value}")


if __name__ == "__main__":
    main()
