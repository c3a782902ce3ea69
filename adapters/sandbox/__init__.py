"""Shared machinery of the local ledger sandboxes: generator, clock, faults, limits, server, webhooks.

Each ledger's sandbox (adapters/xero/sandbox/, adapters/quickbooks/sandbox/) builds a Starlette app on these
and exposes `start(...)` and `run_forever(...)`.
"""

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.faults import Faults
from adapters.sandbox.handle import SandboxHandle
from adapters.sandbox.limiter import Verdict, Window, WindowLimiter
from adapters.sandbox.server import Running, serve
from adapters.sandbox.webhooks import sign, sign_and_post

__all__ = [
    "Faults",
    "Running",
    "SandboxClock",
    "SandboxHandle",
    "Verdict",
    "Window",
    "WindowLimiter",
    "serve",
    "sign",
    "sign_and_post",
]
