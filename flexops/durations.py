"""Durations as ops people write them: `0s`, `30m`, `24h`, `7d`, `2w` (one number, one unit)."""
import re
from datetime import timedelta

from .exceptions import ValidationError

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)


def parse_duration(value, parameter="since"):
    """A timedelta from `7d`-style text (or a number of seconds); a ValidationError naming `parameter` otherwise."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    match = DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValidationError(parameter, "must be a duration such as 30m, 24h or 7d (units: s, m, h, d, w)", value)
    return timedelta(**{UNITS[match[2].lower()]: float(match[1])})
