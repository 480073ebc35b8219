"""Legacy Flex Flows still holding a Page (or number) after the move to Flex Conversations: list them with the
Conversations address for the same Page and whether the two collide, and plan their retirement.

Why it matters: a legacy Flex Flow (FO…, channel type facebook) that still holds `messenger:<page>` receives the
Page's messages, so the Conversations address for the same Page never sees them. Twilio's documented migration is
to remove the legacy address, then create the new one: `plan_retire(..., replace=True)` plans both in one repair,
the address with the Flex messaging flow (the caller resolves it with `params.resolve_flow`), retire first.
The plan is a repairs.RepairPlan: applied in order, paced for the Flex Flow API, audited, undone by rollback.
"""
from . import addresses, repairs, retry, run_folder
from .address_spec import MessengerAddress
from .atomic import read_json
from .coerce import as_sids
from .exceptions import ValidationError

MESSAGING = ("facebook", "whatsapp", "sms", "line")  # the legacy messaging channel types (web chat is not)
ADDRESS_PREFIX = {"facebook": "messenger:", "whatsapp": "whatsapp:", "sms": ""}
COLUMNS = ["sid", "friendly_name", "channel_type", "contact_identity", "enabled", "integration_type", "address",
           "address_sid", "collides"]


def conversations_address(flow):
    """The Conversations address for the same Page / number as the Flex Flow (None when there is none)."""
    prefix = ADDRESS_PREFIX.get(flow.get("channel_type"))
    identity = str(flow.get("contact_identity") or "")
    if prefix is None or not identity:
        return None
    bare = identity.split(":", 1)[1] if ":" in identity else identity
    return prefix + bare


def _address_config(client, address):
    return retry.call(retry.none_if_missing(lambda: client.conversations.v1.address_configurations(address).fetch()),
                      what=f"look up address configuration {address}", client=client)


def inventory(client, channel_types=MESSAGING):
    """One row per legacy messaging Flex Flow: what it holds, the Conversations address for the same Page, and
    whether they collide (an enabled Flex Flow takes the Page's messages from the address)."""
    rows = []
    for flow in repairs.list_flows(client):
        if flow.get("channel_type") not in channel_types:
            continue
        address = conversations_address(flow)
        config = _address_config(client, address) if address else None
        rows.append({**{k: flow.get(k) for k in COLUMNS[:6]}, "address": address,
                     "address_sid": config.sid if config is not None else None,
                     "collides": bool(config is not None and flow.get("enabled"))})
    return rows


def table(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=COLUMNS)


def retired_earlier(sid, runs_dir=None):
    """The configuration an earlier repair run recorded for Flex Flow `sid` (it retired it, maybe killed before
    finishing): lets a re-run of the same retire finish the job. None when no run knows it."""
    for folder, _ in reversed(run_folder.list_runs(runs_dir)):
        repair = (read_json(folder / run_folder.RESULTS, {}) or {}).get("repair")
        for step in (repair or {}).get("steps") or [] if isinstance(repair, dict) else []:
            if step.get("kind") == "flex_flow" and step.get("sid") == sid and step.get("before"):
                return step["before"]
    return None


def _choose(client, sids, all_facebook, runs_dir):
    flows = {f["sid"]: f for f in repairs.list_flows(client)}
    chosen = {}
    for sid in as_sids("flex_flow_sids", sids, "FO"):
        flow = flows.get(sid)
        if flow is None:
            flow = retired_earlier(sid, runs_dir)
            if flow is None:
                raise ValidationError("flex_flow_sids", "no such Flex Flow in the account (nor in an earlier repair "
                                                        "run)", sid)
            flow = {**flow, "_gone": True}
        chosen[sid] = flow
    if all_facebook:
        chosen.update({s: f for s, f in flows.items() if f.get("channel_type") == "facebook" and s not in chosen})
    return list(chosen.values())


def plan_retire(client, sids=(), all_facebook=False, disable=False, replace=False, studio_flow_sid=None,
                retry_count=3, runs_dir=None):
    """The RepairPlan retiring the named Flex Flows (or every facebook one): delete, or disable with `disable`;
    with `replace`, create each Page's Messenger address (Studio `studio_flow_sid`) right after its Flex Flow."""
    if not sids and not all_facebook:
        raise ValidationError("flex_flow_sids", "name the Flex Flows to retire (FO… SIDs) or use --all-facebook")
    flows = _choose(client, list(sids), all_facebook, runs_dir)
    if replace:
        other = next((f for f in flows if f.get("channel_type") != "facebook"), None)
        if other is not None:
            raise ValidationError("replace", f"creates Messenger addresses: Flex Flow {other['sid']} has channel "
                                             f"type {other.get('channel_type')}", other["sid"])
        if not studio_flow_sid:
            raise ValidationError("studio_flow_sid", "--replace needs the Flex messaging flow for the new address")
    steps, notes = [], []
    for flow in flows:
        group = conversations_address(flow) or flow["sid"]
        state = {k: v for k, v in flow.items() if not k.startswith("_")}
        if flow.get("_gone"):
            notes.append(f"Flex Flow {flow['sid']} is already gone (an earlier run retired it)")
        elif disable and not flow.get("enabled"):
            notes.append(f"Flex Flow {flow['sid']} is already disabled")
        elif disable:
            steps.append(repairs.Step("update", "flex_flow", flow["sid"], flow["sid"], state,
                                      {**state, "enabled": False}, group=group,
                                      note=f"disable (it holds {flow.get('contact_identity')}; configuration kept)"))
        else:
            steps.append(repairs.Step("delete", "flex_flow", flow["sid"], flow["sid"], state, None, group=group,
                                      note=f"delete the legacy Flex Flow {flow.get('friendly_name')!r} (holds "
                                           f"{flow.get('contact_identity')})"))
        if replace:
            steps.extend(_replacement(client, flow, group, studio_flow_sid, retry_count, notes))
    return repairs.new_plan(client, "legacy-retire", steps, source="flexops legacy retire", notes=notes)


def _replacement(client, flow, address, studio_flow_sid, retry_count, notes):
    spec = MessengerAddress.from_params(page_id=address, friendly_name=flow.get("friendly_name") or None,
                                        integration="studio", studio_flow_sid=studio_flow_sid,
                                        retry_count=retry_count)
    current = addresses.find(client, address)
    if current is not None:
        notes.append(f"{address} already has a Conversations address ({current.sid}): left as it is")
        return []
    params = {k: v for k, v in spec.to_dict().items() if k != "address" and v not in (None, [], ())}
    return [repairs.Step("create", "address", address, None, None, spec.to_dict(), spec=params, group=address,
                         note=f"create the Conversations address (Studio {studio_flow_sid}, retry "
                              f"{retry_count}) right after the Flex Flow is retired")]


def gaps_text(gaps):
    """People's lines for the measured gaps between retiring a Flex Flow and creating its Page's address."""
    return [f"{g['group']}: {g['gap_s']:.2f} s between retiring the Flex Flow and creating the address (messages "
            "in that window reach neither)" for g in gaps or []]
