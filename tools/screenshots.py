"""`make screenshots`: regenerate docs/img/*.png from the real runbooks, in JupyterLab and headless Chromium.

It reuses the browser tests' own set-up (tests/browser/lab.py) against a freshly seeded sandbox, and tells the
same story as `flexops demo`: runbook 10's form creates a Messenger address, a customer writes to the page, more
addresses exist, runbook 20 verifies them, flexops.reports writes the HTML inventory report.

    docs/img/create-form.png       runbook 10 with interactive = True: the form filled in, planned, asking Confirm
    docs/img/verify-table.png      runbook 20's verification table, as run in Lab
    docs/img/inventory-report.png  the HTML inventory report (runbook 30 / flexops.reports), opened as file://
    docs/img/trace-path.png        runbook 50's picture of the path into Flex for the form's page, as run in Lab
"""
import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

import lab  # noqa: E402  (tests/browser/lab.py: shared with the browser tests)

OUT = REPO / "docs" / "img"
VERIFY_NOTEBOOK = "20_verify_messenger_addresses.ipynb"
TRACE_NOTEBOOK = "50_trace_messenger_message.ipynb"
FORM_PAGE = "204738392011235"  # Acme Support: created through the form, then gets a first message
WEBHOOK_PAGE = "104738392011234"  # Acme Outdoor Gear: a webhook address with no message yet (a warning row)
VIEWPORT = (1280, 1600)


def shoot(locator, path, pad=6):
    """A screenshot of one element with a margin of page around it."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    clip = {"x": max(box["x"] - pad, 0), "y": max(box["y"] - pad, 0),
            "width": box["width"] + 2 * pad, "height": box["height"] + 2 * pad}
    locator.page.screenshot(path=path, clip=clip, animations="disabled")


def shoot_create_form(browser, jupyter_lab, out):
    """Fill runbook 10's form, Plan, Create (the Confirm question shows): that is the picture. Then Confirm."""
    page = browser.new_page()
    nb = lab.Notebook(page, jupyter_lab, lab.CREATE_NOTEBOOK).open()
    nb.run_all()
    form = lab.CreateForm(nb).wait()
    nb.fill("Friendly name", "Acme Support on Messenger")
    form.fill(FORM_PAGE, "Messaging Flow", 1)
    form.plan(f"messenger:{FORM_PAGE}")
    form.create()
    shoot(form.root, out / "create-form.png")
    form.confirm(f"messenger:{FORM_PAGE}")
    page.close()


def add_traffic_and_addresses(sandbox_url):
    """A first message on the form's page, then a webhook Messenger address and a WhatsApp sender (report
    variety). Returns the client and the inventory before those two, so the report shows what changed."""
    from flexops import addresses, inventory
    from flexops.client import connect, sandbox_target
    from flexops.sandbox.control import SandboxControl

    SandboxControl(sandbox_url).simulate_inbound(FORM_PAGE, "6283749201837465", "Hi! Is my order on its way?")
    client = connect(sandbox_target(url=sandbox_url))
    before = inventory.collect(client, progress=False)
    addresses.ensure(client, addresses.MessengerAddress(
        page_id=WEBHOOK_PAGE, friendly_name="Outdoor Gear (webhook)", integration="webhook",
        webhook_url="https://hooks.example.com/flex/messenger", webhook_filters=("onMessageAdded",)))
    client.conversations.v1.address_configurations.create(
        type="whatsapp", address="whatsapp:+15005550006", friendly_name="Support WhatsApp",
        auto_creation_enabled=False)
    return client, before


def shoot_verify_table(browser, jupyter_lab, out):
    """Run runbook 20 headless-style in Lab and picture its Verification output."""
    page = browser.new_page()
    nb = lab.Notebook(page, jupyter_lab, VERIFY_NOTEBOOK).open()
    nb.run_all()
    cell = page.locator(".jp-CodeCell").filter(has=page.locator("h4", has_text="Verification")).first
    shoot(cell.locator(".jp-Cell-outputArea"), out / "verify-table.png")
    page.close()


def shoot_trace_path(browser, jupyter_lab, out):
    """Run runbook 50 for the form's page (its customer wrote, the task waits for an agent) and picture the path."""
    page = browser.new_page()
    nb = lab.Notebook(page, jupyter_lab, TRACE_NOTEBOOK).open()
    nb.run_all()
    shoot(page.locator(".flexops-trace").first, out / "trace-path.png")
    page.close()


def shoot_inventory_report(browser, client, previous, work, out):
    """Collect the inventory (with verification), export the HTML report (changes since `previous`), open it from
    disk, picture the page."""
    from flexops import checks, inventory, reports

    df = inventory.collect(client, verify=checks.verify_inventory, progress=False)
    paths = reports.export(df, work / "report", formats=("html",), previous=previous,
                           metadata={"runbook": "30_inventory_report"})
    page = browser.new_page()
    page.goto(paths["html"].resolve().as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=out / "inventory-report.png", full_page=True, animations="disabled")
    page.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (default: docs/img)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lab.ensure_chromium(install=True)
    with tempfile.TemporaryDirectory(prefix="flexops-screenshots-") as tmp:
        work = Path(tmp)
        server, _demo = lab.start_sandbox(work / "sandbox.db")
        try:
            root = lab.copy_notebooks(work / "root", **{lab.CREATE_NOTEBOOK: {"interactive": True},
                                                        TRACE_NOTEBOOK: {"page_id": FORM_PAGE}})
            env = {"FLEXOPS_SANDBOX_URL": server.url, "FLEXOPS_SANDBOX_TOKEN": server.control_token,
                   "FLEXOPS_TARGET": "sandbox"}
            with lab.JupyterLab(root, work / "lab", env=env) as jupyter_lab, \
                    lab.Browser(work / "chromium-profile", viewport=VIEWPORT) as browser:
                shoot_create_form(browser, jupyter_lab, args.out)
                client, before = add_traffic_and_addresses(server.url)
                shoot_verify_table(browser, jupyter_lab, args.out)
                shoot_trace_path(browser, jupyter_lab, args.out)
                shoot_inventory_report(browser, client, before, work, args.out)
                jupyter_lab.shutdown_kernels()
        finally:
            server.stop()
    for name in ("create-form.png", "verify-table.png", "trace-path.png", "inventory-report.png"):
        print(f"wrote {(args.out / name).relative_to(REPO) if args.out.is_relative_to(REPO) else args.out / name}")


if __name__ == "__main__":
    main()
