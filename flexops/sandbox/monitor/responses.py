"""Monitor v1 handlers: list (LogLevel, StartDate, EndDate) and fetch alerts."""
from ..context import json_response
from .models import MonitorBackend


def list_alerts(ctx):
    args = ctx.request.args
    rows = MonitorBackend(ctx.store, ctx.account_sid).alerts(args.get("LogLevel"), ctx.date_arg("StartDate"),
                                                             ctx.date_arg("EndDate"))
    extra = [(name, args.get(name)) for name in ("LogLevel", "StartDate", "EndDate")]
    return ctx.filtered_page(rows, "alerts", "/v1/Alerts", extra_query=extra)


def fetch_alert(ctx, sid):
    return json_response(MonitorBackend(ctx.store, ctx.account_sid).alert(sid))
