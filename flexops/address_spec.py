"""A Messenger address configuration as wanted: MessengerAddress, a validated, immutable spec (pydantic v2).

Every rule is a pydantic field validator raising flexops' ValidationError naming its parameter, so a spec names
the first problem (`MessengerAddress.from_params`), and a desired-state file gets every problem of a row at once
(`AddressRules.problems`, desired.py). Rules that depend on the integration read it from the fields validated
before them (pydantic validates in field order); when the integration itself is invalid they stay silent.
"""
import re
from dataclasses import FrozenInstanceError
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pydantic
from pydantic import BaseModel, ConfigDict, field_validator

from .coerce import as_bool, as_int
from .exceptions import ValidationError
from .studio import FLOW_SID

ADDRESS_TYPE = "messenger"
PREFIX = "messenger:"
INTEGRATIONS = ("studio", "webhook")
WEBHOOK_METHODS = ("GET", "POST")
WEBHOOK_EVENTS = ("onMessageAdded", "onMessageUpdated", "onMessageRemoved", "onConversationUpdated",
                  "onConversationStateUpdated", "onConversationRemoved", "onParticipantAdded",
                  "onParticipantUpdated", "onParticipantRemoved", "onDeliveryUpdated")
DEFAULT_RETRY_COUNT = 3
MAX_FRIENDLY_NAME = 256
SERVICE_SID = re.compile(r"IS[0-9a-fA-F]{32}")
ADDRESS_SID = re.compile(r"IG[0-9a-fA-F]{32}")
PAGE_ID = re.compile(r"\d{5,25}")
STATE_FIELDS = ("friendly_name", "integration", "auto_creation_enabled", "studio_flow_sid", "retry_count",
                "webhook_url", "webhook_method", "webhook_filters", "conversation_service_sid")
# Fields a spec may leave as None meaning "leave as it is": Twilio's update cannot clear them.
UNMANAGED_WHEN_NONE = ("friendly_name", "conversation_service_sid")


def normalise_page_id(value, parameter="page_id"):
    """`123456`, `"123456"` or `"messenger:123456"` -> `"123456"`; anything else is a ValidationError."""
    if isinstance(value, bool) or value is None:
        raise ValidationError(parameter, "a Facebook Page ID is required (5-25 digits)", value)
    if isinstance(value, int):
        if value < 0:
            raise ValidationError(parameter, "must be digits only (a Facebook Page ID)", value)
        text = str(value)
    elif isinstance(value, str):
        text = value[len(PREFIX):] if value.lower().startswith(PREFIX) else value
    else:
        raise ValidationError(parameter, "must be a string or integer of digits (a Facebook Page ID)", value)
    if text.startswith("+"):
        raise ValidationError(parameter, "a Facebook Page ID has no '+' prefix: it is not a phone number", value)
    if not text.isascii() or not text.isdigit():
        raise ValidationError(parameter, "must be digits only (a Facebook Page ID, no spaces or letters)", value)
    if not PAGE_ID.fullmatch(text):
        raise ValidationError(parameter, "must be 5 to 25 digits long (a Facebook Page ID)", value)
    return text


def address_of(page_id_or_address):
    return PREFIX + normalise_page_id(page_id_or_address)


LOOSE = {"loose": True}  # validation context of from_params: coerce notebook/CSV/CLI text first


def _loose(info):
    return bool(info.context and info.context.get("loose"))


def _chosen_integration(info, value=None, only_for=None, is_set=lambda value: value is not None, verb="applies"):
    """The integration already validated for this spec, or None when it was invalid (then its rules are moot).
    With `only_for`: a set `value` of a field that belongs to the other integration is a ValidationError."""
    chosen = info.data.get("integration")
    if only_for is not None and chosen not in (None, only_for) and is_set(value):
        raise ValidationError(info.field_name, f"only {verb} when integration is '{only_for}'", value)
    return chosen


