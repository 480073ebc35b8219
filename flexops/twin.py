"""A twin of an account: its configuration copied into a new sandbox database, to rehearse a repair on first.

Why: a repair planned against the twin reads exactly like the same repair planned against the account, because
every SID is kept (the account's too) — so an engineer can run it on the twin, read the trace, and only then run it
for real. The source is only read, through the real twilio SDK (a guard refuses any non-GET call before it leaves);
the twin is written through the sandbox's own models. No credential or secret is copied: the twin gets its own
auth token and API key; credentials inside URLs (user:password@) are dropped. Conversations are copied only when
asked for (the N most recent), with customer identifiers pseudonymised.
"""
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from . import retry
from .coerce import as_int
from .exceptions import FlexopsError, ValidationError

MESSENGER = "messenger:"
DEADLINE = 60
KINDS = ("account", "conversations services", "conversations configuration", "address configurations",
         "studio flows", "flex configuration", "taskrouter workspaces", "activities", "task channels",
         "task queues", "workflows", "legacy flex flows", "facebook pages", "conversations", "participants",
         "messages", "open tasks")


class ReadOnly:
    """A call listener that refuses, before it is sent, any request that could change the source account."""

    def before(self, method, url, params, data):
        if method.upper() not in ("GET", "HEAD"):
            raise FlexopsError(f"sandbox import reads the source account only: refused {method} {urlsplit(url).path}")

    def __call__(self, **call):
        pass


def read_only(client):
    if not any(isinstance(listener, ReadOnly) for listener in client.http_client.listeners):
        client.http_client.listeners.insert(0, ReadOnly())
    return client


def _iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else value


def _no_userinfo(url):
    """`https://user:secret@host/x` -> `https://host/x`: a credential in a URL is not copied."""
    if not isinstance(url, str) or "@" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))


@dataclass
class Snapshot:
    """What was read from the source, as plain dicts."""

    account: dict
    services: list = field(default_factory=list)
    default_service: str = None
    addresses: list = field(default_factory=list)
    flows: list = field(default_factory=list)
    flex: dict = None
    workspaces: list = field(default_factory=list)
    flex_flows: list = field(default_factory=list)
    conversations: list = field(default_factory=list)
    tasks: list = field(default_factory=list)  # the open Flex tasks of the copied conversations


def _call(client, fn, what):
    return retry.call(fn, what=what, client=client, deadline=DEADLINE)


def _missing_ok(client, fn, what):
    return _call(client, retry.none_if_missing(fn), what)


# --- reading -------------------------------------------------------------------------------------------------

def read(client, conversations=0, step=lambda what: None):
    """A Snapshot of the account `client` is connected to; only GET requests are sent."""
    from .sandbox.flex.models import FIELDS as FLEX_FIELDS

    read_only(client)
    v1 = client.conversations.v1
    account = _call(client, lambda: client.api.v2010.accounts(client.account_sid).fetch(), "fetch the account")
    snap = Snapshot({"sid": account.sid, "friendly_name": account.friendly_name, "status": account.status})
    step("account")
    snap.services = [{"sid": s.sid, "friendly_name": s.friendly_name}
                     for s in _call(client, lambda: v1.services.list(page_size=50), "list Conversations services")]
    config = _missing_ok(client, lambda: v1.configuration().fetch(), "fetch the Conversations configuration")
    snap.default_service = config.default_chat_service_sid if config else None
    step("conversations")
    snap.addresses = [{"sid": a.sid, "type": a.type, "address": a.address, "friendly_name": a.friendly_name,
                       "address_country": a.address_country, "auto_creation": _auto_creation(a.auto_creation),
                       "dates": (_iso(a.date_created), _iso(a.date_updated))}
                      for a in _call(client, lambda: v1.address_configurations.list(page_size=50),
                                     "list address configurations")]
    step("address configurations")
    for listed in _call(client, lambda: client.studio.v2.flows.list(page_size=50), "list Studio flows"):
        flow = _call(client, lambda: client.studio.v2.flows(listed.sid).fetch(), f"fetch flow {listed.sid}")
        snap.flows.append({"sid": flow.sid, "friendly_name": flow.friendly_name, "status": flow.status,
                           "revision": flow.revision, "definition": flow.definition,
                           "commit_message": flow.commit_message})
    step("studio flows")
    flex = _missing_ok(client, lambda: client.flex_api.v1.configuration().fetch(), "fetch the Flex configuration")
    snap.flex = {name: _iso(getattr(flex, name, None)) for name in FLEX_FIELDS} if flex else None
    step("flex configuration")
    snap.workspaces = [_workspace(client, w) for w in
                       _call(client, lambda: client.taskrouter.v1.workspaces.list(page_size=50), "list workspaces")]
    step("taskrouter")
    snap.flex_flows = [{"sid": f.sid, "friendly_name": f.friendly_name, "chat_service_sid": f.chat_service_sid,
                        "channel_type": f.channel_type, "contact_identity": f.contact_identity, "enabled": f.enabled,
                        "integration_type": f.integration_type, "integration": _integration(f.integration),
                        "long_lived": f.long_lived, "janitor_enabled": f.janitor_enabled}
                       for f in _missing_ok(client, lambda: client.flex_api.v1.flex_flow.list(page_size=50),
                                            "list legacy Flex Flows") or []]
    step("legacy flex flows")
    count = as_int("conversations", conversations, 0, 1000)
    if count:
        snap.conversations = _conversations(client, [s["sid"] for s in snap.services], count)
        snap.tasks = _open_tasks(client, snap)
    step("conversations")
    return snap


