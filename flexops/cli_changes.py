"""`flexops plan`, `flexops apply` and `flexops rollback`: desired-state changes as audited command runs.

Each change command plans from what the account holds now, shows the plan, asks (or takes --yes), holds the
account's lock, and applies through `plan.apply_recorded` — the same routine runbook 40 uses — inside a run folder
(run_folder.CommandRun), so `flexops runs` and rollback read it like a notebook run.
"""
import contextlib
import os
import sys

import click

from . import desired, plan as plan_api, rollback as rollback_api, run_folder
from .cli_notify import notify_options
from .client import connect
from .lock import AccountLock, describe

TARGET_OPTION = click.option("--target", type=click.Choice(["auto", "sandbox", "twilio"]), default=None,
                             help="Which Twilio [default: FLEXOPS_TARGET or auto].")
PROFILE_OPTION = click.option("--profile", default=None, help="twilio-cli profile to take credentials from.")
PRUNE_OPTION = click.option("--prune/--no-prune", default=None,
                            help="Delete Messenger addresses absent from FILE [default: the file's `prune:`, "
                                 "else no]. Other address types are never touched.")
CHANGE_OPTIONS = [
    click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal)."),
    click.option("--concurrency", default=8, show_default=True, type=int, help="Changes in flight at once (1-32)."),
    click.option("--break-lock", is_flag=True,
                 help="Remove the account's lock first when its holder died on another host (a dead holder on "
                      "this host is taken over without it; a running one is never broken)."),
    click.option("--runs-dir", type=click.Path(file_okay=False), default=None,
                 help="Where run folders are [default: FLEXOPS_RUNS_DIR or runs/]."),
    click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal]."),
]


def _change_options(command):
    for option in reversed(CHANGE_OPTIONS):
        command = option(command)
    return command


def _need_confirmation(yes, dry_run=False):
    """Refuse up front (exit 2) when nobody can be asked: no terminal and no --yes."""
    if not yes and not dry_run and not sys.stdin.isatty():
        click.secho("error: refusing to change the account without confirmation: there is no terminal to ask on. "
                    "Review the changes first (`flexops plan FILE` or --dry-run), then re-run with --yes.",
                    fg="red", err=True)
        sys.exit(2)


def text_table(frame):
    """A DataFrame as left-aligned plain text (pandas right-aligns text, which is hard to scan)."""
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    rows = [list(cells.columns)] + cells.values.tolist()
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)


def _show_plan(the_plan):
    click.echo(f"Target: {the_plan.target}")
    table = the_plan.table(include_noop=False)
    if len(table):
        unused = [c for c in ("sid", "line") if c == "sid" or table[c].isna().all()]
        click.echo(text_table(table.drop(columns=unused)))
    click.echo(f"Plan: {the_plan.summary()}" + (" (prune: true)" if the_plan.prune else ""))


@contextlib.contextmanager
def _account_lock(client, run_id, break_lock):
    """The account's apply lock for this run; says so when it took over a dead holder's lock."""
    with AccountLock(client.account_sid, run_id).acquire(break_lock) as held:
        if held.took_over is not None:
            what = "broke (--break-lock) the lock" if break_lock else "took over a stale lock"
            click.secho(f"note: {what} held by {describe(held.took_over)}", fg="yellow", err=True)
        yield held


def _run_changes(command_run, client, the_plan, yes, concurrency, progress, again):
    """Confirm, apply (the caller holds the lock), record the results in the run folder; returns the exit code.
    `again` is the command that finishes an interrupted or partly failed run."""
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
    progress = sys.stderr.isatty() if progress is None else progress
    result = plan_api.apply_recorded(client, the_plan, command_run.record, concurrency=concurrency,
                                     progress=progress, lock=False)
    for outcome in result.failed:
        click.secho(f"FAILED {outcome.change.action} {outcome.change.address}: {outcome.message}", fg="red",
                    err=True)
    summary = result.summary()
    click.secho(f"{summary['status']}: {summary['ok']} ok, {summary['failed']} failed, {summary['skipped']} not "
                f"started ({summary['elapsed_s']} s) — run {command_run.run_id}",
                fg="green" if result.ok else "red", err=True)
    if not result.ok:
        click.echo(f"Run `{again}` again to finish: it plans from what the account holds now, so only what is "
                   "still different is changed.", err=True)
    status = "succeeded" if result.ok else "interrupted" if result.interrupted else "failed"
    command_run.finish(status, result.exit_code)
    click.echo(os.fspath(command_run.folder))
    return result.exit_code


@click.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also save the plan as JSON here (counts, and per change: action, field-by-field diff, desired "
                   "configuration, the resource as it is now).")
