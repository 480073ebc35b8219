"""flexops: put Facebook Messenger on Twilio Flex and keep it healthy. The public API, re-exported."""
from .client import connect, resolve_target
from .exceptions import (CheckFailed, ConfigurationError, ConnectionFailed, FlexopsError, LockHeld,
                         TwilioCallFailed, ValidationError)
from .params import connect_params, create_params, create_spec, report_params, verify_params
from .settings import Secret, Target, mask_sid

__version__ = "0.1.0"

__all__ = ["connect", "resolve_target", "connect_params", "create_params", "create_spec", "verify_params",
           "report_params", "Secret", "Target", "mask_sid", "CheckFailed",
           "ConfigurationError", "ConnectionFailed", "FlexopsError", "LockHeld", "TwilioCallFailed",
           "ValidationError", "__version__"]
