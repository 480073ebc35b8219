"""The parameters of a notebook run, checked against the notebook before anything starts.

Unknown names and credential-like names are refused; text values are typed by the notebook's declared default
(`papermill.inspect_notebook`), so `-p page_id 0012` stays the string "0012" when the default is a string (papermill
alone would pass the integer 12). A ValidationError here is a bad-parameters run (exit 2).
"""
import ast
import os
from pathlib import Path

from . import audit, settings
from .exceptions import ValidationError


def declared_parameters(notebook):
    """{name: {default, inferred_type_name, help}} as papermill reads the notebook's `parameters` cell."""
    import papermill

    return papermill.inspect_notebook(os.fspath(notebook))


def declared_type(spec):
    """The Python type a parameter is declared with: its annotation, else its default's type (None if unknown)."""
    hint = (spec.get("inferred_type_name") or "None").replace("Optional[", "").rstrip("]")
    if hint in ("str", "int", "float", "bool", "list", "dict"):
        return {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}[hint]
    try:
        default = ast.literal_eval(spec.get("default") or "None")
    except (ValueError, SyntaxError):
        return None
    return None if default is None else type(default)


def _typed(text):
    """papermill's `-p` typing: True/False/None, then int, then float, else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def coerce(name, value, spec):
    """A `-p`-style value typed for the notebook: text stays text where the notebook declares a string."""
    kind = declared_type(spec)
    if kind is str:
        return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value
    return _typed(value) if isinstance(value, str) else value


def load_parameters_file(path):
    """A YAML/JSON mapping of parameters. Scalars come back as their text, so they are typed like `-p` values."""
    import yaml

    text = Path(path).read_text()
    try:
        typed = yaml.safe_load(text) or {}
        raw = yaml.load(text, Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as exc:
        raise ValidationError("parameters_file", f"{path} is not valid YAML: {exc}") from None
    if not isinstance(typed, dict):
        raise ValidationError("parameters_file", f"{path} must hold a mapping of parameter names to values")
    return {str(k): None if v is None else raw.get(str(k), v) if isinstance(raw.get(str(k)), str) else v
            for k, v in typed.items()}


def prepare_parameters(notebook, parameters=None, raw_parameters=None, target=None, declared=None):
    """Validate names against the notebook and type the values. Raises ValidationError (-> exit 2)."""
    parameters, raw_parameters = dict(parameters or {}), dict(raw_parameters or {})
    given = {**parameters, **raw_parameters}
    for name in given:
        if audit.is_secret_key(name):
            raise ValidationError(name, "credentials are never notebook parameters: set TWILIO_AUTH_TOKEN or "
                                        "TWILIO_API_KEY/TWILIO_API_SECRET in the environment, or use a twilio-cli "
                                        "profile")
    declared = declared_parameters(notebook) if declared is None else declared
    for name in given:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ValidationError(name, f"is not a parameter of {Path(notebook).name} (it declares: {known})")
    final = {name: coerce(name, value, declared[name]) for name, value in parameters.items()}
    final.update({name: str(value) for name, value in raw_parameters.items()})
    if target is not None:
        chosen = settings.choose_target(target)
        if "target" in final and str(final["target"]).strip().lower() != chosen:
            raise ValidationError("target", f"-p target {final['target']!r} conflicts with --target {chosen!r}")
        if "target" in declared:
            final["target"] = chosen
    return final
