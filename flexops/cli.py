"""The `flexops` command: a thin click layer over the Python API.

Exit codes a scheduler can act on: 0 success, 1 a check or step failed, 2 bad parameters or input,
3 could not reach or authenticate the target, 130 interrupted.
"""
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from . import checks, fleet, inventory, reports, run_folder, run_index
from .cli_accounts import accounts_command
from .cli_changes import apply_command, plan_command, rollback_command, text_table
from .cli_janitor import janitor_command
from .cli_repairs import legacy_group, routing_group
from .cli_notify import note, notify_options, runs_index_command
from .cli_trace import trace_command
from .cli_twin import import_command as sandbox_import_command
from .client import connect
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
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Loopback only, unless --allow-remote: any other address exposes the "
                   "sandbox to the network.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --host (and requests naming this machine by any name). The control plane "
                   "still needs its token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0 = any free port).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="SQLite state file, created readable by you only [default: FLEXOPS_SANDBOX_DB or "
                   ".flexops/sandbox.db].")
@click.option("--seed", type=click.Choice(["demo", "fleet", "none"]), default="demo", show_default=True,
              help="Seed the demo account (fleet: a main account with 3 Flex subaccounts, one broken) when the "
                   "database has no account yet.")
@click.option("--reset", is_flag=True, help="Wipe the database before serving (its control token stays).")
def sandbox_serve(host, allow_remote, port, db_path, seed, reset):
    """Serve the local Twilio sandbox over HTTP until Ctrl-C.

    Prints the base URL, the control token of its `/__sandbox/` control plane and the demo account's credentials
    (they work only against this sandbox). Point flexops, notebooks and `flexops run` at it from another shell
    with `export FLEXOPS_SANDBOX_URL=<url>` (and FLEXOPS_SANDBOX_TOKEN=<token>, unless that shell can read the
    database: flexops then finds the token there). State lives in the SQLite file (--db) and survives restarts.
    Listens on loopback (127.0.0.1) unless --host and --allow-remote say otherwise.
    """
    from .sandbox import seed as seeding
    from .sandbox.control_plane import credentials
    from .sandbox.server import SandboxServer
    from .settings import sandbox_db_path

    server = SandboxServer(db_path or sandbox_db_path(), host=host, port=port,  # werkzeug explains a busy port
                           allow_remote=allow_remote)
    store = server.store
    if reset:
        store.reset()
    if seed != "none" and not store.setting("default_account"):
        created = seeding.seed_fleet(store) if seed == "fleet" else seeding.seed_demo(store)
        store.set_setting("default_account", created["account_sid"])
    click.echo(f"flexops sandbox listening on {server.url}")
    click.echo(f"  export FLEXOPS_SANDBOX_URL={server.url}")
    click.echo(f"  export FLEXOPS_SANDBOX_TOKEN={server.control_token}   (control plane; keep it secret)")
    if store.setting("default_account"):
        creds = credentials(store, store.setting("default_account"))
        click.echo(f"  account SID: {creds['account_sid']}")
        click.echo(f"  auth token:  {creds['auth_token']}   (sandbox only; `flexops sandbox credentials --json`)")
    if allow_remote:
        click.secho(f"warning: --allow-remote: listening on {host}; anyone who can reach it can use its Twilio API "
                    "with the credentials above", fg="yellow", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")


@sandbox.command("credentials")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None, help="SQLite state file.")
@click.option("--url", default=None, help="Ask a running sandbox instead [default: FLEXOPS_SANDBOX_URL].")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON {account_sid, auth_token, api_key, api_secret, control_token}.")
def sandbox_credentials(db_path, url, as_json):
    """Print the sandbox demo account's credentials (they only work against the sandbox) and the control token
    of its control plane."""
    import os

    from .sandbox.control import SandboxControl
    from .sandbox.control_plane import control_token, credentials
    from .sandbox.store import Store
    from .settings import sandbox_db_path

    url = url or (None if db_path else os.environ.get("FLEXOPS_SANDBOX_URL"))
    if url:
        control = SandboxControl(url)
        creds = {**control.credentials(), "control_token": control.token}
    else:
        path = db_path or sandbox_db_path()
        if not os.path.isfile(path):  # Store() would create an empty database: say what is missing instead
            raise click.ClickException(f"no sandbox database at {path}: run `flexops sandbox serve` first, or give "
                                       "--db / --url")
        store = Store(path)
        account = store.setting("default_account")
        if not account:
            raise click.ClickException("this sandbox database has no account yet: run `flexops sandbox serve` first")
        creds = {**credentials(store, account), "control_token": control_token(store)}
    if as_json:
        click.echo(json.dumps(creds, indent=2))
    else:
        for key, value in creds.items():
            click.echo(f"{key}: {value}")


