"""The Airflow DAG for real: Airflow (pinned in requirements-airflow.txt, installed by `make airflow-env` into its
own environment, never .venv) runs examples/airflow/flexops_dag.py with `airflow dags test` against a served
`fleet` sandbox, exactly as a worker would: the DAG file linked into the dags folder, flexops called through the
checkout's .venv, the target and its token only in the environment.

It proves that the DAG maps one verification per account of the main account's subaccount list, that each left a
complete run folder for its own account, that a failing account fails its task (and the DAG run) while the others
and the report go on, and that no secret reaches Airflow: not its output, nor anything under AIRFLOW_HOME (the
metadata database with its XComs, rendered fields and params; the logs).
"""
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from flexops.client import connect, sandbox_target
from flexops.sandbox.control import SandboxControl
from flexops.settings import mask_sid
from receivers import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = ROOT / "examples" / "airflow" / "flexops_dag.py"
HOOK_SECRET = "tok_AIRFLOW_hook_5e1c9a7b3d2f"  # a notify URL embeds a token: a secret like the others
# installs Airflow (when `make airflow-env` has not), starts the sandbox and Airflow: 2-4 minutes on 2 busy cores
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def airflow_bin():
    """Airflow's environment, made by `make airflow-env` (tools/install_airflow.sh: nothing to do when it is up to
    date with requirements-airflow.txt). Outside CI a machine that cannot install it skips, saying why."""
    done = subprocess.run(["bash", os.fspath(ROOT / "tools" / "install_airflow.sh")], capture_output=True, text=True,
                          timeout=900)
    if done.returncode and os.environ.get("CI") != "true":
        pytest.skip(f"could not install Airflow (`make airflow-env`): {done.stderr.strip()[-500:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    return Path(os.environ.get("FLEXOPS_AIRFLOW_ENV", ROOT / ".cache" / "airflow-venv")).absolute() / "bin"


@pytest.fixture
def fleet(tmp_path):
    """`flexops sandbox serve --seed fleet` in its own process: (url, control token)."""
    import signal

    from test_cli_sandbox import serve

    proc, url, token = serve(tmp_path / "fleet.db", "--seed", "fleet")
    yield url, token
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def worker_env(tmp_path, url, token, hook):
    """What an Airflow worker gets: its own AIRFLOW_HOME, the flexops checkout, the target and where to notify."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "FLEXOPS_", "AIRFLOW", "VIRTUAL_ENV"))}
    return {**env, "AIRFLOW_HOME": os.fspath(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "FLEXOPS_HOME": os.fspath(ROOT), "FLEXOPS_RUNS_DIR": os.fspath(tmp_path / "runs"),
            "FLEXOPS_TARGET": "sandbox", "FLEXOPS_SANDBOX_URL": url, "FLEXOPS_SANDBOX_TOKEN": token,
            "FLEXOPS_STATE_DIR": os.fspath(tmp_path / "state"),
            "FLEXOPS_NOTIFY": f"json://127.0.0.1:{hook.port}/hooks/{HOOK_SECRET}",
            "TWILIO_CLI_CONFIG": os.fspath(tmp_path / "no-twilio-cli.json")}


def secrets_of(control, subaccounts):
    """The control token and every account's auth token: none may reach Airflow."""
    return {"control token": control.token, "main auth token": control.credentials()["auth_token"],
            **{f"auth token of {sid}": control.credentials(sid)["auth_token"] for sid in subaccounts}}


def query(db, sql):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


def test_dags_test_verifies_every_account_in_its_own_mapped_task(airflow_bin, fleet, hook, tmp_path, monkeypatch):
    url, token = fleet
    monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", token)  # for this process's client only
    control, main = SandboxControl(url, token), connect(sandbox_target(url=url))
    subaccounts = {a.sid: a.friendly_name for a in main.api.v2010.accounts.list() if a.sid != main.account_sid}
    assert len(subaccounts) == 3  # the fleet seed; its main account has no Flex, so `all` is the subaccounts
    env = worker_env(tmp_path, url, token, hook)
    dags = tmp_path / "airflow" / "dags"
    dags.mkdir(parents=True)
    (dags / DAG_FILE.name).symlink_to(DAG_FILE)  # as docs/scheduled-runs.md deploys it

    migrated = subprocess.run([airflow_bin / "airflow", "db", "migrate"], env=env, capture_output=True, text=True,
                              timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    done = subprocess.run([airflow_bin / "airflow", "dags", "test", "flexops_nightly"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=1200)
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "DagRun failed" in done.stderr, output[-3000:]  # the broken account's doing
    db = tmp_path / "airflow" / "airflow.db"
    ((run_id, run_state),) = query(db, "SELECT run_id, state FROM dag_run WHERE dag_id = 'flexops_nightly'")
    tasks = {(t, m): (state, label) for t, m, state, label in query(
        db, "SELECT task_id, map_index, state, rendered_map_index FROM task_instance")}

    # one mapped verification per subaccount, named by its SID; the broken account's failed, the others passed
    verify = {label: state for (task, _), (state, label) in tasks.items() if task == "verify"}
    assert set(verify) == set(subaccounts), output[-3000:]
    assert sorted(verify.values()) == ["failed", "success", "success"], output[-3000:]
    assert tasks[("accounts", -1)][0] == tasks[("report", -1)][0] == "success"
    assert tasks[("fleet_healthy", -1)][0] == "upstream_failed" and run_state == "failed"  # a failing account fails
    # the run, while the other accounts and the report still ran

    # each mapped task left a complete run folder for its own account; the report one over all three
    runs = {}
    for folder in (tmp_path / "runs").iterdir():
        if folder.is_dir():
            assert {"output.ipynb", "output.html", "manifest.json", "audit.jsonl", "results.json",
                    "parameters.json"} <= {p.name for p in folder.iterdir()}, folder
            manifest = json.loads((folder / "manifest.json").read_text())
            results = json.loads((folder / "results.json").read_text())
            runs[folder] = (Path(manifest["notebook"]["path"]).name, manifest["exit_code"],
                            [a["account_sid"] for a in results["accounts"]], results["accounts"])
    verified = {sids[0]: code for name, code, sids, _ in runs.values() if name.startswith("20_verify")}
    assert len(verified) == len(runs) - 1 and all(len(v[2]) == 1 for v in runs.values() if v[0].startswith("20_"))
    assert verified == {sid: 0 if verify[sid] == "success" else 1 for sid in subaccounts}
    ((reported, report_code),) = [(sids, code) for name, code, sids, _ in runs.values() if name.startswith("30_")]
    assert sorted(reported) == sorted(subaccounts) and report_code == 0

    # the failing account's run told a person itself, naming that account (masked)
    (broken,) = [sid for sid, state in verify.items() if state == "failed"]
    titles = [body["title"] for _, _, body in hook.received]
    named = f"for {subaccounts[broken]} ({mask_sid(broken)})"
    assert any(t.startswith("flexops FAILURE: 20_verify") and t.endswith(named) for t in titles), titles

    # XCom: the SIDs to map over, then one run folder per successful task; nothing else
    xcoms = {(t, m): json.loads(v) for t, m, v in query(db, "SELECT task_id, map_index, value FROM xcom "
                                                            f"WHERE run_id = '{run_id}'")}
    assert sorted(xcoms.pop(("accounts", -1))) == sorted(subaccounts)
    assert {Path(v) for v in xcoms.values()} == {f for f, (_, code, _, _) in runs.items() if code == 0}

    # no secret in Airflow's output, its database or anything else under AIRFLOW_HOME (nor in the run folders)
    files = [p for base in (tmp_path / "airflow", tmp_path / "runs") for p in base.rglob("*") if p.is_file()]
    database = b"".join(p.read_bytes() for p in files if p.name.startswith("airflow.db"))
    assert all(sid.encode() in database for sid in subaccounts) and "flexops run" in output  # what is stored
    # there is plain text to search (XCom, rendered fields), and the tasks' logs are in the output
    for name, secret in {**secrets_of(control, subaccounts), "notify URL token": HOOK_SECRET}.items():
        in_output = secret in output  # (so that a failure does not print the secret)
        assert not in_output, f"{name} in the output of `airflow dags test`"
        leaked = [p for p in files if secret.encode() in p.read_bytes()]
        assert not leaked, f"{name} in {leaked}"
