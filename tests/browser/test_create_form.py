"""Runbook 10 as engineers use it: JupyterLab in headless Chromium, `interactive = True`, the ipywidgets form.

The form must call the same code as the headless path, so the end state is checked through the real SDK against
the sandbox, not only through the page.
"""
import re

import pytest
from playwright.sync_api import expect

import lab

pytestmark = pytest.mark.browser

PAGE = {"page_id": "204738392011235", "name": "Acme Support"}  # a connected page of the demo seed
PAGE_LABEL = f"{PAGE['name']} ({PAGE['page_id']})"  # how the form's "Facebook Page" field offers it
ADDRESS = f"messenger:{PAGE['page_id']}"
FLOW_NAME = "Messaging Flow"  # the seed's published Send-to-Flex flow
RETRY_COUNT = 1  # not the default (3), so the form's value provably reaches Twilio
INVALID_PAGE_ID = "+15551234567"  # a phone number, the classic mistake


def configs(client):
    return client.conversations.v1.address_configurations.list()


def open_form(notebook, parameter_line=None):
    """Open a fresh copy of runbook 10 (interactive = True), optionally type a parameter, Run All, find the form."""
    nb = notebook(lab.CREATE_NOTEBOOK)
    if parameter_line:
        nb.append_to_cell(0, parameter_line)  # the cell tagged "parameters"
        nb.shots("parameter-typed")
    nb.run_all()
    form = lab.CreateForm(nb).wait()
    assert not nb.errors(), nb.errors()
    nb.shots("form")
    return nb, form


def test_create_studio_address_through_the_form(notebook, lab_sandbox, jupyter_lab):
    client = lab_sandbox.client()
    assert not [c for c in configs(client) if c.address == ADDRESS]
    nb, form = open_form(notebook)
    kernels = {s["kernel"]["name"] for s in jupyter_lab.api("GET", "sessions").json()}
    assert kernels == {"flexops"}, f"the runbook must run on the project's kernel, got {kernels}"

    nb.choose("Integration", "webhook")
    nb.widget("Webhook URL").wait_for(state="visible")
    nb.widget("Studio flow").wait_for(state="hidden")
    page_label, flow_label = form.fill(PAGE["page_id"], FLOW_NAME, RETRY_COUNT)  # back to studio
    nb.widget("Webhook URL").wait_for(state="hidden")
    assert page_label == PAGE_LABEL
    assert flow_label == f"{FLOW_NAME} ({lab_sandbox.demo['messaging_flow_sid']})"
    nb.shots("filled")

    plan = form.plan(ADDRESS)
    nb.shots("planned")
    assert f"{ADDRESS}: would be created" in plan
    assert lab_sandbox.demo["messaging_flow_sid"] in plan and "studio" in plan
    assert not [c for c in configs(client) if c.address == ADDRESS], "Plan must not change the account"

    question = form.create()
    nb.shots("confirm")
    assert ADDRESS in question and "SANDBOX" in question.upper()
    assert not [c for c in configs(client) if c.address == ADDRESS], "Create must wait for Confirm"

    shown = form.confirm(ADDRESS)
    nb.shots("created")
    assert f"{ADDRESS}: created" in shown
    assert not form.confirm_box.is_visible()

    [config] = [c for c in configs(client) if c.address == ADDRESS]
    assert config.type == "messenger"
    assert config.auto_creation["enabled"] is True
    assert config.auto_creation["type"] == "studio"
    assert config.auto_creation["studio_flow_sid"] == lab_sandbox.demo["messaging_flow_sid"]
    assert int(config.auto_creation["studio_retry_count"]) == RETRY_COUNT
    assert config.sid in shown, "the stored configuration shown is the one Twilio holds"


def test_invalid_page_id_typed_in_the_form_shows_inline_message_and_creates_nothing(notebook, lab_sandbox):
    """The issue's scenario: in the form, type an invalid page ID, see the inline message; nothing is created."""
    client = lab_sandbox.client()
    before = sorted(c.sid for c in configs(client))
    nb, form = open_form(notebook)
    assert PAGE_LABEL in nb.suggestions("Facebook Page"), "the connected pages are offered"

    nb.fill("Facebook Page", INVALID_PAGE_ID)
    expect(form.message).to_contain_text("phone number")
    nb.shots("invalid-typed")
    assert re.search(r"page_id.*phone number", form.message_text()), form.message_text()
    assert nb.field_value("Facebook Page") == INVALID_PAGE_ID, "the typed text stays, to be corrected"

    form.button("plan").click()
    form.button("create").click()
    # The kernel handles widget events in order: once typing the right ID has cleared the message (and the field
    # names the page), Plan and Create above have been handled, and must have shown nothing and asked nothing.
    nb.fill("Facebook Page", PAGE["page_id"])
    expect(form.message).not_to_contain_text("phone number")
    expect(nb.widget("Facebook Page").locator("input")).to_have_value(PAGE_LABEL)
    nb.shots("refused-then-fixed")
    assert form.output.inner_text().strip() == ""
    assert not form.confirm_box.is_visible()
    assert sorted(c.sid for c in configs(client)) == before


def test_invalid_page_id_parameter_opens_the_form_with_the_message(notebook, lab_sandbox):
    """A bad `page_id` typed in the parameters cell (or given with `flexops run -p`) does not stop an interactive
    run: the form opens on that value with the same inline message."""
    nb, form = open_form(notebook, f'page_id = "{INVALID_PAGE_ID}"')
    assert nb.field_value("Facebook Page") == INVALID_PAGE_ID
    assert re.search(r"page_id.*phone number", form.message_text()), form.message_text()
