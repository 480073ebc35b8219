"""First-message evidence: has a customer's conversation reached a Messenger page yet?

One pass over recent conversations (newest first) and their participants, stopping as soon as every wanted address
has its evidence, and bounded by `max_conversations` (one participants request per conversation): cheap on big
accounts. checks.verify turns the evidence into its "first message" rows.
"""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone


from . import retry
from .exceptions import TwilioCallFailed
from .progress import bar as progress_bar

CONVERSATION_PAGE_SIZE = 100  # Twilio's maximum for conversations and participants
WORKERS = 8
MAX_CONVERSATIONS = 1000  # bounds the evidence scan: one participants request per conversation
DEADLINE = 30


def call(client, fn, what):
    """retry.call with the checks' deadline: a check waits DEADLINE seconds at most for one Twilio answer."""
    return retry.call(fn, what=what, client=client, deadline=DEADLINE)


def conversations_of(client, service):
    """The conversations list of a Conversations service (None: the default service, /v1/Conversations)."""
    return client.conversations.v1.conversations if service is None else \
        client.conversations.v1.services(service).conversations


def first_messages(client, wanted, services=(None,), since_days=30, max_conversations=MAX_CONVERSATIONS,
                   progress=None):
    """{address: evidence} for the wanted addresses, from one pass over recent conversations.

    A conversation is evidence for `messenger:<page>` when one of its participants has
    `messaging_binding.proxy_address == messenger:<page>` (the page the customer wrote to). `services` lists the
    Conversations services to scan (None = the default one). Returns (found, notes) where notes explain any
    service that could not be scanned or a scan cut short by `max_conversations`.
    """
    wanted, found, notes = set(wanted), {}, []
    start = (datetime.now(timezone.utc) - timedelta(days=since_days)).strftime("%Y-%m-%dT00:00:00Z")
    seen = set()
    with progress_bar(progress, desc="conversations scanned", unit=" conversations", leave=False) as bar, \
            ThreadPoolExecutor(WORKERS) as pool:
        for service in services:
            if wanted <= found.keys() or len(seen) >= max_conversations:
                break
            conversations = conversations_of(client, service)
            what = "list conversations of " + ("the default service" if service is None else f"service {service}")
            try:
                page = call(client, lambda: conversations.page(start_date=start, page_size=CONVERSATION_PAGE_SIZE),
                             what)
                while page is not None and not wanted <= found.keys():
                    fresh = [c for c in page if c.sid not in seen]
                    batch = fresh[:max_conversations - len(seen)]
                    seen.update(c.sid for c in batch)
                    lists = pool.map(lambda c: _participants(client, conversations, c), batch)
                    for conversation, participants in zip(batch, lists):
                        for proxy in {(p.messaging_binding or {}).get("proxy_address") for p in participants}:
                            if proxy in wanted and proxy not in found:
                                found[proxy] = {"conversation_sid": conversation.sid,
                                                "date_created": conversation.date_created,
                                                "chat_service_sid": conversation.chat_service_sid}
                    bar.update(len(batch))
                    if len(seen) >= max_conversations:
                        if len(fresh) > len(batch) or page.next_page_url:
                            notes.append(f"stopped after the {max_conversations} most recent conversations")
                        break
                    page = call(client, page.next_page, what)
            except TwilioCallFailed as exc:
                notes.append(str(exc))
    return found, notes


def _participants(client, conversations, conversation):
    """A conversation removed while we scan (or unreadable) is simply no evidence."""
    try:
        return call(client, lambda: conversations(conversation.sid).participants.list(
            page_size=CONVERSATION_PAGE_SIZE), f"list participants of conversation {conversation.sid}")
    except TwilioCallFailed:
        return []


def scan(client, present, services, since_days=30, max_conversations=MAX_CONVERSATIONS, progress=None):
    """first_messages() for address configurations `present`, over the default service and every other
    Conversations service they name that exists (`services`: {sid: "ok" | problem})."""
    wanted = [c.address for c in present]
    if not wanted:
        return {}, []
    return first_messages(client, wanted, lists_to_scan(client, services), since_days, max_conversations, progress)


def lists_to_scan(client, services):
    """[None (the default service), then every other service of `services` ({sid: "ok" | problem}) that exists]."""
    scan = [None]
    explicit = [sid for sid in services if services[sid] == "ok"]
    if explicit:
        try:
            default = call(client, client.conversations.v1.configuration().fetch,
                            "fetch the Conversations configuration").default_chat_service_sid
        except TwilioCallFailed:
            default = None
        scan += [sid for sid in explicit if sid != default]
    return scan
