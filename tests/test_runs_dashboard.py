"""runs/index.html from real run folders: newest first, every value escaped (names and paths can hold markup),
relative links to each output.html and folder, and the charts inlined as PNG data: URIs."""
import base64
import json
import os
from datetime import datetime, timezone

from bs4 import BeautifulSoup
from click.testing import CliRunner

from flexops import runs_dashboard
from flexops.cli import main
from run_history import EVIL, history, make_run

def test_the_index_lists_runs_newest_first_escaped_with_links_and_charts(tmp_path):
    folders = history(tmp_path / "runs")
    path = runs_dashboard.write_index(tmp_path / "runs")
    assert path == tmp_path / "runs" / "index.html"
    page = path.read_text()
    soup = BeautifulSoup(page, "html.parser")
    assert not soup.find_all(["script", "svg"]) and "onerror" not in str(soup.find_all("img"))  # markup stayed text
    rows = soup.select("table#runs tbody tr")
    assert len(rows) == 9
    first = [td.get_text(strip=True) for td in rows[0].find_all("td")]
    assert first[1] == "interrupted (exit 130)" and first[2] == f"{EVIL}.ipynb" and first[4] == EVIL  # newest first, as text
    assert [a.get_text() for a in rows[0].find_all("a")] == ["folder"]  # no output.html in that run
    verify = [td.get_text(strip=True) for td in rows[2].find_all("td")]  # day 3's verify: 3 passed, 1 failed
    assert verify[1] == "failed (exit 1)" and verify[4] == "AC…cdef" and verify[6:8] == ["3", "1"]
    for row, folder in zip(rows[1:], reversed(folders[:-1])):
        links = {a.get_text(): a["href"] for a in row.find_all("a")}
        assert links == {"output.html": f"{folder.name}/output.html", "folder": f"{folder.name}/"}
        assert (path.parent / links["output.html"]).is_file()
    images = soup.select(".charts img")
    assert [img["alt"] for img in images] == ["Verification pass rate per account", "Addresses per account",
                                              "Runs by outcome"]
    for img in images:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not soup.find_all(attrs={"href": lambda h: h and h.startswith(("http:", "https:"))})  # self-contained


def test_an_empty_history_says_so_and_charts_say_no_data(tmp_path):
    (tmp_path / "runs").mkdir()
    soup = BeautifulSoup(runs_dashboard.write_index(tmp_path / "runs").read_text(), "html.parser")
    assert "No runs yet" in soup.get_text()
    assert [p.get_text() for p in soup.select(".charts .empty")] == [
        "Verification pass rate per account: no data yet", "Addresses per account: no data yet",
        "Runs by outcome: no data yet"]


def test_a_folder_with_a_broken_manifest_is_counted_not_fatal(tmp_path):
    make_run(tmp_path / "runs", "good", datetime(2026, 11, 1, tzinfo=timezone.utc))
    broken = tmp_path / "runs" / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps({"run_id": "broken", "started_at": "2026-11-02"}))
    soup = BeautifulSoup(runs_dashboard.render(tmp_path / "runs"), "html.parser")
    assert len(soup.select("table#runs tbody tr")) == 1
    assert "1 folder(s) with an unreadable manifest left out" in soup.get_text()


def test_runs_index_command(tmp_path, monkeypatch):
    history(tmp_path / "runs")
    result = CliRunner().invoke(main, ["runs", "index", "--runs-dir", os.fspath(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == os.fspath(tmp_path / "runs" / "index.html")
    missing = CliRunner().invoke(main, ["runs", "index", "--runs-dir", os.fspath(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "runs_dir: no such folder" in missing.output
