"""The widgets, driven from Python as a user would (set `.value`, `.click()`), against the sandbox."""
import pytest

from flexops import addresses, ui
from flexops.addresses import MessengerAddress
from flexops.sandbox import seed

PAGE, PAGE2 = seed.DEMO_PAGES[0][0], seed.DEMO_PAGES[1][0]
HOOK = "https://hooks.example.com/flexops"


def label(page_id):
    """The field's label of a connected demo page: "Name (ID)"."""
    return next(f"{name} ({page})" for page, name in seed.DEMO_PAGES if page == page_id)


def mutations(sandbox):
    return sum(n for key, n in sandbox.control.stats()["requests"].items() if key.split()[0] in ("POST", "DELETE"))


def shown(widget):
    return widget.layout.display != "none"


@pytest.fixture
def form(sandbox, client):
    return ui.CreateForm(client, page_id=PAGE, friendly_name="Acme Outdoor Gear")


def test_form_is_prefilled_from_the_parameters_and_the_account(sandbox, form):
    assert form.page.description == "Facebook Page" and form.page_id == PAGE
    assert form.page.options == tuple(f"{name} ({page})" for page, name in seed.DEMO_PAGES)  # the connected pages
    assert form.page.value == label(PAGE) and not form.page.ensure_option  # editable: any ID may be typed
    assert form.flow.description == "Studio flow" and form.flow.value == sandbox.demo["messaging_flow_sid"]
    assert [value for _, value in form.flow.options] == [sandbox.demo["messaging_flow_sid"]]  # draft flow not offered
    assert form.retry.description == "Retry count" and form.retry.value == 3
    assert [b.description for b in (form.plan_button, form.create_button, form.confirm_button, form.cancel_button)] \
        == ["Plan", "Create", "Confirm", "Cancel"]
    assert "flexops-plan" in form.plan_button._dom_classes and "flexops-page" in form.page._dom_classes
    assert form.error is None and not shown(form.confirm_box)


def test_webhook_fields_only_show_for_the_webhook_integration(form):
    assert shown(form.studio_box) and not shown(form.webhook_box)
    form.integration.value = "webhook"
    assert shown(form.webhook_box) and not shown(form.studio_box)
    assert form.error.startswith("webhook_url:")  # inline: a webhook needs its URL
    form.webhook_url.value = HOOK
    assert form.error is None
    form.integration.value = "studio"
    assert not shown(form.webhook_box)


def test_plan_creates_nothing(sandbox, client, form):
    form.plan_button.click()
    assert form.result.action == "would_create"
    assert "would be created" in form.text() and "studio_flow_sid" in form.text()
    assert mutations(sandbox) == 0 and addresses.list_messenger(client) == []


def test_create_asks_for_confirmation_then_creates_exactly_one(sandbox, client, form):
    form.create_button.click()
    assert shown(form.confirm_box) and "messenger:" + PAGE in form.confirm_text.value
    assert "SANDBOX" in form.confirm_text.value
    assert mutations(sandbox) == 0, "Create alone must not change anything"
    form.confirm_button.click()
    assert not shown(form.confirm_box)
    assert form.result.action == "created" and mutations(sandbox) == 1
    listed = addresses.list_messenger(client)
    assert [c.address for c in listed] == [f"messenger:{PAGE}"]
    assert listed[0].auto_creation["studio_flow_sid"] == sandbox.demo["messaging_flow_sid"]
    assert form.stored["sid"] == listed[0].sid and form.stored["retry_count"] == 3
    assert "Stored configuration" in form.text() and "flow reaches Send to Flex" in form.text()
    form.confirm_button.click()  # a second Confirm without Create does nothing
    assert mutations(sandbox) == 1 and form.error.startswith("Nothing to confirm")
    form.create_button.click()
    assert not shown(form.confirm_box) and "No change needed" in form.message.value


def test_cancel_creates_nothing(sandbox, client, form):
    form.create_button.click()
    form.cancel_button.click()
    assert not shown(form.confirm_box) and "nothing was changed" in form.message.value
    form.confirm_button.click()
    assert mutations(sandbox) == 0 and addresses.list_messenger(client) == []


def test_changing_a_value_withdraws_the_confirmation(sandbox, client, form):
    form.create_button.click()
    form.retry.value = 1
    assert not shown(form.confirm_box)
    form.confirm_button.click()
    assert mutations(sandbox) == 0


@pytest.mark.parametrize("pages", ["auto", None], ids=["connected-pages-offered", "real-twilio-no-list"])
def test_invalid_page_id_typed_shows_the_inline_message_and_creates_nothing(sandbox, client, pages):
    typed = ui.CreateForm(client, pages=pages)  # None: real Twilio cannot list pages, the same field offers none
    assert typed.page.description == "Facebook Page" and typed.error.startswith("page_id:")
    assert bool(typed.page.options) == (pages == "auto")
    typed.page.value = "+15551234567"
    assert typed.error.startswith("page_id:") and "phone number" in typed.error and "page_id" in typed.message.value
    assert typed.page.value == "+15551234567", "the typed text stays for the engineer to correct"
    typed.create_button.click()
    typed.confirm_button.click()
    typed.plan_button.click()
    assert not shown(typed.confirm_box) and typed.result is None
    assert mutations(sandbox) == 0 and addresses.list_messenger(client) == []
    typed.page.value = PAGE2
    assert typed.error is None and typed.page_id == PAGE2


