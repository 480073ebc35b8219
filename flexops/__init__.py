"""flexops: put Facebook Messenger on Twilio Flex and keep it healthy. The public API, re-exported.

    import flexops
    client = flexops.connect()                       # sandbox unless Twilio credentials are configured
    spec = flexops.MessengerAddress.from_params(page_id="104738392011234", studio_flow_sid="FW...")
    flexops.ensure(client, spec)                     # create, or report drift; never a duplicate
    flexops.verify(client)                           # one CheckResult per (address, check)
    flexops.trace.trace(client, "104738392011234")   # did the newest message reach an agent? which hop broke?
"""
from .address_spec import MessengerAddress
from .addresses import ensure, find, list_messenger, remove
from .checks import CheckResult, preflight, verify
from .client import connect, resolve_target
from .exceptions import (CheckFailed, ConfigurationError, ConnectionFailed, DesiredStateError, FlexopsError, LockHeld,
                         RollbackRefused, TwilioCallFailed, ValidationError)
from . import trace
from .params import (apply_params, connect_params, create_params, create_spec, report_params, trace_params,
                     verify_params)
from .settings import Secret, Target, mask_sid

__version__ = "0.1.0"

__all__ = ["connect", "resolve_target", "MessengerAddress", "ensure", "find", "list_messenger", "remove",
           "CheckResult", "preflight", "verify", "apply_params", "connect_params", "create_params", "create_spec",
           "verify_params", "report_params", "trace_params", "trace", "Secret", "Target", "mask_sid", "CheckFailed",
           "ConfigurationError",
           "ConnectionFailed", "DesiredStateError", "FlexopsError", "LockHeld", "RollbackRefused", "TwilioCallFailed",
           "ValidationError", "__version__"]