class AddressRules(BaseModel):
    """The fields of a Messenger address configuration and their rules. pydantic runs every field's rule and
    collects every failure: `problems()` lists them all at once (desired-state files), a MessengerAddress raises
    the first as flexops' ValidationError naming the parameter."""

    model_config = ConfigDict(frozen=True, validate_default=True, extra="forbid")
    HTTP_RULE: ClassVar[str] = "must use https:// (http:// only with allow_insecure_webhook=True)"

    page_id: Any = None
    friendly_name: Any = None
    integration: Any = "studio"
    allow_insecure_webhook: Any = False
    studio_flow_sid: Any = None
    retry_count: Any = DEFAULT_RETRY_COUNT
    webhook_url: Any = None
    webhook_method: Any = "POST"
    webhook_filters: Any = ()
    conversation_service_sid: Any = None
    auto_creation_enabled: Any = True

    @field_validator("page_id", mode="before")
    @classmethod
    def _page_id(cls, value, info):
        if _loose(info) and isinstance(value, str) and value.strip().isdigit():
            value = value.strip()
        return normalise_page_id(value)

    @field_validator("friendly_name", mode="before")
    @classmethod
    def _friendly_name(cls, value, info):
        if _loose(info) and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # papermill `-p friendly_name 2024` passes a number
        if value is not None:
            if not isinstance(value, str):
                raise ValidationError("friendly_name", "must be text", value)
            if len(value) > MAX_FRIENDLY_NAME:
                raise ValidationError("friendly_name", f"must be at most {MAX_FRIENDLY_NAME} characters "
                                      f"(got {len(value)})")
        return value

    @field_validator("integration", mode="before")
    @classmethod
    def _integration(cls, value):
        integration = value.lower() if isinstance(value, str) else value
        if integration not in INTEGRATIONS:
            raise ValidationError("integration", "must be 'studio' or 'webhook'", value)
        return integration

    @field_validator("allow_insecure_webhook", "auto_creation_enabled", mode="before")
    @classmethod
    def _flag(cls, value, info):
        if _loose(info):
            value = as_bool(info.field_name, value)
        if not isinstance(value, bool):
            raise ValidationError(info.field_name, "must be true or false", value)
        return value

    @field_validator("studio_flow_sid", mode="before")
    @classmethod
    def _studio_flow_sid(cls, sid, info):
        if _chosen_integration(info, sid, only_for="studio") == "studio":
            if sid is None:
                raise ValidationError("studio_flow_sid", "is required when integration is 'studio' (the Studio "
                                      "Flow SID, FW followed by 32 hexadecimal characters)")
            cls.check_flow(sid)
        return sid

    @classmethod
    def check_flow(cls, sid):
        if not isinstance(sid, str) or not FLOW_SID.fullmatch(sid):
            raise ValidationError("studio_flow_sid", "must be FW followed by 32 hexadecimal characters "
                                  "(a Studio Flow SID)", sid)

    @field_validator("retry_count", mode="before")
    @classmethod
    def _retry_count(cls, count, info):
        if _loose(info) and count is not None:
            count = as_int("retry_count", count)
        unset = (None, DEFAULT_RETRY_COUNT)  # the default says nothing: it also stands for a webhook address
        if _chosen_integration(info, count, "studio", lambda c: c not in unset or isinstance(c, bool)) == "webhook":
            return None
        count = DEFAULT_RETRY_COUNT if count is None else count
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 3:
            raise ValidationError("retry_count", "must be a whole number from 0 to 3", count)
        return count

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_url(cls, url, info):
        if _chosen_integration(info, url, only_for="webhook") != "webhook":
            return url
        if not url:
            raise ValidationError("webhook_url", "is required when integration is 'webhook'")
        if not isinstance(url, str):
            raise ValidationError("webhook_url", "must be a URL", url)
        parts = urlsplit(url)
        if parts.scheme == "http" and not info.data.get("allow_insecure_webhook"):
            raise ValidationError("webhook_url", cls.HTTP_RULE, url)
        if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in url):
            raise ValidationError("webhook_url", "must be an absolute https:// URL", url)
        return url

    @field_validator("webhook_method", mode="before")
    @classmethod
    def _webhook_method(cls, method, info):
        integration = _chosen_integration(info, method, "webhook", lambda m: m not in (None, "POST", "post"))
        if integration == "studio":
            return None
        if integration != "webhook":
            return method
        upper = "POST" if method is None else method.upper() if isinstance(method, str) else method
        if upper not in WEBHOOK_METHODS:
            raise ValidationError("webhook_method", "must be GET or POST", method)
        return upper

    @field_validator("webhook_filters", mode="before")
    @classmethod
    def _webhook_filters(cls, filters, info):
        if _loose(info) and filters is not None and not isinstance(filters, str):
            filters = tuple(filters)
        integration = _chosen_integration(info, filters, "webhook", bool, verb="apply")
        if integration == "studio":
            return ()
        if isinstance(filters, str) or filters is None:
            filters = _split(filters)
        filters = tuple(dict.fromkeys(filters))
        unknown = [f for f in filters if f not in WEBHOOK_EVENTS]
        if unknown and integration == "webhook":
            raise ValidationError("webhook_filters", f"unknown event {unknown[0]!r}; allowed: "
                                  f"{', '.join(WEBHOOK_EVENTS)}", unknown[0])
        return filters

    @field_validator("conversation_service_sid", mode="before")
    @classmethod
    def _service(cls, service):
        if service is not None and not (isinstance(service, str) and SERVICE_SID.fullmatch(service)):
            raise ValidationError("conversation_service_sid", "must be IS followed by 32 hexadecimal characters "
                                  "(a Conversations Service SID)", service)
        return service

    @classmethod
    def _loose_values(cls, params):
        """Blank values dropped (the defaults apply), unknown names refused, text stripped (names excepted)."""
        for name in params:
            if name not in cls.model_fields:
                raise ValidationError(name, f"unknown parameter; known: {', '.join(sorted(cls.model_fields))}")
        return {name: value.strip() if isinstance(value, str) and name not in ("friendly_name", "page_id")
                else value for name, value in params.items() if _blank_to_none(value) is not None}

    @classmethod
    def problems(cls, **params):
        """Every rule `from_params(**params)` breaks, at once: [ValidationError] (empty when the spec is valid)."""
        try:
            cls.model_validate(cls._loose_values(params), context=LOOSE)
        except pydantic.ValidationError as exc:
            return _problems(exc)
        return []


