"""Contract fixtures: Twilio's OpenAPI definitions (a failure, never a skip, when unobtainable) and the sandbox's
traffic as seen by the server."""
import pytest

from .openapi_specs import SPEC_FILES, SpecUnavailable, openapi


@pytest.fixture(scope="session")
def twilio_openapi():
    try:
        return {product: openapi(product) for product in SPEC_FILES}
    except SpecUnavailable as exc:
        pytest.fail(f"Twilio's OpenAPI definitions are unavailable, so the contract cannot be checked: {exc}")


@pytest.fixture
def traffic(sandbox, twilio_openapi):
    """Every Twilio exchange the sandbox answers during the test, in order."""
    seen = []
    sandbox.app.observers.append(seen.append)
    yield seen
    sandbox.app.observers.remove(seen.append)
