"""What the commands a scheduler runs do when they end: notify a person (--notify / --notify-on, FLEXOPS_NOTIFY)
and refresh the runs dashboard (runs/index.html); and `flexops runs index`.

One decorator, `notify_options`, adds both options to a command and wraps it: the URLs are checked before the
command starts (exit 2 naming the bad one by position, never by its text), and taken out of the command's
parameters, so no manifest records them. After the command, whatever its exit, the run folders it made are
notified about (notify.notify_run) and the dashboard is rewritten; a command without a run folder (`report`,
`trace`) is notified about from what it noted (`note()`). Nothing here changes the command's exit code.
"""
import functools
import os

import click

from . import notify, run_folder, runs_dashboard
from .exceptions import FlexopsError, ValidationError

NOTES = "flexops.notify"  # click context meta key: facts a command adds to its notification


def note(target=None, **lines):
    """Facts for the notification of the running command: its target (a public() dict) and `label=value` lines."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    notes = ctx.meta.setdefault(NOTES, {"target": None, "lines": []})
    if target is not None:
        notes["target"] = target
    notes["lines"] += [(label.replace("_", " ").capitalize(), value) for label, value in lines.items()]


def _exit_code(exc):
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, (FlexopsError, click.ClickException)):
        return exc.exit_code
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    return 1


def _error_text(exc):
    if isinstance(exc, (FlexopsError, click.ClickException)):
        return exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
    return None if isinstance(exc, (SystemExit, click.exceptions.Exit)) else type(exc).__name__


def _mine(runs_dir, before):
    """The run folders this process made since `before` (another job may be writing the same runs folder)."""
    return [folder for folder, manifest in run_folder.list_runs(runs_dir)
            if folder.name not in before and manifest.get("pid") == os.getpid()]


def _report(records):
    for r in records:
        where = f"{r['scheme']}://{r['host']}"
        if r["sent"]:
            click.echo(f"notified {where}", err=True)
        else:
            click.secho(f"warning: notification to {where} failed ({r.get('error')}); the run's outcome is "
                        "unchanged", fg="yellow", err=True)


def _command_line(ctx):
    """`flexops report`, `flexops trace 1234`: the command and its arguments (options may hold anything)."""
    arguments = [ctx.params.get(p.name) for p in ctx.command.params if isinstance(p, click.Argument)]
    return " ".join(["flexops", *ctx.command_path.split()[1:], *(str(a) for a in arguments if a not in (None, ""))])


def _after(ctx, urls, when, runs_dir, before, code, error):
    notes = ctx.meta.get(NOTES) or {"target": None, "lines": []}
    folders = _mine(runs_dir, before) if before is not None else []
    for folder in folders:
        _report(notify.notify_run(folder, urls, when, [f"{k}: {v}" for k, v in notes["lines"]]))
    if urls and not folders:
        target = notes["target"] or run_folder.target_info(ctx.params.get("target"), {})
        title, body, how = notify.command_message(_command_line(ctx), code, target, notes["lines"], error)
        if notify.wanted(when, how):
            _report(notify.send(urls, title, body, how))
    if folders:
        try:
            runs_dashboard.write_index(runs_dir)
        except Exception as exc:  # the dashboard is a convenience: never the reason a run fails
            click.secho(f"warning: could not refresh the runs dashboard ({type(exc).__name__})", fg="yellow",
                        err=True)


def notify_options(command):
    """Add --notify/--notify-on to a click command callback and notify (and refresh runs/index.html) when it ends."""

    @functools.wraps(command)
    def wrapper(*args, notify_urls=(), notify_on="failure", **kwargs):
        ctx = click.get_current_context()
        ctx.params.pop("notify_urls", None), ctx.params.pop("notify_on", None)  # never into a manifest
        urls = notify.check_urls(notify.urls_from(notify_urls))
        runs_dir = kwargs.get("runs_dir")
        before = {f.name for f, _ in run_folder.list_runs(runs_dir)} if "runs_dir" in kwargs else None
        try:
            result = command(*args, **kwargs)
        except BaseException as exc:
            _safely(ctx, urls, notify_on, runs_dir, before, _exit_code(exc), _error_text(exc))
            raise
        _safely(ctx, urls, notify_on, runs_dir, before, 0, None)
        return result

    # After the command's own options in --help: click lists __click_params__ in reverse, so these go first
    wrapper.__dict__.setdefault("__click_params__", [])[:0] = [
        click.Option(["--notify-on", "notify_on"], type=click.Choice(notify.WHEN), default="failure",
                     show_default=True, envvar="FLEXOPS_NOTIFY_ON",
                     help="When to notify: failure (any non-zero exit), warning (also a success with warnings) or "
                          "always."),
        click.Option(["--notify", "notify_urls"], multiple=True, metavar="URL",
                     help="Notify this apprise URL (Slack, Teams, mailto://, json://...) when the command ends; "
                          "repeatable [default: FLEXOPS_NOTIFY, space- or comma-separated]. Treated as a secret: "
                          "only its scheme and host are recorded.")]
    return wrapper


def _safely(ctx, urls, when, runs_dir, before, code, error):
    try:
        _after(ctx, urls, when, runs_dir, before, code, error)
    except Exception as exc:  # a notifier never fails the run
        click.secho(f"warning: notifying failed ({type(exc).__name__}); the run's outcome is unchanged", fg="yellow",
                    err=True)


@click.command("index")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None, help="[default: FLEXOPS_RUNS_DIR or runs/]")
def runs_index_command(runs_dir):
    """Write runs/index.html: every run newest first (status, what ran, target, account, duration, checks, links to
    output.html and the folder) and charts over time. `flexops run`, `apply` and `rollback` refresh it too."""
    root = run_folder.runs_root(runs_dir)
    if not root.is_dir():
        raise ValidationError("runs_dir", "no such folder: no run has been made there yet", os.fspath(root))
    click.echo(os.fspath(runs_dashboard.write_index(runs_dir)))
