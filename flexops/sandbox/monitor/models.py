"""Monitor v1 alerts (NO…): what Twilio records when a hop of the path fails, for the Debugger and the Alerts API.

Other parts of the sandbox record alerts through `MonitorBackend.record_alert`; the API only reads them.
"""
import time

from ..core import new_sid, now
from ..errors import TwilioError, invalid
from ..taskrouter.records import transaction

KIND = "monitor_alert"
BASE = "https://monitor.twilio.com/v1/Alerts"
LOG_LEVELS = ("error", "warning", "notice", "debug")
METHODS = ("GET", "POST")
# The list (monitor.v1.alert) leaves out what only a fetch (monitor.v1.alert-instance) shows.
INSTANCE_ONLY = ("request_variables", "response_body", "response_headers", "request_headers")


def render(alert, listed=False):
    return {k: v for k, v in alert.items() if not k.startswith("_") and not (listed and k in INSTANCE_ONLY)}


class MonitorBackend:
    def __init__(self, store, account_sid):
        self.store = store
        self.account_sid = account_sid

    def record_alert(self, error_code, alert_text, resource_sid=None, service_sid=None, request_url=None,
                     request_method=None, log_level="error", request_variables=None, response_body=None,
                     response_headers=None, request_headers=None, db=None):
        """Record an alert as Twilio's Debugger would (returns it as a fetch renders it)."""
        if log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
        method = request_method.upper() if request_method else None
        if method is not None and method not in METHODS:
            raise ValueError(f"request_method must be GET or POST, not {request_method!r}")
        sid, stamp = new_sid("NO"), now()
        alert = {"account_sid": self.account_sid, "sid": sid, "alert_text": alert_text, "api_version": None,
                 "date_created": stamp, "date_generated": stamp, "date_updated": stamp, "error_code": str(error_code),
                 "log_level": log_level, "more_info": f"https://www.twilio.com/docs/errors/{error_code}",
                 "request_method": method, "request_url": request_url, "resource_sid": resource_sid,
                 "service_sid": service_sid, "url": f"{BASE}/{sid}", "request_variables": request_variables,
                 "response_body": response_body, "response_headers": response_headers,
                 "request_headers": request_headers, "_at": time.time()}
        with transaction(self.store, db) as db:
            self.store.insert(db, self.account_sid, KIND, sid, alert)
        return render(alert)

    def alert(self, sid):
        found = self.store.get(self.account_sid, KIND, sid=sid)
        if found is None:
            raise TwilioError(404, 20404, f"The requested resource /v1/Alerts/{sid} was not found")
        return render(found)

    def alerts(self, log_level=None, start=None, end=None):
        """(seq, alert as listed), newest first, between `start` and `end` (epoch seconds)."""
        if log_level is not None and log_level not in LOG_LEVELS:
            raise invalid(f"Invalid LogLevel {log_level!r}: must be one of {', '.join(LOG_LEVELS)}")
        rows = self.store.page(self.account_sid, KIND, 0, 10 ** 9,
                               where={"log_level": log_level} if log_level else None)
        return [(seq, render(alert, listed=True)) for seq, alert in reversed(rows)
                if (start is None or alert["_at"] >= start) and (end is None or alert["_at"] <= end)]