def _auto_creation(auto):
    auto = dict(auto or {})
    if auto.get("webhook_url"):
        auto["webhook_url"] = _no_userinfo(auto["webhook_url"])
    return auto


def _integration(integration):
    integration = dict(integration or {})
    if integration.get("url"):
        integration["url"] = _no_userinfo(integration["url"])
    return integration


def _workspace(client, listed):
    ws = client.taskrouter.v1.workspaces(listed.sid)
    what = f"of workspace {listed.sid}"
    return {"sid": listed.sid, "friendly_name": listed.friendly_name,
            "default_activity_name": listed.default_activity_name,
            "timeout_activity_name": listed.timeout_activity_name,
            "activities": [(a.sid, a.friendly_name, a.available)
                           for a in _call(client, lambda: ws.activities.list(page_size=50), f"list activities {what}")],
            "channels": [(c.sid, c.unique_name, c.friendly_name)
                         for c in _call(client, lambda: ws.task_channels.list(page_size=50), f"list channels {what}")],
            "queues": [{"sid": q.sid, "friendly_name": q.friendly_name, "target_workers": q.target_workers,
                        "max_reserved_workers": q.max_reserved_workers, "task_order": q.task_order}
                       for q in _call(client, lambda: ws.task_queues.list(page_size=50), f"list queues {what}")],
            "workflows": [{"sid": w.sid, "friendly_name": w.friendly_name, "configuration": w.configuration,
                           "task_reservation_timeout": w.task_reservation_timeout,
                           "assignment_callback_url": _no_userinfo(w.assignment_callback_url),
                           "fallback_assignment_callback_url": _no_userinfo(w.fallback_assignment_callback_url)}
                          for w in _call(client, lambda: ws.workflows.list(page_size=50), f"list workflows {what}")]}


def _conversations(client, services, count):
    """The `count` most recent conversations across the services, with participants and messages."""
    found = []
    for service in services:
        listing = client.conversations.v1.services(service).conversations
        found += [(service, c) for c in _call(client, lambda: listing.list(page_size=100, limit=5000),
                                              f"list conversations of {service}")]
    found.sort(key=lambda pair: (_iso(pair[1].date_created) or "", pair[1].sid), reverse=True)
    copied = []
    for service, c in reversed(found[:count]):
        one = client.conversations.v1.services(service).conversations(c.sid)
        copied.append({
            "sid": c.sid, "service": service, "state": c.state, "date_created": _iso(c.date_created),
            "participants": [{"sid": p.sid, "binding": dict(p.messaging_binding or {}),
                              "date_created": _iso(p.date_created)}
                             for p in _call(client, lambda: one.participants.list(page_size=50),
                                            f"list participants of {c.sid}")],
            "messages": [{"sid": m.sid, "author": m.author, "body": m.body, "participant_sid": m.participant_sid,
                          "index": m.index, "date_created": _iso(m.date_created)}
                         for m in _call(client, lambda: one.messages.list(page_size=100, limit=1000),
                                        f"list messages of {c.sid}")]})
    return copied


OPEN = ["pending", "reserved", "assigned", "wrapping"]


