"""Runbook 60's form: the stale conversations, the warning that closing cannot be undone, and a Close button.

Nothing changes until the button is clicked; the click runs `janitor.close_recorded` — the same routine the headless
cell and `flexops janitor` use — and shows the outcome in the form.
"""
import html

import ipywidgets as w

from . import janitor, notebook
from .widgets import Panel, classed, guarded, show


class CloseForm(Panel):
    def __init__(self, client, plan, concurrency=8):
        super().__init__()
        self.client, self.plan, self.concurrency = client, plan, concurrency
        self.result = self.check = None
        count = len(plan.stale)
        self.button = classed(w.Button(description=f"Close {count} conversation(s)", button_style="danger",
                                       disabled=not count, tooltip=plan.target), "close")
        self.button.on_click(self.close)
        warning = w.HTML(f'<p><b>{html.escape(plan.summary())}</b> on {html.escape(plan.target)}</p>'
                         f'<p style="color:#b3261e">{html.escape(janitor.IRREVERSIBLE)}</p>')
        self.widget = w.VBox([warning, self.button, self.message, self.output])

    @guarded
    def close(self, _=None):
        self.button.disabled = True
        self.say("closing…")
        self.result, self.check = janitor.close_recorded(self.client, self.plan, notebook.record,
                                                         concurrency=self.concurrency)
        summary = self.result.summary()
        self.say(f"{summary['status']}: {summary['ok']} closed, {summary['failed']} failed; verified closed: "
                 f"{'yes' if self.check['all_closed'] else 'no'}", problem=not self.result.ok)
        self.show_table(self.result.table(), "Results")
        if self.check["traces"]:
            self.show_table(notebook.verify_table(self.check["traces"]), "Trace of each Page after closing")
        return self.result


def close_form(client, plan, concurrency=8):
    """Show the form (in a notebook) and return it (`.close()` in tests)."""
    return show(CloseForm(client, plan, concurrency))
