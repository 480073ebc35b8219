"""Messenger address configurations: a validated spec (MessengerAddress) and safe, idempotent operations.

Twilio identifies an address configuration by its address (`messenger:<page id>`) as well as its IG SID, and does
not document what a second create for the same address does. So every operation looks first (fetch by address),
and a create or delete whose outcome is unknown (5xx, dropped connection) looks again before any retry
(see retry.call): running a runbook twice, or after a network failure, never makes a duplicate.
"""
import re
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from . import retry
from .exceptions import ValidationError
from .studio import FLOW_SID
from .coerce import as_bool, as_int, plain

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


@dataclass(frozen=True)
class MessengerAddress:
    """The desired configuration of one Messenger address. Construct with `from_params` for coercion."""

    page_id: str
    friendly_name: str = None
    integration: str = "studio"
    studio_flow_sid: str = None
    retry_count: int = DEFAULT_RETRY_COUNT
    webhook_url: str = None
    webhook_method: str = "POST"
    webhook_filters: tuple = ()
    conversation_service_sid: str = None
    auto_creation_enabled: bool = True
    allow_insecure_webhook: bool = field(default=False, compare=False)

    def _put(self, name, value):
        object.__setattr__(self, name, value)  # normalising a frozen dataclass in __post_init__

    def __post_init__(self):
        put = self._put
        put("page_id", normalise_page_id(self.page_id))
        if self.friendly_name is not None:
            if not isinstance(self.friendly_name, str):
                raise ValidationError("friendly_name", "must be text", self.friendly_name)
            if len(self.friendly_name) > MAX_FRIENDLY_NAME:
                raise ValidationError("friendly_name", f"must be at most {MAX_FRIENDLY_NAME} characters "
                                      f"(got {len(self.friendly_name)})")
        integration = self.integration.lower() if isinstance(self.integration, str) else self.integration
        if integration not in INTEGRATIONS:
            raise ValidationError("integration", "must be 'studio' or 'webhook'", self.integration)
        put("integration", integration)
        if integration == "studio":
            self._check_studio()
        else:
            self._check_webhook()
        service = self.conversation_service_sid
        if service is not None and not (isinstance(service, str) and SERVICE_SID.fullmatch(service)):
            raise ValidationError("conversation_service_sid", "must be IS followed by 32 hexadecimal characters "
                                  "(a Conversations Service SID)", service)
        if not isinstance(self.auto_creation_enabled, bool):
            raise ValidationError("auto_creation_enabled", "must be true or false", self.auto_creation_enabled)

    def _check_studio(self):
        put = self._put
        sid = self.studio_flow_sid
        if sid is None:
            raise ValidationError("studio_flow_sid", "is required when integration is 'studio' (the Studio Flow "
                                  "SID, FW followed by 32 hexadecimal characters)")
        if not isinstance(sid, str) or not FLOW_SID.fullmatch(sid):
            raise ValidationError("studio_flow_sid", "must be FW followed by 32 hexadecimal characters "
                                  "(a Studio Flow SID)", sid)
        count = DEFAULT_RETRY_COUNT if self.retry_count is None else self.retry_count
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 3:
            raise ValidationError("retry_count", "must be a whole number from 0 to 3", count)
        if self.webhook_url is not None:
            raise ValidationError("webhook_url", "only applies when integration is 'webhook'", self.webhook_url)
        if self.webhook_method not in (None, "POST", "post"):
            raise ValidationError("webhook_method", "only applies when integration is 'webhook'",
                                  self.webhook_method)
        if self.webhook_filters:
            raise ValidationError("webhook_filters", "only apply when integration is 'webhook'",
                                  self.webhook_filters)
        put("retry_count", count)
        put("webhook_method", None)
        put("webhook_filters", ())

    def _check_webhook(self):
        put = self._put
        if self.studio_flow_sid is not None:
            raise ValidationError("studio_flow_sid", "only applies when integration is 'studio'",
                                  self.studio_flow_sid)
        if self.retry_count not in (None, DEFAULT_RETRY_COUNT) or isinstance(self.retry_count, bool):
            raise ValidationError("retry_count", "only applies when integration is 'studio'", self.retry_count)
        put("retry_count", None)
        url = self.webhook_url
        if not url:
            raise ValidationError("webhook_url", "is required when integration is 'webhook'")
        if not isinstance(url, str):
            raise ValidationError("webhook_url", "must be a URL", url)
        parts = urlsplit(url)
        if parts.scheme == "http" and not self.allow_insecure_webhook:
            raise ValidationError("webhook_url", "must use https:// (http:// only with allow_insecure_webhook=True)",
                                  url)
        if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in url):
            raise ValidationError("webhook_url", "must be an absolute https:// URL", url)
        method = self.webhook_method.upper() if isinstance(self.webhook_method, str) else self.webhook_method
        if method is None:
            method = "POST"
        if method not in WEBHOOK_METHODS:
            raise ValidationError("webhook_method", "must be GET or POST", self.webhook_method)
        put("webhook_method", method)
        filters = self.webhook_filters
        if isinstance(filters, str) or filters is None:
            filters = _split(filters)
        filters = tuple(dict.fromkeys(filters))
        unknown = [f for f in filters if f not in WEBHOOK_EVENTS]
        if unknown:
            raise ValidationError("webhook_filters", f"unknown event {unknown[0]!r}; allowed: "
                                  f"{', '.join(WEBHOOK_EVENTS)}", unknown[0])
        put("webhook_filters", filters)

    # --- construction --------------------------------------------------------------------------------------

    @classmethod
    def from_params(cls, **params):
        """Coerce loosely typed parameters (notebook, CSV, CLI: "3", "true", "a,b", "") and validate them."""
        known = {f for f in cls.__dataclass_fields__}
        for name in params:
            if name not in known:
                raise ValidationError(name, f"unknown parameter; known: {', '.join(sorted(known))}")
        values = {}
        for name, raw in params.items():
            value = _blank_to_none(raw)
            if value is None:
                continue
            if name in ("retry_count",):
                value = as_int(name, value)
            elif name in ("auto_creation_enabled", "allow_insecure_webhook"):
                value = as_bool(name, value)
            elif name == "webhook_filters":
                value = _split(value) if isinstance(value, str) else tuple(value)
            elif name == "page_id":
                value = value.strip() if isinstance(value, str) and value.strip().isdigit() else value
            elif name == "friendly_name" and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)  # papermill `-p friendly_name 2024` passes a number
            elif isinstance(value, str) and name != "friendly_name":
                value = value.strip()
            values[name] = value
        if "page_id" not in values:
            raise ValidationError("page_id", "a Facebook Page ID is required (5-25 digits)")
        return cls(**values)

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
        data = asdict(self)
        data["webhook_filters"] = list(self.webhook_filters)
        data["address"] = self.address
        return data


