"""Twilio's own OpenAPI definitions, from npm `@twilio/cli-core@9.0.0`, cached under `.cache/twilio-openapi/`,
and the checks of captured sandbox exchanges against them.

The tarball is fetched with `npm pack` and checked against a pinned SHA-256 (and npm's SHA-1) before anything is
read from it, so the contract is always the same, reviewed one. Failing to obtain it is an error, never a skip.
"""
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.testing import MockRequest, MockResponse

PACKAGE = "@twilio/cli-core@9.0.0"
TARBALL = "twilio-cli-core-9.0.0.tgz"
SHA256 = "9fef3d7234dbce63ff3005a422f46fcf7e3486b369f852f61b3ede41097e5667"
SHA1 = "7ad5d007193d541cc2e73f1556737c092c21d798"  # npm's dist.shasum
SPEC_DIR = "package/src/services/twilio-api/"
SPEC_FILES = {"conversations": "twilio_conversations_v1.json", "studio": "twilio_studio_v2.json",
              "flex-api": "twilio_flex_v1.json", "api": "twilio_api_v2010.json",
              "taskrouter": "twilio_taskrouter_v1.json", "monitor": "twilio_monitor_v1.json"}
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "twilio-openapi"


class SpecUnavailable(RuntimeError):
    """Twilio's OpenAPI definitions could not be obtained or did not match the pinned checksum."""


def _digest(path, algorithm):
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def _verified(path):
    return path.is_file() and _digest(path, "sha256") == SHA256 and _digest(path, "sha1") == SHA1


