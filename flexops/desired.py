"""The desired state of an account's Messenger addresses, from a YAML or CSV file.

Why a parser of our own around PyYAML: every problem must be reported at once, each with file, line (YAML) or row
(CSV) and field, so a 200-line inventory is fixed in one pass. PyYAML's node tree keeps the line of every key, and
the raw text of every scalar: an unquoted page id such as `0123` (which YAML turns into a number and loses its
leading zero) is caught and the message says to quote it.

Field checks are MessengerAddress's own rules (address_spec.py, pydantic: every error of a row at once); Studio
flow names are resolved against the account later,
by `resolve()` (plan.py calls it), because a file can be checked without credentials.
"""
import csv
import io
import re
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import yaml

from .address_spec import PREFIX, AddressRules, MessengerAddress, normalise_page_id
from .exceptions import DesiredStateError, ValidationError
from .studio import FlowCache

FIELDS = ("page_id", "friendly_name", "integration", "studio_flow", "retry_count", "webhook_url", "webhook_method",
          "webhook_filters", "conversation_service_sid")
TOP_LEVEL = ("prune", "defaults", "addresses")
STUDIO_ONLY = ("studio_flow", "retry_count")
WEBHOOK_ONLY = ("webhook_url", "webhook_method", "webhook_filters")
TO_SPEC = {"studio_flow": "studio_flow_sid"}  # file field -> MessengerAddress parameter
FROM_SPEC = {v: k for k, v in TO_SPEC.items()}
INT_TAG = "tag:yaml.org,2002:int"
STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class Problem:
    """One schema error: where (file, line, row) and which field."""

    file: str
    line: int
    field: str
    message: str
    row: int = None  # 1-based entry number (CSV: data row; YAML: position in `addresses`)

    def __str__(self):
        where = f"{self.file}:{self.line}" if self.line else self.file
        row = f" (entry {self.row})" if self.row else ""
        return f"{where}{row}: {self.field}: {self.message}"

    def to_dict(self):
        return {"file": self.file, "line": self.line, "row": self.row, "field": self.field, "message": self.message}


@dataclass
class Entry:
    """One address as the file wants it; `params` are MessengerAddress parameters, `studio_flow` unresolved."""

    page_id: str
    params: dict
    line: int
    row: int
    studio_flow: str = None

    @property
    def address(self):
        return PREFIX + self.page_id

    def spec(self, flow_sid=None):
        params = dict(self.params)
        if self.studio_flow is not None:
            params["studio_flow_sid"] = flow_sid or self.studio_flow
        return MessengerAddress.from_params(**params)


@dataclass
class DesiredState:
    entries: list
    prune: bool = False
    path: str = None
    defaults: dict = field(default_factory=dict)

    @property
    def addresses(self):
        return {e.address for e in self.entries}

    def __len__(self):
        return len(self.entries)


# --- loading -------------------------------------------------------------------------------------------------

def load(path, prune=None):
    """Parse and check a `.yaml`/`.yml` or `.csv` file; `prune` (True/False) overrides the file's setting."""
    path = Path(path)
    if not path.exists():
        raise ValidationError("inventory", "file not found", str(path))
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        state = loads_yaml(text, str(path))
    elif suffix == ".csv":
        state = loads_csv(text, str(path))
    else:
        raise ValidationError("inventory", "must be a .yaml, .yml or .csv file", str(path))
    if prune is not None:
        state.prune = bool(prune)
    return state


