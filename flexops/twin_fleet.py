"""A twin of a fleet: `flexops sandbox import --accounts all|AC…` copies the main account and the chosen
subaccounts into one new sandbox database, each a subaccount of the twin's main account, SIDs kept.

Why: an ISV rehearses a repair on one customer's subaccount exactly as it will run it, through the main account's
credentials (`--accounts AC…` on the twin lists the same subaccounts). The accounts are resolved as every fleet
command resolves them (`fleet.resolve`: the main account's credentials list the subaccounts, each then read with its
own credentials, held in memory only); each is read GET-only, and all are read before anything is written, so a
subaccount that cannot be read stops the import with an empty twin rather than a partial one. A suspended
subaccount cannot be read (Twilio refuses its credentials): it is copied as a suspended subaccount without
configuration, so a fleet check on the twin reports it as on the source. Every account of the twin has fresh
credentials of its own; no source credential is copied.
"""
from dataclasses import dataclass

from . import fleet, twin
from .coerce import as_int
from .exceptions import ConnectionFailed, ValidationError
from .settings import mask_sid


@dataclass
class Copied:
    """One account of the twin: what was copied and its fresh credentials (the twin's own, sandbox only)."""

    sid: str
    name: str
    role: str  # "main" | "subaccount"
    status: str
    counts: dict
    creds: dict


def _unreachable(account):
    return account.client is None and not account.problem.startswith("the subaccount is")


def import_accounts(client, db_path, accounts="", conversations=0, progress=False):
    """Copy the account `client` reads and the subaccounts `accounts` names ("" | "all" | AC…, as fleet commands
    take them) into a new sandbox database at `db_path`: [Copied], the main account first."""
    from tqdm.auto import tqdm

    chosen = fleet.parse_accounts(accounts)
    conversations = as_int("conversations", conversations, 0, 1000)
    twin.new_twin_store(db_path).accounts()  # refuse a used database before reading anything
    if chosen == "":
        counts, creds = twin.import_account(client, db_path, conversations=conversations, progress=progress)
        return [Copied(creds["account_sid"], "", "main", "active", counts, creds)]
    resolved = fleet.resolve(client, accounts)
    try:
        subs = [a for a in resolved.accounts if a.sid != client.account_sid]
        bad = [a for a in subs if _unreachable(a)]
        if bad:
            raise ValidationError("accounts", "not subaccounts of the main account these credentials reach: "
                                  + ", ".join(mask_sid(a.sid) for a in bad)
                                  + " (Console > Account > Subaccounts lists them)")
        readable = fleet.Fleet([fleet.Account(client.account_sid, "", client)] + [a for a in subs if a.client],
                               resolved.gate, resolved.main_sid, resolved.listed, resolved.max_in_flight)
        with tqdm(total=len(readable.accounts), desc="sandbox import", unit="account",
                  disable=not progress) as bar:
            def read(account_client):
                snap = twin.read(account_client, conversations)
                bar.update(1)
                return snap
            done = fleet.run(readable, read, check_flex=False)
    finally:
        fleet.release(resolved, client)
    failed = [a for a, snap in done if snap is None]
    if failed:
        raise ConnectionFailed("sandbox import: nothing written, these accounts could not be read: " + "; ".join(
            f"{a.label}: {a.problem} ({a.remedy})" for a in failed))
    snaps = {a.sid: snap for a, snap in done}
    main = snaps[client.account_sid]
    for account in subs:  # the listing's name and status, as the main account sees its subaccounts
        snap = snaps.get(account.sid) or twin.Snapshot({"sid": account.sid})
        snap.account.update(friendly_name=account.name, status="suspended" if account.client is None else "active")
        snaps[account.sid] = snap
    return _write(db_path, main, [snaps[a.sid] for a in subs])


def _write(db_path, main, subaccounts):
    store = twin.new_twin_store(db_path)
    counts, creds = twin.write_account(store, main)
    store.set_setting("default_account", creds["account_sid"])
    copied = [Copied(creds["account_sid"], main.account.get("friendly_name") or "", "main", "active", counts, creds)]
    for snap in subaccounts:
        counts, creds = twin.write_account(store, snap, owner_sid=main.account["sid"])
        copied.append(Copied(creds["account_sid"], snap.account["friendly_name"], "subaccount",
                             snap.account["status"], counts, creds))
    return copied


def summary(copied):
    """One row per kind, one column per account (the main account first): the table the command prints."""
    import pandas as pd

    kinds = list(twin.KINDS)
    columns = {(c.name or mask_sid(c.sid)) if len(copied) > 1 else "count": [c.counts.get(k, 0) for k in kinds]
               for c in copied}
    return pd.DataFrame({"copied": kinds, **columns})
