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


# --- demo -----------------------------------------------------------------------------------------------------

@main.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/demo", show_default=True,
              help="Where the executed notebooks, results and report go (the demo's sandbox database too).")
def demo_command(out_dir):
    """Run the whole runbook sequence headless on a fresh local sandbox (no Twilio account needed).

    00 connect -> 10 create a Messenger address -> a simulated first message -> 20 verify -> 30 report ->
    10 again (no change). Prints where each executed notebook and the HTML report are.
    """
    from .demo import run_demo

    run_demo(out_dir)


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


# --- report ---------------------------------------------------------------------------------------------------

@main.command("report")
@click.option("--target", type=click.Choice(["auto", "sandbox", "twilio"]), default=None,
              help="Which Twilio to inventory [default: FLEXOPS_TARGET or auto].")
@click.option("--types", default=None, help="Comma-separated address types, e.g. messenger,whatsapp [default: all].")
@click.option("--format", "formats", default="csv,xlsx,json,html,md", show_default=True,
              help="Comma-separated formats out of csv, xlsx, json, html, md.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder [default: reports/inventory-<UTC timestamp>].")
@click.option("--since", "previous", type=click.Path(exists=True), default=None,
              help="A previous report file or folder (a run folder works): adds 'changes since last report'.")
@click.option("--verify/--no-verify", default=False, show_default=True,
              help="Also verify each address and chart pass/fail.")
@click.option("--title", default="Address configuration inventory", show_default=True, help="Report title.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
def report_command(target, types, formats, out_dir, previous, verify, title, progress):
    """Inventory every address configuration; write CSV, XLSX, JSON, one self-contained HTML report (charts,
    changes since --since) and a Markdown summary. Prints `<format><TAB><path>` per file written."""
    from . import reports

    df, written = reports.run_report(target=target, types=types, formats=formats, out_dir=out_dir,
                                     previous=previous, verify=verify, title=title,
                                     progress=sys.stderr.isatty() if progress is None else progress,
                                     echo=lambda text: click.echo(text, err=True))
    click.echo(f"{len(df)} address configurations", err=True)
    for fmt, path in written.items():
        click.echo(f"{fmt}\t{os.fspath(path)}")


# --- plan / apply / rollback (desired-state inventory) --------------------------------------------------------

TARGET_OPTION = click.option("--target", type=click.Choice(["auto", "sandbox", "twilio"]), default=None,
                             help="Which Twilio [default: FLEXOPS_TARGET or auto].")
PROFILE_OPTION = click.option("--profile", default=None, help="twilio-cli profile to take credentials from.")


def _need_confirmation(yes, dry_run=False):
    """Refuse up front (exit 2) when nobody can be asked: no terminal and no --yes."""
    if not yes and not dry_run and not sys.stdin.isatty():
        click.secho("error: refusing to change the account without confirmation: there is no terminal to ask on. "
                    "Review the changes first (`flexops plan FILE` or --dry-run), then re-run with --yes.",
                    fg="red", err=True)
        sys.exit(2)


def _show_plan(the_plan):
    click.echo(f"Target: {the_plan.target}")
    table = the_plan.table(include_noop=False)
    if len(table):
        unused = [c for c in ("sid", "line") if c == "sid" or table[c].isna().all()]
        click.echo(table.drop(columns=unused).to_string(index=False))
    click.echo(f"Plan: {the_plan.summary()}" + (" (prune: true)" if the_plan.prune else ""))


def _run_changes(command_run, client, the_plan, yes, concurrency, no_progress):
    """Confirm, apply (the caller holds the lock), record the results in the run folder; returns the exit code."""
    from . import plan as plan_api

    command_run.record("plan", the_plan.to_dict())
    if not the_plan.pending:
        click.secho("Nothing to do: the account already matches.", fg="green")
        command_run.record("summary", {"total": 0, "ok": 0, "failed": 0, "status": "succeeded"})
        command_run.finish("succeeded", 0)
        return 0
    try:
        confirmed = yes or click.confirm(f"Apply {len(the_plan.pending)} change(s) to {the_plan.target}?")
    except click.Abort:  # Ctrl-C / end of input at the prompt
        confirmed = False
    if not confirmed:
        command_run.finish("refused", 2, {"ename": "NotConfirmed", "evalue": "the user declined"})
        click.echo("Nothing changed.")
        return 2
    result = plan_api.apply(client, the_plan, concurrency=concurrency, progress=not no_progress, lock=False)
    command_run.record("apply", result.to_dict())
    command_run.record("summary", result.summary())
    for outcome in result.failed:
        click.secho(f"FAILED {outcome.change.action} {outcome.change.address}: {outcome.message}", fg="red",
                    err=True)
    summary = result.summary()
    click.secho(f"{summary['status']}: {summary['ok']} ok, {summary['failed']} failed, {summary['skipped']} not "
                f"started ({summary['elapsed_s']} s) — run {command_run.run_id}",
                fg="green" if result.ok else "red", err=True)
    status = "succeeded" if result.ok else "interrupted" if result.interrupted else "failed"
    command_run.finish(status, result.exit_code)
    click.echo(os.fspath(command_run.folder))
    return result.exit_code


@main.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also save the plan as JSON here.")
@click.option("--prune/--no-prune", default=None, help="Delete Messenger addresses absent from FILE [default: "
                                                       "the file's `prune:`, else no].")
def plan_command(file, target, profile, out, prune):
    """Show what `flexops apply FILE` would change (create / update / delete / unchanged). Changes nothing."""
    from . import desired, plan as plan_api
    from .client import connect

    state = desired.load(file, prune=prune)
    the_plan = plan_api.make_plan(connect(target, profile=profile), state)
    _show_plan(the_plan)
    if out:
        click.echo(f"saved {the_plan.to_json(out)}")


@main.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed without a terminal).")
@click.option("--concurrency", default=8, show_default=True, type=int, help="Changes in flight at once (1-32).")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--break-lock", is_flag=True, help="Remove another apply's lock on this account first (when it died).")
@click.option("--prune/--no-prune", default=None, help="Delete Messenger addresses absent from FILE [default: "
                                                       "the file's `prune:`, else no].")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None,
              help="Where the run folder goes [default: FLEXOPS_RUNS_DIR or runs/].")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def apply_command(file, target, profile, yes, concurrency, dry_run, break_lock, prune, runs_dir, no_progress):
    """Make the account's Messenger addresses match FILE (YAML or CSV), as an audited run.

    Shows the plan and asks before changing anything (--yes to skip). One apply at a time per account.
    Re-running converges after an interruption and is a no-op after success.
    Exit codes: 0 all changes done, 1 some failed (the rest were done), 2 bad input or not confirmed,
    3 target unreachable, 130 interrupted.
    """
    from . import desired, plan as plan_api
    from .client import connect
    from . import runs as runs_api
    from .lock import AccountLock, describe

    state = desired.load(file, prune=prune)
    plan_api._concurrency(concurrency)
    _need_confirmation(yes, dry_run)
    client = connect(target, profile=profile)
    if dry_run:
        _show_plan(plan_api.make_plan(client, state))
        return
    with runs_api.CommandRun("apply", click.get_current_context().params, runs_dir) as command_run:
        command_run.attach(client)
        with AccountLock(client.account_sid, command_run.run_id).acquire(break_lock) as held:
            if held.took_over is not None:
                click.secho(f"note: took over a stale lock held by {describe(held.took_over)}", fg="yellow", err=True)
            the_plan = plan_api.make_plan(client, state)
            _show_plan(the_plan)
            code = _run_changes(command_run, client, the_plan, yes, concurrency, no_progress)
    sys.exit(code)