def _open_tasks(client, snap):
    """The open tasks of the copied conversations: without them every copied active conversation would look stale
    on the twin (no agent sees it), and a janitor rehearsed there would close what the source's agents work on."""
    copied = {c["sid"] for c in snap.conversations}
    found = []
    for ws in snap.workspaces:
        channels = {sid: unique for sid, unique, _ in ws["channels"]}
        listing = client.taskrouter.v1.workspaces(ws["sid"]).tasks
        for t in _call(client, lambda: listing.list(assignment_status=OPEN, page_size=1000),
                       f"list the open tasks of workspace {ws['sid']}"):
            attributes = json.loads(t.attributes or "{}")
            if attributes.get("conversationSid") in copied:
                found.append({"sid": t.sid, "workspace": ws["sid"], "workflow": t.workflow_sid,
                              "channel": channels.get(t.task_channel_sid, t.task_channel_unique_name or "default"),
                              "attributes": attributes, "priority": t.priority, "timeout": t.timeout})
    return found


# --- writing -------------------------------------------------------------------------------------------------

class Pseudonyms:
    """Customer identifiers -> stable stand-ins (`messenger:9…` digits, so the twin's inbound simulation takes
    them), keyed by a random salt that is not kept: the twin cannot be mapped back to the customers."""

    def __init__(self, pages):
        self.salt, self.pages, self.seen = secrets.token_bytes(16), set(pages), {}

    def __call__(self, address):
        if not isinstance(address, str) or address in self.pages or address == "system":
            return address
        if address not in self.seen:
            digest = int(hashlib.sha256(self.salt + address.encode()).hexdigest(), 16)
            channel = address.split(":", 1)[0] + ":" if ":" in address else ""
            self.seen[address] = f"{channel}9{digest % 10 ** 15:015d}"
        return self.seen[address]


def new_twin_store(db_path):
    """The Store of a new sandbox database at `db_path`; refuses one that already holds an account."""
    from .sandbox.store import Store

    if os.path.exists(db_path) and Store(db_path).accounts():
        raise ValidationError("db", "already holds a sandbox account: give the path of a new database file",
                              os.fspath(db_path))
    return Store(db_path)


def write(snap, db_path, step=lambda what: None):
    """Write the Snapshot into a new sandbox database as its main account: (counts by kind, its credentials)."""
    store = new_twin_store(db_path)
    counts, creds = write_account(store, snap, step=step)
    store.set_setting("default_account", creds["account_sid"])
    return counts, creds


def write_account(store, snap, owner_sid=None, step=lambda what: None):
    """One account of the twin, SID kept, with fresh credentials of its own — a subaccount of `owner_sid` (its
    auth token then reached as on Twilio: in the main account's API 2010 listing): (counts by kind, credentials)."""
    from .sandbox.api.models import STATUSES, AccountsBackend
    from .sandbox.conversations.models import ConversationsBackend
    from .sandbox.flex.models import FlexBackend
    from .sandbox.studio.models import StudioBackend
    from .sandbox.taskrouter.models import TaskRouterBackend

    acct = snap.account["sid"]
    status = snap.account.get("status") if snap.account.get("status") in STATUSES else "active"
    creds = AccountsBackend(store, None).create_account(snap.account.get("friendly_name") or "twin", status=status,
                                                        owner_sid=owner_sid, account_sid=acct,
                                                        api_key=owner_sid is None)
    counts = dict.fromkeys(KINDS, 0)
    counts["account"] = 1
    conversations = ConversationsBackend(store, acct)
    for service in snap.services:
        conversations.create_service(service["friendly_name"], sid=service["sid"])
    counts["conversations services"] = len(snap.services)
    if snap.default_service:
        conversations.configure(default_chat_service_sid=snap.default_service)
        counts["conversations configuration"] = 1
    taskrouter = TaskRouterBackend(store, acct)
    for ws in snap.workspaces:
        taskrouter.create_workspace(ws["friendly_name"], sid=ws["sid"], activities=ws["activities"],
                                    channels=ws["channels"], default_activity=ws["default_activity_name"],
                                    timeout_activity=ws["timeout_activity_name"])
        for q in ws["queues"]:
            taskrouter.create_queue(ws["sid"], q["friendly_name"], q["target_workers"], q["max_reserved_workers"],
                                    q["task_order"], sid=q["sid"])
        for w in ws["workflows"]:
            taskrouter.create_workflow(ws["sid"], w["friendly_name"], json.loads(w["configuration"] or "{}"),
                                       w["task_reservation_timeout"], w["assignment_callback_url"],
                                       w["fallback_assignment_callback_url"], sid=w["sid"])
        for kind, key in (("activities", "activities"), ("task channels", "channels"), ("task queues", "queues"),
                          ("workflows", "workflows")):
            counts[kind] += len(ws[key])
    counts["taskrouter workspaces"] = len(snap.workspaces)
    step("taskrouter")
    if snap.flex:
        FlexBackend(store, acct).restore_configuration(snap.flex)
        counts["flex configuration"] = 1
    studio = StudioBackend(store, acct)
    for flow in snap.flows:
        studio.create_flow(flow["friendly_name"], flow["definition"], flow["status"], flow["commit_message"],
                           sid=flow["sid"], revision=flow["revision"])
    counts["studio flows"] = len(snap.flows)
    for a in snap.addresses:
        conversations.create_address(a["type"], a["address"], a["friendly_name"], a["address_country"],
                                     _auto_creation_form(a["auto_creation"]), sid=a["sid"], dates=a["dates"])
    counts["address configurations"] = len(snap.addresses)
    flows = FlexBackend(store, acct).flows
    for f in snap.flex_flows:
        flows.create(f["friendly_name"], f["chat_service_sid"], f["channel_type"], f["contact_identity"],
                     f["enabled"], f["integration_type"], f["integration"], f["long_lived"], f["janitor_enabled"],
                     sid=f["sid"])
    counts["legacy flex flows"] = len(snap.flex_flows)
    step("studio, addresses, flex flows")
    counts["facebook pages"] = _pages(store, acct, snap)
    _write_conversations(store, conversations, snap, counts)
    step("conversations")
    return counts, creds