def _blank_to_none(value):
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _split(value):
    if not value:
        return ()
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


# --- state and comparison ------------------------------------------------------------------------------------

def _get(resource, name):
    return resource.get(name) if isinstance(resource, dict) else getattr(resource, name, None)


def state_of(resource):
    """The normalised state of an AddressConfigurationInstance or its JSON dict (see STATE_FIELDS)."""
    auto = _get(resource, "auto_creation") or {}
    kind = auto.get("type")
    method = auto.get("webhook_method")
    retry_count = auto.get("studio_retry_count")
    return {"friendly_name": _get(resource, "friendly_name"), "integration": kind,
            "auto_creation_enabled": bool(auto.get("enabled")), "studio_flow_sid": auto.get("studio_flow_sid"),
            "retry_count": int(retry_count) if retry_count is not None else None,
            "webhook_url": auto.get("webhook_url"), "webhook_method": method.upper() if method else None,
            "webhook_filters": tuple(sorted(auto.get("webhook_filters") or ())),
            "conversation_service_sid": auto.get("conversation_service_sid")}


def diff(spec, resource):
    """{field: (current, desired)} for the fields that differ; None in UNMANAGED_WHEN_NONE means "leave it"."""
    current, desired = state_of(resource), spec.desired_state()
    return {name: (current[name], desired[name]) for name in STATE_FIELDS
            if current[name] != desired[name] and not (name in UNMANAGED_WHEN_NONE and desired[name] is None)}


# --- operations ----------------------------------------------------------------------------------------------