@PRUNE_OPTION
def plan_command(file, target, profile, out, prune):
    """Show what `flexops apply FILE` would change. Changes nothing.

    FILE is a desired-state YAML or CSV file (see examples/inventory.yaml). Every problem in it is listed at once,
    with its line and field; Studio flow names are then resolved against the account. The plan lists each
    Messenger address to create, update (field by field, auto_creation included) or delete (only with prune), and
    counts the unchanged ones.

    \b
    Exit codes:
      0    planned
      2    bad FILE or options
      3    target unreachable or credentials refused
    """
    state = desired.load(file, prune=prune)
    the_plan = plan_api.make_plan(connect(target, profile=profile), state)
    _show_plan(the_plan)
    if out:
        click.echo(f"saved {the_plan.to_json(out)}")


@click.command("apply")
@notify_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--dry-run", is_flag=True, help="Show the plan and stop (no run folder, no lock).")
@PRUNE_OPTION
@_change_options
def apply_command(file, target, profile, dry_run, prune, yes, concurrency, break_lock, runs_dir, progress):
    """Make the account's Messenger addresses match FILE (YAML or CSV), as an audited run.

    Plans from what the account holds now, shows the plan and asks before changing anything (--yes to skip; with
    no terminal, --yes is required). Changes run --concurrency at a time; throttling (429) is waited out, and a
    create or delete whose answer was lost is looked up before any retry, so nothing is duplicated. A change that
    fails is reported with its Twilio error code and the others go on.

    One apply at a time per account (a lock naming its holder's run and age). Every change goes to the run's audit
    trail in runs/<run id>/ (printed at the end); `flexops rollback <run id>` undoes it. Re-running after an
    interruption (Ctrl-C, kill -9) or a failure finishes the job; re-running after success changes nothing.

    \b
    Exit codes:
      0    all changes done, or nothing to do
      1    some changes failed (the others were done), or the lock is held
      2    bad FILE or options, or not confirmed
      3    target unreachable or credentials refused
      130  interrupted (run it again to finish)
    """
    state = desired.load(file, prune=prune)
    plan_api.check_concurrency(concurrency)
    _need_confirmation(yes, dry_run)
    client = connect(target, profile=profile)
    if dry_run:
        _show_plan(plan_api.make_plan(client, state))
        return
    again = f"flexops apply {file}" + ("" if prune is None else " --prune" if prune else " --no-prune")
    with run_folder.CommandRun("apply", click.get_current_context().params, runs_dir) as command_run:
        command_run.attach(client)
        with _account_lock(client, command_run.run_id, break_lock):
            the_plan = plan_api.make_plan(client, state)
            _show_plan(the_plan)
            code = _run_changes(command_run, client, the_plan, yes, concurrency, progress, again)
    sys.exit(code)


@click.command("rollback")
@notify_options
@click.argument("run")
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--force", is_flag=True,
              help="Roll back addresses that changed since RUN too, overwriting those changes (addresses whose "
                   "state before RUN is unknown are still skipped).")
@_change_options
def rollback_command(run, target, profile, force, yes, concurrency, break_lock, runs_dir, progress):
    """Undo exactly what RUN changed, from its audit trail, as an audited run of its own.

    RUN is a run id, a unique part of one, a run folder, or `latest` (a `flexops apply`, a `flexops rollback`, a
    runbook 40 run, or a repair: `flexops legacy retire`, `flexops routing fix`, runbook 70). Deletes what RUN created, restores the previous values of what it updated, and re-creates
    what it deleted with its previous configuration. Shows the plan and asks first (--yes to skip).

    Refuses, changing nothing and naming each address and field, when an address changed after RUN (unless
    --force) or when the audit trail fails verification. Addresses already back as they were before RUN are left
    alone, so an interrupted rollback is finished by running it again. A rollback is itself a run: rolling it back
    redoes RUN.

    \b
    Exit codes:
      0    rolled back, or nothing to undo
      1    refused (an address changed since RUN), some changes failed, or the lock is held
      2    unknown RUN, its audit trail fails verification, bad options, or not confirmed
      3    target unreachable or credentials refused
      130  interrupted (run it again to finish)
    """
    # Resolve RUN (`latest`, a fragment ...) to its folder now: the rollback's own run folder, made below, must not
    # become the `latest` it undoes. A bad RUN is exit 2 before anything else.
    folder = run_folder.find_run(run, runs_dir)
    run = str(folder)
    rollback_api.load_run(run, runs_dir)
    plan_api.check_concurrency(concurrency)
    _need_confirmation(yes)
    client = connect(target, profile=profile)
    with run_folder.CommandRun("rollback", click.get_current_context().params, runs_dir) as command_run:
        command_run.attach(client)
        with _account_lock(client, command_run.run_id, break_lock):
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
            code = _run_changes(command_run, client, the_plan, yes, concurrency, progress,
                                f"flexops rollback {folder.name}" + (" --force" if force else ""))
    sys.exit(code)
