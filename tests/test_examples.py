"""The scheduling examples stay runnable: every `flexops run` in the cron file and the systemd units names a notebook
that exists and options `flexops run` accepts (parsed by the real click command), and so does every runbook the
Airflow DAG names; the cron line and the service's command really run (credentials from the environment file, log
and exit code kept); the units pass `systemd-analyze verify`. tests/test_airflow.py runs the DAG itself in Airflow."""
import ast
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from flexops.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DAG_FILE = EXAMPLES / "airflow" / "flexops_dag.py"


def flexops_run_args(command):
    """The argument lists of every `flexops run` in a shell command line (up to the next shell operator)."""
    lexer = shlex.shlex(command.replace("\\%", "%"), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    found = []
    for i, word in enumerate(words):
        if Path(word).name == "flexops" and words[i + 1:i + 2] == ["run"]:
            args = words[i + 2:]
            found.append(args[:next((j for j, w in enumerate(args) if set(w) <= set("();<>|&")), len(args))])
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
        assert ". /etc/flexops/credentials.env" in command and runs[-1]["target"] == "twilio"
    assert {Path(p["notebook"]).name for p in runs} == {"20_verify_messenger_addresses.ipynb",
                                                         "30_inventory_report.ipynb"}


TOKEN = "tok_SECRET_cron_4c1d2e3f4a5b6c7d8e9f"


def clean_env(tmp_path, **extra):
    """The bare environment a scheduler gives a job (no TWILIO_*, no sandbox), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "FLEXOPS_"))}
    return {**env, "TWILIO_CLI_CONFIG": os.fspath(tmp_path / "no-twilio-cli.json"), **extra}


def run_folder(runs_dir):
    (folder,) = [p for p in Path(runs_dir).iterdir() if p.is_dir()]  # index.html: the dashboard
    assert {"output.ipynb", "output.html", "manifest.json", "audit.jsonl", "results.json"} <= {
        p.name for p in folder.iterdir()}
    return folder, json.loads((folder / "manifest.json").read_text())


@pytest.mark.notebook
def test_the_cron_line_runs_logs_and_records_its_exit_code(tmp_path):
    """The verify line as cron runs it (`%` unescaped, its variables set), with an environment file whose
    credentials are incomplete: flexops starts, refuses the target (exit 3), and the log, exit-codes.log and the
    run folder say so without the token. A missing environment file is exit 3 too, and logged."""
    (command,) = [c for c in cron_commands() if "20_verify" in c]
    creds = tmp_path / "credentials.env"
    creds.write_text(f"TWILIO_AUTH_TOKEN={TOKEN}\n")  # no TWILIO_ACCOUNT_SID
    logs, runs_dir = tmp_path / "logs", tmp_path / "runs"
    logs.mkdir()
    line = command.replace("\\%", "%").replace("/etc/flexops/credentials.env", shlex.quote(os.fspath(creds)))
    env = clean_env(tmp_path, FLEXOPS_HOME=os.fspath(ROOT), FLEXOPS_RUNS_DIR=os.fspath(runs_dir),
                    FLEXOPS_LOGS=os.fspath(logs))
    done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout == done.stderr == ""  # everything went to the log: cron has nothing to mail
    folder, manifest = run_folder(runs_dir)
    assert (manifest["exit_code"], manifest["error"]["ename"]) == (3, "ConfigurationError")
    log = (logs / "verify.log").read_text()
    assert os.fspath(folder) in log and "ConfigurationError" in log and TOKEN not in log
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ verify exit=3\n", (logs / "exit-codes.log").read_text())
    creds.unlink()
    subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=120)
    assert (logs / "exit-codes.log").read_text().splitlines()[-1].endswith(" verify exit=3")
    assert "credentials.env: No such file or directory" in (logs / "verify.log").read_text()


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


def environment(service):
    """The unit's Environment= assignments as a dict."""
    return dict(item.split("=", 1) for line in service["Service"]["Environment"] for item in shlex.split(line))


@pytest.mark.parametrize("name", ["verify", "report"])
def test_systemd_units_run_valid_flexops_commands(name, monkeypatch):
    service = unit(EXAMPLES / "systemd" / f"flexops-{name}.service")
    timer = unit(EXAMPLES / "systemd" / f"flexops-{name}.timer")
    (exec_start,) = service["Service"]["ExecStart"]
    (args,) = flexops_run_args(exec_start)
    params = assert_valid_run(args, monkeypatch)
    assert Path(params["notebook"]).name.startswith({"verify": "20_verify", "report": "30_inventory_report"}[name])
    settings = service["Service"]
    assert settings["Type"] == ["oneshot"] and settings["KillSignal"] == ["SIGINT"] and settings["KillMode"] == [
        "mixed"]  # SIGINT to flexops alone: it interrupts the kernel itself and completes the run folder
    assert params["target"] == "twilio" and settings["EnvironmentFile"] == ["/etc/flexops/credentials.env"]
    (home,) = settings["WorkingDirectory"]
    assert shlex.split(exec_start)[0] == f"{home}/.venv/bin/flexops"
    (writable,) = settings["ReadWritePaths"]  # ProtectSystem=strict: everything a run writes must be under it
    env = environment(service)
    assert all(Path(env[k]).is_relative_to(writable) for k in ("HOME", "FLEXOPS_RUNS_DIR", "MPLCONFIGDIR"))
    assert settings["StateDirectory"] == [Path(writable).name] and writable.startswith("/var/lib/")
    assert timer["Timer"]["Unit"] == [f"flexops-{name}.service"] and timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


def installed_units(tmp_path):
    """The units as they would be installed, with the checkout at ROOT and the state under tmp_path."""
    folder = tmp_path / "units"
    folder.mkdir()
    for path in (EXAMPLES / "systemd").iterdir():
        text = path.read_text().replace("/opt/flexops", os.fspath(ROOT))
        (folder / path.name).write_text(text.replace("/var/lib/flexops", os.fspath(tmp_path / "state")))
    return folder


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.slow  # starts a process
def test_systemd_analyze_accepts_the_units(tmp_path):
    folder = installed_units(tmp_path)
    units = [os.fspath(p) for p in sorted(folder.iterdir())]
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "flexops" in line and "User=" not in line]  # this machine has no flexops user
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


