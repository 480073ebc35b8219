"""Flex v1 (flex-api.twilio.com): models.py (configuration, setup, interactions), flows.py (legacy Flex Flows),
responses.py, urls.py. `RULES` is re-exported so app.py's product registry (`flex.RULES`) keeps working."""
from .urls import RULES  # noqa: F401
