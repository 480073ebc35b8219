"""Which Twilio we talk to and with what credentials: env, twilio-cli profiles, API keys, or the sandbox.

Secrets are wrapped in `Secret`, whose repr/str never show the value; `Target.describe()` is what a banner shows.
"""
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .exceptions import ConfigurationError, ValidationError

TARGETS = ("auto", "sandbox", "twilio")


class Secret:
    """A credential that refuses to print itself."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def reveal(self):
        return self._value

    def __repr__(self):
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self):
        return bool(self._value)

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled or serialised")


def mask_sid(sid):
    """`AC0123…cdef` -> `AC…cdef`: enough to tell accounts apart, not enough to use."""
    if not sid:
        return "unknown"
    return f"{sid[:2]}…{sid[-4:]}"


@dataclass(repr=False)
class Target:
    kind: str  # "sandbox" | "twilio"
    account_sid: str
    username: str  # account SID or API key SID
    password: Secret
    region: str = None
    edge: str = None
    sandbox_url: str = None
    source: str = ""  # where the credentials came from, for messages
    extra: dict = field(default_factory=dict)

    @property
    def is_sandbox(self):
        return self.kind == "sandbox"

    def describe(self):
        if self.is_sandbox:
            return f"SANDBOX ({self.sandbox_url}, account {mask_sid(self.account_sid)})"
        where = ", ".join(x for x in (self.region and f"region {self.region}", self.edge and f"edge {self.edge}") if x)
        return f"Twilio account {mask_sid(self.account_sid)}" + (f" ({where})" if where else "")

    def public(self):
        """What may go into manifests and reports."""
        return {"kind": self.kind, "account": mask_sid(self.account_sid), "region": self.region, "edge": self.edge,
                "sandbox_url": self.sandbox_url, "credentials_from": self.source}

    def __repr__(self):
        return f"Target({self.describe()})"


def choose_target(target=None):
    """An explicit sandbox/twilio wins; `auto` or nothing defers to FLEXOPS_TARGET, which defaults to auto."""
    chosen = str(target or "auto").strip().lower()
    if chosen not in TARGETS:
        raise ValidationError("target", f"must be one of {', '.join(TARGETS)}", target)
    if chosen == "auto":
        chosen = (os.environ.get("FLEXOPS_TARGET") or "auto").strip().lower()
        if chosen not in TARGETS:
            raise ConfigurationError(f"FLEXOPS_TARGET must be one of {', '.join(TARGETS)}, not {chosen!r}")
    return chosen


def twilio_cli_config_path():
    return Path(os.environ.get("TWILIO_CLI_CONFIG", Path.home() / ".twilio-cli" / "config.json"))


def _from_profile(profile):
    path = twilio_cli_config_path()
    if not path.exists():
        if profile:
            raise ConfigurationError(f"twilio-cli profile {profile!r} requested but {path} does not exist")
        return None
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc.msg}") from None
    name = profile or config.get("activeProject")
    profiles = config.get("profiles") or {}
    if not name:
        return None
    if name not in profiles:
        raise ConfigurationError(f"twilio-cli profile {name!r} not found in {path}; "
                                 f"known profiles: {', '.join(sorted(profiles)) or 'none'}")
    entry = profiles[name]
    missing = [k for k in ("accountSid", "apiKey", "apiSecret") if not entry.get(k)]
    if missing:
        raise ConfigurationError(f"twilio-cli profile {name!r} lacks {', '.join(missing)} in {path} "
                                 "(a profile whose secret lives in the system keychain cannot be read; "
                                 "set TWILIO_API_KEY and TWILIO_API_SECRET instead)")
    return Target("twilio", entry["accountSid"], entry["apiKey"], Secret(entry["apiSecret"]),
                  region=entry.get("region"), edge=entry.get("edge"), source=f"twilio-cli profile {name}")


def twilio_credentials(profile=None, env=None):
    """Real-Twilio credentials, or None when nothing is configured. Partial settings are an error."""
    env = os.environ if env is None else env
    sid, token = env.get("TWILIO_ACCOUNT_SID"), env.get("TWILIO_AUTH_TOKEN")
    key, secret = env.get("TWILIO_API_KEY"), env.get("TWILIO_API_SECRET")
    region, edge = env.get("TWILIO_REGION"), env.get("TWILIO_EDGE")
    profile = profile or env.get("TWILIO_PROFILE")
    if profile:
        target = _from_profile(profile)
    elif key or secret:
        if not (key and secret and sid):
            need = [n for n, v in (("TWILIO_API_KEY", key), ("TWILIO_API_SECRET", secret),
                                   ("TWILIO_ACCOUNT_SID", sid)) if not v]
            raise ConfigurationError(f"API key credentials are incomplete: set {', '.join(need)}")
        target = Target("twilio", sid, key, Secret(secret), source="TWILIO_API_KEY/TWILIO_API_SECRET")
    elif sid or token:
        if not (sid and token):
            need = "TWILIO_AUTH_TOKEN" if sid else "TWILIO_ACCOUNT_SID"
            raise ConfigurationError(f"Twilio credentials are incomplete: set {need} (or TWILIO_API_KEY and "
                                     "TWILIO_API_SECRET with TWILIO_ACCOUNT_SID)")
        target = Target("twilio", sid, sid, Secret(token), source="TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN")
    else:
        target = _from_profile(None)
    if target is None:
        return None
    if not re.fullmatch(r"AC[0-9a-fA-F]{32}", target.account_sid or ""):
        raise ConfigurationError(f"the account SID from {target.source} must be AC followed by 32 hex characters")
    target.region = region or target.region
    target.edge = edge or target.edge
    return target


def sandbox_db_path():
    """FLEXOPS_SANDBOX_DB, else .flexops/sandbox.db: where the sandbox itself looks for its token (one rule)."""
    from .sandbox.control import default_db_path

    return default_db_path()


STATE_DIR_ENV = "FLEXOPS_STATE_DIR"
STATE_OFF = "off"


def state_dir(value=None):
    """The folder of the local state store (evidence_store: one SQLite file per account), or None when it is off.

    `value` wins when given ("" or "off": no store, for a one-off run); else FLEXOPS_STATE_DIR ("off" switches it
    off; unset or blank: the default), else `~/.flexops/state` (the same for every working folder of this user).
    """
    if value is None:
        value = (os.environ.get(STATE_DIR_ENV) or "").strip() or Path.home() / ".flexops" / "state"
    text = str(value).strip()
    if text.lower() in ("", STATE_OFF):
        return None
    return Path(text).expanduser()
