"""ipywidgets forms for the runbooks (`interactive = True`), pre-filled from the notebook parameters.

A form calls exactly what the headless path calls (params.create_params / create_spec, addresses.ensure,
checks.verify / preflight), so a click and a papermill run do the same thing. Nothing changes the account without
a second click: Create shows the plan with Confirm / Cancel. Widgets carry stable descriptions ("Facebook Page",
"Studio flow", "Retry count", "Plan", "Create", "Confirm", "Cancel") and `flexops-*` CSS classes so a browser
test can find them; tests in Python set `.value` and call `.click()`.
The shared widget toolkit (Panel, guarded) is widgets.py's.
"""
import html

import ipywidgets as w

from . import address_spec, addresses, checks, notebook
from .exceptions import FlexopsError
from .params import create_params, create_spec, verify_params
from .plan import apply_recorded
from .studio import FlowCache
from .widgets import WIDE, Panel, classed, guarded, show, visible, wide

INTEGRATIONS = ("studio", "webhook")


def connected_pages(client):
    """[{page_id, name}] of the Facebook Pages connected to the account, or None when the target cannot list
    them: the sandbox can (control plane); Twilio has no API for it, so the form then offers a text field."""
    target = getattr(client, "flexops_target", None)
    if target is None or not target.is_sandbox:
        return None
    from .sandbox.control import SandboxControl

    return SandboxControl(target.sandbox_url).pages(account_sid=client.account_sid)


# --- runbook 10 ----------------------------------------------------------------------------------------------

