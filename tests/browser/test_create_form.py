"""Runbook 10 as engineers use it: JupyterLab in headless Chromium, `interactive = True`, the ipywidgets form.

The form must call the same code as the headless path, so the end state is checked through the real SDK against
the sandbox, not through the page.
"""
import re

import pytest

import lab

pytestmark = pytest.mark.browser

PAGE = {"page_id": "204738392011235", "name": "Acme Support"}  # a connected page of the demo seed
FLOW_NAME = "Messaging Flow"  # the seed's published Send-to-Flex flow
RETRY_COUNT = 1  # not the default (3), so the form's value provably reaches Twilio


def messenger_configs(client, page_id):
    return [c for c in client.conversations.v1.address_configurations.list(type="messenger")
            if c.address == f"messenger:{page_id}"]


def open_form(notebook):
    nb = notebook(lab.CREATE_NOTEBOOK)
    nb.run_all()
    nb.button("flexops-plan").wait_for(state="visible")
    assert not nb.errors(), nb.errors()
    nb.shots("form")
    return nb


def test_create_studio_address_through_the_form(notebook, lab_sandbox, jupyter_lab):
    client = lab_sandbox.client()
    assert messenger_configs(client, PAGE["page_id"]) == []
    nb = open_form(notebook)
    kernels = {s["kernel"]["name"] for s in jupyter_lab.api("GET", "sessions").json()}
    assert kernels == {"flexops"}, f"the runbook must run on the project's kernel, got {kernels}"

    chosen = nb.select("Facebook Page", PAGE["page_id"])
    assert PAGE["name"] in chosen
    nb.choose("Integration", "studio")
    assert nb.select("Studio flow", FLOW_NAME).startswith(FLOW_NAME)
    nb.fill("Retry count", RETRY_COUNT)
    nb.shots("filled")

    nb.button("flexops-plan").click()
    plan = nb.page.locator(".flexops-plan-output, .flexops-output").filter(has_text=PAGE["page_id"]).last
    plan.wait_for()
    assert re.search(r"\bcreate\b", plan.inner_text(), re.I), plan.inner_text()
    assert messenger_configs(client, PAGE["page_id"]) == [], "Plan must not change the account"
    nb.shots("planned")

    nb.button("flexops-create").click()
    nb.button("flexops-confirm").wait_for(state="visible")
    nb.shots("confirm")
    nb.button("flexops-confirm").click()
    stored = nb.page.locator(".flexops-output, .jp-OutputArea-output").filter(has_text=re.compile(r"IG[0-9a-f]{32}"))
    stored.last.wait_for()
    nb.shots("created")
    text = stored.last.inner_text()
    assert f"messenger:{PAGE['page_id']}" in text or PAGE["page_id"] in text

    [config] = messenger_configs(client, PAGE["page_id"])
    assert config.auto_creation["enabled"] is True
    assert config.auto_creation["type"] == "studio"
    assert config.auto_creation["studio_flow_sid"] == lab_sandbox.demo["messaging_flow_sid"]
    assert int(config.auto_creation["studio_retry_count"]) == RETRY_COUNT
    assert config.sid in text


def test_invalid_page_id_shows_inline_message_and_creates_nothing(notebook, lab_sandbox):
    client = lab_sandbox.client()
    before = [c.sid for c in client.conversations.v1.address_configurations.list()]
    nb = open_form(notebook)

    nb.fill("Facebook Page", "+15551234567")
    nb.button("flexops-plan").click()
    message = nb.page.locator(".flexops-validation").filter(has_text="page")
    message.wait_for()
    nb.shots("invalid")
    assert re.search(r"phone number|digits", message.inner_text()), message.inner_text()
    assert nb.button("flexops-confirm").count() == 0 or not nb.button("flexops-confirm").is_visible()
    assert [c.sid for c in client.conversations.v1.address_configurations.list()] == before
