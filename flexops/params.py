"""The runbooks' parameter sets (notebook and CLI): every runbook funnels its parameters through here first, so a
bad value stops the run with a ValidationError naming the parameter before any API call. The coercions themselves
are `coerce.py`'s; the forms in `ui` call the same functions."""
import re
from pathlib import Path

from . import run_folder
from .address_spec import MessengerAddress, normalise_page_id
from .checks import validate_page_ids
from .coerce import as_bool, as_duration, as_int, as_list, as_optional_str, as_sids
from .exceptions import ValidationError
from .fleet import parse_accounts
from .inventory import parse_types
from .legacy import plan_retire
from .plan import check_concurrency
from .routing import plan_fix
from .settings import STATE_OFF, choose_target
from .studio import FlowCache


def connect_params(target="auto", profile=None, interactive=False):
    return {"target": choose_target(target), "profile": as_optional_str("profile", profile),
            "interactive": as_bool("interactive", interactive)}


# --- runbook parameter sets -----------------------------------------------------------------------------------
# Each returns plain, JSON-able values (what `notebook.record("parameters", ...)` stores) and raises a
# ValidationError naming the parameter before any API call. The forms in `ui` call the same functions.

SPEC_FIELDS = ("page_id", "friendly_name", "integration", "studio_flow_sid", "retry_count", "webhook_url",
               "webhook_method", "webhook_filters")
_FLOW_PLACEHOLDER = "FW" + "0" * 32  # stands in for a blank flow while validating: resolved after connecting


def _check_spec(values):
    """Validate the spec fields with MessengerAddress; a blank Studio flow is allowed (found later)."""
    check = dict(values)
    studio = str(values.get("integration") or "").strip().lower() == "studio"
    if studio and not as_optional_str("studio_flow_sid", values.get("studio_flow_sid")):
        check["studio_flow_sid"] = _FLOW_PLACEHOLDER
    spec = MessengerAddress.from_params(**check)
    data = {k: v for k, v in spec.to_dict().items() if k in SPEC_FIELDS}
    if check["studio_flow_sid"] is _FLOW_PLACEHOLDER:
        data["studio_flow_sid"] = None
    return data


def create_params(target="auto", page_id=None, friendly_name="", integration="studio", studio_flow_sid="",
                  retry_count=3, webhook_url="", webhook_method="POST", webhook_filters="", update_existing=False,
                  dry_run=False, interactive=False):
    """Runbook 10. Headless, any bad value raises; interactive, spec problems go to `problem` for the form.

    `studio_flow_sid` may stay blank: `create_spec` then picks the account's published Send-to-Flex flow.
    """
    params = {"target": choose_target(target), "update_existing": as_bool("update_existing", update_existing),
              "dry_run": as_bool("dry_run", dry_run), "interactive": as_bool("interactive", interactive)}
    raw = {"page_id": page_id, "friendly_name": friendly_name, "integration": integration,
           "studio_flow_sid": studio_flow_sid, "retry_count": retry_count, "webhook_url": webhook_url,
           "webhook_method": webhook_method, "webhook_filters": webhook_filters}
    try:
        params.update(_check_spec(raw), problem=None)
    except ValidationError as exc:
        if not params["interactive"]:
            raise
        params.update(raw, problem=str(exc))  # the form opens on these values and shows the problem inline
    return params


def resolve_flow(client, studio_flow_sid=None, flows=None):
    """The flow SID to use: the one given (it must exist), else the account's only published Send-to-Flex flow."""
    flows = flows or FlowCache(client)
    sid = as_optional_str("studio_flow_sid", studio_flow_sid)
    if sid:
        return flows.resolve(sid)
    found = flows.published_flex_flows()
    if len(found) == 1:
        return found[0].sid
    if not found:
        raise ValidationError("studio_flow_sid", "is blank and the account has no published Studio flow whose "
                              "Incoming Conversation trigger reaches Send to Flex: publish one (runbook 00 says "
                              "how) or give the flow SID")
    names = ", ".join(f"'{f.friendly_name}' {f.sid}" for f in found)
    raise ValidationError("studio_flow_sid", f"is blank and several published Flex flows exist ({names}): "
                          "give the SID of the one to use")


def create_spec(client, params, flows=None):
    """The MessengerAddress for validated `create_params`, with the Studio flow resolved on the account."""
    values = {k: params.get(k) for k in SPEC_FIELDS}
    if str(values["integration"]).lower() == "studio":
        values["studio_flow_sid"] = resolve_flow(client, values["studio_flow_sid"], flows)
    return MessengerAddress.from_params(**values)


def verify_params(target="auto", page_ids="", require_first_message=True, interactive=False, accounts="",
                  state_dir=""):
    """Runbook 20: page_ids as a list or comma-separated string; empty means every Messenger address.
    `accounts`: "" (the credentials' account), "all" or AC… SIDs (fleet.parse_accounts). `state_dir`: the state
    store's folder; blank: FLEXOPS_STATE_DIR, else ~/.flexops/state (None here); "off": no store."""
    return {"target": choose_target(target), "page_ids": validate_page_ids(as_list("page_ids", page_ids)),
            "require_first_message": as_bool("require_first_message", require_first_message),
            "interactive": as_bool("interactive", interactive), "accounts": parse_accounts(accounts),
            "state_dir": _state_dir(state_dir)}


