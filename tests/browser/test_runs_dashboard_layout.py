"""runs/index.html as a person sees it in Chromium: the runs table renders with one row per run, newest first, the
three charts load as pictures (data: URIs, nothing fetched), the page does not run off the right edge, and the links
open the run's output.html."""
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: run_history
from run_history import EVIL, history  # noqa: E402


@pytest.fixture
def dashboard(browser, tmp_path):
    from flexops import runs_dashboard

    history(tmp_path / "runs")
    path = runs_dashboard.write_index(tmp_path / "runs")
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: requests.append(f"dialog: {dialog.message}") or dialog.dismiss())
    page.goto(path.resolve().as_uri())
    yield page, requests, path
    page.close()


def test_the_dashboard_shows_its_table_and_charts(dashboard):
    page, requests, path = dashboard
    rows = page.locator("table#runs tbody tr")
    assert rows.count() == 9
    assert EVIL in rows.first.locator("td").nth(2).inner_text()  # shown as text, never run
    assert rows.nth(1).locator("td").nth(1).inner_text() == "succeeded (exit 0)"
    images = page.locator(".charts img")
    assert images.count() == 3
    for i in range(3):
        size = images.nth(i).evaluate("img => ({complete: img.complete, w: img.naturalWidth, h: img.naturalHeight})")
        assert size["complete"] and size["w"] > 300 and size["h"] > 200, size
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    assert not [r for r in requests if not r.startswith(("file:", "data:"))], requests  # nothing fetched or alerted
    rows.nth(1).get_by_role("link", name="output.html").click()
    page.wait_for_load_state()
    assert page.url.endswith("/output.html") and page.inner_text("body") == "run"
