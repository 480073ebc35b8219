"""`flexops janitor`: close stale Messenger conversations as an audited command run.

Like `flexops apply`: plan from what the account holds now, show it, ask (or --yes), hold the account's lock, change
inside a run folder (run_folder.CommandRun) whose audit trail records every close, then check the result.
"""
import os
import sys

import click

from . import janitor, run_folder
from .cli_changes import PROFILE_OPTION, TARGET_OPTION, _account_lock, _change_options, _need_confirmation, text_table
from .cli_repairs import show_verified
from .client import connect
from .address_spec import normalise_page_id
from .coerce import as_duration
from .plan import check_concurrency


def show_plan(the_plan, echo=click.echo):
    echo(f"Target: {the_plan.target}")
    if the_plan.stale:
        echo(text_table(the_plan.table()))
    echo(f"Plan: {the_plan.summary()}")


def run_janitor(command_run, client, page_ids, idle, yes, concurrency, progress):
    """Plan, confirm, close, verify, recording each step in the run folder; returns the exit code. The caller
    holds the account's lock."""
    the_plan = janitor.find_stale(client, page_ids, idle, progress=progress)
    command_run.record("plan", the_plan.to_dict())
    show_plan(the_plan)
    if not the_plan.stale:
        click.secho("Nothing to do: no stale conversation.", fg="green")
        command_run.record("summary", {"total": 0, "ok": 0, "failed": 0, "status": "succeeded"})
        command_run.finish("succeeded", 0)
        return 0
    click.secho(janitor.IRREVERSIBLE, fg="yellow")
    try:
        confirmed = yes or click.confirm(f"Close {len(the_plan.stale)} conversation(s) on {the_plan.target}?")
    except click.Abort:
        confirmed = False
    if not confirmed:
        command_run.finish("refused", 2, {"ename": "NotConfirmed", "evalue": "the user declined"})
        click.echo("Nothing changed.")
        return 2
    result, check = janitor.close_recorded(client, the_plan, command_run.record, concurrency=concurrency,
                                           progress=progress, lock=False)
    for outcome in result.failed:
        click.secho(f"FAILED close {outcome.conversation_sid}: {outcome.message}", fg="red", err=True)
    for outcome in (o for o in result.outcomes if o.status == "skipped" and o.message):
        click.secho(f"left alone {outcome.conversation_sid}: {outcome.result} ({outcome.message})", fg="yellow",
                    err=True)
    for row in check["traces"]:
        show_verified(row)
    summary = result.summary()
    click.secho(f"{summary['status']}: {summary['ok']} closed, {summary['failed']} failed, {summary['skipped']} not "
                f"started ({summary['elapsed_s']} s); verified closed: {'yes' if check['all_closed'] else 'no'} — "
                f"run {command_run.run_id}", fg="green" if result.ok else "red", err=True)
    if not check["all_closed"] or summary["failed"] or summary["skipped"]:
        click.echo("Run the same `flexops janitor` again to finish: it only finds what is still active.", err=True)
    code = result.exit_code
    status = "succeeded" if code == 0 else "interrupted" if result.interrupted else "failed"
    command_run.finish(status, code)
    return code


@click.command("janitor")
@click.option("--page", "pages", multiple=True, metavar="ID",
              help="A Facebook Page ID whose conversations to look at (repeat for more) [default: every Page].")
@click.option("--idle", default=janitor.DEFAULT_IDLE, show_default=True,
              help="How long since the last message before an active conversation with no open Flex task is "
                   "stale: 0s, 30m, 24h, 7d ...")
@TARGET_OPTION
@PROFILE_OPTION
@_change_options
def janitor_command(pages, idle, target, profile, yes, concurrency, break_lock, runs_dir, progress):
    """Close stale Messenger conversations: active, no open Flex task, last message older than --idle.

    Such a conversation swallows the customer's next message: it lands there, no Studio execution starts, no agent
    sees it. Closing it frees the customer and the Page, so the next message starts a new conversation that Studio
    hands to Flex. Closing CANNOT be undone (Twilio cannot reopen a closed conversation), so
    `flexops rollback` of a janitor run refuses.

    Shows the plan (conversation, Page, masked customer, age of the last message, why it is stale) and asks first
    (--yes to skip; with no terminal --yes is required). Closes --concurrency at a time; a failed close (429, 5xx)
    is retried only after re-reading the conversation, so nothing is closed twice. Every close goes to the run's
    audit trail (runs/<run id>/). Re-running after an interruption finishes the job.

    \b
    Exit codes:
      0    closed and verified (closed, each Page's trace), or nothing to do
      1    some closes failed, a conversation changed since the plan (left alone), a Page's trace is still
           broken, or the lock is held
      2    bad options, or not confirmed
      3    target unreachable or credentials refused
      130  interrupted (run it again to finish)
    """
    as_duration("idle", idle)  # bad input: exit 2 before anything else
    page_ids = [normalise_page_id(p, "page") for p in pages]
    check_concurrency(concurrency)
    _need_confirmation(yes)
    client = connect(target, profile=profile)
    progress = sys.stderr.isatty() if progress is None else progress
    with run_folder.CommandRun("janitor", click.get_current_context().params, runs_dir) as command_run:
        command_run.attach(client)
        with _account_lock(client, command_run.run_id, break_lock):
            code = run_janitor(command_run, client, page_ids, idle, yes, concurrency, progress)
    click.echo(os.fspath(command_run.folder))
    sys.exit(code)
