"""ipywidgets forms for the runbooks (`interactive = True`), pre-filled from the notebook parameters.

A form calls exactly what the headless path calls (params.create_params / create_spec, addresses.ensure,
checks.verify / preflight), so a click and a papermill run do the same thing. Nothing changes the account without
a second click: Create shows the plan with Confirm / Cancel. Widgets carry stable descriptions ("Facebook Page",
"Studio flow", "Retry count", "Plan", "Create", "Confirm", "Cancel") and `flexops-*` CSS classes so a browser
test can find them; tests in Python set `.value` and call `.click()`.

Results go into the Output widget's `outputs` directly (not `with output:`), which works in a kernel callback
and in plain Python alike.
"""
import functools
import html

import ipywidgets as w

from . import addresses, checks, notebook
from .exceptions import FlexopsError
from .params import create_params, create_spec, verify_params
from .studio import FlowCache

INTEGRATIONS = ("studio", "webhook")
WIDE = {"description_width": "130px"}
FIELD_WIDTH = "620px"  # description included: room for "Messaging Flow (FW + 32 hex)" and "Name (page ID)" labels


def _wide():
    """A Layout of its own per widget (a shared one would share `display` too)."""
    return w.Layout(width=FIELD_WIDTH)


def _classed(widget, name):
    widget.add_class(f"flexops-{name}")
    return widget


def _visible(widget, shown):
    widget.layout.display = "" if shown else "none"


def _show(panel):
    if notebook.in_notebook():
        from IPython.display import display
        display(panel.widget)
    return panel


def connected_pages(client):
    """[{page_id, name}] of the Facebook Pages connected to the account, or None when the target cannot list
    them: the sandbox can (control plane); Twilio has no API for it, so the form then offers a text field."""
    target = getattr(client, "flexops_target", None)
    if target is None or not target.is_sandbox:
        return None
    from .sandbox.control import SandboxControl

    return SandboxControl(target.sandbox_url).pages(account_sid=client.account_sid)


class Panel:
    """A widget box with an inline message line and an Output area for results."""

    def __init__(self):
        self.message = _classed(w.HTML(""), "message")
        self.output = _classed(w.Output(), "output")
        self.error = None  # the last problem shown in `message`, for tests and callers

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def say(self, text, problem=False):
        self.error = text if problem else None
        colour = "#b3261e" if problem else "#1f4f7a"
        self.message.value = f'<span style="color:{colour}">{"✗ " if problem else ""}{html.escape(text)}</span>' \
            if text else ""

    def clear(self):
        self.output.outputs = ()

    def put(self, html_text, plain):
        self.output.outputs += ({"output_type": "display_data", "metadata": {},
                                 "data": {"text/html": html_text, "text/plain": plain}},)

    def put_table(self, frame, title):
        self.put(f"<h4>{html.escape(title)}</h4>" + frame.to_html(index=False, escape=True, na_rep=""),
                 f"{title}\n{frame.to_string(index=False)}")

    def text(self):
        """Everything shown in the Output area, as plain text."""
        return "\n".join(o.get("text") or o.get("data", {}).get("text/plain", "") for o in self.output.outputs)