def _state_dir(value):
    text = as_optional_str("state_dir", value)
    if not text:
        return None
    if text.strip().lower() == STATE_OFF:
        return STATE_OFF
    folder = Path(text).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValidationError("state_dir", "exists and is not a folder (blank: the default; off: no state store)",
                              text)
    return str(folder.resolve())


def report_params(target="auto", types="", out_dir="", since="", default_out="out/reports", accounts=""):
    """Runbook 30: `out_dir` blank = the run folder when there is one (FLEXOPS_RUN_DIR), else `default_out`;
    `accounts` as for verify_params."""
    chosen = parse_types(as_list("types", types) or None)
    folder = as_optional_str("out_dir", out_dir) or run_folder.current() or default_out
    if Path(folder).exists() and not Path(folder).is_dir():
        raise ValidationError("out_dir", "exists and is not a folder", folder)
    previous = as_optional_str("since", since)
    if previous and not Path(previous).exists():
        raise ValidationError("since", "no previous report at this path (a report file or folder)", previous)
    return {"target": choose_target(target), "types": chosen, "out_dir": str(Path(folder).resolve()),
            "since": str(Path(previous).resolve()) if previous else None, "accounts": parse_accounts(accounts)}


def apply_params(target="auto", inventory="", prune=None, confirm=False, concurrency=8, dry_run=False,
                 interactive=False):
    """Check runbook 40's parameters before any call. `inventory` is looked up from the working folder, then
    from its parent (JupyterLab starts kernels in notebooks/, `flexops run` in the project folder)."""
    path = as_optional_str("inventory", inventory)
    if not path:
        raise ValidationError("inventory", "the desired-state file (YAML or CSV) is required")
    found = next((p for p in (Path(path), Path("..") / path) if p.is_file()), None)
    if found is None:
        raise ValidationError("inventory", "file not found (looked in the working folder and its parent)", path)
    if isinstance(prune, str) and prune.strip().lower() in ("", "none", "null"):
        prune = None
    return {"target": choose_target(target), "inventory": str(found.resolve()),
            "prune": None if prune is None else as_bool("prune", prune), "confirm": as_bool("confirm", confirm),
            "concurrency": check_concurrency(concurrency), "dry_run": as_bool("dry_run", dry_run),
            "interactive": as_bool("interactive", interactive)}


def trace_params(target="auto", page_id="", since="7d", wait_seconds=0, conversation_sid="", all_pages=False,
                 interactive=False):
    """Runbook 50: the Page to trace (kept a string), the window, an optional wait for a new message."""
    all_pages = as_bool("all_pages", all_pages)
    page = as_optional_str("page_id", page_id)
    if page is None and not all_pages:
        raise ValidationError("page_id", "a Facebook Page ID is required (or all_pages=True)", page_id)
    as_duration("since", since)
    wait = as_int("wait_seconds", wait_seconds, minimum=0, maximum=3600)
    conversation = as_optional_str("conversation_sid", conversation_sid)
    if conversation and not re.fullmatch(r"CH[0-9a-fA-F]{32}", conversation):
        raise ValidationError("conversation_sid", "must be a conversation SID (CH + 32 hex digits)", conversation)
    return {"target": choose_target(target), "page_id": normalise_page_id(page) if page else None,
            "since": str(since).strip(), "wait_seconds": wait, "conversation_sid": conversation,
            "all_pages": all_pages, "interactive": as_bool("interactive", interactive)}


REPAIRS = ("routing", "legacy")


def repair_params(target="auto", repair="routing", flex_flow_sids="", replace=False, disable=False,
                  studio_flow_sid="", confirm=False, interactive=False):
    """Runbook 70: which repair; for `legacy`, the Flex Flows (blank: every facebook one). Dry run unless confirm."""
    chosen = str(repair or "").strip().lower()
    if chosen not in REPAIRS:
        raise ValidationError("repair", f"must be one of {', '.join(REPAIRS)}", repair)
    sids = as_sids("flex_flow_sids", flex_flow_sids, "FO")
    replace, disable = as_bool("replace", replace), as_bool("disable", disable)
    if chosen == "routing" and (sids or replace or disable):
        raise ValidationError("repair", "flex_flow_sids, replace and disable are for repair = 'legacy'", repair)
    return {"target": choose_target(target), "repair": chosen, "flex_flow_sids": sids, "replace": replace,
            "disable": disable, "studio_flow_sid": as_optional_str("studio_flow_sid", studio_flow_sid),
            "confirm": as_bool("confirm", confirm), "interactive": as_bool("interactive", interactive)}


def repair_plan(client, params):
    """The RepairPlan runbook 70's parameters ask for (the Flex messaging flow resolved for `replace`)."""
    if params["repair"] == "routing":
        return plan_fix(client)
    flow = resolve_flow(client, params["studio_flow_sid"]) if params["replace"] else None
    return plan_retire(client, params["flex_flow_sids"], not params["flex_flow_sids"], params["disable"],
                       params["replace"], flow)
