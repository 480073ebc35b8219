"""(Re)generate every runbook in notebooks/ from this one script, so their structure stays consistent and
reviewable in a diff: `python tools/make_notebooks.py` writes them, `--check` exits 1 when a committed notebook
differs from what this script makes (CI can run it).

Runbook shape: a title cell saying what the runbook changes; the `parameters` cell (papermill reads the comment
at the end of each line as the help shown by `papermill --help-notebook`, and skips a line with a second `=`;
never credentials); then validate -> banner -> the step -> a result table -> results recorded, each with
narration saying what to do when it fails. Notebooks are written without outputs or execution counts and with
stable cell ids (no churn on regeneration).
"""
import argparse
import sys
from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNELSPEC = {"name": "flexops", "display_name": "flexops (.venv)", "language": "python"}

TARGET = 'target: str = "auto"  # auto (real Twilio when credentials are set, else the sandbox) | sandbox | twilio'
INTERACTIVE = "interactive: bool = False  # True: show the form (JupyterLab); headless runs leave it False"
CREDENTIALS = """**Credentials** come from the environment (`TWILIO_ACCOUNT_SID` + `TWILIO_AUTH_TOKEN`, or
`TWILIO_API_KEY` + `TWILIO_API_SECRET`), a twilio-cli profile, or the local sandbox — never from notebook
parameters."""
VALIDATE = """## 1 · Validate the parameters
A bad value stops the run here with an error naming the parameter; no Twilio call has been made yet. Fix the value
and run again."""
ACCOUNTS = ('accounts: str = ""  # a fleet: all (every subaccount, and the main account if it has Flex) or AC… '
            'SIDs, comma-separated; blank: this account only')
CONNECT = """## 2 · Connect
The banner says which Twilio this run talks to. If it is not the one you expect, stop and fix `target` / your
credentials. *Fails with a configuration error?* Set the variables it names."""


def connect_step():
    """The connect narration and cell, the same in every runbook that has no form at this step."""
    return [md(CONNECT), code('''
client = flexops.connect(params["target"])
notebook.banner(client);''')]


def md(text):
    return nbf.v4.new_markdown_cell(text.strip())


def code(text):
    return nbf.v4.new_code_cell(text.strip())


def parameters(*lines):
    cell = code("\n".join(lines))
    cell.metadata["tags"] = ["parameters"]
    return cell


def notebook(cells):
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# --- 00 ------------------------------------------------------------------------------------------------------

def connect_notebook():
    return notebook([
        md(f"""# 00 · Connect and preflight

Checks that this Twilio account is ready to receive Facebook Messenger conversations in Flex, before anything is
created. Nothing in this runbook changes the account.

{CREDENTIALS}"""),
        parameters(TARGET,
                   'profile: str = ""  # twilio-cli profile to take credentials from (optional)',
                   INTERACTIVE),
        md(VALIDATE),
        code('''
import flexops
from flexops import checks, notebook

params = flexops.connect_params(target=target, profile=profile, interactive=interactive)
notebook.record("parameters", params)'''),
        md(CONNECT),
        code('''
client = flexops.connect(params["target"], profile=params["profile"])
notebook.banner(client);'''),
        md("""## 3 · Preflight checklist
Each row is one precondition; ✗ rows carry the remedy to apply in the Twilio Console. With `interactive = True` the
form lets you re-run the checks after fixing something."""),
        code('''
results = checks.preflight(client)
notebook.show_table(checks.table(results), "Preflight")
summary = checks.summary(results)
notebook.record("checks", [r.to_dict() for r in results])
notebook.record("summary", summary)
notebook.show_summary(summary, "preflight checks")
if params["interactive"]:
    from flexops import ui
    ui.preflight_panel(client)'''),
        md("""## 4 · Outcome
A headless run ends non-zero here when a check failed, after the results above were saved."""),
        code('''
notebook.fail_if_failed(summary, "preflight checks")
print("Preflight passed: ready to create Messenger addresses (runbook 10).")'''),
    ])


# --- 10 ------------------------------------------------------------------------------------------------------

