"""A local, stateful Twilio: the real SDK talks to it over loopback HTTP (see DESIGN.md, "The sandbox")."""
from .app import SandboxApp
from .server import SandboxServer
from .store import Store

__all__ = ["SandboxApp", "SandboxServer", "Store"]
