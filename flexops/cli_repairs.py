"""`flexops legacy list|retire` and `flexops routing check|fix`: repairs as audited command runs.

Each repair is plan -> confirm -> apply -> verify exactly as `flexops apply` is (cli_changes): planned from what the
account holds now under the account's lock, shown (with the before/after diff), confirmed (or --yes), applied
through plan.apply_recorded inside a run folder, verified, and undone by `flexops rollback RUN`.
"""
import json
import sys

import click

from . import legacy, routing, run_folder
from .atomic import read_json
from .cli_changes import (PROFILE_OPTION, TARGET_OPTION, _account_lock, _need_confirmation, _run_changes, _show_plan,
                          text_table)
from .client import connect
from .params import resolve_flow

EXIT_CODES = """
    \b
    Exit codes:
      0    repaired (and verified: the changes as made, each affected Page's trace), or nothing to do
      1    a step failed (the others were done), a Page's trace is still broken (its remedy is printed), or the
           lock is held
      2    bad arguments, or not confirmed
      3    target unreachable or credentials refused
      130  interrupted (run it again to finish)"""
REPAIR_OPTIONS = [
    TARGET_OPTION, PROFILE_OPTION,
    click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal)."),
    click.option("--dry-run", is_flag=True, help="Show the plan and stop (no run folder, no lock)."),
    click.option("--break-lock", is_flag=True, help="Remove the account's lock first when its holder died on "
                                                    "another host."),
    click.option("--runs-dir", type=click.Path(file_okay=False), default=None,
                 help="Where run folders are [default: FLEXOPS_RUNS_DIR or runs/]."),
]


def _repair_options(command):
    for option in reversed(REPAIR_OPTIONS):
        command = option(command)
    return command


def _show(the_plan):
    _show_plan(the_plan)
    for step in the_plan.steps:
        if step.diff:
            click.echo(step.diff)
    for note in the_plan.notes:
        click.secho(f"note: {note}", fg="yellow")


def show_verified(row):
    """One verify row (a resource as the repair made it, or a Page's trace after it), its remedy or note below."""
    click.secho(f"verified {row['target']}: {row['detail']}", fg="green" if row["ok"] else "red")
    if row.get("remedy"):
        click.secho(f"  remedy: {row['remedy']}", fg="red")
    if row.get("note"):
        click.secho(f"  note: {row['note']}", fg="yellow")


def run_repair(name, make_plan, options, again):
    """Plan under the lock, show, confirm, apply, verify — in a run folder. Returns the exit code."""
    _need_confirmation(options["yes"], options["dry_run"])
    client = connect(options["target"], profile=options["profile"])
    if options["dry_run"]:
        _show(make_plan(client))
        return 0
    with run_folder.CommandRun(name, click.get_current_context().params, options["runs_dir"]) as command_run:
        command_run.attach(client)
        with _account_lock(client, command_run.run_id, options["break_lock"]):
            the_plan = make_plan(client)
            _show(the_plan)
            code = _run_changes(command_run, client, the_plan, options["yes"], 1, False, again)
    results = read_json(command_run.folder / run_folder.RESULTS, {})
    for line in legacy.gaps_text(results.get("gaps")):
        click.echo(line)
    for row in results.get("verify") or []:
        show_verified(row)
    if any(not row["ok"] for row in results.get("verify") or []) and code == 0:
        code = 1
    if code == 0 and the_plan.steps:
        click.echo(f"Undo with: flexops rollback {command_run.run_id}")
    return code


# --- legacy ---------------------------------------------------------------------------------------------------

@click.group("legacy")
def legacy_group():
    """Legacy Flex Flows (Flex UI 1.x) that still hold a Facebook Page after the move to Flex Conversations."""


