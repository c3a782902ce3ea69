"""What every ledger sandbox's `start()` returns and does: one handle base, the start-up and serve steps.

A ledger's sandbox (adapters/xero/sandbox/, adapters/quickbooks/sandbox/) builds its parts and its Starlette
app; the steps around them are the same for every ledger and live here: secrets registered before anything
can log them, the clock (real time unless given), serving over HTTPS (`adapters/sandbox/server.py`), and,
for `ccm sandbox <ledger>`, printing where it serves and stopping cleanly on Ctrl-C or SIGTERM.

Invariants:
- A handle's address, CA, clock and faults are its `Running` server's: one place to read them from.
- `stop()` stops what the ledger added first (its `stop` calls `super().stop()` last), then the server,
  which removes the CA files.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel
from starlette.applications import Starlette

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.faults import Faults
from adapters.sandbox.server import Running, serve
from connector.redact import register_secret


@dataclass
class SandboxHandle:
    """A running sandbox: its server, and the OAuth client it accepts."""

    running: Running
    client_id: str
    client_secret: str

    @property
    def base_url(self) -> str:
        """ "https://127.0.0.1:PORT": the one base URL of every endpoint the sandbox serves."""
        return self.running.base_url

    @property
    def ca_path(self) -> Path:
        """The PEM of the CA this sandbox's certificate comes from: trust it for the sandbox only."""
        return self.running.ca_path

    @property
    def clock(self) -> SandboxClock:
        """The sandbox clock (token lives, limits' windows, change times)."""
        return self.running.clock

    @property
    def faults(self) -> Faults:
        """Fault injection settings, changeable while running."""
        return self.running.faults

    def banner(self) -> list[str]:
        """What `ccm sandbox <ledger>` prints once it serves: where, and the client to use."""
        return [f"sandbox: {self.base_url}  CA: {self.ca_path}", f"client_id: {self.client_id}"]

    def stop(self) -> None:
        """Stop the server and remove its CA files."""
        self.running.stop()


def settings_env(section: str, settings: BaseModel) -> dict[str, str]:
    """`settings` as ccm reads them from the environment: CCM_<SECTION>__<KEY> for each key that was set.

    For a `ccm` child process (tests, benches) pointed at a sandbox: `handle.env()`.
    """
    out: dict[str, str] = {}
    for key in sorted(settings.model_fields_set):
        value = getattr(settings, key)
        if value is not None:
            shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
            out[f"CCM_{section.upper()}__{key.upper()}"] = shown
    return out


def prepare(clock: SandboxClock | None, *secrets: str) -> SandboxClock:
    """The first step of every `start()`: register `secrets` (never logged) and return the clock to run on
    (`clock`, or real time)."""
    for secret in secrets:
        register_secret(secret)
    return clock or SandboxClock()


def launch(app: Starlette, clock: SandboxClock, faults: Faults | None, host: str, port: int) -> Running:
    """Serve `app` over HTTPS on `host:port` (0: a free port) with `faults` (none by default)."""
    return serve(app, clock=clock, faults=faults or Faults(), host=host, port=port)


def run_until_interrupted(start: Callable[[], SandboxHandle]) -> None:
    """Start a sandbox, print its `banner()` (where it serves, its client), serve until Ctrl-C or SIGTERM,
    then stop it cleanly (its CA files removed)."""
    handle = start()

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, terminate)  # `kill` stops it as cleanly as Ctrl-C
    try:  # the lines tell the caller it may stop us: an interrupt from here on is a clean stop
        for line in handle.banner():
            print(line, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