def create_notebook():
    return notebook([
        md(f"""# 10 · Create a Messenger address

Connects one Facebook Page to Flex: makes the Conversations **address configuration** `messenger:<page id>` exist
with the settings below, so every new Messenger conversation is handed to your Studio flow (whose Send to Flex
widget routes it to an agent) or to a webhook.

Safe to run again: an address that already matches is left alone (*no change*); one whose settings differ is
reported as **drift** and only changed with `update_existing = True`. `dry_run = True` shows the plan and stops.

Before: the Facebook Page is connected to the Twilio account (Console > Messaging > Senders > Facebook Messenger)
and runbook 00 passes. {CREDENTIALS}"""),
        parameters(
            TARGET,
            'page_id: str = ""  # Facebook Page ID, digits only (papermill: `-r page_id 0123...` keeps leading zeros)',
            'friendly_name: str = ""  # name shown in the Console for this address (optional, at most 256 characters)',
            'integration: str = "studio"  # who handles new conversations: studio (a flow sending to Flex) | webhook',
            'studio_flow_sid: str = ""  # Studio flow SID (FW...); blank: the published flow reaching Send to Flex',
            "retry_count: int = 3  # how often Studio retries starting the flow, 0-3 (studio only)",
            'webhook_url: str = ""  # https:// URL told about new conversations (webhook only)',
            'webhook_method: str = "POST"  # POST | GET (webhook only)',
            'webhook_filters: str = ""  # comma-separated events for the webhook, e.g. onMessageAdded (webhook only)',
            "update_existing: bool = False  # change an existing address whose settings differ (else report drift)",
            "dry_run: bool = False  # only show the plan; change nothing",
            INTERACTIVE),
        md(VALIDATE + """

The Studio flow is checked against the account in step 3: a blank `studio_flow_sid` means *the* published flow
whose Incoming Conversation trigger reaches Send to Flex; with none, or several, the run stops and says so."""),
        code('''
import flexops
from flexops import checks, notebook

params = flexops.create_params(
    target=target, page_id=page_id, friendly_name=friendly_name, integration=integration,
    studio_flow_sid=studio_flow_sid, retry_count=retry_count, webhook_url=webhook_url,
    webhook_method=webhook_method, webhook_filters=webhook_filters, update_existing=update_existing,
    dry_run=dry_run, interactive=interactive)
notebook.record("parameters", params)
headless = not params["interactive"]  # interactive: the form does steps 3-4 when you click its buttons'''),
        md(CONNECT + """

With `interactive = True` the form appears here, pre-filled from the parameters, and steps 3-4 wait for it:
**Plan** shows step 3, **Create** shows the plan and asks Confirm / Cancel, **Confirm** does step 4."""),
        code('''
client = flexops.connect(params["target"])
notebook.banner(client)
if params["interactive"]:
    from flexops import ui
    form = ui.create_form(client, **params)'''),
        md("""## 3 · Plan
What would change, field by field, computed without changing anything: *would be created*, *would be updated*,
*no change*, or *drift* (the address exists with other settings and `update_existing` is False). With
`dry_run = True` the runbook stops after this step. *Fails on `studio_flow_sid`?* Publish your Flex messaging flow
(runbook 00 names what is missing) or give the flow SID."""),
        code('''
apply = headless and not params["dry_run"]
if headless:
    spec = flexops.create_spec(client, params)
    plan = notebook.plan_address(client, spec, update_existing=params["update_existing"])
if params["dry_run"]:
    print("Dry run: nothing was changed.")'''),
        md("""## 4 · Create or update, fetch back, check
Applies the plan. Creating is idempotent: after a timeout the address is looked up before any retry, so a second
run (or a retry) never makes a duplicate. A run that finds **drift** without `update_existing` stops here non-zero
after recording the differences: check them, then run again with `update_existing = True`.

Then the **stored configuration** is fetched back from Twilio, so what is shown is what Twilio holds now, not what
was sent; and the address is **checked** end to end (flow published, valid, reaching Send to Flex...). No message
has reached the page yet, so a missing first message is only a warning here: send one from Messenger, then run
runbook 20. A failed check ends the run non-zero; its row says what to fix. (The form's Confirm button runs these
same steps.)"""),
        code('''
if apply:
    result, stored, results = notebook.create_address(client, spec, update_existing=params["update_existing"])
    notebook.fail_on_drift(result)
    summary = checks.summary(results)
    notebook.show_summary(summary)
    notebook.fail_if_failed(summary, "checks")'''),
    ])


# --- 20 ------------------------------------------------------------------------------------------------------

