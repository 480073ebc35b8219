"""Conversations v1: configuration, services, conversations, participants and messages of one account, with
Twilio's rules (states, timers, one open conversation per address pair). No HTTP, no form parsing."""
import re
from datetime import datetime, timedelta, timezone

from ..core import day_bound, new_sid, now
from ..errors import invalid, not_found
from .addresses import ADDRESS_KIND, BASE, LIST_PATH, AddressConfigurations  # noqa: F401  (re-exported)

STATES = ("active", "inactive", "closed")
TIMER_MINIMUM = {"inactive": timedelta(minutes=1), "closed": timedelta(minutes=10)}  # Twilio's documented minimums
DURATION = re.compile(r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?")
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _duration(name, value):
    match = DURATION.fullmatch(value or "")
    if not match or not any(match.groupdict().values()):
        raise invalid(f"Invalid {name} {value!r}: must be an ISO 8601 duration such as PT10M")
    return timedelta(**{unit: int(n) for unit, n in match.groupdict().items() if n})


def _day_bound(name, value, end):
    try:
        return day_bound(name, value, end)
    except ValueError as exc:
        raise invalid(str(exc)) from None


def in_service(service_sid, data):
    """A conversation (or its participant/message) as Twilio shows it under /v1/Services/{sid}/Conversations."""
    def moved(url):
        return url.replace(f"{BASE}/v1/Conversations/", f"{BASE}/v1/Services/{service_sid}/Conversations/", 1) \
            if isinstance(url, str) else url
    shown = {**data, "url": moved(data.get("url"))}
    if isinstance(data.get("links"), dict):
        shown["links"] = {name: moved(url) for name, url in data["links"].items()}
    if "conversation_sid" in data:
        shown["chat_service_sid"] = service_sid
    return shown


class ConversationsBackend(AddressConfigurations):
    """The Conversations state of one account; every method returns resources exactly as Twilio renders them."""

    # --- configuration and services ------------------------------------------------------------------------

    def configuration(self):
        return self.store.get(self.account_sid, "conversations_configuration", sid=self._config_sid)

    def default_service_sid(self):
        return (self.configuration() or {}).get("default_chat_service_sid")

    @property
    def _config_sid(self):
        """Resource SIDs are unique across accounts: each account's one configuration is stored under its own."""
        return f"{self.account_sid}:configuration"

    def configure(self, default_chat_service_sid):
        data = {"account_sid": self.account_sid, "default_chat_service_sid": default_chat_service_sid,
                "default_messaging_service_sid": None, "default_inactive_timer": None, "default_closed_timer": None,
                "url": f"{BASE}/v1/Configuration",
                "links": {"service": f"{BASE}/v1/Configuration/Services",
                          "webhooks": f"{BASE}/v1/Configuration/Webhooks"}}
        with self.store.tx() as db:
            if not self.store.insert(db, self.account_sid, "conversations_configuration", self._config_sid, data):
                self.store.replace(db, self.account_sid, "conversations_configuration", self._config_sid, data)
        return data

    def create_service(self, friendly_name, sid=None):
        """`sid`: a copied service keeps its own (`flexops sandbox import`)."""
        sid, stamp = sid or new_sid("IS"), now()
        data = {"account_sid": self.account_sid, "sid": sid, "friendly_name": friendly_name, "date_created": stamp,
                "date_updated": stamp, "url": f"{BASE}/v1/Services/{sid}",
                "links": {"conversations": f"{BASE}/v1/Services/{sid}/Conversations"}}
        with self.store.tx() as db:
            self.store.insert(db, self.account_sid, "conversation_service", sid, data)
        return data

    def service(self, sid):
        found = self.store.get(self.account_sid, "conversation_service", sid=sid)
        if found is None:
            raise not_found(f"/v1/Services/{sid}")
        return found

    def service_rows(self):
        return lambda after, limit: self.store.page(self.account_sid, "conversation_service", after, limit)

    # --- conversations -------------------------------------------------------------------------------------

    def create_conversation(self, db, chat_service_sid, stamp=None, sid=None, state="active"):
        """A new conversation inside the caller's transaction `db` (`sid`, `state`: a copied one keeps its own)."""
        if state not in STATES:
            raise invalid(f"Invalid State {state!r}: must be one of {', '.join(STATES)}")
        sid, stamp = sid or new_sid("CH"), stamp or now()
        url = f"{BASE}/v1/Conversations/{sid}"
        data = {"account_sid": self.account_sid, "chat_service_sid": chat_service_sid,
                "messaging_service_sid": None, "sid": sid, "friendly_name": None, "unique_name": None,
                "attributes": "{}", "state": state, "date_created": stamp, "date_updated": stamp, "timers": {},
                "url": url, "links": {"participants": f"{url}/Participants", "messages": f"{url}/Messages",
                                      "webhooks": f"{url}/Webhooks"},
                "bindings": None}
        self.store.insert(db, self.account_sid, "conversation", sid, data)
        return data

    def conversation(self, sid, service_sid=None):
        """By CH SID (or unique name); under a service only that service's conversations exist."""
        found = self.store.get(self.account_sid, "conversation", sid=sid) or \
            self.store.get(self.account_sid, "conversation", key=sid)
        if found is None or (service_sid is not None and found.get("chat_service_sid") != service_sid):
            where = f"/v1/Services/{service_sid}/Conversations/{sid}" if service_sid else f"/v1/Conversations/{sid}"
            raise not_found(where)
        return found

    def update_conversation(self, sid, service_sid=None, state=None, timers_inactive=None, timers_closed=None,
                            friendly_name=None, attributes=None):
        if state is not None and state not in STATES:
            raise invalid(f"Invalid State {state!r}: must be one of {', '.join(STATES)}")
        spans = {name: _duration(f"Timers.{name.capitalize()}", value)
                 for name, value in (("inactive", timers_inactive), ("closed", timers_closed)) if value is not None}
        for name, span in spans.items():
            if span < TIMER_MINIMUM[name]:
                raise invalid(f"Invalid Timers.{name.capitalize()}: the minimum is "
                              f"{int(TIMER_MINIMUM[name].total_seconds() // 60)} minutes")
        with self.store.tx() as db:
            data = self.conversation(sid, service_sid)
            if data["state"] == "closed" and state not in (None, "closed"):
                raise invalid(f"Conversation {data['sid']} is closed: a closed conversation cannot be reopened")
            stamp = datetime.now(timezone.utc)
            if state is not None:
                data["state"] = state
            timers = dict(data.get("timers") or {})
            for name, span in spans.items():
                timers[f"date_{name}"] = (stamp + span).strftime(STAMP)
            if data["state"] == "closed":
                timers = {}
            elif data["state"] == "inactive":
                timers.pop("date_inactive", None)
            data["timers"] = timers
            if friendly_name is not None:
                data["friendly_name"] = friendly_name
            if attributes is not None:
                data["attributes"] = attributes
            data["date_updated"] = stamp.strftime(STAMP)
            self.store.replace(db, self.account_sid, "conversation", data["sid"], data)
        return data

    def reactivate(self, db, conversation):
        """New traffic brings an inactive conversation back to active (Twilio's rule); closed ones never."""
        if conversation["state"] == "inactive":
            conversation.update(state="active", date_updated=now())
            self.store.replace(db, self.account_sid, "conversation", conversation["sid"], conversation)
        return conversation

    def conversation_rows(self, service_sid=None, state=None, start_date=None, end_date=None):
        """Page fetcher for /v1/Conversations (the default service's) or a service's conversations."""
        if state is not None and state not in STATES:
            raise invalid(f"Invalid State {state!r}: must be one of {', '.join(STATES)}")
        service_sid = service_sid or self.default_service_sid()
        where = {"chat_service_sid": service_sid} if service_sid else {}
        if state:
            where["state"] = state
        conditions = []
        if start_date:
            conditions.append(("date_created", ">=", _day_bound("StartDate", start_date, end=False)))
        if end_date:
            conditions.append(("date_created", "<=", _day_bound("EndDate", end_date, end=True)))
        # Twilio: "If this filter is used, the returned list is sorted by latest conversation creation date in
        # descending order" (StartDate / EndDate, its OpenAPI); without one, creation order.
        return lambda after, limit: self.store.page(self.account_sid, "conversation", after, limit, where=where,
                                                    conditions=conditions, descending=bool(conditions))

    # --- participants and messages -------------------------------------------------------------------------

    def add_participant(self, db, conversation_sid, address, proxy_address, channel, stamp=None, sid=None):
        sid, stamp = sid or new_sid("MB"), stamp or now()
        data = {"account_sid": self.account_sid, "conversation_sid": conversation_sid, "sid": sid, "identity": None,
                "attributes": "{}", "messaging_binding": {"type": channel, "address": address,
                                                          "proxy_address": proxy_address},
                "role_sid": None, "date_created": stamp, "date_updated": stamp,
                "url": f"{BASE}/v1/Conversations/{conversation_sid}/Participants/{sid}",
                "last_read_message_index": None, "last_read_timestamp": None}
        # Keyed by the binding, so the open conversation of an address pair is an index range away.
        self.store.insert(db, self.account_sid, "participant", sid, data, key=f"{address}>{proxy_address}>{sid}",
                          parent=conversation_sid)
        return data

    def open_conversation_for(self, address, proxy_address):
        """The (conversation, participant) holding the address pair's binding: Twilio keeps one non-closed
        conversation per (address, proxy address); (None, None) when there is none."""
        for participant in self.store.keyed_range(self.account_sid, "participant", f"{address}>{proxy_address}>"):
            conversation = self.store.get(self.account_sid, "conversation", sid=participant["conversation_sid"])
            if conversation and conversation["state"] != "closed":
                return conversation, participant
        return None, None

    def add_message(self, db, conversation_sid, participant_sid, author, body, stamp=None, index=None, sid=None):
        """`index`: known by a caller that just created the conversation (0), else counted. `sid`: a copy's own."""
        sid, stamp = sid or new_sid("IM"), stamp or now()
        if index is None:
            index = self.store.count(self.account_sid, "message", parent=conversation_sid)
        url = f"{BASE}/v1/Conversations/{conversation_sid}/Messages/{sid}"
        data = {"account_sid": self.account_sid, "conversation_sid": conversation_sid, "sid": sid, "index": index,
                "author": author, "body": body, "media": None, "attributes": "{}", "participant_sid": participant_sid,
                "date_created": stamp, "date_updated": None, "url": url, "delivery": None,
                "links": {"delivery_receipts": f"{url}/Receipts", "channel_metadata": f"{url}/ChannelMetadata"},
                "content_sid": None}
        self.store.insert(db, self.account_sid, "message", sid, data, parent=conversation_sid)
        return data

    def child_rows(self, kind, conversation_sid, service_sid=None, order=None):
        """Page fetcher of a conversation's participants or messages (`order` asc|desc, messages only)."""
        self.conversation(conversation_sid, service_sid)
        if order not in (None, "asc", "desc"):
            raise invalid(f"Invalid Order {order!r}: must be asc or desc")
        return lambda after, limit: self.store.page(self.account_sid, kind, after, limit, parent=conversation_sid,
                                                    descending=order == "desc")
