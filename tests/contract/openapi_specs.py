"""Twilio's own OpenAPI definitions, from npm `@twilio/cli-core@9.0.0`, cached under `.cache/twilio-openapi/`.

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

from openapi_core import Config, OpenAPI

PACKAGE = "@twilio/cli-core@9.0.0"
TARBALL = "twilio-cli-core-9.0.0.tgz"
SHA256 = "9fef3d7234dbce63ff3005a422f46fcf7e3486b369f852f61b3ede41097e5667"
SHA1 = "7ad5d007193d541cc2e73f1556737c092c21d798"  # npm's dist.shasum
SPEC_DIR = "package/src/services/twilio-api/"
SPEC_FILES = {"conversations": "twilio_conversations_v1.json", "studio": "twilio_studio_v2.json",
              "flex-api": "twilio_flex_v1.json", "api": "twilio_api_v2010.json"}
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
        done = subprocess.run([npm, "pack", PACKAGE, "--ignore-scripts", "--pack-destination", tmp],
                              capture_output=True, text=True, timeout=300)
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
    if not extracted.is_file():
        with tarfile.open(tarball(cache)) as archive:
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


FORMATS = {"date-time-rfc-2822": _rfc2822, "uri-map": lambda value: isinstance(value, dict)}


@functools.lru_cache(maxsize=None)
def openapi(product):
    """An openapi-core app for a product: per-path `servers` stripped, one top-level server (the product host),
    every documented response property required (Twilio always sends them all, null when unset) and no
    undocumented ones allowed."""
    document = json.loads(spec_path(product).read_text())
    for item in document["paths"].values():
        item.pop("servers", None)
    document["servers"] = [{"url": host(product)}]
    config = Config(extra_format_validators=FORMATS, response_properties_default_policy="required",
                    additional_properties_default_policy="forbid")
    return OpenAPI.from_dict(document, config=config)