def verify_notebook():
    return notebook([
        md(f"""# 20 · Verify Messenger addresses

Checks that Messenger conversations really reach Flex, for some pages or all of them: the address exists with
auto-creation on, its Studio flow is published, valid and reaches Send to Flex (or its webhook is sane), and a
first message has arrived. With `accounts` (`all`, or subaccount SIDs) it checks a whole fleet of subaccounts at
once, each with its own credentials from the main account's subaccount listing (held in memory only), and shows a
table per account first. Nothing in this runbook changes the account.

{CREDENTIALS}"""),
        parameters(
            TARGET,
            'page_ids: str = ""  # Facebook Page IDs, comma-separated (or a list); blank: every Messenger address',
            "require_first_message: bool = True  # no conversation from the page yet is a failure (else a warning)",
            ACCOUNTS,
            'state_dir: str = ""  # the state store (scanned conversations); blank: FLEXOPS_STATE_DIR or '
            '~/.flexops/state; off: none',
            INTERACTIVE),
        md(VALIDATE),
        code('''
import flexops
from flexops import checks, notebook

params = flexops.verify_params(target=target, page_ids=page_ids, require_first_message=require_first_message,
                               interactive=interactive, accounts=accounts, state_dir=state_dir)
notebook.record("parameters", params)'''),
        *connect_step(),
        md("""## 3 · Checks
The count first, then one row per address and check (✓ passed, ✗ failed, ! warning); ✗ rows carry the remedy.
With several addresses a table per address comes first, and on a big account only the rows that need work are
listed (all are recorded). *First message missing?* Send a message to the Facebook Page from Messenger and run this
again. With `interactive = True` the form below lets you pick pages and re-run.

*Run nightly?* The state store (`state_dir`, one SQLite file per account) remembers the conversations already
scanned, so the next run asks Twilio only about new ones. On a busy account the first run stops at its cap (1,000
conversations): the pages it has not reached yet are ! rows that say so, and each later run goes further back until
the 30-day window is covered. A page with steady traffic that has gone quiet for far longer than usual gets a
! **page went silent** row: check that the Facebook Page is still connected in the Console (a Page admin's password
or 2FA change invalidates its token) and reconnect it.

*A fleet* (`accounts`): the accounts are checked at the same time, under one bound on requests in flight; the table
per account comes first (an account that could not be checked — suspended, credentials refused, Flex not set up —
is one ✗ row with its remedy), then the rows that need work. *Twilio refused to list the subaccounts?* Use the main
account's Auth Token or a Main API key."""),
        code('''
if params["accounts"]:
    from flexops import fleet
    accounts = fleet.resolve(client, params["accounts"])
    results = fleet.verify(accounts, page_ids=params["page_ids"], require_first_message=params["require_first_message"],
                           state_dir=params["state_dir"])
    fleet.release(accounts, client)
    notebook.show_table(fleet.account_table(results), f"Verification by account ({len(accounts.accounts)})")
    notebook.record("accounts", fleet.account_summary(results))
else:
    results = checks.verify(client, page_ids=params["page_ids"] or None,
                            require_first_message=params["require_first_message"], progress=notebook.progress(),
                            state_dir=params["state_dir"])
summary = checks.summary(results)
notebook.record("checks", [r.to_dict() for r in results])
notebook.record("summary", summary)
notebook.show_summary(summary)
if params["accounts"]:
    notebook.show_table(fleet.check_table([r for r in results if r.status != checks.PASS]), "Rows that need work")
else:
    notebook.show_checks(results, "Verification")
if params["interactive"] and not params["accounts"]:
    from flexops import ui
    ui.verify_form(client, **params)
elif params["interactive"]:
    print("The form checks one account: leave `accounts` blank to use it.")'''),
        md("""## 4 · Outcome
A headless run ends non-zero here when a required check failed, after the results above were saved."""),
        code('''
notebook.fail_if_failed(summary, "verification checks")
print(f"All {summary['total']} checks passed ({summary['warnings']} warnings).")'''),
    ])


# --- 30 ------------------------------------------------------------------------------------------------------