@main.command("rollback")
@click.argument("run")
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--force", is_flag=True, help="Roll back addresses that changed since RUN too (overwriting).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed without a terminal).")
@click.option("--concurrency", default=8, show_default=True, type=int, help="Changes in flight at once (1-32).")
@click.option("--break-lock", is_flag=True, help="Remove another apply's lock on this account first.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None,
              help="Where runs are [default: FLEXOPS_RUNS_DIR or runs/].")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def rollback_command(run, target, profile, force, yes, concurrency, break_lock, runs_dir, no_progress):
    """Undo what RUN changed (from its audit trail), as an audited run of its own.

    Deletes what RUN created, restores what it updated, re-creates what it deleted. Refuses, naming each address
    and what changed, when an address changed since RUN, unless --force.
    """
    from . import plan as plan_api, rollback as rollback_api, runs as runs_api
    from .client import connect
    from .lock import AccountLock

    rollback_api.load_run(run, runs_dir)  # a bad run id is exit 2 before anything else
    plan_api._concurrency(concurrency)
    _need_confirmation(yes)
    client = connect(target, profile=profile)
    with runs_api.CommandRun("rollback", click.get_current_context().params, runs_dir) as command_run:
        command_run.attach(client)
        with AccountLock(client.account_sid, command_run.run_id).acquire(break_lock):
            try:
                the_plan, conflicts = rollback_api.plan_rollback(client, run, force=force, runs_dir=runs_dir)
            except rollback_api.RollbackRefused as exc:
                command_run.record("conflicts", [c.to_dict() for c in exc.conflicts])
                command_run.finish("refused", exc.exit_code, {"ename": "RollbackRefused", "evalue": str(exc)})
                raise
            for conflict in conflicts:
                click.secho(f"forced: {conflict}", fg="yellow", err=True)
            command_run.record("conflicts", [c.to_dict() for c in conflicts])
            _show_plan(the_plan)
            code = _run_changes(command_run, client, the_plan, yes, concurrency, no_progress)
    sys.exit(code)


if __name__ == "__main__":
    main()
