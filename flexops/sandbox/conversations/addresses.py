"""Conversations v1 address configurations: state and Twilio's rules (no HTTP, no form parsing).

`AutoCreation.*` changes arrive as a plain dict of the resource's field names (`enabled`, `type`,
`studio_flow_sid`, ...); the rules below decide what the stored configuration becomes.
"""
import re

from ..core import new_sid, now
from ..errors import TwilioError, invalid, missing, not_found

ADDRESS_TYPES = ("sms", "whatsapp", "messenger", "gbm", "email", "rcs", "apple", "chat")
AUTO_CREATION_TYPES = ("webhook", "studio", "default")
WEBHOOK_METHODS = ("get", "post")
STUDIO_FIELDS = ("studio_flow_sid", "studio_retry_count")
WEBHOOK_FIELDS = ("webhook_url", "webhook_method", "webhook_filters")
SID_PATTERNS = {"conversation_service_sid": ("AutoCreation.ConversationServiceSid", r"^IS[0-9a-fA-F]{32}$"),
                "studio_flow_sid": ("AutoCreation.StudioFlowSid", r"^FW[0-9a-fA-F]{32}$")}
ADDRESS_KIND = "address_configuration"
LIST_PATH = "/v1/Configuration/Addresses"
BASE = "https://conversations.twilio.com"


def merge_auto_creation(current, changes):
    """`current` auto_creation with `changes` applied; fields that do not belong to the resulting type drop out."""
    auto = dict(current)
    for field, value in changes.items():
        if value is None:
            continue
        if field == "type":
            if value.lower() not in AUTO_CREATION_TYPES:
                raise invalid(f"Invalid AutoCreation.Type {value!r}: must be one of {', '.join(AUTO_CREATION_TYPES)}")
            value = value.lower()
        elif field in SID_PATTERNS and not re.match(SID_PATTERNS[field][1], value):
            raise invalid(f"Invalid {SID_PATTERNS[field][0]} {value!r}")
        elif field == "webhook_method":
            if value.lower() not in WEBHOOK_METHODS:
                raise invalid(f"Invalid AutoCreation.WebhookMethod {value!r}: must be GET or POST")
            value = value.upper()
        elif field == "webhook_filters" and not value:
            continue
        auto[field] = value
    auto.setdefault("enabled", False)
    auto.setdefault("type", "default")
    if auto["type"] != "studio":
        for field in STUDIO_FIELDS:
            auto.pop(field, None)
    if auto["type"] != "webhook":
        for field in WEBHOOK_FIELDS:
            auto.pop(field, None)
    if auto["type"] == "studio" and "studio_flow_sid" not in auto:
        raise missing("AutoCreation.StudioFlowSid")
    if auto["type"] == "webhook" and "webhook_url" not in auto:
        raise missing("AutoCreation.WebhookUrl")
    return auto


def _check_friendly_name(name):
    if name is not None and len(name) > 256:
        raise invalid("Invalid FriendlyName: must be at most 256 characters")


class AddressConfigurations:
    """Address configurations of one account (mixed into ConversationsBackend)."""

    def __init__(self, store, account_sid):
        self.store = store
        self.account_sid = account_sid

    def create_address(self, type, address, friendly_name=None, address_country=None, auto_creation=None, sid=None,
                       dates=None):
        """`sid`, `dates` (created, updated): a copied configuration keeps its own (`flexops sandbox import`)."""
        if not type:
            raise missing("Type")
        if not address:
            raise missing("Address")
        kind = type.lower()  # Twilio takes the type in any case (its example: `whAtsAPP`), answers in lower case
        if kind not in ADDRESS_TYPES:
            raise invalid(f"Invalid Type {kind!r}: must be one of {', '.join(ADDRESS_TYPES)}")
        if kind == "messenger" and not re.fullmatch(r"messenger:\d+", address):
            raise invalid(f"Invalid Address {address!r}: a messenger address is messenger:<facebook page id>")
        _check_friendly_name(friendly_name)
        sid, stamp = sid or new_sid("IG"), now()
        data = {"account_sid": self.account_sid, "sid": sid, "address": address, "type": kind,
                "friendly_name": friendly_name, "address_country": address_country,
                "auto_creation": merge_auto_creation({}, auto_creation or {}),
                "date_created": (dates or (stamp,))[0], "date_updated": (dates or (stamp, stamp))[1], "url": f"{BASE}{LIST_PATH}/{sid}"}
        with self.store.tx() as db:
            if not self.store.insert(db, self.account_sid, ADDRESS_KIND, sid, data, key=address):
                # Twilio documents no answer for this; 20409 is its platform-wide "Conflict" code.
                raise TwilioError(409, 20409, f"Address configuration already exists for address {address}")
        return data

    def find_address(self, sid_or_address):
        """The configuration by IG SID or by the address itself (as Twilio's `{Sid}`), or None."""
        if re.fullmatch(r"IG[0-9a-fA-F]{32}", sid_or_address):
            return self.store.get(self.account_sid, ADDRESS_KIND, sid=sid_or_address)
        return self.store.get(self.account_sid, ADDRESS_KIND, key=sid_or_address)

    def address(self, sid_or_address):
        found = self.find_address(sid_or_address)
        if found is None:
            raise not_found(f"{LIST_PATH}/{sid_or_address}")
        return found

    def update_address(self, sid_or_address, friendly_name=None, auto_creation=None, immutable=()):
        """`immutable`: names of create-only parameters the caller tried to send (Twilio refuses them)."""
        for name in immutable:
            raise invalid(f"Invalid parameter {name}: it cannot be changed after creation")
        _check_friendly_name(friendly_name)
        with self.store.tx() as db:
            data = self.address(sid_or_address)
            data["auto_creation"] = merge_auto_creation(data["auto_creation"], auto_creation or {})
            if friendly_name is not None:
                data["friendly_name"] = friendly_name
            data["date_updated"] = now()
            self.store.replace(db, self.account_sid, ADDRESS_KIND, data["sid"], data)
        return data

    def delete_address(self, sid_or_address):
        with self.store.tx() as db:
            data = self.address(sid_or_address)
            self.store.delete(db, self.account_sid, ADDRESS_KIND, data["sid"])

    def address_rows(self, type=None):
        """A page fetcher `(after_seq, limit) -> [(seq, address)]` of the account's configurations."""
        kind = type.lower() if type else None
        return lambda after, limit: self.store.page(self.account_sid, ADDRESS_KIND, after, limit,
                                                    where={"type": kind} if kind else None)