def report_notebook():
    return notebook([
        md(f"""# 30 · Inventory report

Lists every address configuration of the account (all channels, or the `types` you pick) with its Studio flow's
name and status and a verification verdict per Messenger address, then writes the report as CSV, XLSX, JSON, a
self-contained HTML page and a Markdown summary. Give `since` a previous report to see what changed. Nothing in
this runbook changes the account. With `accounts` (`all`, or subaccount SIDs) it makes one combined report over a
fleet of subaccounts: a table and chart per account at the top, then every account's addresses.

{CREDENTIALS}"""),
        parameters(
            TARGET,
            'types: str = ""  # address types, comma-separated (e.g. messenger,whatsapp); blank: all',
            'out_dir: str = ""  # report folder; blank: the run folder under `flexops run`, else out/reports',
            'since: str = ""  # previous report: a file, a (run) folder, or runs/ (the newest); blank: none',
            ACCOUNTS),
        md(VALIDATE),
        code('''
import flexops
from flexops import checks, inventory, notebook, reports

params = flexops.report_params(target=target, types=types, out_dir=out_dir, since=since, accounts=accounts)
previous = reports.load_previous(params["since"], "since")  # the newest report in a folder; None when blank
notebook.record("parameters", params)'''),
        *connect_step(),
        md("""## 3 · Inventory
Every address configuration (50 per request), each Studio flow fetched once, and the verification verdict of
each Messenger address (a missing first message counts as a warning here). A fleet (`accounts`) shows its table per
account first: an account that could not be listed is a ✗ row with its remedy."""),
        code('''
if params["accounts"]:
    from flexops import fleet
    accounts = fleet.resolve(client, params["accounts"])
    df, per_account = fleet.collect(accounts, types=params["types"], verify=checks.verify_inventory)
    fleet.release(accounts, client)
    notebook.show_table(per_account, f"Inventory by account ({len(per_account)})")
    notebook.record("accounts", per_account)
else:
    df = inventory.collect(client, types=params["types"], verify=checks.verify_inventory,
                           progress=notebook.progress())
shown = ["address", "type", "friendly_name", "integration", "studio_flow_name", "studio_flow_status", "verification"]
notebook.show_table(df[(["account_name"] if params["accounts"] else []) + shown],
                    f"{len(df)} address configuration{'s' if len(df) != 1 else ''}");'''),
        md("""## 4 · Summary
Counts by type, integration and verification status. *Draft or missing flows?* Those addresses route nothing to
Flex: publish the flow, or fix the address with runbook 10 (`update_existing = True`)."""),
        code('''
summary = reports.summarize(df)
notebook.show_table(notebook.fields_frame({k: summary[k] for k in (
    "total", "messenger", "auto_creation_enabled", "flows_draft", "flows_missing", "verification")}), "Summary")
notebook.record("summary", {k: v for k, v in summary.items() if k != "created_per_month"})
notebook.show_charts(summary);'''),
        md("""## 5 · Changes since the previous report
Only with `since`: addresses added, removed, or whose configuration changed (dates and flow status are not
compared). A previous report that listed only some `types` is compared on those types only."""),
        code('''
if previous is None:
    print("No previous report given (set `since` to compare).")
else:
    changes = inventory.diff(previous, df)
    notebook.show_table(notebook.fields_frame(changes.counts),
                        f"Changes since {previous.attrs['flexops']['loaded_from']}")
    notebook.show_table([dict(zip(("change", "address", "detail"), row)) for row in reports.change_rows(changes)],
                        "What changed")
    notebook.record("changes", changes.counts)'''),
        md("""## 6 · Write the report
CSV (UTF-8, Excel-safe), XLSX, JSON, HTML (one file, charts inlined, opens offline) and Markdown."""),
        code('''
paths = reports.export(df, params["out_dir"], previous=previous, metadata={"runbook": "30_inventory_report"})
# (a fleet's per-account figures travel in df.attrs: the report's Accounts table, and results.json above)
notebook.show_table([{"format": fmt, "path": str(path)} for fmt, path in paths.items()], "Report files")
notebook.record("reports", paths)'''),
    ])


# --- 40 ------------------------------------------------------------------------------------------------------