@dataclass
class Result:
    address: str
    page_id: str
    action: str  # created | updated | unchanged | drift | would_create | would_update | deleted | absent | would_delete
    sid: str = None
    diff: dict = field(default_factory=dict)

    @property
    def changed(self):
        return self.action in ("created", "updated", "deleted")

    def to_dict(self):
        return {"address": self.address, "page_id": self.page_id, "action": self.action, "sid": self.sid,
                "diff": {k: {"current": plain(c), "desired": plain(d)} for k, (c, d) in self.diff.items()}}


def _configs(client):
    return client.conversations.v1.address_configurations


def find(client, page_id_or_address):
    """The AddressConfigurationInstance for a page, or None (fetched by address: one GET)."""
    address = address_of(page_id_or_address)
    return _find(client, address)


def _find(client, key):
    return retry.call(retry.none_if_missing(lambda: _configs(client)(key).fetch()),
                      what=f"look up address configuration {key}", client=client)


def create(client, spec):
    """Create the configuration; after an ambiguous failure the address is looked up, so no duplicate is made."""
    return retry.call(lambda: _configs(client).create(**spec.create_params()),
                      reconcile=lambda: _find(client, spec.address),
                      what=f"create address configuration {spec.address}", client=client)


def update(client, sid, spec):
    """Update an existing configuration to match `spec` (an update is idempotent, so retries are plain)."""
    return retry.call(lambda: _configs(client)(sid).update(**spec.update_params()),
                      what=f"update address configuration {spec.address}", client=client)


def delete(client, sid_or_address):
    """Delete by IG SID or address; True if it was deleted, False if it was already absent."""
    key = sid_or_address if isinstance(sid_or_address, str) and ADDRESS_SID.fullmatch(sid_or_address) \
        else address_of(sid_or_address)
    remove = retry.none_if_missing(lambda: _configs(client)(key).delete(), missing=False)
    return retry.call(remove, reconcile=lambda: True if _find(client, key) is None else None,
                      what=f"delete address configuration {key}", client=client)


def ensure(client, spec, update_existing=False, dry_run=False):
    """Make the address exist as `spec` says. Differences are reported as 'drift' unless update_existing."""
    current = find(client, spec.address)
    base = {"address": spec.address, "page_id": spec.page_id}
    if current is None:
        if dry_run:
            return Result(**base, action="would_create", diff=_all_fields(spec))
        created = create(client, spec)
        return Result(**base, action="created", sid=created.sid)
    changes = diff(spec, current)
    if not changes:
        return Result(**base, action="unchanged", sid=current.sid)
    if not update_existing:
        return Result(**base, action="drift", sid=current.sid, diff=changes)
    if dry_run:
        return Result(**base, action="would_update", sid=current.sid, diff=changes)
    update(client, current.sid, spec)
    return Result(**base, action="updated", sid=current.sid, diff=changes)


def _all_fields(spec):
    return {k: (None, v) for k, v in spec.desired_state().items() if v not in (None, ())}


def remove(client, page_id, confirm=False, dry_run=False):
    """Delete a page's configuration. Needs confirm=True (a dry run does not)."""
    address = address_of(page_id)
    if not confirm and not dry_run:
        raise ValidationError("confirm", "deleting an address configuration stops Messenger conversations for the "
                              "page; pass confirm=True to delete it")
    base = {"address": address, "page_id": address[len(PREFIX):]}
    current = _find(client, address)
    if current is None:
        return Result(**base, action="absent")
    if dry_run:
        return Result(**base, action="would_delete", sid=current.sid)
    delete(client, current.sid)
    return Result(**base, action="deleted", sid=current.sid)


def list_messenger(client, page_size=50, progress=False):
    """Every Messenger address configuration (Type filter; Twilio's maximum page size is 50), page by page."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 50:
        raise ValidationError("page_size", "must be a whole number from 1 to 50 (Twilio's maximum for this list)",
                              page_size)
    what = "list Messenger address configurations"
    found = []
    with tqdm(desc="Messenger addresses", unit=" addr", disable=_quiet(progress), leave=False) as bar:
        page = retry.call(lambda: _configs(client).page(type=ADDRESS_TYPE, page_size=page_size), what=what,
                          client=client)
        while page is not None:
            batch = list(page)
            found.extend(batch)
            bar.update(len(batch))
            page = retry.call(page.next_page, what=what, client=client)
    return found


def _quiet(progress):
    return None if progress is None else not progress  # None: tqdm decides (shown on a terminal only)
