"""Loosely typed values (notebook `-p`, CSV cells, CLI text) -> checked Python values, or a ValidationError naming
the parameter. Papermill's `-p` turns `0012` into 12 and `true` into True or a string depending on how it was
given; every layer above funnels its loose inputs through these, so the rules are the same everywhere."""
import re
from datetime import timedelta

from .exceptions import ValidationError

TRUE = {"true", "1", "yes", "y", "on"}
FALSE = {"false", "0", "no", "n", "off", ""}


def as_bool(name, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise ValidationError(name, "must be true or false", value)


def as_optional_str(name, value):
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    raise ValidationError(name, "must be a string", value)


def as_int(name, value, minimum=None, maximum=None):
    """A whole number given as int, integral float (3.0) or digit string; bool is refused."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or \
            (isinstance(value, str) and not value.strip().lstrip("+-").isdigit()):
        raise ValidationError(name, "must be a whole number", value)
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValidationError(name, f"must be between {minimum} and {maximum}", value)
    return number


def as_list(name, value):
    """A list given as a list, or as a comma/whitespace separated string (papermill -p friendly)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [part for part in str(value).replace(",", " ").split() if part]
    raise ValidationError(name, "must be a list or a comma-separated string", value)


def age_text(seconds):
    """45s, 3m 12s, 2h 05m, 3d 4h: an age an operator can judge at a glance."""
    seconds = max(0, int(seconds))
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def plain(value):
    """A tuple as a list (JSON and messages show lists); anything else unchanged."""
    return list(value) if isinstance(value, tuple) else value


DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)


def as_duration(name, value):
    """`0s`, `30m`, `24h`, `7d`, `2w` (or a number of seconds, or a timedelta) -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    match = DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValidationError(name, "must be a duration such as 30m, 24h or 7d (units: s, m, h, d, w)", value)
    return timedelta(**{DURATION_UNITS[match[2].lower()]: float(match[1])})


def as_sids(name, values, prefix):
    """A list (or comma-separated text) of Twilio SIDs with `prefix` (FO, WW...): each checked, kept as text."""
    sids = as_list(name, values)
    pattern = re.compile(prefix + r"[0-9a-fA-F]{32}")
    for sid in sids:
        if not pattern.fullmatch(str(sid)):
            raise ValidationError(name, f"must be {prefix} SIDs ({prefix} + 32 hex digits)", sid)
    return [str(s) for s in sids]
