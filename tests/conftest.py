"""Shared fixtures: a fresh, seeded sandbox served over loopback, and real SDK clients pointed at it; and the
`slow` marker behind `make test-fast`.

A test is slow when it starts a kernel, a browser or any other process (or checks traffic against all of Twilio's
OpenAPI: `contract`). Slow tests are marked automatically: by their `notebook` / `browser` / `contract` marker or by
using a fixture that starts one (SLOW_FIXTURES); a test that starts a process itself says `@pytest.mark.slow`.
So that a slow test nobody marked cannot hide in the fast loop, `make test-fast` (FLEXOPS_TEST_FAST=1) makes every
process start fail the test, saying how to mark it.
"""
import os
import subprocess

import pytest

SLOW_MARKERS = ("notebook", "browser", "contract", "slow")  # contract: loads and checks all of Twilio's OpenAPI
SLOW_FIXTURES = {"run", "chromium", "jupyter_lab", "browser", "served"}  # papermill runner; browser; `sandbox serve`
FAST = os.environ.get("FLEXOPS_TEST_FAST") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts a kernel, a browser or a process (left out by make test-fast)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(m) for m in SLOW_MARKERS) or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=FAST)
def no_process_in_fast_tests(monkeypatch, request):
    """Under `make test-fast`: starting a process fails the test, saying how to mark it."""
    def refuse(*args, **kwargs):
        pytest.fail(f"{request.node.nodeid} starts a process ({args[0] if args else kwargs.get('args')!r}): mark it "
                    "@pytest.mark.slow (or use a fixture in SLOW_FIXTURES) so `make test-fast` leaves it out",
                    pytrace=False)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(autouse=True)
def state_and_locks_in_tmp(tmp_path, monkeypatch):
    """verify's state store and the account locks (default under ~/.flexops) live in the test's own folder: no test
    writes into the home directory, and none sees another's conversations or locks (kernels and processes inherit
    the environment). Tests that need a particular folder set their own."""
    monkeypatch.setenv("FLEXOPS_STATE_DIR", os.fspath(tmp_path / "flexops-state"))
    monkeypatch.setenv("FLEXOPS_LOCK_DIR", os.fspath(tmp_path / "flexops-locks"))


from flexops.client import connect, sandbox_target
from flexops.sandbox.control import SandboxControl
from flexops.sandbox.server import SandboxServer


class RunningSandbox:
    def __init__(self, server, demo):
        self.server = server
        self.url = server.url
        self.store = server.store
        self.app = server.app
        self.demo = demo  # credentials and SIDs of the seeded demo account
        self.control = SandboxControl(server.url)

    def client(self, account_sid=None):
        return connect(sandbox_target(url=self.url, account_sid=account_sid))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A freshly seeded sandbox; FLEXOPS_SANDBOX_URL and FLEXOPS_SANDBOX_TOKEN point at it so notebook kernels (other
    processes, which cannot ask this one for the control token) use it too."""
    server = SandboxServer(tmp_path / "sandbox.db").start()
    try:
        demo = SandboxControl(server.url).seed()
        monkeypatch.setenv("FLEXOPS_SANDBOX_URL", server.url)
        monkeypatch.setenv("FLEXOPS_SANDBOX_TOKEN", server.control_token)
        monkeypatch.setenv("FLEXOPS_TARGET", "sandbox")
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET",
                     "TWILIO_PROFILE", "TWILIO_REGION", "TWILIO_EDGE", "FLEXOPS_SANDBOX_ACCOUNT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TWILIO_CLI_CONFIG", os.fspath(tmp_path / "no-twilio-cli.json"))
        yield RunningSandbox(server, demo)
    finally:
        server.stop()


@pytest.fixture
def client(sandbox):
    return sandbox.client()