def loads_yaml(text, name="<yaml>"):
    problems = []
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise DesiredStateError([Problem(name, mark.line + 1 if mark else None, "(file)",
                                             f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]) from None
        prune, defaults, items = False, {}, None
        if root is None:
            problems.append(Problem(name, 1, "(file)", "the file is empty; expected `addresses:` (a list)"))
        elif isinstance(root, yaml.SequenceNode):
            items = root
        elif not isinstance(root, yaml.MappingNode):
            problems.append(Problem(name, _line(root), "(file)", "expected a mapping with `addresses:` (a list)"))
        else:
            for key_node, value_node in root.value:
                key = key_node.value
                if key == "prune":
                    value = loader.construct_object(value_node, deep=True)
                    if not isinstance(value, bool):
                        problems.append(Problem(name, _line(key_node), "prune", "must be true or false"))
                    else:
                        prune = value
                elif key == "defaults":
                    if isinstance(value_node, yaml.MappingNode):
                        defaults = _fields(loader, value_node, name, None, problems, "defaults.")
                        if "page_id" in defaults:
                            problems.append(Problem(name, _line(value_node), "defaults.page_id",
                                                    "a page id cannot have a default"))
                            defaults.pop("page_id")
                    elif value_node.tag != NULL_TAG:
                        problems.append(Problem(name, _line(key_node), "defaults", "must be a mapping of fields"))
                elif key == "addresses":
                    items = value_node
                else:
                    problems.append(Problem(name, _line(key_node), key,
                                            f"unknown top-level key; known: {', '.join(TOP_LEVEL)}"))
            if items is None and not problems:
                problems.append(Problem(name, _line(root), "addresses", "missing: list the addresses under "
                                                                        "`addresses:` (`addresses: []` for none)"))
        rows = []
        if items is not None and not (isinstance(items, yaml.ScalarNode) and items.tag == NULL_TAG):
            if not isinstance(items, yaml.SequenceNode):
                problems.append(Problem(name, _line(items), "addresses", "must be a list of mappings"))
            else:
                for number, item in enumerate(items.value, start=1):
                    if not isinstance(item, yaml.MappingNode):
                        problems.append(Problem(name, _line(item), "(entry)", "must be a mapping of fields", number))
                        continue
                    rows.append((number, _line(item), _fields(loader, item, name, number, problems)))
    finally:
        loader.dispose()
    return _build(rows, defaults, prune, name, problems)


def loads_csv(text, name="<csv>"):
    problems = []
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise DesiredStateError([Problem(name, 1, "(header)", f"the first line must name the columns: "
                                                              f"{', '.join(FIELDS)}")])
    columns = [h.strip() for h in header]
    for column in columns:
        if column and column not in FIELDS:
            problems.append(Problem(name, 1, column, f"unknown column; known: {', '.join(FIELDS)}"))
    if "page_id" not in columns:
        problems.append(Problem(name, 1, "page_id", "the page_id column is required"))
    rows, number = [], 0
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(name, line, "(row)", f"not valid CSV: {exc}"))
            break
        if not any(c.strip() for c in cells):
            continue
        number += 1
        if len(cells) > len(columns):
            problems.append(Problem(name, line, "(row)", f"{len(cells)} cells but {len(columns)} columns", number))
        values = {col: cell.strip() for col, cell in zip(columns, cells) if col in FIELDS and cell.strip()}
        if "webhook_filters" in values:  # a spreadsheet cell: "a;b", "a, b" or "a b"
            values["webhook_filters"] = [f for f in re.split(r"[;,\s]+", values["webhook_filters"]) if f]
        rows.append((number, line, values))
    return _build(rows, {}, False, name, problems)


# --- YAML helpers ----------------------------------------------------------------------------------------

def _line(node):
    return node.start_mark.line + 1 if node is not None else None


def _fields(loader, mapping, name, row, problems, prefix=""):
    """{field: value} of one YAML mapping; scalars keep their raw text, so YAML's type guesses do no harm."""
    values, lines = {}, {}
    for key_node, value_node in mapping.value:
        key, line = str(key_node.value), _line(key_node)
        if key not in FIELDS:
            problems.append(Problem(name, line, prefix + key, f"unknown field; known: {', '.join(FIELDS)}", row))
            continue
        if key in lines:
            problems.append(Problem(name, line, prefix + key, f"given twice (also on line {lines[key]})", row))
            continue
        lines[key] = line
        try:
            value = _scalar_value(loader, key, value_node)
        except ValueError as exc:
            problems.append(Problem(name, _line(value_node), prefix + key, str(exc), row))
            values.setdefault("__bad__", set()).add(key)
            continue
        if value is not None:
            values[key] = value
    values["__lines__"] = lines
    return values


