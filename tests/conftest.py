"""Shared fixtures: a fresh, seeded sandbox served over loopback, and real SDK clients pointed at it."""
import os

import pytest

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
                     "TWILIO_PROFILE", "TWILIO_REGION", "TWILIO_EDGE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TWILIO_CLI_CONFIG", os.fspath(tmp_path / "no-twilio-cli.json"))
        yield RunningSandbox(server, demo)
    finally:
        server.stop()


@pytest.fixture
def client(sandbox):
    return sandbox.client()
