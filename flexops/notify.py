"""Tell a person how a run ended: Slack, Teams, e-mail, a JSON webhook ... through apprise's URLs.

Why apprise: one library speaks to every such service, so flexops writes no sender. A notify URL usually embeds a
token, so it is treated as a secret: it is never printed, logged or recorded. What is recorded (the manifest's
`notifications`) is its scheme, its host when the host is a real host name (for many services the "host" part of the
URL is the token itself), and whether sending worked. A notifier that fails never fails the run, and its error text,
which may echo the URL, is dropped: only its kind is kept.
"""
import logging
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from . import run_folder
from .atomic import read_json, write_json
from .exceptions import ValidationError
from .settings import mask_sid

ENV = "FLEXOPS_NOTIFY"
WHEN = ("failure", "warning", "always")
MAX_CHECKS = 5  # failing checks a message lists (the run folder has them all)
_HOST_NAME = re.compile(r"^(localhost|[\w-]+(\.[\w-]+)+|\[[0-9a-f:.]+\])$", re.IGNORECASE)


def urls_from(given=(), environ=None):
    """The notify URLs: the --notify values when any, else FLEXOPS_NOTIFY (space- or comma-separated)."""
    if given:
        return [u for u in given if u]
    value = (os.environ if environ is None else environ).get(ENV, "")
    if not value.strip():
        return []  # no apprise import (a second or so) for a run that notifies nobody
    from apprise.utils.parse import parse_urls

    return parse_urls(value)


def check_urls(urls):
    """Refuse, before anything runs, a URL apprise cannot send to; the message names it by position and scheme
    only, never by its text."""
    if not urls:
        return []
    import apprise

    for number, url in enumerate(urls, 1):
        with apprise.LogCapture(level=logging.CRITICAL + 1):  # apprise would log what it could not parse: the URL
            known = apprise.Apprise.instantiate(url)
        if known is None:
            scheme = url.split("://", 1)[0] if "://" in url else None
            what = f"scheme {scheme}://" if scheme and len(scheme) <= 20 else "no scheme://"
            raise ValidationError("notify", f"notify URL #{number} ({what}) is not a notification URL apprise "
                                            "can send to; see https://github.com/caronc/apprise/wiki")
    return list(urls)