def guarded(method):
    """Widget callbacks run outside any cell: show a failure in the form instead of losing it in the kernel log."""
    @functools.wraps(method)
    def run(self, *args):
        try:
            return method(self, *args)
        except FlexopsError as exc:
            self.say(str(exc), problem=True)
        except Exception as exc:
            self.say(f"unexpected error: {type(exc).__name__}: {exc}", problem=True)
            raise
        return None
    return run


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
        self.page = _classed(self._page_widget(page_id, connected_pages(client) if pages == "auto" else pages),
                             "page")
        self.friendly_name = _classed(w.Text(value=friendly_name or "", description="Friendly name", style=WIDE,
                                             placeholder="optional, shown in the Console", layout=_wide()),
                                      "friendly-name")
        self.integration = _classed(w.RadioButtons(options=INTEGRATIONS, description="Integration", style=WIDE,
                                                   value=integration if integration in INTEGRATIONS else "studio"),
                                    "integration")
        self.integration.add_class("widget-inline-hbox")  # label beside the choices, aligned like the other fields
        self.flow = _classed(self._flow_widget(studio_flow_sid), "flow")
        self.retry = _classed(w.BoundedIntText(value=min(max(_int_or(retry_count, 3), 0), 3), min=0, max=3,
                                               description="Retry count", style=WIDE), "retry")
        self.webhook_url = _classed(w.Text(value=webhook_url or "", description="Webhook URL", style=WIDE,
                                           placeholder="https://...", layout=_wide()), "webhook-url")
        method = str(webhook_method or "POST").upper()
        self.webhook_method = _classed(w.Dropdown(options=addresses.WEBHOOK_METHODS, description="Webhook method",
                                                  value=method if method in addresses.WEBHOOK_METHODS else "POST",
                                                  style=WIDE), "webhook-method")
        filters = webhook_filters.split(",") if isinstance(webhook_filters, str) else webhook_filters or ()
        self.webhook_filters = _classed(w.SelectMultiple(
            options=addresses.WEBHOOK_EVENTS, description="Webhook filters", style=WIDE, rows=5,
            value=tuple(f.strip() for f in filters if f.strip() in addresses.WEBHOOK_EVENTS)), "webhook-filters")
        self.update_existing = _classed(w.Checkbox(value=bool(update_existing), description="Update if it differs",
                                                   indent=False), "update-existing")
        self.plan_button = _classed(w.Button(description="Plan", tooltip="Show what would change (changes nothing)",
                                             icon="list"), "plan")
        self.create_button = _classed(w.Button(description="Create", button_style="primary",
                                               tooltip="Create or update the address (asks for confirmation)"),
                                      "create")
        self.confirm_button = _classed(w.Button(description="Confirm", button_style="danger"), "confirm")
        self.cancel_button = _classed(w.Button(description="Cancel"), "cancel")
        self.confirm_text = _classed(w.HTML(""), "confirm-text")
        self.studio_box = _classed(w.VBox([self.flow, self.retry]), "studio")
        self.webhook_box = _classed(w.VBox([self.webhook_url, self.webhook_method, self.webhook_filters]), "webhook")
        self.confirm_box = _classed(w.VBox([self.confirm_text, w.HBox([self.confirm_button, self.cancel_button])]),
                                    "confirm-box")
        target = html.escape(client.flexops_target.describe())
        self.widget = _classed(w.VBox([
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
        _visible(self.confirm_box, False)
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
                          layout=_wide())

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
        return w.Dropdown(options=options, value=value, description="Studio flow", style=WIDE, layout=_wide())

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
        _visible(self.confirm_box, False)
        self._show_integration()
        self.validate()

    def _show_integration(self):
        _visible(self.studio_box, self.integration.value == "studio")
        _visible(self.webhook_box, self.integration.value == "webhook")

    # --- actions -------------------------------------------------------------------------------------------

    def _ensure(self, spec, dry_run):
        return addresses.ensure(self.client, spec, update_existing=self.update_existing.value, dry_run=dry_run)

    def _put_result(self, result, title):
        self.put(f"<p><b>{html.escape(notebook.plan_text(result))}</b></p>", notebook.plan_text(result))
        if result.diff:
            self.put_table(notebook.plan_frame(result), title)

    @guarded
    def plan(self, _button=None):
        """Dry run: what Create would do. Changes nothing."""
        spec = self.spec()
        if spec is None:
            return None
        self.clear()
        self.result = self._ensure(spec, dry_run=True)
        self._put_result(self.result, "Plan")
        notebook.record("plan", self.result)
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
        _visible(self.confirm_box, True)
        return result

    @guarded
    def confirm(self, _button=None):
        """Apply the confirmed spec, then show what Twilio stores and the checks for the address."""
        spec, self._pending = self._pending, None
        _visible(self.confirm_box, False)
        if spec is None:
            self.say("Nothing to confirm: click Create first.", problem=True)
            return None
        self.clear()
        self.result = self._ensure(spec, dry_run=False)
        self._put_result(self.result, "Changes")
        notebook.record("result", self.result)
        self.stored = notebook.address_fields(addresses.find(self.client, spec.page_id))
        self.put_table(notebook.fields_frame(self.stored), f"Stored configuration of {spec.address}")
        notebook.record("stored", self.stored)
        self.checks = checks.verify(self.client, page_ids=[spec.page_id], require_first_message=False,
                                    progress=False)
        self.put_table(checks.table(self.checks), "Checks")
        notebook.record("checks", [r.to_dict() for r in self.checks])
        notebook.record("summary", checks.summary(self.checks))
        self.say(notebook.plan_text(self.result), problem=self.result.action == "drift")
        return self.result

    def cancel(self, _button=None):
        self._pending = None
        _visible(self.confirm_box, False)
        self.say("Cancelled: nothing was changed.")


def create_form(client, **params):
    """Show a CreateForm pre-filled from runbook 10's parameters (target, dry_run... are ignored)."""
    return _show(CreateForm(client, **params))


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
        self.pages = _classed(w.SelectMultiple(options=options, value=tuple(page_ids or ()), rows=min(8, len(options)
                                               or 1), description="Messenger addresses", style=WIDE), "verify-pages")
        self.require_first_message = _classed(w.Checkbox(value=bool(require_first_message), indent=False,
                                                         description="Require a first message"), "require-first")
        self.run_button = _classed(w.Button(description="Run checks", button_style="primary"), "verify-run")
        self.run_button.on_click(self.run)
        self.widget = _classed(w.VBox([w.HTML("<b>Verify Messenger addresses</b> (none selected: all)"),
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
        self.put_table(checks.table(self.results), "Verification")
        self.say(f"{summary['passed']} passed, {summary['failed']} failed, {summary['warnings']} warnings",
                 problem=bool(summary["failed"]))
        return self.results


def verify_form(client, **params):
    return _show(VerifyForm(client, **params))


# --- runbook 00 ----------------------------------------------------------------------------------------------

class PreflightPanel(Panel):
    """A "Re-run checks" button for after fixing something in the Console."""

    def __init__(self, client):
        super().__init__()
        self.client = client
        self.results = None
        self.rerun_button = _classed(w.Button(description="Re-run checks", icon="refresh"), "rerun")
        self.rerun_button.on_click(self.run)
        self.widget = _classed(w.VBox([self.rerun_button, self.message, self.output]), "preflight")

    @guarded
    def run(self, _button=None):
        self.clear()
        self.results = checks.preflight(self.client)
        summary = checks.summary(self.results)
        self.put_table(checks.table(self.results), "Preflight")
        self.say(f"{summary['passed']} passed, {summary['failed']} failed, {summary['warnings']} warnings",
                 problem=bool(summary["failed"]))
        return self.results


def preflight_panel(client):
    return _show(PreflightPanel(client))
