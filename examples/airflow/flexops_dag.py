"""Airflow DAG: every night, `flexops run` the verify runbook, then the inventory report runbook.

Copy or symlink this file into Airflow's dags folder on a worker that has a flexops checkout with its .venv (see
docs/scheduled-runs.md). Each task runs `flexops run`, so every run leaves its folder (output.ipynb, output.html,
results.json, audit.jsonl, manifest.json) under FLEXOPS_RUNS_DIR, and the run folder path is the task's XCom.

Exit codes become task states: 0 success; 1 (a check failed), 2 (bad parameters), 3 (Twilio unreachable or
credentials refused) and 130 (interrupted) fail the task. The report runs even when verification failed
(trigger_rule all_done): a failing check is exactly when the inventory is wanted.

Credentials come from the worker's environment (TWILIO_ACCOUNT_SID + TWILIO_API_KEY + TWILIO_API_SECRET, e.g.
through the systemd unit or container that runs the worker); they are never task arguments or notebook parameters.
"""
import os
import shlex
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

FLEXOPS_HOME = os.environ.get("FLEXOPS_HOME", "/opt/flexops")
RUNS_DIR = os.environ.get("FLEXOPS_RUNS_DIR", "/var/lib/flexops/runs")
TARGET = os.environ.get("FLEXOPS_DAG_TARGET", "twilio")
RUNBOOKS = {
    "verify": "notebooks/20_verify_messenger_addresses.ipynb",
    "report": "notebooks/30_inventory_report.ipynb",
}


def flexops_run(task_id, notebook, *args, **operator_kwargs):
    """A BashOperator running `flexops run NOTEBOOK` in the checkout; `exec` so Airflow's SIGTERM reaches flexops,
    which then interrupts the notebook and still completes the run folder."""
    command = " ".join(shlex.quote(part) for part in (
        ".venv/bin/flexops", "run", notebook, "--target", TARGET, "--no-input", *args))
    return BashOperator(task_id=task_id, bash_command=f"cd {shlex.quote(FLEXOPS_HOME)} && exec {command}",
                        env={"FLEXOPS_RUNS_DIR": RUNS_DIR}, append_env=True, **operator_kwargs)


with DAG(
    dag_id="flexops_nightly",
    description="Verify Facebook Messenger addresses on Twilio Flex, then report the inventory",
    schedule="15 2 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10), "execution_timeout": timedelta(minutes=30)},
    tags=["flexops", "twilio"],
) as dag:
    verify = flexops_run("verify", RUNBOOKS["verify"])
    report = flexops_run("report", RUNBOOKS["report"], trigger_rule="all_done")
    verify >> report
