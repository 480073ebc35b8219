"""What every sandbox model needs and nothing HTTP: new SIDs and Twilio's timestamps."""
import secrets
from datetime import datetime, timezone


def new_sid(prefix):
    """A Twilio-shaped SID: two-letter prefix + 32 hex digits."""
    return prefix + secrets.token_hex(16)


def now():
    """UTC now as the v1/v2 products write it (ISO 8601, seconds, `Z`)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_bound(name, value, end):
    """A date filter (StartDate, DateCreatedTo...) as a `...Z` stamp: a day (YYYY-MM-DD) covers all of it, an
    ISO 8601 instant is taken as is (in UTC). Raises ValueError naming the parameter."""
    if len(value) == 10 and value[4] == value[7] == "-":
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise ValueError(f"Invalid {name} {value!r}: must be an ISO 8601 date") from None
        return f"{value}T23:59:59Z" if end else f"{value}T00:00:00Z"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"Invalid {name} {value!r}: must be an ISO 8601 date") from None
    moment = moment.astimezone(timezone.utc) if moment.tzinfo else moment
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(stamp):
    """Seconds since the epoch of an ISO 8601 date or date-time (`...Z`, an offset, or none: UTC)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
