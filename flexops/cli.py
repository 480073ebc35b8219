"""The `flexops` command: a thin click layer over the Python API.

Exit codes a scheduler can act on: 0 success, 1 a check or step failed, 2 bad parameters or input,
3 could not reach or authenticate the target, 130 interrupted.
"""
import json
import os
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


# --- run / runs -----------------------------------------------------------------------------------------------

@main.command("run")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A notebook parameter; typed like papermill's -p, but text stays text where the notebook's "
                   "default is a string (page IDs such as 0012 keep their zeros).")
@click.option("-r", "--raw-parameter", "raw_parameters", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter passed as a string, always.")
@click.option("-f", "--parameters-file", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON mapping of parameters (-p/-r win over it).")
@click.option("--target", type=click.Choice(["auto", "sandbox", "twilio"]), default=None,
              help="Which Twilio the runbook talks to [default: FLEXOPS_TARGET or the notebook's own default].")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None,
              help="Where run folders go [default: FLEXOPS_RUNS_DIR or runs/].")
@click.option("--no-input", is_flag=True, help="Leave code cells out of output.html.")
@click.option("--report-mode", is_flag=True, help="Hide code cells in output.ipynb (papermill report mode).")
def run_command(notebook, parameters, raw_parameters, parameters_file, target, runs_dir, no_input, report_mode):
    """Run a runbook headless into runs/<stamp>-<name>-<id>/ (output.ipynb, output.html, parameters.json,
    results.json, audit.jsonl, manifest.json).

    Exit codes: 0 success, 1 a check/step failed, 2 bad parameters, 3 target unreachable or credentials
    refused, 130 interrupted. Credentials are never parameters: they come from the environment.
    """
    from . import runs

    given = runs.load_parameters_file(parameters_file) if parameters_file else {}
    given.update(dict(parameters))
    record = runs.execute(notebook, given, target=target, runs_dir=runs_dir, raw_parameters=dict(raw_parameters),
                          no_input=no_input, report_mode=report_mode, progress_bar=sys.stderr.isatty())
    error = record.error or {}
    colour = {"succeeded": "green", "interrupted": "yellow"}.get(record.status, "red")
    click.secho(f"{record.status}: {record.run_id} (exit {record.exit_code})", fg=colour, err=True)
    if error:
        where = f" in cell {error['cell_index']}" if error.get("cell_index") is not None else ""
        click.echo(f"  {error['ename']}{where}: {str(error['evalue']).splitlines()[0] if error['evalue'] else ''}",
                   err=True)
    click.echo(os.fspath(record.folder))
    sys.exit(record.exit_code)


@main.group()
def runs():
    """Past runs: list them, show one, verify its audit trail."""


@runs.command("list")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None, help="[default: FLEXOPS_RUNS_DIR or runs/]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
def runs_list(runs_dir, as_json):
    """One row per run: id, notebook, target, status, started, duration (s), changes (audit lines)."""
    from . import runs as runs_api

    rows = [runs_api.row(folder, manifest) for folder, manifest in runs_api.list_runs(runs_dir)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(f"no runs in {runs_api.runs_root(runs_dir)}")
    else:
        import pandas as pd

        click.echo(pd.DataFrame(rows).to_string(index=False))


@runs.command("show")
@click.argument("run")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None)
def runs_show(run, runs_dir):
    """The manifest and recorded results of RUN (an id, a unique part of one, a folder, or `latest`)."""
    from . import runs as runs_api

    folder = runs_api.find_run(run, runs_dir)
    manifest = json.loads((folder / runs_api.MANIFEST).read_text())
    results = json.loads((folder / "results.json").read_text()) if (folder / "results.json").exists() else {}
    click.echo(json.dumps({"folder": os.fspath(folder), "manifest": manifest,
                           "results": {k: results[k] for k in ("summary", "parameters", "target") if k in results}
                           | {"recorded": sorted(results)}}, indent=2, default=str))


@runs.command("verify")
@click.argument("run")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None)
def runs_verify(run, runs_dir):
    """Check RUN's audit hash chain; exit 1 naming the first bad line when it was tampered with."""
    from . import runs as runs_api

    ok, line, message = runs_api.verify_run(run, runs_dir)
    click.secho(("ok: " if ok else "BROKEN: ") + message, fg="green" if ok else "red", err=not ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