# --- demo -----------------------------------------------------------------------------------------------------

@main.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/demo", show_default=True,
              help="Where the executed notebooks, results and report go (the demo's sandbox database too).")
@click.option("--fleet", is_flag=True, help="Instead: a main account with 3 subaccounts (one broken), verified and "
                                            "reported as one fleet (runbooks 20 and 30 with accounts=all).")
def demo_command(out_dir, fleet):
    """Run the whole runbook sequence headless on a fresh local sandbox (no Twilio account needed).

    00 connect -> 10 create a Messenger address -> a simulated first message -> 20 verify -> 30 report ->
    10 again (no change). Prints where each executed notebook and the HTML report are.
    """
    from .demo import run_demo, run_fleet_demo

    if fleet:
        run_fleet_demo(Path(out_dir) / "fleet")
    else:
        run_demo(out_dir)


# --- run / runs -----------------------------------------------------------------------------------------------

@main.command("run")
@notify_options
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
    """Run a runbook headless as an audited run; print its run folder.

    Each run gets runs/<UTC stamp>-<notebook>-<id>/ holding output.ipynb, output.html, parameters.json,
    results.json, audit.jsonl (one hash-chained line per change made to Twilio, written as it happens) and
    manifest.json (what ran, where, by whom, how it ended) - complete after a failure, a bad parameter or
    Ctrl-C too.

    Parameters are checked against the notebook's parameters cell before it starts: an unknown name is an error.
    `papermill --help-notebook NOTEBOOK` lists them. Credentials are never parameters: they come from the
    environment (TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, or with TWILIO_API_KEY + TWILIO_API_SECRET) or a
    twilio-cli profile.

    \b
    Exit codes:
      0    succeeded
      1    a check or step failed (the run folder says which and how to fix it)
      2    bad parameters
      3    Twilio unreachable, or credentials refused or missing
      130  interrupted (Ctrl-C, SIGINT, SIGTERM)

    \b
    Examples:
      flexops run notebooks/20_verify_messenger_addresses.ipynb --target twilio --no-input
      flexops run notebooks/10_create_messenger_address.ipynb -p page_id 0012345678 -p dry_run true
      flexops runs list; flexops runs show latest; flexops runs verify latest
    """
    from . import runs  # papermill and jupyter_client load only for `flexops run`: the other commands start quickly

    record = runs.execute(notebook, dict(parameters), target=target, runs_dir=runs_dir,
                          raw_parameters=dict(raw_parameters), parameters_file=parameters_file, no_input=no_input,
                          report_mode=report_mode, progress_bar=sys.stderr.isatty())
    error = record.error or {}
    colour = {"succeeded": "green", "interrupted": "yellow"}.get(record.status, "red")
    click.secho(f"{record.status}: {record.run_id} (exit {record.exit_code})", fg=colour, err=True)
    if error:
        where = f" at cell {error['cell_index']}" if error.get("cell_index") is not None else ""
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
    """One row per run, oldest first: id, notebook, target, status, started (UTC), duration, changes (calls
    Twilio accepted; `+N failed`: refused or failed; `+N unanswered`: sent when the run was killed, outcome
    unknown). Status `aborted`: the run's process was killed."""
    rows = [run_index.row(folder, manifest) for folder, manifest in run_folder.list_runs(runs_dir)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(f"no runs in {run_folder.runs_root(runs_dir)}")
    else:
        import pandas as pd

        table = pd.DataFrame([{
            **{k: r[k] for k in ("id", "notebook", "target", "status")},
            "started": str(r["started"] or "").replace("T", " ").replace("+00:00", ""),
            "duration": "-" if r["duration"] is None else f"{r['duration']:.1f} s",
            "changes": run_index.changes_label(r)}
            for r in rows])
        click.echo(text_table(table))


@runs.command("show")
@click.argument("run")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None, help="[default: FLEXOPS_RUNS_DIR or runs/]")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest and results.json as JSON.")
def runs_show(run, runs_dir, as_json):
    """What RUN (an id, a unique part of one, a folder, or `latest`) ran, against which account, how it ended and
    each change it made."""
    folder = run_folder.find_run(run, runs_dir)
    if not as_json:
        click.echo(run_index.describe(folder))
        return
    manifest = json.loads((folder / run_folder.MANIFEST).read_text())
    results = json.loads((folder / run_folder.RESULTS).read_text()) if (folder / run_folder.RESULTS).exists() else {}
    click.echo(json.dumps({"folder": os.fspath(folder), "manifest": manifest, "results": results}, indent=2,
                          default=str, ensure_ascii=False))


