"""The HTML inventory report as a reader sees it at 1280 px in Chromium: wide tables scroll inside their own box,
the page itself never runs off the right edge, and the address column stays in view while scrolling."""
import pytest

pytestmark = pytest.mark.browser

WHATSAPP = "whatsapp:+15005550009"  # added by this test (the session sandbox is shared: assert on it only)


@pytest.fixture
def report_page(browser, lab_sandbox, tmp_path):
    from flexops import inventory, reports

    client = lab_sandbox.client()
    configs = client.conversations.v1.address_configurations
    if WHATSAPP not in {c.address for c in configs.list()}:
        configs.create(type="whatsapp", address=WHATSAPP, friendly_name="Report layout", auto_creation_enabled=False)
    path = reports.export(inventory.collect(client, progress=False), tmp_path, formats="html")["html"]
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(path.resolve().as_uri())
    yield page
    page.close()


def test_wide_inventory_table_scrolls_in_its_box_and_keeps_the_address_in_view(report_page):
    page = report_page
    page_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert page_width <= 1280, f"the page runs off the right edge ({page_width}px)"

    box = page.locator("h2", has_text="Inventory").locator("xpath=following-sibling::div[1]")
    size = box.evaluate("el => ({client: el.clientWidth, scroll: el.scrollWidth, overflow: getComputedStyle(el)"
                        ".overflowX})")
    assert size["overflow"] == "auto" and size["scroll"] > size["client"], size  # 19 columns: scrolls sideways
    assert "scroll the table sideways" in page.locator(".hint").inner_text()

    cell = box.locator("td", has_text=WHATSAPP)
    left = cell.bounding_box()["x"]
    box.evaluate("el => { el.scrollLeft = el.scrollWidth }")  # to the last column
    assert box.locator("th").last.is_visible() and abs(cell.bounding_box()["x"] - left) < 1, \
        "the address column must stay in view while the table scrolls"
    assert page.evaluate("() => window.scrollX") == 0