def _scalar_value(loader, key, node):
    if isinstance(node, yaml.SequenceNode):
        if key != "webhook_filters":
            raise ValueError("must be a single value, not a list")
        return [_scalar_value(loader, key + "[]", item) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        raise ValueError("must be a single value, not a mapping")
    if node.tag == NULL_TAG and not node.style:
        return None
    raw = node.value
    if key == "page_id":
        if node.style:  # quoted: exactly as written
            return raw
        if node.tag == INT_TAG:
            digits = raw.replace("_", "")
            if not digits.isdigit() or (digits.startswith("0") and len(digits) > 1):
                raise ValueError(f"write page ids in quotes: page_id: \"{raw}\" — unquoted, YAML reads {raw} as a "
                                 "number and the leading zero (or the digits) would be lost")
            return digits
        if node.tag != STR_TAG:
            raise ValueError(f"write page ids in quotes (page_id: \"…\"): YAML reads {raw!r} as a "
                             f"{node.tag.rsplit(':', 1)[-1]}, not as digits")
        return raw
    if key == "retry_count":
        return loader.construct_object(node, deep=True) if not node.style else raw
    return raw  # text fields keep what was written (`yes`, `0123`, `1e3` stay strings)


# --- building and checking ---------------------------------------------------------------------------------

def _merge(defaults, values):
    """Row values over defaults; a default for the other integration's fields does not apply to this row."""
    merged = {k: v for k, v in values.items() if not k.startswith("__")}
    integration = str(merged.get("integration", defaults.get("integration", "studio"))).strip().lower()
    skip = WEBHOOK_ONLY if integration == "studio" else STUDIO_ONLY if integration == "webhook" else ()
    for key, value in defaults.items():
        if not key.startswith("__") and key not in merged and key not in skip:
            merged[key] = value
    return merged


class DesiredRow(AddressRules):
    """One row of a desired-state file, checked with MessengerAddress's rules, except that the Studio flow may be
    named (resolved against the account later) and nothing in a file can allow an http:// webhook."""

    HTTP_RULE: ClassVar[str] = "must use https://"

    @classmethod
    def check_flow(cls, flow):
        if not isinstance(flow, str) or not flow.strip():
            super().check_flow(flow)


def _spec_params(values):
    """MessengerAddress parameters, and the Studio flow as written (a SID or a name)."""
    params = {TO_SPEC.get(k, k): v for k, v in values.items()}
    flow = params.get("studio_flow_sid")
    return params, flow.strip() if isinstance(flow, str) else flow


def check_params(params, known_bad=()):
    """Every field error of one address at once: [(parameter, message)]; `known_bad` fields are already reported
    (their values could not even be read) and are not checked again."""
    given = {k: v for k, v in params.items() if k not in known_bad}
    return [(exc.parameter, f"{exc.rule} (got {exc.value!r})" if exc.value is not None else exc.rule)
            for exc in DesiredRow.problems(**given) if exc.parameter not in known_bad]


def _build(rows, defaults, prune, name, problems):
    entries, seen = [], {}
    default_lines = defaults.get("__lines__", {}) if defaults else {}
    for number, line, values in rows:
        lines, bad = values.get("__lines__", {}), values.get("__bad__", set())
        merged = _merge(defaults, values)
        if "page_id" not in merged and "page_id" not in bad:
            problems.append(Problem(name, line, "page_id", "missing: every address needs its Facebook Page id",
                                    number))
            continue
        params, flow = _spec_params(merged)
        for parameter, message in check_params(params, {TO_SPEC.get(k, k) for k in bad}):
            key = FROM_SPEC.get(parameter, parameter)
            from_default = key not in values and key in defaults
            if from_default:  # reported once, at the default's line
                problems.append(Problem(name, default_lines.get(key), "defaults." + key, message))
            else:
                problems.append(Problem(name, lines.get(key) or line, key, message, number))
        if "page_id" in bad:
            continue
        try:
            page_id = normalise_page_id(merged["page_id"])
        except ValidationError:
            continue  # reported above
        if page_id in seen:
            problems.append(Problem(name, lines.get("page_id", line), "page_id",
                                    f"duplicate page id {page_id} (first on line {seen[page_id]})", number))
            continue
        seen[page_id] = lines.get("page_id", line)
        params.pop("studio_flow_sid", None)
        params["page_id"] = page_id
        entries.append(Entry(page_id=page_id, params=params, line=line, row=number, studio_flow=flow or None))
    if problems:
        raise DesiredStateError(sorted(set(problems), key=lambda p: (p.line or 0, p.row or 0, p.field)))
    clean_defaults = {k: v for k, v in (defaults or {}).items() if not k.startswith("__")}
    return DesiredState(entries=entries, prune=prune, path=name, defaults=clean_defaults)


# --- resolution against the account ---------------------------------------------------------------------

def resolve(client, state, flows=None):
    """[(Entry, MessengerAddress)] with flow names resolved to SIDs; unknown flows are reported all at once."""
    flows = flows or FlowCache(client)
    resolved, problems = [], []
    for entry in state.entries:
        sid = None
        if entry.studio_flow is not None:
            try:
                sid = flows.resolve(entry.studio_flow, parameter="studio_flow")
            except ValidationError as exc:
                problems.append(Problem(state.path, entry.line, "studio_flow",
                                        f"{exc.rule} (got {entry.studio_flow!r})", entry.row))
                continue
        resolved.append((entry, entry.spec(sid)))
    if problems:
        raise DesiredStateError(problems)
    return resolved