@runs.command("verify")
@click.argument("run")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None, help="[default: FLEXOPS_RUNS_DIR or runs/]")
def runs_verify(run, runs_dir):
    """Check RUN's audit hash chain; exit 1 naming the first bad line when it was tampered with."""
    ok, line, message = run_folder.verify_run(run, runs_dir)
    click.secho(("ok: " if ok else "BROKEN: ") + message, fg="green" if ok else "red", err=not ok)
    sys.exit(0 if ok else 1)


# --- report ---------------------------------------------------------------------------------------------------

@main.command("report")
@notify_options
@click.option("--target", type=click.Choice(["auto", "sandbox", "twilio"]), default=None,
              help="Which Twilio to inventory [default: FLEXOPS_TARGET or auto].")
@click.option("--types", default=None, help="Comma-separated address types, e.g. messenger,whatsapp [default: all].")
@click.option("--format", "formats", default="csv,xlsx,json,html,md", show_default=True,
              help="Comma-separated formats out of csv, xlsx, json, html, md.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder [default: reports/inventory-<UTC timestamp>].")
@click.option("--since", type=click.Path(exists=True), default=None,
              help="Add 'changes since last report': a previous report file, its folder, a run folder, or a "
                   "folder of reports such as reports/ (the newest one in it is used).")
@click.option("--verify/--no-verify", default=False, show_default=True,
              help="Also verify each address and chart pass/fail.")
@click.option("--title", default="Address configuration inventory", show_default=True, help="Report title.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
@click.option("--accounts", default="", metavar="all|AC…,AC…",
              help="A fleet: every subaccount of the main account (all) or these account SIDs, in one report with "
                   "a table per account first [default: the credentials' own account].")
def report_command(target, types, formats, out_dir, since, verify, title, progress, accounts):
    """Inventory every address configuration; write CSV, XLSX, JSON, one self-contained HTML report (charts,
    changes since --since) and a Markdown summary. Prints `<format><TAB><path>` per file written."""
    df, written = run_report(target=target, types=types, formats=formats, out_dir=out_dir,
                                     since=since, verify=verify, title=title, accounts=accounts,
                                     progress=sys.stderr.isatty() if progress is None else progress,
                                     echo=lambda text: click.echo(text, err=True))
    click.echo(f"{len(df)} address configurations", err=True)
    note(addresses=len(df), **({"report": os.fspath(written["html"])} if "html" in written else {}))
    for fmt, path in written.items():
        click.echo(f"{fmt}\t{os.fspath(path)}")


def run_report(target=None, types=None, formats=reports.FORMATS, out_dir=None, since=None, verify=False,
               title=reports.DEFAULT_TITLE, progress=True, echo=None, accounts=""):
    """Connect, collect, export: what `flexops report` does. Every input is checked before the first API call.

    Returns (inventory DataFrame, {format: Path}); `echo(text)` (optional) hears which target is used. The default
    folder is reports/inventory-<UTC stamp>: a new one per report, so `--since` can point at the last one.
    """
    chosen_formats, chosen_types = reports.check_formats(formats), inventory.parse_types(types)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = reports.check_output(out_dir or Path("reports") / f"inventory-{stamp}", title)
    before = reports.load_previous(since, "since")
    chosen_accounts = fleet.parse_accounts(accounts)
    client = connect(target)
    if echo:
        echo(f"target: {client.flexops_target.describe()}")
    if chosen_accounts:
        resolved = fleet.resolve(client, chosen_accounts)
        df, per_account = fleet.collect(resolved, chosen_types, checks.verify_inventory if verify else None)
        fleet.release(resolved, client)
        if echo:
            echo("\n".join(f"{a['status']:<5} {a['account_name'] or '-'} {a['account_sid']}: {a['addresses']} "
                           f"addresses{'; ' + a['problem'] if a['problem'] else ''}" for a in per_account))
    else:
        df = inventory.collect(client, types=chosen_types, progress=progress,
                               verify=checks.verify_inventory if verify else None)
    written = reports.export(df, out, formats=chosen_formats, previous=before, title=title,
                             metadata={"types": chosen_types or "all"})
    if echo and before is not None:
        counts = inventory.diff(before, df).counts
        echo(f"since {(before.attrs.get('flexops') or {}).get('loaded_from', 'the previous inventory')}: "
             + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return df, written


for _command in (accounts_command, plan_command, apply_command, rollback_command, trace_command, janitor_command,
                 legacy_group, routing_group):
    main.add_command(_command)
sandbox.add_command(sandbox_import_command)
runs.add_command(runs_index_command)


if __name__ == "__main__":
    main()