@legacy_group.command("list")
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def legacy_list(target, profile, as_json):
    """Legacy messaging Flex Flows (facebook, whatsapp, sms, line): what each holds, the Conversations address for
    the same Page and whether they collide (an enabled Flex Flow takes the Page's messages). Changes nothing."""
    rows = legacy.inventory(connect(target, profile=profile))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif rows:
        click.echo(text_table(legacy.table(rows)))
    else:
        click.echo("No legacy messaging Flex Flows.")


@legacy_group.command("retire")
@click.argument("flex_flow_sids", nargs=-1)
@click.option("--all-facebook", is_flag=True, help="Retire every Flex Flow of channel type facebook.")
@click.option("--disable", is_flag=True, help="Disable instead of delete (the configuration stays).")
@click.option("--replace", is_flag=True, help="Create each Page's Conversations address right after retiring its "
                                              "Flex Flow (Studio: your Flex messaging flow).")
@click.option("--studio-flow", "studio_flow_sid", default=None,
              help="The Flex messaging flow for --replace [default: the account's only published Send-to-Flex "
                   "flow].")
@_repair_options
def legacy_retire(flex_flow_sids, all_facebook, disable, replace, studio_flow_sid, **options):
    """Delete (or --disable) legacy Flex Flows, as an audited run, after confirmation.

    FLEX_FLOW_SIDS are FO… SIDs (`flexops legacy list`); --all-facebook takes every facebook one. The full previous
    configuration goes to the run's audit trail and results; `flexops rollback RUN` re-creates (with a new SID) or
    re-enables them. With --replace, each Page's Messenger address is created right after its Flex Flow is retired
    (Twilio's migration: remove the legacy address, then create the new one), and the gap between the two calls is
    measured and printed. Flex Flow calls are paced (about one a second, Twilio's limit).
    """
    def make_plan(client):
        flow = resolve_flow(client, studio_flow_sid) if replace else None
        return legacy.plan_retire(client, flex_flow_sids, all_facebook, disable, replace, flow,
                                  runs_dir=options["runs_dir"])

    again = " ".join(["flexops legacy retire", *flex_flow_sids] + [flag for flag, on in (
        ("--all-facebook", all_facebook), ("--disable", disable), ("--replace", replace)) if on])
    sys.exit(run_repair("legacy-retire", make_plan, options, again))


legacy_retire.help += EXIT_CODES


# --- routing --------------------------------------------------------------------------------------------------

@click.group("routing")
def routing_group():
    """TaskRouter workflows of Flex's workspace that cannot route a Messenger task."""


@routing_group.command("check")
@TARGET_OPTION
@PROFILE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def routing_check(target, profile, as_json):
    """Evaluate every workflow filter (and target) against a Messenger task; list those that can never route one
    and those that still match only the legacy channelType 'facebook'. Changes nothing.

    \b
    Exit codes: 0 every workflow routes Messenger tasks and no filter is legacy-only, 1 otherwise, 3 unreachable.
    """
    report = routing.check(connect(target, profile=profile))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"Flex workspace {report['workspace_sid']}")
        click.echo(text_table(routing.findings_table(report)))
        for workflow in report["workflows"]:
            for problem in workflow["problems"]:
                click.secho(f"{workflow['friendly_name']}: {problem}", fg="red")
    bad = any(w["problems"] or w["findings"] for w in report["workflows"])
    sys.exit(1 if bad else 0)


@routing_group.command("fix")
@click.argument("workflow_sids", nargs=-1)
@_repair_options
def routing_fix(workflow_sids, **options):
    """Rewrite legacy-only expressions of Flex's workflows so Messenger tasks match too, as an audited run.

    WORKFLOW_SIDS (WW…) limit the fix to those workflows [default: every workflow with a fixable finding]. Shows
    each workflow's configuration before/after as a diff and asks first; `flexops rollback RUN` restores the
    previous configuration (refused, unless --force, when the workflow changed since).
    """
    def make_plan(client):
        return routing.plan_fix(client, workflow_sids)

    sys.exit(run_repair("routing-fix", make_plan, options, " ".join(["flexops routing fix", *workflow_sids])))


routing_fix.help += EXIT_CODES