def apply_notebook():
    return notebook([
        md(f"""# 40 · Apply an inventory of Messenger addresses

Makes the account's Messenger addresses match a **desired-state file** (YAML or CSV, see
`examples/inventory.yaml`): addresses missing in Twilio are created, those whose settings differ are updated field
by field, and — only with `prune` — Messenger addresses absent from the file are deleted. Nothing else is touched.

Safe to run again: an interrupted apply converges when re-run, and a re-run after success changes nothing. One
apply at a time per account (a lock). Every change is in the run's audit trail, so `flexops rollback <run>` can
undo it.

{CREDENTIALS}"""),
        parameters(
            TARGET,
            'inventory: str = "examples/inventory.yaml"  # desired-state file, YAML or CSV',
            'prune: "Optional[bool]" = None  # delete Messenger addresses absent from the file; None: as the file says',
            "confirm: bool = False  # headless: apply the plan (False: show it and change nothing)",
            "concurrency: int = 8  # changes in flight at once, 1-32",
            "dry_run: bool = False  # only show the plan, even with confirm",
            "interactive: bool = False  # True: an Apply button under the plan (JupyterLab); headless leaves it False"),
        md(VALIDATE + """

The whole file is checked too: every problem is listed at once with its line (YAML) or row (CSV) and field."""),
        code('''
import flexops
from flexops import desired, notebook, plan

params = flexops.apply_params(target=target, inventory=inventory, prune=prune, confirm=confirm,
                              concurrency=concurrency, dry_run=dry_run, interactive=interactive)
notebook.record("parameters", params)
state = desired.load(params["inventory"], prune=params["prune"])
print(f"{len(state)} addresses in {params['inventory']} (prune: {state.prune})")'''),
        *connect_step(),
        md("""## 3 · Plan
Computed from what the account holds now; nothing is changed. *Fails on `studio_flow`?* The flow name is not in
the account (the message lists the flows) or is used by several flows: give the SID instead."""),
        code('''
the_plan = plan.make_plan(client, state)
notebook.show_table(the_plan.table(), f"Plan: {the_plan.summary()}")
notebook.record("plan", the_plan.to_dict())'''),
        md("""## 4 · Apply
Headless, the plan is applied only with `confirm = True` (and not `dry_run`); interactive, only when you click
**Apply**. Changes run `concurrency` at a time; throttling (429) is waited out, and a create or delete whose answer
was lost is looked up before any retry, so nothing is duplicated. A change that fails is reported with its Twilio
error code and the others go on. The results table has one row per change: `ok`, or `failed` with the Twilio error
code and message."""),
        code('''
result = None
if params["dry_run"] or not the_plan.pending:
    print("Dry run: nothing was changed." if params["dry_run"] else "Nothing to do: the account already matches.")
elif params["interactive"]:
    from flexops import ui
    button = ui.confirm_panel(client, the_plan, concurrency=params["concurrency"])
elif params["confirm"]:  # recorded at once, so an interrupted run keeps what it did
    result = plan.apply_recorded(client, the_plan, notebook.record, concurrency=params["concurrency"])
    notebook.show_apply(result)
else:
    print("confirm is False: nothing was changed. Review the plan, then run again with confirm = True.")'''),
        md("""## 5 · How to undo this run
Every change above is in this run's audit trail (`audit.jsonl`), so `flexops rollback RUN` can undo exactly this
run: delete what it created, restore what it updated, re-create what it deleted. The table previews that undo (it
changes nothing). Rollback refuses addresses that someone changed after this run unless you pass `--force`."""),
        code('''
if result is not None and notebook.run_dir() is not None:
    from flexops import rollback
    undo, _ = rollback.plan_rollback(client, notebook.run_dir(), force=True)
    notebook.show_table(undo.table(), f"flexops rollback {notebook.run_dir().name} would: {undo.summary()}")
else:
    print("Nothing to undo here (or not an audited run: use `flexops run` to get one that can be rolled back).")'''),
        md("""## 6 · Outcome
A headless run with a failed change ends non-zero here (an interrupted one as interrupted), after the results
were saved; running it again changes only what is still different."""),
        code('''
if result is not None:
    notebook.raise_for_outcome(result)'''),
    ])


# --- 50 ------------------------------------------------------------------------------------------------------