def _auto_creation_form(auto):
    """The address's auto_creation as the model takes it (what the API's AutoCreation.* parameters carry)."""
    return {k: v for k, v in (auto or {}).items() if v is not None}


def _pages(store, acct, snap):
    """The twin's "connected" Facebook Pages: those its Messenger addresses and Flex Flows name."""
    names = {a["address"][len(MESSENGER):]: a["friendly_name"] for a in snap.addresses
             if str(a["address"]).startswith(MESSENGER)}
    for f in snap.flex_flows:
        page = str(f["contact_identity"] or "").removeprefix(MESSENGER)
        if f["channel_type"] == "facebook" and page.isdigit():
            names.setdefault(page, f["friendly_name"])
    for page, name in sorted(names.items()):
        store.put_page(acct, page, name or f"Page {page}")
    return len(names)


def _write_conversations(store, conversations, snap, counts):
    pages = {a["address"] for a in snap.addresses} | {f["contact_identity"] for f in snap.flex_flows}
    alias = Pseudonyms(pages)
    for c in snap.conversations:
        with store.tx() as db:
            conversations.create_conversation(db, c["service"], c["date_created"], sid=c["sid"], state=c["state"])
            for p in c["participants"]:
                b = p["binding"]
                conversations.add_participant(db, c["sid"], alias(b.get("address")), b.get("proxy_address"),
                                              b.get("type") or "messenger", p["date_created"], sid=p["sid"])
            for m in c["messages"]:
                conversations.add_message(db, c["sid"], m["participant_sid"], alias(m["author"]), m["body"],
                                          m["date_created"], m["index"], sid=m["sid"])
        counts["conversations"] += 1
        counts["participants"] += len(c["participants"])
        counts["messages"] += len(c["messages"])
    _write_tasks(store, snap, alias, counts)


def _write_tasks(store, snap, alias, counts):
    """The copied conversations' open tasks, SIDs kept, customer identifiers in their attributes pseudonymised
    (the twin has no workers: they wait as pending)."""
    from .sandbox.taskrouter.models import TaskRouterBackend

    taskrouter = TaskRouterBackend(store, snap.account["sid"])
    known = {**alias.seen, **{k.split(":", 1)[1]: v.split(":", 1)[1] for k, v in alias.seen.items() if ":" in k}}
    for t in snap.tasks:
        attributes = {k: known.get(v, v) if isinstance(v, str) else v for k, v in t["attributes"].items()}
        taskrouter.create_task(t["workspace"], t["workflow"], t["channel"], attributes, t["timeout"],
                               t["priority"], sid=t["sid"])
        counts["open tasks"] += 1


def import_account(client, db_path, conversations=0, progress=False):
    """Copy the account `client` reads into a new sandbox database at `db_path`: (counts, twin credentials)."""
    from tqdm.auto import tqdm

    conversations = as_int("conversations", conversations, 0, 1000)
    new_twin_store(db_path).accounts()  # refuse a used database before reading anything
    with tqdm(total=11, desc="sandbox import", unit="step", disable=not progress) as bar:
        def step(what):
            bar.set_postfix_str(what)
            bar.update(1)
        snap = read(client, conversations, step)
        counts, creds = write(snap, db_path, step)
    return counts, creds
