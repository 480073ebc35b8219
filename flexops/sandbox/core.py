"""What every sandbox model needs and nothing HTTP: new SIDs and Twilio's timestamps."""
import secrets
from datetime import datetime, timezone


def new_sid(prefix):
    """A Twilio-shaped SID: two-letter prefix + 32 hex digits."""
    return prefix + secrets.token_hex(16)


def now():
    """UTC now as the v1/v2 products write it (ISO 8601, seconds, `Z`)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
