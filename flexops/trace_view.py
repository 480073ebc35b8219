"""A trace as people look at it in a runbook: the hops drawn left to right (the broken one highlighted), the hop
table, the alerts, and the form whose "Wait for my test message" button runs the same trace as the headless cell.
"""
import html

import ipywidgets as w

from . import charts, notebook, trace as trace_api
from .exceptions import CheckFailed
from .widgets import Panel, classed, guarded, show as show_panel

COLOURS = {"pass": ("#1f7a1f", "#e8f5e9"), "fail": ("#b3261e", "#fdecea"), "warn": ("#8a5a00", "#fff4e0"),
           "not_reached": ("#6b6b6b", "#f2f2f2")}
KEY_EVIDENCE = ("address_sid", "conversation_sid", "execution_sid", "task_sid", "queue_sid", "worker_sid",
                "reservation_sid", "webhook_host", "legacy_flex_flow")


def diagram_html(result):
    """The hops as boxes joined by arrows, each with its symbol and key evidence; the broken hop is outlined."""
    boxes = []
    for hop in result.hops:
        ink, fill = COLOURS[hop.status]
        outline = f"3px solid {ink}" if hop.hop == result.broken_hop else f"1px solid {ink}"
        evidence = "".join(f"<div style='font-size:0.75em;color:#444'>{html.escape(k)}: "
                           f"{html.escape(str(hop.evidence[k]))}</div>" for k in KEY_EVIDENCE if hop.evidence.get(k))
        alerts = "".join(f"<div style='font-size:0.75em;color:#b3261e'>alert {a['error_code']}</div>"
                         for a in hop.alerts)
        boxes.append(f"<div class='flexops-hop flexops-hop-{hop.status}' style='border:{outline};background:{fill};"
                     f"border-radius:6px;padding:6px 8px;min-width:150px;max-width:220px'>"
                     f"<div style='color:{ink};font-weight:bold'>{hop.symbol} {html.escape(hop.hop)}</div>"
                     f"{evidence}{alerts}</div>")
    arrow = "<div style='align-self:center;font-size:1.4em;color:#888'>→</div>"
    verdict_ink = COLOURS["fail" if result.broken_hop else "pass" if result.reached_flex else "warn"][0]
    return (f"<div class='flexops-trace'><p style='color:{verdict_ink};font-weight:bold'>"
            f"{html.escape(result.address or '')}: {html.escape(result.verdict)}</p>"
            f"<div style='display:flex;gap:6px;flex-wrap:wrap'>{arrow.join(boxes)}</div>"
            f"<p>{html.escape(result.summary())}</p></div>")


def diagram_text(result):
    return "  →  ".join(f"{h.symbol} {h.hop}" for h in result.hops) + f"\n{result.summary()}"


def hops_frame(result):
    import pandas as pd

    return pd.DataFrame([{"": h.symbol, "hop": h.hop, "detail": h.detail, "remedy": h.remedy,
                          "evidence": ", ".join(f"{k}={v}" for k, v in h.evidence.items() if v not in (None, "")),
                          "alerts": ", ".join(str(a["error_code"]) for a in h.alerts)} for h in result.hops])


def alerts_frame(result):
    import pandas as pd

    return pd.DataFrame([{k: a[k] for k in ("error_code", "log_level", "hop", "resource_sid", "title", "remedy",
                                             "link")} for a in result.alerts])


def show(result):
    notebook.show_html(diagram_html(result), diagram_text(result))
    notebook.show_table(hops_frame(result), "Hops")
    if result.alerts:
        notebook.show_table(alerts_frame(result), "Monitor alerts in the window")
    return result


def fail_if_broken(result):
    """End a headless run non-zero (after the trace was recorded) unless the message reached Flex."""
    if result.exit_code:
        where = f" at {result.broken_hop}" if result.broken_hop else ""
        raise CheckFailed(f"the trace ended {result.verdict}{where}: {result.summary()}")


def reach_chart(pages):
    """One bar chart of every Page's conversations by outcome (PNG bytes, or None when there were none)."""
    counts = {"reached an agent": sum(p.reached_agent for p in pages),
              "reached Flex only": sum(p.reached_flex - p.reached_agent for p in pages)}
    for page in pages:
        for hop, n in page.broken.items():
            counts[f"broken at {hop}"] = counts.get(f"broken at {hop}", 0) + n
    counts = {k: v for k, v in counts.items() if v}
    colours = {"reached an agent": "#1f7a1f", "reached Flex only": "#2c7fb8"}
    return charts.bar_png("Inbound conversations by outcome", counts,
                          {k: colours.get(k, "#b3261e") for k in counts}, horizontal=True)


class TraceForm(Panel):
    """Trace now, or wait for the engineer's own test message and trace it, with the same trace() as headless."""

    def __init__(self, client, page_id="", since="7d", wait_seconds=120, **_):
        super().__init__()
        self.client, self.result = client, None
        self.page = classed(w.Text(value=str(page_id or ""), description="Page ID"), "page")
        self.since = classed(w.Text(value=str(since), description="Since"), "since")
        self.wait = classed(w.BoundedIntText(value=int(wait_seconds or 120), min=5, max=3600,
                                             description="Wait (s)"), "wait")
        self.trace_button = classed(w.Button(description="Trace the newest message", icon="search"), "trace")
        self.wait_button = classed(w.Button(description="Wait for my test message", icon="clock-o",
                                            button_style="primary"), "wait-button")
        self.trace_button.on_click(self.run)
        self.wait_button.on_click(self.wait_for_message)
        self.widget = classed(w.VBox([self.page, self.since, self.wait,
                                      w.HBox([self.trace_button, self.wait_button]), self.message, self.output]),
                              "trace-form")

    @guarded
    def run(self, _button=None, wait=None):
        self.clear()
        self.result = trace_api.trace(self.client, self.page.value.strip(), since=self.since.value.strip(),
                                      wait_seconds=wait, on_tick=self._tick if wait else None)
        self.put(diagram_html(self.result), diagram_text(self.result))
        self.show_table(hops_frame(self.result), "Hops")
        self.say(self.result.summary(), problem=bool(self.result.broken_hop))
        return self.result

    def wait_for_message(self, _button=None):
        self.say(f"Write to the Page from another Facebook profile now: waiting up to {self.wait.value} s …")
        return self.run(wait=self.wait.value)

    def _tick(self, elapsed):
        self.say(f"{elapsed:.0f} s: waiting for a new message to messenger:{self.page.value.strip()} "
                 f"(up to {self.wait.value} s)")


def trace_form(client, **params):
    return show_panel(TraceForm(client, **params))