def public(url):
    """What may be recorded about a notify URL: its scheme, and its host when that is a host name or address."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    scheme = (parts.scheme if parts else "") or "?"
    return {"scheme": scheme.lower(), "host": host if _HOST_NAME.match(host) else "(not shown)"}


def outcome(exit_code, warnings=0):
    """failure (any non-zero exit), warning (succeeded with warnings) or success."""
    if exit_code:
        return "failure"
    return "warning" if warnings else "success"


def wanted(when, how):
    """Whether `--notify-on when` sends for a run that ended as `how`."""
    if when not in WHEN:
        raise ValidationError("notify_on", f"must be one of {', '.join(WHEN)}", when)
    return when == "always" or how == "failure" or (when == "warning" and how == "warning")


def failing_checks(results, limit=MAX_CHECKS):
    """The first failing checks a run recorded (results.json `checks`), failures before warnings."""
    rows = [r for r in (results.get("checks") or []) if isinstance(r, dict)] if isinstance(results, dict) else []
    bad = [r for r in rows if r.get("status") == "fail"] + [r for r in rows if r.get("status") == "warn"]
    return bad[:limit], len(bad)


def account_label(row):
    """`Contoso (AC…1234)` for a fleet row (results.json `accounts`, or a check row naming its account)."""
    name, sid = row.get("account_name") or "", row.get("account_sid") or ""
    return f"{name} ({mask_sid(sid)})" if name else mask_sid(sid)


def fleet_lines(results, limit=MAX_CHECKS):
    """A fleet run's accounts (results.json `accounts`): how many failed, then each failing or warning account
    with what failed and its remedy: the person must know which customer is affected, not just the main account."""
    rows = [a for a in (results.get("accounts") or []) if isinstance(a, dict)] if isinstance(results, dict) else []
    if not rows:
        return []
    bad = [a for a in rows if a.get("status") == "fail"] + [a for a in rows if a.get("status") == "warn"]
    lines = [f"Accounts: {len(rows)}, {sum(a.get('status') == 'fail' for a in rows)} failing"]
    for row in bad[:limit]:
        what = row.get("failed_checks") or row.get("problem") or ""
        lines.append(f"- {row.get('status')} {account_label(row)}" + (f": {what}" if what else "")
                     + (f"\n  Remedy: {row['remedy']}" if row.get("remedy") else ""))
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more accounts in results.json")
    return lines


def where(target):
    """The target, the account masked (manifests hold settings.mask_sid's form already)."""
    target = target or {}
    kind = target.get("kind") or target.get("requested") or "unknown target"
    return " ".join(str(v) for v in (kind, target.get("account") and f"account {target['account']}") if v)


def run_message(folder, extra=()):
    """(title, body, outcome) for a run folder: what ran, where, how it ended, the first failing checks with their
    remedies, and where output.html and the folder are."""
    folder = Path(folder)
    manifest = read_json(folder / run_folder.MANIFEST, {}) or {}
    results = read_json(folder / run_folder.RESULTS, {}) or {}
    summary = results.get("summary") if isinstance(results.get("summary"), dict) else {}
    what = manifest.get("command") or (manifest.get("notebook") or {}).get("path") or folder.name
    how = outcome(manifest.get("exit_code"), summary.get("warnings") or 0)
    lines = [f"What: {what}", f"Where: {where(manifest.get('target'))} (on {manifest.get('host')})",
             f"Ended: {manifest.get('status')} (exit {manifest.get('exit_code')}) after {manifest.get('duration_s')} s"]
    error = manifest.get("error") or {}
    if error:
        text = str(error.get("evalue") or "").strip().splitlines()
        lines.append(f"Error: {error.get('ename')}: {text[0][:300] if text else ''}")
    if "passed" in summary:
        lines.append(f"Checks: {summary.get('passed')} passed, {summary.get('failed')} failed, "
                     f"{summary.get('warnings', 0)} warnings")
    lines += fleet_lines(results)
    shown, total = failing_checks(results)
    for row in shown:
        subject = f"{account_label(row)} {row.get('subject')}" if row.get("account_sid") else row.get("subject")
        lines.append(f"- {row.get('symbol') or row.get('status')} {subject}: {row.get('check')}: "
                     f"{row.get('detail')}" + (f"\n  Remedy: {row['remedy']}" if row.get("remedy") else ""))
    if total > len(shown):
        lines.append(f"... and {total - len(shown)} more in results.json")
    lines += list(extra)
    html = folder / run_folder.OUTPUT_HTML
    if html.is_file():
        lines.append(f"Report: {os.fspath(html)}")
    lines.append(f"Run folder: {os.fspath(folder)}")
    title = f"flexops {how.upper()}: {Path(str(what)).name} on {where(manifest.get('target'))}"
    if len(results.get("accounts") or []) == 1 and isinstance(results["accounts"][0], dict):
        title += f" for {account_label(results['accounts'][0])}"  # e.g. one task per account (the Airflow DAG)
    return title, "\n".join(lines), how


def send(urls, title, body, how):
    """Send to each URL; one record per URL ({scheme, host, sent, error?}). Never raises, never logs the URL."""
    import apprise

    kind = {"failure": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}.get(
        how, apprise.NotifyType.SUCCESS)
    sent = []
    for url in urls:
        record = {**public(url), "sent": False, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        try:
            # apprise's own log lines may name the URL's parts: captured here and dropped, never shown or kept
            with apprise.LogCapture(level=logging.CRITICAL + 1):
                box = apprise.Apprise()
                if box.add(url):
                    record["sent"] = bool(box.notify(body=body, title=title, notify_type=kind))
                    if not record["sent"]:
                        record["error"] = "not delivered"
                else:
                    record["error"] = "not a notification URL"
        except Exception as exc:  # a notifier never fails the run; its message may echo the URL: keep the kind
            record["error"] = type(exc).__name__
        sent.append(record)
    return sent


def notify_run(folder, urls, when="failure", extra=()):
    """Notify about a finished run folder when `when` says so; the outcome goes to its manifest's `notifications`.
    Returns the records ([] when nothing was sent)."""
    title, body, how = run_message(folder, extra)
    if not urls or not wanted(when, how):
        return []
    records = send(urls, title, body, how)
    path = Path(folder) / run_folder.MANIFEST
    manifest = read_json(path, None)
    if isinstance(manifest, dict):
        manifest["notifications"] = (manifest.get("notifications") or []) + records
        write_json(path, manifest)
    return records


def command_message(command, exit_code, target=None, facts=(), error=None, warnings=0):
    """(title, body, outcome) for a command without a run folder (`flexops report`, `flexops trace`)."""
    how = outcome(exit_code, warnings)
    lines = [f"What: {command}", f"Where: {where(target)}", f"Ended: exit {exit_code}"]
    if error:
        lines.append(f"Error: {str(error).strip().splitlines()[0][:300] if str(error).strip() else ''}")
    lines += [f"{label}: {value}" for label, value in facts]
    return f"flexops {how.upper()}: {command} on {where(target)}", "\n".join(lines), how