def test_page_field_takes_a_chosen_label_or_a_typed_id(sandbox, client, form):
    form.page.value = label(PAGE2)  # chosen from the list
    assert form.page_id == PAGE2 and form.values()["page_id"] == PAGE2 and form.error is None
    form.page.value = f" {PAGE} "  # a connected page's ID typed: the field names the page
    assert form.page.value == label(PAGE) and form.page_id == PAGE
    unlisted = "987654321012345"  # e.g. connected after the form opened: still usable
    form.page.value = unlisted
    assert form.page.value == unlisted and form.error is None
    form.plan_button.click()
    assert form.result.action == "would_create" and form.result.address == f"messenger:{unlisted}"
    assert mutations(sandbox) == 0


def test_drift_is_shown_and_only_applied_with_update_if_it_differs(sandbox, client, form):
    spec = MessengerAddress.from_params(page_id=PAGE, studio_flow_sid=sandbox.demo["messaging_flow_sid"],
                                        retry_count=1, friendly_name="Acme Outdoor Gear")
    addresses.create(client, spec)
    before = mutations(sandbox)
    form.create_button.click()
    assert form.result.action == "drift" and not shown(form.confirm_box) and "Update if it differs" in form.error
    form.update_existing.value = True
    form.create_button.click()
    assert form.result.action == "would_update" and "Update" in form.confirm_text.value
    form.confirm_button.click()
    assert form.result.action == "updated" and mutations(sandbox) == before + 1
    assert addresses.find(client, PAGE).auto_creation["studio_retry_count"] == 3


def test_webhook_address_through_the_form(sandbox, client, form):
    form.integration.value = "webhook"
    form.webhook_url.value = HOOK
    form.webhook_filters.value = ("onMessageAdded",)
    form.create_button.click()
    form.confirm_button.click()
    stored = addresses.find(client, PAGE).auto_creation
    assert stored["type"] == "webhook" and stored["webhook_url"] == HOOK
    assert stored["webhook_filters"] == ["onMessageAdded"] and "studio_flow_sid" not in stored


def test_form_shows_a_parameter_problem_it_was_opened_with(sandbox, client):
    opened = ui.CreateForm(client, page_id=PAGE, retry_count=4, problem="retry_count: must be a whole number from 0 "
                           "to 3 (got 4)")
    assert opened.error.startswith("retry_count:") and opened.retry.value == 3


def test_verify_form_runs_the_checks_for_the_chosen_pages(sandbox, client):
    addresses.create(client, MessengerAddress.from_params(page_id=PAGE,
                                                          studio_flow_sid=sandbox.demo["messaging_flow_sid"]))
    addresses.create(client, MessengerAddress.from_params(page_id=PAGE2,
                                                          studio_flow_sid=sandbox.demo["draft_flow_sid"]))
    before = mutations(sandbox)
    form = ui.VerifyForm(client, require_first_message=False)
    assert {value for _, value in form.pages.options} == {PAGE, PAGE2}
    form.pages.value = (PAGE,)
    form.run_button.click()
    assert {r.subject for r in form.results} == {f"messenger:{PAGE}"} and form.error is None
    form.pages.value = ()
    form.run_button.click()  # none chosen: all of them
    assert {r.subject for r in form.results} == {f"messenger:{PAGE}", f"messenger:{PAGE2}"}
    failed = [r for r in form.results if r.status == "fail"]
    assert {r.subject for r in failed} == {f"messenger:{PAGE2}"} and f"{len(failed)} failed" in form.error
    assert mutations(sandbox) == before


def test_preflight_panel_reruns_the_checks(sandbox, client):
    panel = ui.PreflightPanel(client)
    assert panel.rerun_button.description == "Re-run checks"
    panel.rerun_button.click()
    assert [r.status for r in panel.results] == ["pass"] * 5 and "Studio Flex flow" in panel.text()
    client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).update(status="draft")
    panel.rerun_button.click()
    assert panel.error and "publish the flow" in panel.text()


def test_the_form_makes_what_the_headless_runbook_makes(sandbox, client):
    """Runbook 10's cells and the form it opens (same parameters) give the same stored configuration and record
    the same results."""
    from flexops import notebook
    from flexops.params import create_params, create_spec

    params = create_params(target="sandbox", page_id=PAGE2, friendly_name="Acme", retry_count="2")
    headless = addresses.ensure(client, create_spec(client, params))  # what the runbook's cells call
    form = ui.create_form(client, **{**params, "page_id": PAGE})  # what the runbook calls with interactive=True
    form.create_button.click()
    form.confirm_button.click()
    assert (headless.action, form.result.action) == ("created", "created")
    made = {page: addresses.state_of(addresses.find(client, page)) for page in (PAGE, PAGE2)}
    assert made[PAGE] == made[PAGE2] and made[PAGE]["retry_count"] == 2
    recorded = notebook.results()
    assert recorded["result"]["address"] == f"messenger:{PAGE}" and recorded["stored"]["retry_count"] == 2
    assert recorded["summary"] == {"passed": 10, "failed": 0, "warnings": 1, "total": 11, "unreachable": False}
