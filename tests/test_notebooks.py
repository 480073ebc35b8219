"""The runbooks, executed for real: papermill + the `flexops` kernel against the sandbox fixture (its URL reaches
the kernels through FLEXOPS_SANDBOX_URL), asserting the sandbox state and the recorded results.json."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from flexops import addresses, params, runs, studio
from flexops.addresses import MessengerAddress
from flexops.exceptions import ValidationError
from flexops.sandbox import seed

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CONNECT, CREATE = "00_connect.ipynb", "10_create_messenger_address.ipynb"
VERIFY, REPORT = "20_verify_messenger_addresses.ipynb", "30_inventory_report.ipynb"
PAGE, PAGE2, PAGE3 = (p for p, _ in seed.DEMO_PAGES[:3])
HOOK = "https://hooks.example.com/flexops"
CREDENTIAL_WORDS = ("token", "secret", "password", "api_key", "auth")


class Run:
    def __init__(self, output, results, error):
        self.output, self.results, self.error = output, results, error

    @property
    def failed_cell(self):
        """The source of the cell that raised (papermill marks it with an error output)."""
        nb = nbformat.read(self.output, as_version=4)
        for cell in nb.cells:
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                return cell.source
        return None


@pytest.fixture
def run(tmp_path, monkeypatch):
    """run(notebook, **parameters) -> Run, each in its own run folder (FLEXOPS_RUN_DIR, inherited by the kernel)."""
    count = [0]

    def execute(notebook, **parameters):
        count[0] += 1
        folder = tmp_path / f"run{count[0]}"
        folder.mkdir()
        monkeypatch.setenv("FLEXOPS_RUN_DIR", str(folder))
        output = folder / "output.ipynb"
        error = None
        try:
            runs.execute_notebook(NOTEBOOKS / notebook, output, parameters, extra_arguments=runs.KERNEL_ARGS,
                                  cwd=tmp_path)
        except papermill.PapermillExecutionError as exc:
            error = exc
        results = folder / "results.json"
        return Run(output, json.loads(results.read_text()) if results.exists() else {}, error)
    return execute


def html_shown(output):
    """Every HTML output of an executed notebook, joined."""
    return "".join(o["data"]["text/html"] for cell in nbformat.read(output, as_version=4).cells
                   for o in cell.get("outputs", []) if "text/html" in o.get("data", {}))


def mutations(sandbox):
    return sum(n for key, n in sandbox.control.stats()["requests"].items() if key.split()[0] in ("POST", "DELETE"))


def rows_of(results, subject=None):
    return {r["check"]: r for r in results["checks"] if subject is None or r["subject"] == subject}


def add_address(client, page, flow_sid, **extra):
    return addresses.create(client, MessengerAddress.from_params(page_id=page, studio_flow_sid=flow_sid, **extra))


# --- the committed notebooks ---------------------------------------------------------------------------------

ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("name", ALL)
def test_committed_notebook_is_clean_and_documented(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be the parameters cell"
    assert nb.metadata["kernelspec"]["name"] == "flexops"
    declared = papermill.inspect_notebook(str(NOTEBOOKS / name))
    assigned = [line.split(":")[0].split("=")[0].strip() for line in code[0].source.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert sorted(declared) == sorted(assigned), "papermill must parse every parameter line"
    for pname, spec in declared.items():
        assert spec["help"], f"{name}: parameter {pname} needs a help comment"
        assert not any(word in pname.lower() for word in CREDENTIAL_WORDS), f"{pname}: never credentials"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.slow  # starts a process
def test_notebooks_are_what_the_generator_makes():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "make_notebooks.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_runbook_tables_read_well_and_big_check_lists_show_what_needs_work(capsys, monkeypatch, tmp_path):
    from flexops import notebook
    from flexops.checks import CheckResult

    assert list(notebook.fields_frame({"url": None, "filters": [], "verification": {"pass": 2, "fail": 1},
                                       "events": ("a", "b"), "count": 0})["value"]) == \
        ["—", "—", "pass: 2, fail: 1", "a, b", 0]
    rows = [CheckResult(f"messenger:1000{n}", "exists", "pass") for n in range(5)]
    rows.append(CheckResult("messenger:10009", "flow published", "fail", "draft", "Publish it"))
    notebook.show_checks(rows, "Verification", limit=3)
    shown = capsys.readouterr().out
    assert "Verification by address" in shown and "the 1 failed or warning rows of 6" in shown
    assert "Publish it" in shown and " exists " not in shown, "passing rows are left out above the limit"
    notebook.show_checks(rows[:2], "Verification")
    assert capsys.readouterr().out.count("exists") == 2, "every row when they are few"
    monkeypatch.delenv("FLEXOPS_RUN_DIR", raising=False)
    assert notebook.progress() is True
    monkeypatch.setenv("FLEXOPS_RUN_DIR", str(tmp_path))
    assert notebook.progress() is False, "a recorded headless run keeps no stale progress widgets"


# --- 00 connect ----------------------------------------------------------------------------------------------

@pytest.mark.notebook
def test_connect_passes_on_the_demo_seed_and_fails_with_the_remedy_when_the_flow_is_unpublished(sandbox, client,
                                                                                               run):
    ok = run(CONNECT, target="sandbox")
    assert ok.error is None
    assert ok.results["summary"]["failed"] == 0 and ok.results["target"]["kind"] == "sandbox"
    assert sandbox.demo["auth_token"] not in Path(ok.output).read_text()

    client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).update(status="draft")
    bad = run(CONNECT, target="sandbox")
    assert bad.error is not None and bad.error.ename == "CheckFailed"
    row = rows_of(bad.results)["Studio Flex flow"]
    assert row["status"] == "fail" and "publish the flow" in row["remedy"]
    assert "publish the flow" in Path(bad.output).read_text()  # the remedy is shown in the notebook too


# --- 10 create -----------------------------------------------------------------------------------------------

@pytest.mark.notebook
def test_create_is_idempotent(sandbox, client, run):
    first = run(CREATE, target="sandbox", page_id=int(PAGE), friendly_name="Acme Outdoor Gear")  # as `-p` gives it
    assert first.error is None, first.error
    assert first.results["plan"]["action"] == "would_create"
    assert first.results["result"]["action"] == "created"
    stored = addresses.find(client, PAGE)
    assert stored.auto_creation["studio_flow_sid"] == sandbox.demo["messaging_flow_sid"]  # the blank flow found
    assert stored.auto_creation["studio_retry_count"] == 3 and stored.friendly_name == "Acme Outdoor Gear"
    assert first.results["stored"]["sid"] == stored.sid and first.results["stored"]["retry_count"] == 3
    assert first.results["parameters"]["page_id"] == PAGE  # coerced to the string of digits
    checks = rows_of(first.results)
    assert checks["flow reaches Send to Flex"]["status"] == "pass"
    assert checks["first message"]["status"] == "warn"  # not required while creating
    assert first.results["summary"]["failed"] == 0

    before = mutations(sandbox)
    again = run(CREATE, target="sandbox", page_id=PAGE, friendly_name="Acme Outdoor Gear")
    assert again.error is None and again.results["result"]["action"] == "unchanged"
    assert mutations(sandbox) == before
    assert len(addresses.list_messenger(client)) == 1


@pytest.mark.notebook
def test_dry_run_and_interactive_runs_change_nothing(sandbox, client, run):
    dry = run(CREATE, target="sandbox", page_id=PAGE, dry_run=True)
    assert dry.error is None and dry.results["plan"]["action"] == "would_create"
    assert "result" not in dry.results
    shown = run(CREATE, target="sandbox", page_id=PAGE, interactive=True)
    assert shown.error is None
    outputs = [o for c in nbformat.read(shown.output, as_version=4).cells for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), "form shown"
    assert mutations(sandbox) == 0 and addresses.list_messenger(client) == []


@pytest.mark.notebook
def test_drift_is_reported_then_fixed_with_update_existing(sandbox, client, run):
    add_address(client, PAGE, sandbox.demo["messaging_flow_sid"], retry_count=1, friendly_name="Old name")
    before = mutations(sandbox)
    drift = run(CREATE, target="sandbox", page_id=PAGE, friendly_name="Acme Outdoor Gear")
    assert drift.error is not None and drift.error.ename == "CheckFailed" and "update_existing" in drift.error.evalue
    assert drift.results["result"]["action"] == "drift"
    assert drift.results["result"]["diff"]["retry_count"] == {"current": 1, "desired": 3}
    assert mutations(sandbox) == before and addresses.find(client, PAGE).auto_creation["studio_retry_count"] == 1

    fixed = run(CREATE, target="sandbox", page_id=PAGE, friendly_name="Acme Outdoor Gear", update_existing=True)
    assert fixed.error is None
    assert fixed.results["plan"]["action"] == "would_update" and fixed.results["result"]["action"] == "updated"
    stored = addresses.find(client, PAGE)
    assert stored.auto_creation["studio_retry_count"] == 3 and stored.friendly_name == "Acme Outdoor Gear"


BAD_CREATE = [
    ("page_id", {"page_id": "12ab45678"}),
    ("page_id", {"page_id": "+15551234567"}),
    ("page_id", {}),
    ("friendly_name", {"page_id": PAGE, "friendly_name": "x" * 300}),
    ("studio_flow_sid", {"page_id": PAGE, "studio_flow_sid": "FX" + "0" * 32}),
    ("retry_count", {"page_id": PAGE, "retry_count": 4}),
    ("webhook_url", {"page_id": PAGE, "integration": "webhook", "webhook_url": "http://hooks.example.com/x"}),
    ("webhook_filters", {"page_id": PAGE, "integration": "webhook", "webhook_url": HOOK,
                         "webhook_filters": "onMessageAdded,onMessageExploded"}),
    ("webhook_url", {"page_id": PAGE, "webhook_url": HOOK}),  # a webhook URL with the studio integration
    ("target", {"page_id": PAGE, "target": "production"}),
]


@pytest.mark.notebook
def test_bad_parameters_fail_in_the_validation_cell_with_zero_calls(sandbox, client, run):
    for parameter, values in BAD_CREATE:
        result = run(CREATE, **{"target": "sandbox", **values})
        assert result.error is not None and result.error.ename == "ValidationError", (parameter, values)
        assert result.error.evalue.startswith(f"{parameter}:"), result.error.evalue
        assert "flexops.create_params(" in result.failed_cell
    bad_verify = run(VERIFY, target="sandbox", page_ids="104738392011234,12ab")
    bad_report = run(REPORT, target="sandbox", types="messenger,fax")
    for result, parameter, call in ((bad_verify, "page_ids", "verify_params("),
                                    (bad_report, "types", "report_params(")):
        assert result.error.ename == "ValidationError" and result.error.evalue.startswith(f"{parameter}:")
        assert call in result.failed_cell
    assert sandbox.control.stats()["total"] == 0  # validation happens before connecting: not even a GET
    assert addresses.list_messenger(client) == []


@pytest.mark.notebook
def test_blank_flow_without_a_published_flex_flow_stops_before_any_change(sandbox, client, run):
    client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).update(status="draft")
    before = mutations(sandbox)
    result = run(CREATE, target="sandbox", page_id=PAGE)
    assert result.error.ename == "ValidationError" and result.error.evalue.startswith("studio_flow_sid:")
    assert "no published Studio flow" in result.error.evalue
    assert mutations(sandbox) == before and addresses.list_messenger(client) == []


def test_blank_flow_with_several_published_flex_flows_needs_the_sid(sandbox, client):
    definition = seed.messaging_flow_definition("WW" + "1" * 32, "TC" + "1" * 32)
    other = client.studio.v2.flows.create(friendly_name="Second Flex Flow", status="published",
                                          definition=definition)
    with pytest.raises(ValidationError, match="several published Flex flows") as caught:
        params.resolve_flow(client, "")
    assert caught.value.parameter == "studio_flow_sid" and other.sid in str(caught.value)
    assert params.resolve_flow(client, other.sid, studio.FlowCache(client)) == other.sid


# --- 20 verify -----------------------------------------------------------------------------------------------

@pytest.mark.notebook
def test_verify_catches_broken_flows_and_a_missing_first_message(sandbox, client, run):
    survey = client.studio.v2.flows.create(friendly_name="Survey (no Flex)", status="published",
                                           definition=seed.survey_flow_definition())
    add_address(client, PAGE, sandbox.demo["messaging_flow_sid"])
    add_address(client, PAGE2, sandbox.demo["draft_flow_sid"])
    add_address(client, PAGE3, survey.sid)
    broken = run(VERIFY, target="sandbox", page_ids=f"{PAGE}, {PAGE2},{PAGE3}")
    assert broken.error is not None and broken.error.ename == "CheckFailed"
    counted, shown = broken.results["summary"], html_shown(broken.output)
    assert counted["total"] == 31 and counted["failed"] == 6  # 27 + the path checks (routing, legacy Flex Flow)
    assert f"31 checks: {counted['passed']} passed ✓, 6 failed ✗" in shown and "Verification by address" in shown
    assert "application/vnd.jupyter.widget-view+json" not in Path(broken.output).read_text(), "no stale bars"
    assert rows_of(broken.results, f"messenger:{PAGE}")["first message"]["status"] == "fail"
    assert rows_of(broken.results, f"messenger:{PAGE}")["flow reaches Send to Flex"]["status"] == "pass"
    assert rows_of(broken.results, f"messenger:{PAGE2}")["flow published"]["status"] == "fail"
    survey_rows = rows_of(broken.results, f"messenger:{PAGE3}")
    assert survey_rows["flow published"]["status"] == "pass"
    assert survey_rows["flow reaches Send to Flex"]["status"] == "fail"
    assert broken.results["parameters"]["page_ids"] == [PAGE, PAGE2, PAGE3]

    reply = sandbox.control.simulate_inbound(PAGE, "7712345678901234", "Hello?")
    assert reply["delivered"]
    ok = run(VERIFY, target="sandbox", page_ids=PAGE)
    assert ok.error is None, ok.error
    assert ok.results["summary"]["failed"] == 0
    assert rows_of(ok.results)["first message"]["status"] == "pass"


# --- 30 report -----------------------------------------------------------------------------------------------

@pytest.mark.notebook
def test_report_writes_csv_and_html_into_the_run_folder(sandbox, client, run, tmp_path):
    add_address(client, PAGE, sandbox.demo["messaging_flow_sid"], friendly_name="=HYPERLINK(\"x\")")
    add_address(client, PAGE2, sandbox.demo["draft_flow_sid"])
    report = run(REPORT, target="sandbox")
    assert report.error is None, report.error
    paths = {fmt: Path(p) for fmt, p in report.results["reports"].items()}
    assert set(paths) == {"csv", "xlsx", "json", "html", "md"}
    assert all(p.parent == Path(report.output).parent for p in paths.values()), "blank out_dir = the run folder"
    with open(paths["csv"], encoding="utf-8-sig", newline="") as fh:
        rows = {r["address"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {f"messenger:{PAGE}", f"messenger:{PAGE2}"}
    assert rows[f"messenger:{PAGE}"]["studio_flow_name"] == "Messaging Flow"
    assert rows[f"messenger:{PAGE2}"]["studio_flow_status"] == "draft"
    assert rows[f"messenger:{PAGE2}"]["verification"] == "fail"
    page = paths["html"].read_text()
    assert "Messaging Flow" in page and "<script" not in page
    assert report.results["summary"]["total"] == 2 and report.results["summary"]["flows_draft"] == 1
    outputs = [o for c in nbformat.read(report.output, as_version=4).cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the chart is shown"


# --- flexops demo --------------------------------------------------------------------------------------------

@pytest.mark.notebook
def test_flexops_demo_runs_the_whole_sequence(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from flexops.cli import main

    monkeypatch.delenv("FLEXOPS_SANDBOX_URL", raising=False)
    out = tmp_path / "demo"
    done = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert any("10 create " in line and "created messenger:" + PAGE in line for line in lines)
    assert any("first message" in line and "Studio execution FN" in line for line in lines)
    assert any("20 verify" in line and "0 failed" in line for line in lines)
    assert any("10 create again" in line and "no change" in line for line in lines)
    executed = sorted(out.glob("*/*.ipynb"))
    assert any("50 trace " in line and "trace: reached_agent" in line for line in lines)
    assert any("50 trace again" in line and "trace: broken at conversation" in line for line in lines)
    assert any("50 trace routing" in line and "trace: broken at flex" in line for line in lines)
    assert any("70 routing fix" in line for line in lines)
    assert any("50 trace healthy" in line and "trace: reached_" in line for line in lines)
    assert any("70 routing fix" in line and "trace after: no_message" in line for line in lines)
    assert any("50 trace legacy" in line and "trace: no_message at address" in line for line in lines)
    assert any("70 legacy retire" in line and "succeeded; trace after: no_message" in line for line in lines)
    assert any("50 trace retired" in line and "trace: reached_" in line for line in lines)
    janitor, repair = "60_close_stale_conversations.ipynb", "70_repair_routing_and_legacy.ipynb"
    assert [p.name for p in executed] == [CONNECT, CREATE, VERIFY, TRACE, TRACE, janitor, TRACE, repair, TRACE,
                                          TRACE, repair, TRACE, REPORT, CREATE]
    assert all(not str(p).startswith(str(NOTEBOOKS)) for p in executed)
    html = next(out.glob("*/inventory.html"))
    assert str(html) in done.output and "Acme Outdoor Gear" in html.read_text()
    assert "FLEXOPS_SANDBOX_URL" not in os.environ  # the demo restores the environment


@pytest.mark.notebook
def test_markup_in_names_is_shown_as_text_in_the_executed_notebook(sandbox, client, run):
    add_address(client, PAGE, sandbox.demo["messaging_flow_sid"], friendly_name='<script>alert("x")</script><b>')
    result = run(VERIFY, require_first_message=False)
    assert result.error is None
    text = html_shown(result.output)
    assert "&lt;script&gt;alert" in text and "<script>alert" not in text


TRACE = "50_trace_messenger_message.ipynb"


def test_trace_runbook_records_a_healthy_trace_and_draws_the_path(sandbox, client, run):
    add_address(client, PAGE, sandbox.demo["messaging_flow_sid"])
    delivered = sandbox.control.simulate_inbound(PAGE, "7000123", "hello")
    result = run(TRACE, page_id=PAGE, all_pages=True)
    assert result.error is None
    trace = result.results["trace"]
    assert (trace["verdict"], trace["broken_hop"]) == ("reached_flex", None)
    assert trace["message"]["sid"] == delivered["message_sid"]
    assert next(p for p in result.results["pages"] if p["page_id"] == PAGE)["reached_flex"] == 1
    shown = html_shown(result.output)
    assert shown.count("flexops-hop ") == 5 and "flexops-hop-warn" in shown  # no agent has accepted yet


def test_trace_runbook_fails_on_a_broken_hop_after_recording_it(sandbox, client, run):
    add_address(client, PAGE, sandbox.demo["draft_flow_sid"])
    sandbox.control.simulate_inbound(PAGE, "7000123", "hello")
    result = run(TRACE, page_id=PAGE)
    assert result.error is not None and result.error.ename == "CheckFailed"
    assert (result.results["trace"]["verdict"], result.results["trace"]["broken_hop"]) == ("broken", "studio")
    assert "Publish" in next(h["remedy"] for h in result.results["trace"]["hops"] if h["hop"] == "studio")


def test_trace_runbook_refuses_a_bad_page_id_before_any_call(sandbox, run):
    sandbox.control.reset_stats()
    result = run(TRACE, page_id="+15551234567")
    assert result.error.ename == "ValidationError" and "page_id" in result.error.evalue
    assert sandbox.control.stats()["total"] == 0