def trace_notebook():
    return notebook([
        md(f"""# 50 · Trace a Messenger message into Flex

Answers *did the customer's message reach an agent in Flex — and if not, where did it stop and what do I fix?*
hop by hop: **address** → **conversation** → **Studio** (or the webhook) → **Flex** (Interaction, TaskRouter task,
queue) → **agent** (reservation). Monitor alerts in the window are shown on the hop whose resources they name.
Nothing in this runbook changes the account.

Without a message in the window the configuration of every hop is still checked, and the first one that cannot
work is named. To test the live path, write to the Page from another Facebook profile: set `wait_seconds` (or use
the form's **Wait for my test message**). {CREDENTIALS}"""),
        parameters(
            TARGET,
            'page_id: str = ""  # Facebook Page ID, digits only (papermill: `-r page_id 0123...`)',
            'since: str = "7d"  # how far back to look: 30m, 24h, 7d, ...',
            "wait_seconds: int = 0  # > 0: wait up to this long for a NEW message to the Page, then trace it",
            'conversation_sid: str = ""  # trace this known conversation (CH...) instead of the newest message',
            "all_pages: bool = False  # also count every inbound conversation in the window, per Page",
            INTERACTIVE),
        md(VALIDATE),
        code('''
import flexops
from flexops import notebook, trace, trace_view

params = flexops.trace_params(target=target, page_id=page_id, since=since, wait_seconds=wait_seconds,
                              conversation_sid=conversation_sid, all_pages=all_pages, interactive=interactive)
notebook.record("parameters", params)'''),
        md(CONNECT + """

With `interactive = True` the form appears here: **Trace the newest message**, or **Wait for my test message**
while you write to the Page from Messenger; both run the same trace as the cells below."""),
        code('''
client = flexops.connect(params["target"])
notebook.banner(client)
if params["interactive"]:
    form = trace_view.trace_form(client, **params)'''),
        md("""## 3 · The path, hop by hop
✓ passed, ✗ broke, ! warning (an agent has not accepted yet is a warning, not a failure), · not reached. The broken
hop is outlined; its row says why and what to do, and the alerts table links each Twilio error code to its page."""),
        code('''
result = None
if params["page_id"]:
    result = trace.trace(client, params["page_id"], since=params["since"],
                         wait_seconds=params["wait_seconds"] or None, conversation_sid=params["conversation_sid"])
    trace_view.show(result)
    notebook.record("trace", result.to_dict())'''),
        md("""## 4 · Every Page (`all_pages = True`)
Every inbound conversation in the window, per Page: how many reached Flex, reached an agent, broke at each hop, and
the median seconds from the first message to the task and to acceptance."""),
        code('''
if params["all_pages"]:
    from flexops import trace_many
    pages = trace_many.trace_all(client, params["since"], progress=notebook.progress())
    notebook.show_table(trace_many.table(pages), "Reach per Page")
    notebook.show_png(trace_view.reach_chart(pages), "Inbound conversations by outcome")
    notebook.record("pages", [p.row() for p in pages])'''),
        md("""## 5 · Outcome
A headless run ends non-zero here when the message did not reach Flex (or no message was found), after the trace
was recorded in `results.json`."""),
        code('''
if result is not None:
    trace_view.fail_if_broken(result)
    print(result.summary())'''),
    ])


# --- 60 ------------------------------------------------------------------------------------------------------

def janitor_notebook():
    return notebook([
        md(f"""# 60 · Close stale Messenger conversations

A conversation whose Flex task has ended but which is still **active** swallows the customer's next message: it
lands there, no Studio execution starts and no agent sees it (`50_trace_messenger_message` names it as a broken
*conversation* hop). This runbook finds those conversations — active, no open Flex task (pending, reserved,
assigned or wrapping), last message older than `idle` — and closes them, so the customer's next message starts a
new conversation that Studio hands to Flex again.

**Closing a conversation cannot be undone**: Twilio cannot reopen it, and `flexops rollback` of this run refuses.
By default this runbook only shows the plan (`confirm = False`). Rehearse on a twin first
(`flexops sandbox import`, README *Rehearse first*). {CREDENTIALS}"""),
        parameters(
            TARGET,
            'page_ids: str = ""  # Facebook Page IDs, comma-separated (papermill: `-r page_ids 0123,...`); blank: every Page',
            'idle: str = "24h"  # how long since the last message before it counts as stale: 0s, 30m, 24h, 7d',
            "confirm: bool = False  # headless: close the stale conversations (False: show the plan, change nothing)",
            "concurrency: int = 8  # closes in flight at once, 1-32",
            "interactive: bool = False  # True: a Close button under the plan (JupyterLab); headless leaves it False"),
        md(VALIDATE),
        code('''
import flexops
from flexops import janitor, notebook

params = janitor.janitor_params(target=target, page_ids=page_ids, idle=idle, confirm=confirm,
                                concurrency=concurrency, interactive=interactive)
notebook.record("parameters", params)'''),
        *connect_step(),
        md("""## 3 · Plan
Every active Messenger conversation (of `page_ids`, or every Page) is read with its participants, its last message
and its Flex tasks; nothing is changed. The customer is masked (`messenger:…1234`). *Left alone* counts the active
conversations that are not stale, and why (an open Flex task, a recent message, another Page)."""),
        code('''
the_plan = janitor.find_stale(client, params["page_ids"], params["idle"], progress=notebook.progress())
notebook.show_table(the_plan.table(), f"Plan: {the_plan.summary()}")
notebook.record("plan", the_plan.to_dict())'''),
        md("""## 4 · Close
Headless, only with `confirm = True`; interactive, only when you click **Close**. One janitor at a time per account
(the account lock). A close that fails (429, 5xx) is retried only after the conversation was read again, so nothing
is closed twice; running the runbook again after an interruption finishes the job. Afterwards every planned
conversation is read back, and each Page of a closed one is traced (`verify` in `results.json`: closed, and the
trace's verdict per Page). With no message since the closing, the trace judges each hop's configuration: all
passing is ok, with a note to send a test message; a hop still broken fails the run with the trace's remedy."""),
        code('''
result = None
if params["interactive"]:  # the button is disabled when there is nothing to close
    from flexops import janitor_view
    form = janitor_view.close_form(client, the_plan, concurrency=params["concurrency"])
elif not the_plan.stale:
    print("Nothing to do: no stale conversation.")
elif params["confirm"]:
    result, check = janitor.close_recorded(client, the_plan, notebook.record, concurrency=params["concurrency"])
    notebook.show_table(result.table(), f"Results: {result.summary()['status']}; verified closed: {check['all_closed']}")
    notebook.show_table(notebook.verify_table(check["traces"]), "Trace of each Page after closing")
else:
    print("confirm is False: nothing was changed. " + janitor.IRREVERSIBLE + " Run again with confirm = True.")'''),
        md("""## 5 · Outcome
The customer's next message now starts a new conversation and a Studio execution: trace it with
`50_trace_messenger_message` (or `flexops trace PAGE --wait 120` while you write to the Page). A headless run with a
failed close, or a Page whose trace is still broken, ends non-zero here, after the results were saved."""),
        code('''
if result is not None:
    notebook.raise_for_outcome(result)'''),
    ])