@pytest.mark.notebook
def test_the_service_command_runs_as_systemd_would_start_it(tmp_path):
    """ExecStart in WorkingDirectory= with Environment= and the EnvironmentFile= (incomplete credentials): a
    complete run folder under the state directory and exit 3; the unit then counts as failed."""
    service = unit(installed_units(tmp_path) / "flexops-verify.service")
    creds = tmp_path / "credentials.env"
    creds.write_text(f"TWILIO_AUTH_TOKEN={TOKEN}\n")
    env = clean_env(tmp_path, **environment(service), **dict(
        line.split("=", 1) for line in creds.read_text().splitlines()))
    (tmp_path / "state").mkdir()  # StateDirectory=
    (exec_start,) = service["Service"]["ExecStart"]
    done = subprocess.run(shlex.split(exec_start), cwd=service["Service"]["WorkingDirectory"][0], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    folder, manifest = run_folder(tmp_path / "state" / "runs")
    assert done.stdout.strip() == os.fspath(folder) and manifest["target"]["requested"] == "twilio"
    assert TOKEN not in done.stdout + done.stderr


def test_dag_names_existing_runbooks_without_airflow():
    tree = ast.parse(DAG_FILE.read_text())
    notebooks = {node.value for node in ast.walk(tree)
                 if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".ipynb")}
    assert notebooks and all((ROOT / nb).is_file() for nb in notebooks)
    imports = {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "airflow" in imports  # importing it needs Airflow: it is an Airflow DAG, not a flexops module
