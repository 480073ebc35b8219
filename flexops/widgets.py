"""The small widget toolkit the runbook forms (ui.py) share: a Panel with an inline message line and an Output
area, a guard that shows a callback's failure in the form, and stable `flexops-*` CSS classes for browser tests.

Results go into the Output widget's `outputs` directly (not `with output:`), which works in a kernel callback
and in plain Python alike.
"""
import functools
import html

import ipywidgets as w

from . import notebook
from .exceptions import FlexopsError

WIDE = {"description_width": "130px"}
FIELD_WIDTH = "620px"  # description included: room for "Messaging Flow (FW + 32 hex)" and "Name (page ID)" labels


def wide():
    """A Layout of its own per widget (a shared one would share `display` too)."""
    return w.Layout(width=FIELD_WIDTH)


def classed(widget, name):
    widget.add_class(f"flexops-{name}")
    return widget


def visible(widget, shown):
    widget.layout.display = "" if shown else "none"


def show(panel):
    if notebook.in_notebook():
        from IPython.display import display
        display(panel.widget)
    return panel


class Panel:
    """A widget box with an inline message line and an Output area for results."""

    def __init__(self):
        self.message = classed(w.HTML(""), "message")
        self.output = classed(w.Output(), "output")
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

    def show_plan(self, result, title):
        """What `addresses.ensure` did or would do, and the fields it touches (as notebook.show_plan shows it)."""
        self.put(f"<p><b>{html.escape(notebook.plan_text(result))}</b></p>", notebook.plan_text(result))
        if result.diff:
            self.show_table(notebook.plan_frame(result), title)

    def show_table(self, frame, title):
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