def tarball(cache=CACHE):
    """The verified npm tarball, fetched with `npm pack` on first use (atomically, so parallel runs are safe)."""
    target = cache / TARBALL
    if _verified(target):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SpecUnavailable(f"npm is not installed: cannot fetch {PACKAGE} (Twilio's OpenAPI definitions)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        try:
            done = subprocess.run([npm, "pack", PACKAGE, "--ignore-scripts", "--pack-destination", tmp],
                                  capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpecUnavailable(f"`npm pack {PACKAGE}` did not complete: {exc}") from None
        fetched = Path(tmp) / TARBALL
        if done.returncode != 0 or not fetched.is_file():
            raise SpecUnavailable(f"`npm pack {PACKAGE}` failed (exit {done.returncode}): "
                                  f"{done.stderr.strip()[-500:]}")
        if not _verified(fetched):
            raise SpecUnavailable(f"{PACKAGE} checksum mismatch: sha256 {_digest(fetched, 'sha256')} != {SHA256}")
        os.replace(fetched, target)
    return target


def spec_path(product, cache=CACHE):
    """The extracted JSON definition of one product (extracted from the verified tarball on first use)."""
    name = SPEC_FILES[product]
    extracted = cache / "specs" / name
    verified = tarball(cache)  # checked on every run: a few milliseconds
    if not extracted.is_file():
        with tarfile.open(verified) as archive:
            member = archive.getmember(SPEC_DIR + name)
            data = archive.extractfile(member).read()
        extracted.parent.mkdir(parents=True, exist_ok=True)
        partial = extracted.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        os.replace(partial, extracted)
    return extracted


def host(product):
    return f"https://{product}.twilio.com"


def _rfc2822(value):
    """Twilio's API 2010 dates, e.g. `Tue, 04 Nov 2025 14:02:03 +0000`."""
    from email.utils import parsedate_to_datetime
    try:
        return parsedate_to_datetime(value).tzinfo is not None
    except (TypeError, ValueError):
        return False


FORMATS = {"date-time-rfc-2822": _rfc2822, "uri-map": lambda value: isinstance(value, dict),
           "uri-path": lambda value: isinstance(value, str) and value.startswith("/")}


def _paths_are_relative_in_2010(document):
    """API 2010's list envelopes (`uri`, `first_page_uri`, ...) are paths relative to the host, as Twilio's own
    examples show and its SDKs expect (they prepend the host), although the schema says `format: uri`."""
    for item in document["paths"].values():
        for operation in item.values():
            for response in (operation.get("responses") or {}).values() if isinstance(operation, dict) else ():
                for content in (response.get("content") or {}).values():
                    for name, field in (content.get("schema", {}).get("properties") or {}).items():
                        if name.endswith("uri") and field.get("format") == "uri":
                            field["format"] = "uri-path"


def _maps_are_open(node):
    """`format: uri-map` objects (`links`, `subresource_uris`) are maps whose keys Twilio does not list: let them
    through the `additionalProperties: false` default applied to every other object."""
    if isinstance(node, dict):
        if node.get("format") == "uri-map" and "properties" not in node:
            node.setdefault("additionalProperties", {"type": "string"})
        for value in node.values():
            _maps_are_open(value)
    elif isinstance(node, list):
        for value in node:
            _maps_are_open(value)


@functools.lru_cache(maxsize=None)
def openapi(product):
    """An openapi-core app for one product: per-path `servers` stripped and one top-level server (the product's
    host) so Twilio paths match; every documented response property required (Twilio always sends them all, null
    when unset) and, apart from uri-maps, no undocumented property allowed."""
    document = json.loads(spec_path(product).read_text())
    for item in document["paths"].values():
        item.pop("servers", None)
    document["servers"] = [{"url": host(product)}]
    if product == "api":
        _paths_are_relative_in_2010(document)
    _maps_are_open(document["components"])
    config = Config(extra_format_validators=FORMATS, response_properties_default_policy="required",
                    additional_properties_default_policy="forbid")
    return OpenAPI.from_dict(document, config=config)


def operation_id(exchange):
    """Twilio's operationId for a captured exchange, or None when Twilio's definition has no such operation."""
    product = exchange["product"]
    finder = APICallPathFinder(openapi(product).spec)
    try:
        found = finder.find(exchange["method"].lower(), host(product) + exchange["path"])
    except PathError:
        return None
    return found.operation["operationId"]


def _describe(error):
    """One line per failing field: `<json path>: <why>`; falls back to the error (and its cause) as text."""
    cause = error.__cause__ or error
    schema_errors = list(getattr(cause, "schema_errors", None) or [])
    if schema_errors:
        return [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in schema_errors]
    return [f"{error}" + (f" ({cause})" if cause is not error else "")]


def _request(exchange):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if exchange.get("auth_scheme"):
        headers["Authorization"] = f"{exchange['auth_scheme'].title()} credentials-withheld"
    form = urlencode(exchange["form"], doseq=True).encode() if exchange["form"] else None
    return MockRequest(host(exchange["product"]), exchange["method"], exchange["path"], args=exchange["query"],
                       headers=headers, data=form, content_type="application/x-www-form-urlencoded")


def contract_problems(exchange):
    """Everything in one exchange that disagrees with Twilio's OpenAPI: the request always, the response when 2xx
    (Twilio documents no error responses; `error_shape_problems` covers those). Empty when all is well."""
    app = openapi(exchange["product"])
    request = _request(exchange)
    problems = [f"request {line}" for err in app.request_validator.iter_errors(request) for line in _describe(err)]
    if 200 <= exchange["status"] < 300:
        content_type = exchange["headers"].get("Content-Type", "application/json").split(";")[0]
        response = MockResponse(exchange["body"], status_code=exchange["status"], headers=exchange["headers"],
                                content_type=content_type)
        problems += [f"response {line}" for err in app.response_validator.iter_errors(request, response)
                     for line in _describe(err)]
    return problems


ERROR_FIELDS = {"code": int, "message": str, "more_info": str, "status": int}


def error_shape_problems(exchange):
    """Twilio's error body is exactly {code: int, message: str, more_info: str, status: int}, status = HTTP status."""
    try:
        body = json.loads(exchange["body"])
    except ValueError:
        return [f"error body is not JSON: {exchange['body'][:80]!r}"]
    if not isinstance(body, dict):
        return [f"error body is not an object: {body!r}"]
    problems = [f"error body field {name!r} missing" for name in ERROR_FIELDS if name not in body]
    problems += [f"error body field {name!r} is not in Twilio's error shape" for name in set(body) - set(ERROR_FIELDS)]
    problems += [f"error body field {name!r} is {type(body[name]).__name__}, not {kind.__name__}"
                 for name, kind in ERROR_FIELDS.items() if name in body and type(body[name]) is not kind]
    if body.get("status") != exchange["status"]:
        problems.append(f"error body status {body.get('status')!r} != HTTP status {exchange['status']}")
    docs = f"https://www.twilio.com/docs/errors/{body.get('code')}"
    if isinstance(body.get("code"), int) and body.get("more_info") != docs:
        problems.append(f"error body more_info {body.get('more_info')!r} does not point at the code's docs page")
    return problems