# --- 70 ------------------------------------------------------------------------------------------------------

def repair_notebook():
    return notebook([
        md(f"""# 70 · Repair routing and legacy Flex Flows

The two repairs a Messenger migration to Flex Conversations most often needs, neither of them an address edit:

- **routing**: Flex's TaskRouter workflows whose filters still say `channelType == 'facebook'` (legacy Flex Flow
  tasks) never route a Flex Conversations task (`channelType` `messenger`). The fix rewrites them to
  `channelType IN ['facebook', 'messenger']`.
- **legacy**: a legacy Flex Flow still holding the Page takes its messages from the Conversations address. The
  repair deletes (or disables) it and, with `replace`, creates the Page's Conversations address right after
  (Twilio's migration: remove the legacy address, then create the new one).

**Dry run by default**: the plan is shown and nothing changes unless `confirm = True` (or the form's Apply button).
Every change is in the run's audit trail; `flexops rollback RUN` undoes it. {CREDENTIALS}"""),
        parameters(
            TARGET,
            'repair: str = "routing"  # routing | legacy',
            'flex_flow_sids: str = ""  # legacy: FO... SIDs, comma-separated; blank: every facebook Flex Flow',
            "replace: bool = False  # legacy: create each Page's Conversations address right after its Flex Flow",
            "disable: bool = False  # legacy: disable the Flex Flows instead of deleting them",
            'studio_flow_sid: str = ""  # replace: the Flex messaging flow; blank: the only published one',
            "confirm: bool = False  # headless: apply the plan (False: show it and change nothing)",
            "interactive: bool = False  # True: an Apply button under the plan (JupyterLab); headless leaves it False"),
        md(VALIDATE),
        code('''
import flexops
from flexops import legacy, notebook, plan, routing
from flexops.params import repair_params, repair_plan

params = repair_params(target=target, repair=repair, flex_flow_sids=flex_flow_sids, replace=replace,
                       disable=disable, studio_flow_sid=studio_flow_sid, confirm=confirm, interactive=interactive)
notebook.record("parameters", params)'''),
        *connect_step(),
        md("""## 3 · What is wrong
**routing**: every workflow of Flex's workspace judged against a Messenger task: does it route one, and which
filters (or targets) match only the legacy `facebook` channel type — with the rewrite, or blank when a person must
fix it. **legacy**: every legacy messaging Flex Flow, the Conversations address for the same Page, and whether
they collide (an enabled Flex Flow takes the Page's messages)."""),
        code('''
if params["repair"] == "routing":
    report = routing.check(client)
    notebook.show_table(routing.findings_table(report), f"Workflows of Flex's workspace {report['workspace_sid']}")
    notebook.record("routing_check", report)
else:
    rows = legacy.inventory(client)
    notebook.show_table(legacy.table(rows), "Legacy messaging Flex Flows")
    notebook.record("legacy_flows", rows)'''),
        md("""## 4 · Plan
Computed from what the account holds now; nothing is changed. A workflow's configuration is shown before/after
as a diff. *Fails on `studio_flow_sid`?* `replace` needs the Flex messaging flow: give its SID."""),
        code('''
the_plan = repair_plan(client, params)
notebook.show_table(the_plan.table(), f"Plan: {the_plan.summary()}")
for step in (s for s in the_plan.steps if s.diff):
    print(step.diff)
for note in the_plan.notes:
    print("note:", note)
notebook.record("plan", the_plan.to_dict())'''),
        md("""## 5 · Apply and verify
Headless, the plan is applied only with `confirm = True`; interactive, only when you click **Apply**. Steps run in
order (Flex Flow calls about one a second, Twilio's limit); throttling is waited out and a call whose answer was
lost is checked against the account before any retry. Each changed resource is then fetched back and compared
with what the repair made; with `replace`, the gap between retiring the Flex Flow and creating the address is
shown. Then the Pages the repair was for are traced (routing: the Pages whose flow's Send to Flex uses a fixed
workflow; legacy: the Pages of the retired Flex Flows that now have a Conversations address). With no message since
the repair, the trace judges each hop's configuration: all passing is ok, with a note to send a test message
(runbook 50 then traces it); a hop still broken fails the run with the trace's remedy."""),
        code('''
result = None
if params["interactive"]:  # the Apply button (disabled when there is nothing to repair)
    from flexops import ui
    button = ui.confirm_panel(client, the_plan)
elif not the_plan.pending:
    print("Nothing to do: nothing to repair.")
elif params["confirm"]:
    result = plan.apply_recorded(client, the_plan, notebook.record)
    notebook.show_apply(result)  # the outcomes, then what was verified and traced
    for line in legacy.gaps_text(notebook.results().get("gaps")):
        print(line)
else:
    print("confirm is False (dry run): nothing was changed. Review the plan, then run again with confirm = True.")'''),
        md("""## 6 · How to undo this run
`flexops rollback RUN` restores every resource this run changed: a deleted Flex Flow is re-created with its full
previous configuration (Twilio gives it a new SID), a disabled one re-enabled, a workflow's previous
configuration put back, a created address deleted. It refuses, changing nothing, when a resource changed since
(unless `--force`). The table previews that undo."""),
        code('''
if result is not None and notebook.run_dir() is not None and (notebook.run_dir() / "manifest.json").exists():
    from flexops import rollback
    undo, _ = rollback.plan_rollback(client, notebook.run_dir(), force=True)
    notebook.show_table(undo.table(), f"flexops rollback {notebook.run_dir().name} would: {undo.summary()}")
else:
    print("Nothing to undo here (or not an audited run: use `flexops run` to get one that can be rolled back).")'''),
        md("""## 7 · Outcome
A headless run with a failed step, or a Page whose trace is still broken, ends non-zero here, after the results
were saved; running it again changes only what is still to do."""),
        code('''
if result is not None:
    notebook.raise_for_outcome(result)'''),
    ])


RUNBOOKS = {"00_connect.ipynb": connect_notebook, "10_create_messenger_address.ipynb": create_notebook,
            "20_verify_messenger_addresses.ipynb": verify_notebook, "30_inventory_report.ipynb": report_notebook,
            "40_apply_inventory.ipynb": apply_notebook, "50_trace_messenger_message.ipynb": trace_notebook,
            "60_close_stale_conversations.ipynb": janitor_notebook,
            "70_repair_routing_and_legacy.ipynb": repair_notebook}


def build(name):
    """The notebook `name` as this script makes it, with stable cell ids."""
    nb = RUNBOOKS[name]()
    stem = name.split("_")[0]
    for index, cell in enumerate(nb.cells):
        cell.id = f"nb{stem}-{index:02d}"
    nbf.validate(nb)
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed notebook is out of date")
    parser.add_argument("--out", type=Path, default=NOTEBOOKS, help="folder to write into")
    args = parser.parse_args(argv)
    stale = []
    for name in RUNBOOKS:
        text = nbf.writes(build(name)) + "\n"
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print("out of date (run python tools/make_notebooks.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
