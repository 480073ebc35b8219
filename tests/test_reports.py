"""reports: every format written from a real inventory and opened back the way a person's tools would open it."""
import base64
import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from openpyxl import load_workbook

from flexops import cli, inventory, report_io, reports
from flexops.exceptions import ValidationError

INJECTIONS = ['=HYPERLINK("http://x","y")', "+cmd", "-1+2", "@SUM(1)", "\tTAB", "\rCR", "'=already quoted"]
UNICODE = "Acme 😀 שלום עולם 中文ページ"
HOSTILE = '<script>alert("x")</script> " onmouseover="steal()" | *bold* $x$'
PAGE_ID = "104738392011234"


def make(client, address, kind="messenger", **options):
    return client.conversations.v1.address_configurations.create(type=kind, address=address, **options)


@pytest.fixture
def df(sandbox, client):
    make(client, f"messenger:{PAGE_ID}", friendly_name=UNICODE, auto_creation_enabled=True,
         auto_creation_type="studio", auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"])
    make(client, "messenger:204738392011235", friendly_name=HOSTILE, auto_creation_type="webhook",
         auto_creation_webhook_url="https://hooks.example.com/in", auto_creation_webhook_method="post")
    for n, text in enumerate(INJECTIONS):
        make(client, f"messenger:3000000{n}", friendly_name=text)
    make(client, "+15551230000", kind="sms")
    return inventory.collect(client, progress=False, verify=lambda c, d: {f"messenger:{PAGE_ID}": "pass",
                                                                          "+15551230000": "fail"})


def by_address(rows):
    return {r["address"]: r for r in rows}


def test_csv_is_safe_utf8_and_keeps_page_ids(tmp_path, df):
    path = reports.export(df, tmp_path, formats="csv")["csv"]
    assert path.name == "inventory.csv" and path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for Excel
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == inventory.COLUMNS and len(rows) == len(df)
    cells = by_address(rows)
    for n, text in enumerate(INJECTIONS):
        assert cells[f"messenger:3000000{n}"]["friendly_name"] == "'" + text
    assert "'+15551230000" in cells  # a leading + starts a formula in Excel too
    assert cells[f"messenger:{PAGE_ID}"]["friendly_name"] == UNICODE
    assert cells[f"messenger:{PAGE_ID}"]["page_id"] == PAGE_ID
    assert f'"{PAGE_ID}"' in path.read_text(encoding="utf-8-sig")  # quoted text, never 1.04738E+14
    back = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert PAGE_ID in set(back["page_id"])


def test_xlsx_sheets_header_filter_and_no_formulas(tmp_path, df):
    path = reports.export(df, tmp_path, formats=["xlsx"])["xlsx"]
    book = load_workbook(path)
    assert book.sheetnames == ["Summary", "Inventory"]
    sheet = book["Inventory"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:X{len(df) + 1}"  # 24 columns
    assert [c.value for c in sheet[1]] == list(inventory.COLUMNS) and sheet["A1"].font.b
    assert all(10 <= sheet.column_dimensions[c].width <= 60 for c in "ABCDEFGHIJKLMNOPQRSTU")
    for ws in book.worksheets:
        formulas = [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
        assert formulas == [], ws.title
    header = [c.value for c in sheet[1]]
    rows = {row[header.index("address")].value: dict(zip(header, row)) for row in sheet.iter_rows(min_row=2)}
    for n, text in enumerate(INJECTIONS):
        cell = rows[f"messenger:3000000{n}"]["friendly_name"]
        # XML reading normalises a carriage return to a line feed; what matters is text, not a formula
        assert cell.value == "'" + text.replace("\r", "\n") and cell.data_type == "s"
    page = rows[f"messenger:{PAGE_ID}"]
    assert page["page_id"].value == PAGE_ID and page["page_id"].data_type == "s"
    assert page["page_id"].number_format == "@"
    assert page["friendly_name"].value == UNICODE and page["verification"].value == "pass"
    assert page["date_created"].is_date
    summary = [[c.value for c in row] for row in book["Summary"].iter_rows()]
    assert ["Address configurations", len(df)] in summary and ["fail", 1] in summary


def test_json_metadata_and_records(tmp_path, df):
    path = reports.export(df, tmp_path, formats="json", metadata={"ticket": "OPS-1"})["json"]
    text = path.read_text(encoding="utf-8")
    assert UNICODE in text  # written as UTF-8, not \u escapes
    document = json.loads(text)
    meta, records = document["metadata"], document["records"]
    assert meta["rows"] == len(records) == len(df) and meta["ticket"] == "OPS-1"
    assert meta["columns"] == list(inventory.COLUMNS) and meta["summary"]["verification"]["fail"] == 1
    row = by_address(records)[f"messenger:{PAGE_ID}"]
    assert row["page_id"] == PAGE_ID and row["studio_flow_name"] == "Messaging Flow"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["date_created"])
    assert row["webhook_url"] is None and row["retry_count"] is None
    assert by_address(records)["messenger:30000000"]["friendly_name"] == INJECTIONS[0]  # JSON is data, not a sheet


def test_html_is_self_contained_and_escaped(tmp_path, df):
    path = reports.export(df, tmp_path, formats="html", title="Ops <b>weekly</b>")["html"]
    text = path.read_text(encoding="utf-8")
    soup = BeautifulSoup(text, "html.parser")
    assert soup.title.string == "Ops <b>weekly</b>" and soup.find("b") is None
    assert soup.find_all("script") == [] and soup.find_all("link") == []
    assert not [tag for tag in soup.find_all(True) if any(a.startswith("on") for a in tag.attrs)]
    for tag in soup.find_all(True):
        for attr in ("src", "href", "action", "data"):
            assert not str(tag.get(attr, "")).startswith(("http:", "https:", "//")), tag
    assert "url(" not in "".join(s.string or "" for s in soup.find_all("style"))
    images = soup.find_all("img")
    assert len(images) == 5
    for img in images:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1]).startswith(b"\x89PNG")
    cells = [td.get_text() for td in soup.find_all("td")]
    assert HOSTILE in cells and UNICODE in cells and PAGE_ID in cells and INJECTIONS[0] in cells
    assert "&lt;script&gt;" in text and "&quot; onmouseover=&quot;" in text


