"""Messenger address configurations: safe, idempotent operations on them (the spec, MessengerAddress, is
address_spec.py's and is re-exported here).

Twilio identifies an address configuration by its address (`messenger:<page id>`) as well as its IG SID, and does
not document what a second create for the same address does. So every operation looks first (fetch by address),
and a create or delete whose outcome is unknown (5xx, dropped connection) looks again before any retry
(see retry.call): running a runbook twice, or after a network failure, never makes a duplicate.
"""
from dataclasses import dataclass, field


from . import retry
from .address_spec import (ADDRESS_SID, ADDRESS_TYPE, PREFIX, STATE_FIELDS, UNMANAGED_WHEN_NONE, address_of,
                           MessengerAddress)  # noqa: F401 - MessengerAddress: re-exported, the spec these act on
from .coerce import plain
from .exceptions import ValidationError
from .progress import bar as progress_bar


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
    with progress_bar(progress, desc="Messenger addresses", unit=" addr", leave=False) as bar:
        page = retry.call(lambda: _configs(client).page(type=ADDRESS_TYPE, page_size=page_size), what=what,
                          client=client)
        while page is not None:
            batch = list(page)
            found.extend(batch)
            bar.update(len(batch))
            page = retry.call(page.next_page, what=what, client=client)
    return found