class MessengerAddress(AddressRules):
    """The desired configuration of one Messenger address (immutable, hashable). Construct with `from_params` for
    coercion of loosely typed values; direct construction takes values as they must be."""

    def __init__(self, page_id=None, /, **values):
        if page_id is not None:
            values["page_id"] = page_id
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            raise _problems(exc)[0] from None

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}: a MessengerAddress is immutable")

    def __eq__(self, other):  # allow_insecure_webhook says how the spec was checked, not what it asks for
        return type(other) is type(self) and self.desired_key() == other.desired_key()

    def __hash__(self):
        return hash(self.desired_key())

    def desired_key(self):
        return tuple((k, v) for k, v in self.__dict__.items() if k != "allow_insecure_webhook")

    @classmethod
    def from_params(cls, **params):
        """Coerce loosely typed parameters (notebook, CSV, CLI: "3", "true", "a,b", "") and validate them."""
        try:
            checked = AddressRules.model_validate(cls._loose_values(params), context=LOOSE)
        except pydantic.ValidationError as exc:
            raise _problems(exc)[0] from None
        return cls.model_construct(**dict(checked))

    # --- views ---------------------------------------------------------------------------------------------

    @property
    def address(self):
        return PREFIX + self.page_id

    def desired_state(self):
        """The normalised shape `state_of` returns for a resource, so the two compare field by field."""
        return {"friendly_name": self.friendly_name, "integration": self.integration,
                "auto_creation_enabled": self.auto_creation_enabled, "studio_flow_sid": self.studio_flow_sid,
                "retry_count": self.retry_count, "webhook_url": self.webhook_url,
                "webhook_method": self.webhook_method, "webhook_filters": tuple(sorted(self.webhook_filters)),
                "conversation_service_sid": self.conversation_service_sid}

    def update_params(self):
        """kwargs for `client.conversations.v1.address_configurations(sid).update(...)`."""
        params = {"auto_creation_enabled": self.auto_creation_enabled, "auto_creation_type": self.integration}
        if self.friendly_name is not None:
            params["friendly_name"] = self.friendly_name
        if self.conversation_service_sid:
            params["auto_creation_conversation_service_sid"] = self.conversation_service_sid
        if self.integration == "studio":
            params["auto_creation_studio_flow_sid"] = self.studio_flow_sid
            params["auto_creation_studio_retry_count"] = self.retry_count
        else:
            params["auto_creation_webhook_url"] = self.webhook_url
            params["auto_creation_webhook_method"] = self.webhook_method.lower()
            if self.webhook_filters:
                params["auto_creation_webhook_filters"] = list(self.webhook_filters)
        return params

    def create_params(self):
        """kwargs for `client.conversations.v1.address_configurations.create(...)`."""
        return {"type": ADDRESS_TYPE, "address": self.address, **self.update_params()}

    def to_dict(self):
        data = self.model_dump()
        data["webhook_filters"] = list(self.webhook_filters)
        data["address"] = self.address
        return data


def _problems(exc):
    """flexops ValidationErrors for a pydantic ValidationError, in field order: each rule raised its own."""
    found = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ValidationError):
            found.append(cause)
        else:  # pydantic's own (an unknown keyword given to the constructor)
            name = ".".join(str(part) for part in error.get("loc") or ()) or "spec"
            found.append(ValidationError(name, str(error.get("msg", "is not valid")).lower()))
    return found


def _blank_to_none(value):
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _split(value):
    if not value:
        return ()
    return tuple(part.strip() for part in str(value).split(",") if part.strip())