def test_markdown_summary_is_escaped(tmp_path, df):
    path = reports.export(df, tmp_path, formats="md")["md"]
    text = path.read_text(encoding="utf-8")
    assert path.name == "summary.md" and text.startswith("# Address configuration inventory")
    assert f"| Address configurations | {len(df)} |" in text and "| fail | 1 |" in text
    assert "| Messaging Flow | published |" in text and "<script>" not in text


def test_changes_since_previous_report(tmp_path, sandbox, client, df):
    first = reports.export(df, tmp_path / "first")
    configs = client.conversations.v1.address_configurations
    configs("+15551230000").delete()
    configs(f"messenger:{PAGE_ID}").update(friendly_name="Renamed")
    make(client, "messenger:404738392011237")
    now = inventory.collect(client, progress=False)
    second = reports.export(now, tmp_path / "second", previous=tmp_path / "first")
    meta = json.loads(second["json"].read_text(encoding="utf-8"))["metadata"]
    assert meta["changes"]["counts"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": len(df) - 2}
    soup = BeautifulSoup(second["html"].read_text(encoding="utf-8"), "html.parser")
    changes = soup.find("h2", string="Changes since last report").find_next("p").get_text()
    assert changes.startswith("added: 1, removed: 1, changed: 1")
    cells = [td.get_text() for td in soup.find_all("td")]
    assert "messenger:404738392011237" in cells and "+15551230000" in cells and "Renamed" in cells
    md = second["md"].read_text(encoding="utf-8")
    assert "| changed | messenger:104738392011234 | friendly\\_name:" in md
    assert reports.export(now, tmp_path / "third", formats="json", previous=first["csv"])  # a file works too


def test_empty_account_report(tmp_path, sandbox):
    other = sandbox.control.create_account("empty")
    empty = inventory.collect(sandbox.client(other["account_sid"]), progress=False)
    written = reports.export(empty, tmp_path)
    assert set(written) == set(reports.FORMATS) and all(p.stat().st_size > 0 for p in written.values())
    book = load_workbook(written["xlsx"])
    assert book["Inventory"].max_row == 1 and book["Inventory"].auto_filter.ref == "A1:X1"
    assert json.loads(written["json"].read_text())["records"] == []
    soup = BeautifulSoup(written["html"].read_text(encoding="utf-8"), "html.parser")
    assert "No address configurations in this account." in soup.get_text()
    assert report_io.load(written["csv"]).empty and report_io.load(written["xlsx"]).empty


def test_report_of_120_addresses_uses_three_list_pages(tmp_path, sandbox, client):
    for n in range(120):
        make(client, f"messenger:5{n:09d}", friendly_name=f"Page {n}", auto_creation_type="studio",
             auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"])
    sandbox.control.reset_stats()
    df = inventory.collect(client, progress=False)
    requests = sandbox.control.stats()["requests"]
    assert requests.get("GET conversations") == 3 and requests.get("GET studio") == 1
    assert len(df) == 120 and df["address"].is_unique and df.attrs["flexops"]["list_pages"] == 3
    written = reports.export(df, tmp_path)
    soup = BeautifulSoup(written["html"].read_text(encoding="utf-8"), "html.parser")
    assert len(soup.find("h2", string="Inventory (120)").find_next("table").find_all("tr")) == 121
    assert load_workbook(written["xlsx"])["Inventory"].max_row == 121


def test_export_validates_before_writing(tmp_path, df):
    with pytest.raises(ValidationError) as err:
        reports.export(df, tmp_path / "out", formats="csv,pdf")
    assert err.value.parameter == "formats" and not (tmp_path / "out").exists()
    with pytest.raises(ValidationError) as err:
        reports.export(df, tmp_path / "out", previous=tmp_path / "missing")
    assert err.value.parameter == "previous"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError) as err:
        reports.export(df, tmp_path / "file")
    assert err.value.parameter == "out_dir"
    with pytest.raises(ValidationError) as err:
        reports.export(df.to_dict(), tmp_path / "out")
    assert err.value.parameter == "df"


def test_cell_protection_is_reversible():
    for text in INJECTIONS + ["plain", "'quoted", "''=x", "", "2024-01-01"]:
        assert report_io.unprotect_cell(report_io.protect_cell(text)) == text
    assert report_io.protect_cell(5) == 5 and report_io.protect_cell("plain") == "plain"


def test_cli_report(tmp_path, sandbox, client):
    from flexops.cli import main

    make(client, f"messenger:{PAGE_ID}", friendly_name="CLI page")
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["report", "--target", "sandbox", "--format", "csv,md", "--out", str(out),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"csv\t{out / 'inventory.csv'}\nmd\t{out / 'summary.md'}" in result.output
    assert (out / "summary.md").exists() and sandbox.demo["auth_token"] not in result.output
    again = CliRunner().invoke(main, ["report", "--target", "sandbox", "--format", "html", "--out",
                                      str(tmp_path / "next"), "--since", str(out), "--types", "messenger"])
    assert again.exit_code == 0, again.output
    assert "unchanged: 1" in (tmp_path / "next" / "inventory.html").read_text(encoding="utf-8")
    before = sandbox.control.stats()["total"]
    bad = CliRunner().invoke(main, ["report", "--target", "sandbox", "--format", "pdf", "--out", str(out)])
    assert bad.exit_code == 2 and "formats" in bad.output
    bad = CliRunner().invoke(main, ["report", "--target", "sandbox", "--types", "fax"])
    assert bad.exit_code == 2 and "types" in bad.output
    assert sandbox.control.stats()["total"] == before  # refused before any Twilio call


def test_run_report_with_verification(tmp_path, sandbox, client):
    make(client, f"messenger:{PAGE_ID}", auto_creation_enabled=True, auto_creation_type="studio",
         auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"])
    make(client, "messenger:204738392011235", auto_creation_enabled=True, auto_creation_type="studio",
         auto_creation_studio_flow_sid="FW" + "0" * 32)
    df, written = cli.run_report(target="sandbox", formats="json,html", out_dir=tmp_path, verify=True,
                                     progress=False)
    verdicts = dict(zip(df["address"], df["verification"]))
    assert verdicts["messenger:204738392011235"] == "fail" and verdicts[f"messenger:{PAGE_ID}"] in ("pass", "warn")
    summary = json.loads(written["json"].read_text(encoding="utf-8"))["metadata"]["summary"]
    assert summary["verification"]["fail"] == 1


HOSTILE_FLOW = '=HYPERLINK("http://x","y") <b>中文 שלום 😀</b>'


def test_flow_names_and_titles_are_safe_in_the_summary_sheet_markdown_and_html(tmp_path, sandbox, client):
    flow = client.studio.v2.flows.create(friendly_name=HOSTILE_FLOW, status="published",
                                         definition=client.studio.v2.flows(sandbox.demo["messaging_flow_sid"])
                                         .fetch().definition)
    make(client, f"messenger:{PAGE_ID}", auto_creation_type="studio", auto_creation_studio_flow_sid=flow.sid)
    df = inventory.collect(client, progress=False)
    written = reports.export(df, tmp_path, title="@SUM(1) <i>weekly</i>")
    summary = load_workbook(written["xlsx"])["Summary"]
    cells = [c for row in summary.iter_rows() for c in row if c.value is not None]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    labels = [c.value for c in cells if isinstance(c.value, str)]
    assert "'@SUM(1) <i>weekly</i>" in labels and f"'{HOSTILE_FLOW} [published] {flow.sid}" in labels
    text = written["md"].read_text(encoding="utf-8")
    assert text.startswith("# @SUM(1) \\<i\\>weekly\\</i\\>") and "<b>" not in text
    assert '| =HYPERLINK("http://x","y") \\<b\\>中文 שלום 😀\\</b\\> | published |' in text
    soup = BeautifulSoup(written["html"].read_text(encoding="utf-8"), "html.parser")
    assert soup.find("b") is None and soup.find("i") is None and soup.h1.get_text() == "@SUM(1) <i>weekly</i>"
    flows = soup.find("h2", string="Studio flows").find_next("table")
    assert [td.get_text() for td in flows.find_all("td")] == [HOSTILE_FLOW, "published", flow.sid, "1"]


def test_needs_attention_lists_failed_draft_and_missing(tmp_path, sandbox, client):
    make(client, f"messenger:{PAGE_ID}", friendly_name="Draft", auto_creation_type="studio",
         auto_creation_studio_flow_sid=sandbox.demo["draft_flow_sid"])
    make(client, "messenger:204738392011235", friendly_name="Gone", auto_creation_type="studio",
         auto_creation_studio_flow_sid="FW" + "0" * 32)
    make(client, "messenger:304738392011236", friendly_name="Fine")
    df = inventory.collect(client, progress=False, verify=lambda c, d: {"messenger:304738392011236": "fail"})
    assert list(reports.summarize(df)["verification"]) == ["fail", "not verified"]
    expected = [(f"messenger:{PAGE_ID}", "Draft", "Studio flow is a draft"),
                ("messenger:204738392011235", "Gone", "Studio flow missing"),
                ("messenger:304738392011236", "Fine", "verification failed")]
    assert sorted(reports.attention(df)) == expected
    written = reports.export(df, tmp_path, formats="html,md")
    soup = BeautifulSoup(written["html"].read_text(encoding="utf-8"), "html.parser")
    table = soup.find("h2", string="Needs attention (3)").find_next("table")
    assert sorted(tuple(td.get_text() for td in tr.find_all("td")) for tr in table.find_all("tr")[1:]) == expected
    assert "| messenger:204738392011235 | Gone | Studio flow missing |" in written["md"].read_text(encoding="utf-8")
    for path in reports.export(df.iloc[0:0], tmp_path / "clean", formats="html,md").values():
        clean = path.read_text(encoding="utf-8")
        assert "Needs attention (0)" in clean and "verification was not run" in clean, path.name


def test_verification_is_summarised_in_a_fixed_order(df):
    verdicts = list(reports.summarize(df.assign(verification=["warn"] * 3 + ["pass"] + [None] * (len(df) - 4)))
                    ["verification"])
    assert verdicts == ["pass", "warn", "not verified"]


def test_changes_say_what_they_were_compared_with(tmp_path, client, df):
    first = reports.export(df, tmp_path / "first", formats="json")
    second = reports.export(df, tmp_path / "second", formats="json,html,md", previous=tmp_path)
    meta = json.loads(second["json"].read_text(encoding="utf-8"))["metadata"]
    generated = df.attrs["flexops"]["generated_at"]
    assert meta["changes"]["previous"] == {"path": str(first["json"]), "generated_at": generated}
    soup = BeautifulSoup(second["html"].read_text(encoding="utf-8"), "html.parser")
    hint = soup.find("h2", string="Changes since last report").find_next("p", class_="hint").get_text()
    assert hint == f"Compared with the inventory generated {generated} (UTC) in {first['json']}."
    assert f"Compared with the inventory generated {generated} (UTC)" in second["md"].read_text(encoding="utf-8")


def test_cli_since_errors_name_the_flag_before_any_call(tmp_path, sandbox):
    from flexops.cli import main

    (tmp_path / "nothing").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    before = sandbox.control.stats()["total"]
    for since in ("nothing", "notes.txt"):
        result = CliRunner().invoke(main, ["report", "--target", "sandbox", "--since", str(tmp_path / since),
                                           "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and "error: since: " in result.output, result.output
    result = CliRunner().invoke(main, ["report", "--target", "sandbox", "--title", " ", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "title" in result.output
    assert sandbox.control.stats()["total"] == before and not (tmp_path / "out").exists()


@pytest.mark.notebook
def test_runbook_compares_with_the_newest_run(tmp_path, sandbox, client, monkeypatch):
    from flexops.cli import main

    monkeypatch.chdir(tmp_path)
    runbook = str(Path(__file__).resolve().parent.parent / "notebooks" / "30_inventory_report.ipynb")
    make(client, f"messenger:{PAGE_ID}", friendly_name="First")
    first = CliRunner().invoke(main, ["run", runbook, "--runs-dir", "runs", "--target", "sandbox"])
    assert first.exit_code == 0, first.output
    make(client, "+15551230000", kind="sms", friendly_name="=1+1")
    second = CliRunner().invoke(main, ["run", runbook, "--runs-dir", "runs", "--target", "sandbox",
                                       "-p", "since", "runs"])
    assert second.exit_code == 0, second.output
    folder = max(p for p in Path("runs").iterdir() if p.is_dir())
    results = json.loads((folder / "results.json").read_text())
    assert results["changes"] == {"added": 1, "removed": 0, "changed": 0, "unchanged": 1}
    html = (folder / "inventory.html").read_text(encoding="utf-8")
    assert "added: 1, removed: 0, changed: 0, unchanged: 1" in html
    assert "What changed" in (folder / "output.html").read_text(encoding="utf-8")
