"""Runbook 60 (close stale conversations): plan only by default, closes with confirm, records plan and outcome in
results.json, audits every close so `flexops rollback` of the run refuses; and its Close form."""
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from flexops import janitor, janitor_view, notebook, run_folder
from flexops.cli import main
from test_janitor import PAGE, address, conversations_with_ended_tasks, customers, states
from test_notebooks import mutations, run  # noqa: F401  (fixture)
from test_plan import workdir  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = "60_close_stale_conversations.ipynb"


def test_by_default_the_runbook_only_shows_the_plan(sandbox, client, run):
    address(client, sandbox)
    made = conversations_with_ended_tasks(client, sandbox, customers(2))
    before = mutations(sandbox)
    result = run(RUNBOOK, idle="0s", page_ids=PAGE)
    assert result.error is None
    assert sorted(s["conversation_sid"] for s in result.results["plan"]["stale"]) == sorted(made)
    assert result.results["parameters"]["page_ids"] == [PAGE] and "close" not in result.results
    assert mutations(sandbox) == before and set(states(client).values()) == {"active"}
    assert "cannot be undone" in result.output.read_text()


def test_confirm_closes_records_the_outcome_and_verifies(sandbox, client, run):
    address(client, sandbox)
    made = conversations_with_ended_tasks(client, sandbox, customers(3))
    result = run(RUNBOOK, idle="0s", confirm=True)
    assert result.error is None
    assert result.results["close"]["summary"]["ok"] == 3 and result.results["verify"]["all_closed"]
    traced, = result.results["verify"]["traces"]  # the Page of the closed conversations, traced once
    assert traced["ok"] and traced["verdict"] == "no_message" and result.results["verify"]["ok"]
    assert "Trace of each Page after closing" in result.output.read_text()
    assert states(client) == {sid: "closed" for sid in made}
    again = run(RUNBOOK, idle="0s", confirm=True)  # converged: nothing left
    assert again.error is None and again.results["plan"]["stale"] == [] and "close" not in again.results


@pytest.mark.slow  # `flexops run` starts a kernel
def test_a_recorded_run_cannot_be_rolled_back(sandbox, client, workdir):
    address(client, sandbox)
    closed, = conversations_with_ended_tasks(client, sandbox, customers(1))
    cli = CliRunner()
    done = cli.invoke(main, ["run", os.fspath(ROOT / "notebooks" / RUNBOOK), "-p", "idle", "0s", "-p", "confirm",
                             "true"])
    assert done.exit_code == 0, done.output
    folder = run_folder.find_run("latest")
    assert json.loads((folder / run_folder.RESULTS).read_text())["verify"]["all_closed"]
    refused = cli.invoke(main, ["rollback", folder.name, "--yes"])
    assert refused.exit_code == 1 and "cannot reopen a closed conversation" in refused.output
    assert closed in refused.output and states(client)[closed] == "closed"


def test_the_close_form_changes_nothing_until_clicked(sandbox, client):
    address(client, sandbox)
    made = conversations_with_ended_tasks(client, sandbox, customers(2))
    the_plan = janitor.find_stale(client, idle="0s")
    form = janitor_view.close_form(client, the_plan)
    assert form.button.description == "Close 2 conversation(s)" and not form.button.disabled
    assert set(states(client).values()) == {"active"}
    form.button.click()
    assert states(client) == {sid: "closed" for sid in made}
    assert form.button.disabled and "2 closed" in form.message.value and form.error is None
    assert notebook.results()["verify"]["all_closed"] and "closed" in form.text()
    assert janitor_view.close_form(client, janitor.find_stale(client, idle="0s")).button.disabled
