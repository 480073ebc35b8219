"""Airflow DAG `flexops_nightly`: every night, one audited verification run per account of a Twilio fleet, then one
inventory report over the same accounts (docs/scheduled-runs.md).

    accounts ──> verify[AC…1], verify[AC…2], … (a mapped task per account) ──> report ──> fleet_healthy

`accounts` asks the main account for its subaccounts (`flexops accounts`: the DAG param `accounts`, default `all`:
every subaccount, plus the main account when it has Flex; or comma-separated AC… SIDs), and each account becomes
one mapped `verify` task: `flexops run` of the verification runbook (20) with `accounts=<that SID>`, so each account
has its own run folder, task state, log and retry. `report` then runs the inventory runbook (30) over the same
accounts, also when some verification failed (trigger_rule all_done): a failing check is when the report is wanted.
The last task, `fleet_healthy`, is skipped as upstream_failed when any verification failed, so that the DAG run
fails too (a run's state is its last tasks').

flexops is not imported here: the tasks call the flexops CLI of a checkout with its own .venv (FLEXOPS_HOME,
default /opt/flexops), so Airflow and flexops keep separate environments. Everything is read from the worker's
environment when a task runs: FLEXOPS_TARGET (default twilio), FLEXOPS_RUNS_DIR, the credentials (TWILIO_ACCOUNT_SID
with TWILIO_AUTH_TOKEN or a Main API key, of the main account), FLEXOPS_NOTIFY. Credentials are never task arguments,
templated fields, params or XComs — Airflow stores all of those in its database and shows them in its UI. What
goes through XCom is account SIDs (to map over) and run folder paths (each task's result).

Exit codes of `flexops run` become task states: 0 success; 1 (a check failed) and 2 (bad parameters) fail the task
at once, as retrying cannot help; 3 (Twilio unreachable or credentials refused) and 130 (interrupted) fail it for a
retry. A task that Airflow stops (timeout, marked failed) interrupts flexops, which still completes its run folder.
"""
import logging
import os
import signal
import subprocess
import threading
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

RUNBOOKS = {
    "verify": "notebooks/20_verify_messenger_addresses.ipynb",
    "report": "notebooks/30_inventory_report.ipynb",
}
NOTIFY_ON = {"verify": "warning", "report": "failure"}
NO_RETRY = {1: "a check failed", 2: "bad parameters"}  # retrying gives the same answer
ACCOUNTS = r"^(all|AC[0-9a-fA-F]{32}(,AC[0-9a-fA-F]{32})*)$"  # refused at trigger time otherwise (flexops checks too)
PARALLEL_ACCOUNTS = 4  # verify runs at once per DAG run: each starts a notebook kernel on the worker
log = logging.getLogger("flexops_dag")


def flexops(*args):
    """Run `<FLEXOPS_HOME>/.venv/bin/flexops ARGS` in the checkout with the worker's environment; its stderr goes to
    the task log line by line, its stdout (one line: a run folder or the account SIDs) is returned. A task stopped
    by Airflow sends flexops SIGINT, on which it interrupts the notebook and completes the run folder."""
    home = os.environ.get("FLEXOPS_HOME", "/opt/flexops")
    command = [os.path.join(home, ".venv", "bin", "flexops"), *args]
    log.info("running %s", " ".join(command))
    proc = subprocess.Popen(command, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                            errors="replace")  # ✓ ✗ in flexops' output, whatever the worker's locale
    # both pipes read in threads left to end by themselves: the notebook's kernel, still shutting down, may hold
    # them open for some seconds after flexops has exited, and the answer is the exit code and the lines so far
    said = []
    readers = [threading.Thread(target=lambda: [log.info("%s", line.rstrip()) for line in proc.stderr], daemon=True),
               threading.Thread(target=lambda: [said.append(line) for line in proc.stdout], daemon=True)]
    for reader in readers:
        reader.start()
    try:
        code = proc.wait()
    except BaseException:  # Airflow's timeout or kill: let flexops finish its run folder, then stop
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    for reader in readers:
        reader.join(timeout=2)
    out = "".join(said).strip()
    if code in NO_RETRY:
        raise AirflowFailException(f"flexops {args[0]} exited {code} ({NO_RETRY[code]}); see {out or 'the log'}")
    if code:
        raise AirflowException(f"flexops {args[0]} exited {code}; see {out or 'the log'}")
    return out


def target():
    return os.environ.get("FLEXOPS_TARGET", "twilio")  # never silently the sandbox on a worker without credentials


def flexops_run(runbook, accounts):
    """`flexops run` of a runbook for `accounts` (SIDs): its run folder, the task's XCom. With FLEXOPS_NOTIFY set on
    the worker, the run notifies a person itself (verify: warnings too; report: failures), as cron and systemd do."""
    return flexops("run", RUNBOOKS[runbook], "--target", target(), "--no-input", "-p", "accounts", accounts,
                   "--notify-on", NOTIFY_ON[runbook])


with DAG(
    dag_id="flexops_nightly",
    description="Verify the Messenger addresses of every Twilio Flex account of a fleet, then report the inventory",
    schedule="15 2 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={"accounts": Param("all", type="string", pattern=ACCOUNTS, description=(
        "all (every subaccount, and the main account when it has Flex) or comma-separated AC… SIDs"))},
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10), "execution_timeout": timedelta(minutes=30)},
    tags=["flexops", "twilio"],
) as dag:

    @task(task_id="accounts")
    def fleet_accounts():
        """The SIDs of the fleet's accounts (SIDs only: the listing's auth tokens never leave flexops)."""
        chosen = get_current_context()["params"]["accounts"]
        sids = flexops("accounts", "--accounts", chosen, "--sids", "--target", target()).split(",")
        return [sid for sid in sids if sid]

    @task(map_index_template="{{ task.op_kwargs['account_sid'] }}", max_active_tis_per_dagrun=PARALLEL_ACCOUNTS)
    def verify(account_sid):
        return flexops_run("verify", account_sid)

    @task(trigger_rule="all_done")
    def report(account_sids):
        if not account_sids:
            raise AirflowFailException("no accounts to report on (the `accounts` task found none or failed)")
        return flexops_run("report", ",".join(account_sids))

    @task(trigger_rule="all_success")
    def fleet_healthy(report_folder):
        """The DAG run's state is its leaves': this leaf fails (upstream_failed) when any account's verification
        did, so a failing account fails the run, while the report (not a leaf) still ran."""
        log.info("every account verified; report: %s", report_folder)

    sids = fleet_accounts()
    verified = verify.expand(account_sid=sids)
    reported = report(sids)
    verified >> reported
    verified >> fleet_healthy(reported)
