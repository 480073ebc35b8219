"""Monitor v1 routes (monitor.twilio.com)."""
from werkzeug.routing import Rule

from . import responses

RULES = [
    Rule("/v1/Alerts", methods=["GET"], endpoint=responses.list_alerts),
    Rule("/v1/Alerts/<sid>", methods=["GET"], endpoint=responses.fetch_alert),
]