def _int_or(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class CreateForm(Panel):
    """Create or update one Messenger address: Plan (dry run), Create -> Confirm / Cancel."""

    def __init__(self, client, page_id=None, friendly_name=None, integration="studio", studio_flow_sid=None,
                 retry_count=3, webhook_url=None, webhook_method="POST", webhook_filters=(), update_existing=False,
                 problem=None, pages="auto", flows=None, **_ignored):
        super().__init__()
        self.client = client
        self.flows = flows or FlowCache(client)
        self.result = None  # the last addresses.Result (plan or change)
        self.stored = None  # the stored configuration after a change
        self.checks = None  # verification rows after a change
        self._pending = None  # the spec Create asked to confirm
        page_id = "" if page_id is None else str(page_id).strip()
        self.page = classed(self._page_widget(page_id, connected_pages(client) if pages == "auto" else pages),
                             "page")
        self.friendly_name = classed(w.Text(value=friendly_name or "", description="Friendly name", style=WIDE,
                                             placeholder="optional, shown in the Console", layout=wide()),
                                      "friendly-name")
        self.integration = classed(w.RadioButtons(options=INTEGRATIONS, description="Integration", style=WIDE,
                                                   value=integration if integration in INTEGRATIONS else "studio"),
                                    "integration")
        self.integration.add_class("widget-inline-hbox")  # label beside the choices, aligned like the other fields
        self.flow = classed(self._flow_widget(studio_flow_sid), "flow")
        self.retry = classed(w.BoundedIntText(value=min(max(_int_or(retry_count, 3), 0), 3), min=0, max=3,
                                               description="Retry count", style=WIDE), "retry")
        self.webhook_url = classed(w.Text(value=webhook_url or "", description="Webhook URL", style=WIDE,
                                           placeholder="https://...", layout=wide()), "webhook-url")
        method = str(webhook_method or "POST").upper()
        self.webhook_method = classed(w.Dropdown(options=address_spec.WEBHOOK_METHODS, description="Webhook method",
                                                  value=method if method in address_spec.WEBHOOK_METHODS else "POST",
                                                  style=WIDE), "webhook-method")
        filters = webhook_filters.split(",") if isinstance(webhook_filters, str) else webhook_filters or ()
        self.webhook_filters = classed(w.SelectMultiple(
            options=address_spec.WEBHOOK_EVENTS, description="Webhook filters", style=WIDE, rows=5,
            value=tuple(f.strip() for f in filters if f.strip() in address_spec.WEBHOOK_EVENTS)), "webhook-filters")
        self.update_existing = classed(w.Checkbox(value=bool(update_existing), description="Update if it differs",
                                                   indent=False), "update-existing")
        self.plan_button = classed(w.Button(description="Plan", tooltip="Show what would change (changes nothing)",
                                             icon="list"), "plan")
        self.create_button = classed(w.Button(description="Create", button_style="primary",
                                               tooltip="Create or update the address (asks for confirmation)"),
                                      "create")
        self.confirm_button = classed(w.Button(description="Confirm", button_style="danger"), "confirm")
        self.cancel_button = classed(w.Button(description="Cancel"), "cancel")
        self.confirm_text = classed(w.HTML(""), "confirm-text")
        self.studio_box = classed(w.VBox([self.flow, self.retry]), "studio")
        self.webhook_box = classed(w.VBox([self.webhook_url, self.webhook_method, self.webhook_filters]), "webhook")
        self.confirm_box = classed(w.VBox([self.confirm_text, w.HBox([self.confirm_button, self.cancel_button])]),
                                    "confirm-box")
        target = html.escape(client.flexops_target.describe())
        self.widget = classed(w.VBox([
            w.HTML(f"<b>Create a Messenger address</b> on {target}"), self.page, self.friendly_name,
            self.integration, self.studio_box, self.webhook_box, self.update_existing, self.message,
            w.HBox([self.plan_button, self.create_button]), self.confirm_box, self.output]), "create-form")
        self.plan_button.on_click(self.plan)
        self.create_button.on_click(self.create)
        self.confirm_button.on_click(self.confirm)
        self.cancel_button.on_click(self.cancel)
        for widget in (self.page, self.friendly_name, self.integration, self.flow, self.retry, self.webhook_url,
                       self.webhook_method, self.webhook_filters, self.update_existing):
            widget.observe(self._changed, names="value")
        visible(self.confirm_box, False)
        self._show_integration()
        if problem:
            self.say(problem, problem=True)
        else:
            self.validate()

    def _page_widget(self, page_id, pages):
        """An editable field that offers the connected pages as "Name (ID)" but takes any typed ID too: a page
        connected after the list was read, or a wrong ID, must reach the same validation as a papermill run.
        Real Twilio cannot list connected pages (pages is None): the same field, with nothing to offer."""
        self._page_labels = {f"{p['name']} ({p['page_id']})": str(p["page_id"]) for p in pages or ()}
        hint = "choose a connected page or type a Page ID" if self._page_labels else "Facebook Page ID (digits)"
        return w.Combobox(value=self._page_label(page_id), options=list(self._page_labels), ensure_option=False,
                          continuous_update=False, placeholder=hint, description="Facebook Page", style=WIDE,
                          layout=wide())

    def _page_label(self, page_id):
        """The list label of a connected page's ID (the name confirms the choice); any other text unchanged."""
        return next((label for label, known in self._page_labels.items() if known == page_id), page_id)

    @property
    def page_id(self):
        """The page ID in the field: a chosen label maps back to its ID, typed text is taken as it is."""
        text = self.page.value.strip()
        return self._page_labels.get(text, text)

    def _flow_widget(self, studio_flow_sid):
        try:
            found = self.flows.published_flex_flows()
        except FlexopsError as exc:
            found = []
            self.say(f"cannot list Studio flows: {exc}", problem=True)
        options = [(f"{f.friendly_name} ({f.sid})", f.sid) for f in found]
        if studio_flow_sid and studio_flow_sid not in {v for _, v in options}:
            options.append((f"{studio_flow_sid} (not a published Send-to-Flex flow)", studio_flow_sid))
        value = studio_flow_sid or (options[0][1] if len(options) == 1 else None)
        return w.Dropdown(options=options, value=value, description="Studio flow", style=WIDE, layout=wide())

    # --- state ---------------------------------------------------------------------------------------------

    def values(self):
        """The form as create_params() keyword arguments (fields of the other integration left blank)."""
        studio = self.integration.value == "studio"
        return {"page_id": self.page_id, "friendly_name": self.friendly_name.value,
                "integration": self.integration.value,
                "studio_flow_sid": (self.flow.value or "") if studio else "",
                "retry_count": self.retry.value if studio else "",
                "webhook_url": "" if studio else self.webhook_url.value,
                "webhook_method": "" if studio else self.webhook_method.value,
                "webhook_filters": "" if studio else ",".join(self.webhook_filters.value),
                "update_existing": self.update_existing.value}

    def validate(self):
        """create_params() on the form values: the inline message shows the first problem. Returns params or None."""
        try:
            params = create_params(**self.values())
        except FlexopsError as exc:
            self.say(str(exc), problem=True)
            return None
        self.say("")
        return params

    def spec(self):
        """The MessengerAddress the form describes (flow checked on the account), or None (message shown)."""
        params = self.validate()
        if params is None:
            return None
        if params["integration"] == "studio" and not params["studio_flow_sid"]:
            self.say("studio_flow_sid: choose a Studio flow (none is published with Send to Flex: see runbook 00)",
                     problem=True)
            return None
        return create_spec(self.client, params, flows=self.flows)

    def _changed(self, change=None):
        if change is not None and change["owner"] is self.page and self._page_label(self.page_id) != change["new"]:
            self.page.value = self._page_label(self.page_id)  # a typed connected ID shows its name; observed again
            return
        self._pending = None
        visible(self.confirm_box, False)
        self._show_integration()
        self.validate()

    def _show_integration(self):
        visible(self.studio_box, self.integration.value == "studio")
        visible(self.webhook_box, self.integration.value == "webhook")

    # --- actions -------------------------------------------------------------------------------------------

    @guarded
    def plan(self, _button=None):
        """Dry run: what Create would do. Changes nothing."""
        spec = self.spec()
        if spec is None:
            return None
        self.clear()
        self.result = notebook.plan_address(self.client, spec, self.update_existing.value, view=self)
        return self.result

    @guarded
    def create(self, _button=None):
        """Show the plan and ask for confirmation; only Confirm changes the account."""
        result = self.plan()
        if result is None:
            return None
        if result.action == "unchanged":
            self.say("No change needed: the address already matches.")
            return result
        if result.action == "drift":
            self.say("The address exists with different settings: tick 'Update if it differs' to change it.",
                     problem=True)
            return result
        self._pending = self.spec()
        verb = "Create" if result.action == "would_create" else "Update"
        self.confirm_text.value = (f"{verb} <b>{html.escape(result.address)}</b> on "
                                   f"<b>{html.escape(self.client.flexops_target.describe())}</b>?")
        visible(self.confirm_box, True)
        return result

    @guarded
    def confirm(self, _button=None):
        """Apply the confirmed spec, then show what Twilio stores and the checks for the address."""
        spec, self._pending = self._pending, None
        visible(self.confirm_box, False)
        if spec is None:
            self.say("Nothing to confirm: click Create first.", problem=True)
            return None
        self.clear()
        self.result, self.stored, self.checks = notebook.create_address(self.client, spec,
                                                                        self.update_existing.value, view=self)
        self.say(notebook.plan_text(self.result), problem=self.result.action == "drift")
        return self.result

    def cancel(self, _button=None):
        self._pending = None
        visible(self.confirm_box, False)
        self.say("Cancelled: nothing was changed.")


def create_form(client, **params):
    """Show a CreateForm pre-filled from runbook 10's parameters (target, dry_run... are ignored)."""
    return show(CreateForm(client, **params))


# --- runbook 20 ----------------------------------------------------------------------------------------------

class VerifyForm(Panel):
    """Pick Messenger addresses and run checks.verify on them."""

    def __init__(self, client, page_ids=(), require_first_message=True, **_ignored):
        super().__init__()
        self.client = client
        self.results = None
        options = [(f"{c.friendly_name or '(no name)'} ({c.address.partition(':')[2]})", c.address.partition(":")[2])
                   for c in addresses.list_messenger(client)]
        known = {v for _, v in options}
        options += [(p, p) for p in page_ids or () if p not in known]
        self.pages = classed(w.SelectMultiple(options=options, value=tuple(page_ids or ()), rows=min(8, len(options)
                                               or 1), description="Messenger addresses", style=WIDE), "verify-pages")
        self.require_first_message = classed(w.Checkbox(value=bool(require_first_message), indent=False,
                                                         description="Require a first message"), "require-first")
        self.run_button = classed(w.Button(description="Run checks", button_style="primary"), "verify-run")
        self.run_button.on_click(self.run)
        self.widget = classed(w.VBox([w.HTML("<b>Verify Messenger addresses</b> (none selected: all)"),
                                       self.pages, self.require_first_message, self.run_button, self.message,
                                       self.output]), "verify-form")

    @guarded
    def run(self, _button=None):
        params = verify_params(page_ids=list(self.pages.value),
                               require_first_message=self.require_first_message.value)
        self.clear()
        self.results = checks.verify(self.client, page_ids=params["page_ids"] or None,
                                     require_first_message=params["require_first_message"], progress=False)
        summary = checks.summary(self.results)
        self.show_table(checks.table(self.results), "Verification")
        self.say(f"{summary['passed']} passed, {summary['failed']} failed, {summary['warnings']} warnings",
                 problem=bool(summary["failed"]))
        return self.results


def verify_form(client, **params):
    return show(VerifyForm(client, **params))


# --- runbook 00 ----------------------------------------------------------------------------------------------

class PreflightPanel(Panel):
    """A "Re-run checks" button for after fixing something in the Console."""

    def __init__(self, client):
        super().__init__()
        self.client = client
        self.results = None
        self.rerun_button = classed(w.Button(description="Re-run checks", icon="refresh"), "rerun")
        self.rerun_button.on_click(self.run)
        self.widget = classed(w.VBox([self.rerun_button, self.message, self.output]), "preflight")

    @guarded
    def run(self, _button=None):
        self.clear()
        self.results = checks.preflight(self.client)
        summary = checks.summary(self.results)
        self.show_table(checks.table(self.results), "Preflight")
        self.say(f"{summary['passed']} passed, {summary['failed']} failed, {summary['warnings']} warnings",
                 problem=bool(summary["failed"]))
        return self.results


def preflight_panel(client):
    return show(PreflightPanel(client))


# --- runbook 40 ----------------------------------------------------------------------------------------------

def confirm_panel(client, plan, **apply_kwargs):
    """An Apply button under the plan: nothing changes until it is clicked; returns the widget (`.click()`s in
    tests). The click runs `plan.apply_recorded()` and shows the outcome, exactly as the headless cell does."""
    count = len(plan.pending)
    button = w.Button(description=f"Apply {count} change(s)", button_style="danger", disabled=not count,
                      tooltip=plan.target)
    button.add_class("flexops-apply")
    output = w.Output()
    button.result = None

    def on_click(_):
        button.disabled = True
        with output:
            button.result = notebook.show_apply(apply_recorded(client, plan, notebook.record, progress=False,
                                                               **apply_kwargs))

    button.on_click(on_click)
    panel = w.VBox([w.HTML(f"<b>{html.escape(plan.summary())}</b> on {html.escape(plan.target)}"), button, output])
    if notebook.in_notebook():
        from IPython.display import display
        display(panel)
    return button
