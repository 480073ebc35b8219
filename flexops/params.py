"""Coerce and validate notebook/CLI parameters. Papermill's `-p` turns `0012` into 12 and `true` into True or a
string depending on how it was given: every runbook funnels its parameters through here first, so a bad value
stops the run with a ValidationError naming the parameter before any API call."""
from .exceptions import ValidationError
from .settings import choose_target

TRUE = {"true", "1", "yes", "y", "on"}
FALSE = {"false", "0", "no", "n", "off", ""}


def as_bool(name, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise ValidationError(name, "must be true or false", value)


def as_optional_str(name, value):
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    raise ValidationError(name, "must be a string", value)


def as_int(name, value, minimum=None, maximum=None):
    """A whole number given as int, integral float (3.0) or digit string; bool is refused."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or \
            (isinstance(value, str) and not value.strip().lstrip("+-").isdigit()):
        raise ValidationError(name, "must be a whole number", value)
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValidationError(name, f"must be between {minimum} and {maximum}", value)
    return number


def as_list(name, value):
    """A list given as a list, or as a comma/whitespace separated string (papermill -p friendly)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [part for part in str(value).replace(",", " ").split() if part]
    raise ValidationError(name, "must be a list or a comma-separated string", value)


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
    from .addresses import MessengerAddress

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
    from .studio import FlowCache

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
    from .addresses import MessengerAddress

    values = {k: params.get(k) for k in SPEC_FIELDS}
    if str(values["integration"]).lower() == "studio":
        values["studio_flow_sid"] = resolve_flow(client, values["studio_flow_sid"], flows)
    return MessengerAddress.from_params(**values)


def verify_params(target="auto", page_ids="", require_first_message=True, interactive=False):
    """Runbook 20: page_ids as a list or comma-separated string; empty means every Messenger address."""
    from .checks import validate_page_ids

    return {"target": choose_target(target), "page_ids": validate_page_ids(as_list("page_ids", page_ids)),
            "require_first_message": as_bool("require_first_message", require_first_message),
            "interactive": as_bool("interactive", interactive)}


def report_params(target="auto", types="", out_dir="", since="", default_out="out/reports"):
    """Runbook 30: `out_dir` blank = the run folder when there is one (FLEXOPS_RUN_DIR), else `default_out`."""
    import os
    from pathlib import Path

    from .inventory import parse_types

    chosen = parse_types(as_list("types", types) or None)
    folder = as_optional_str("out_dir", out_dir) or os.environ.get("FLEXOPS_RUN_DIR") or default_out
    if Path(folder).exists() and not Path(folder).is_dir():
        raise ValidationError("out_dir", "exists and is not a folder", folder)
    previous = as_optional_str("since", since)
    if previous and not Path(previous).exists():
        raise ValidationError("since", "no previous report at this path (a report file or folder)", previous)
    return {"target": choose_target(target), "types": chosen, "out_dir": str(Path(folder).resolve()),
            "since": str(Path(previous).resolve()) if previous else None}
