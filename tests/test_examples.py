"""The scheduling examples stay runnable: every `flexops run` in the cron file, the systemd units and the Airflow
DAG names a notebook that exists and options `flexops run` accepts (parsed by the real click command); the DAG
builds its tasks where Airflow is installed."""
import ast
import importlib.util
import re
import shlex
from pathlib import Path

import click
import pytest

from flexops.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DAG_FILE = EXAMPLES / "airflow" / "flexops_dag.py"


def flexops_run_args(command):
    """The argument lists of every `flexops run` in a shell command line."""
    found = []
    for segment in re.split(r"&&|\|\||;", command):
        words = shlex.split(segment.replace("\\%", "%"))
        for i, word in enumerate(words):
            if Path(word).name == "flexops" and words[i + 1:i + 2] == ["run"]:
                args = words[i + 2:]
                cut = next((j for j, w in enumerate(args) if w[0] in "<>" or w[:2] in ("1>", "2>")), len(args))
                found.append(args[:cut])
    return found


def assert_valid_run(args, monkeypatch):
    """Parse with the real `flexops run` command (option names, arity, choices, and the notebook must exist)."""
    monkeypatch.chdir(ROOT)
    command = main.get_command(click.Context(main), "run")
    ctx = command.make_context("run", list(args))
    notebook = Path(ctx.params["notebook"])
    assert notebook.suffix == ".ipynb" and (ROOT / notebook).is_file()
    return ctx.params


def cron_commands():
    lines = (EXAMPLES / "cron" / "flexops.cron").read_text().splitlines()
    entries = [line for line in lines if line.strip() and not line.startswith("#") and "=" not in line.split()[0]]
    assert entries, "no cron entries"
    for line in entries:
        fields = line.split(None, 5)
        assert len(fields) == 6 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), line
    return [line.split(None, 5)[5] for line in entries]


def test_cron_runs_valid_flexops_commands_and_keeps_logs_and_exit_codes(monkeypatch):
    runs = []
    for command in cron_commands():
        (args,) = flexops_run_args(command)
        runs.append(assert_valid_run(args, monkeypatch))
        assert ">>" in command and "rc=$?" in command and "exit-codes.log" in command
    assert {Path(p["notebook"]).name for p in runs} == {"20_verify_messenger_addresses.ipynb",
                                                         "30_inventory_report.ipynb"}


def unit(path):
    """systemd unit -> {section: {key: [values]}} (keys may repeat)."""
    sections, current = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize("name", ["verify", "report"])
def test_systemd_units_run_valid_flexops_commands(name, monkeypatch):
    service = unit(EXAMPLES / "systemd" / f"flexops-{name}.service")
    timer = unit(EXAMPLES / "systemd" / f"flexops-{name}.timer")
    (exec_start,) = service["Service"]["ExecStart"]
    (args,) = flexops_run_args(exec_start)
    params = assert_valid_run(args, monkeypatch)
    assert Path(params["notebook"]).name.startswith({"verify": "20_verify", "report": "30_inventory_report"}[name])
    assert service["Service"]["Type"] == ["oneshot"] and service["Service"]["KillSignal"] == ["SIGINT"]
    assert params["target"] == "twilio"
    assert timer["Timer"]["Unit"] == [f"flexops-{name}.service"] and timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


def test_dag_names_existing_runbooks_without_airflow():
    tree = ast.parse(DAG_FILE.read_text())
    notebooks = {node.value for node in ast.walk(tree)
                 if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".ipynb")}
    assert notebooks and all((ROOT / nb).is_file() for nb in notebooks)
    imports = {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "airflow" in imports  # importing it needs Airflow: it is an Airflow DAG, not a flexops module


def test_dag_builds_its_tasks(monkeypatch):
    pytest.importorskip("airflow")
    spec = importlib.util.spec_from_file_location("flexops_dag", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    assert set(dag.task_ids) == {"verify", "report"}
    assert dag.get_task("report").upstream_task_ids == {"verify"}
    assert dag.get_task("report").trigger_rule == "all_done"
    for task in dag.tasks:
        (args,) = flexops_run_args(task.bash_command)
        assert_valid_run(args, monkeypatch)
