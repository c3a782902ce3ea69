"""Serve a sandbox's Starlette app over HTTPS on loopback: uvicorn in a thread, a trustme CA per sandbox.

The CA is made at start-up and written to a temporary file (`Running.ca_path`); clients trust it for this
sandbox only (requests' `verify=`, xero-python's `Configuration.ssl_ca_cert`), so nobody has to switch off TLS
checks or set the OAuth libraries' insecure-transport variables.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.faults import FaultMiddleware, Faults

_START_TIMEOUT_S = 10.0


@dataclass
class Running:
    """A sandbox serving on a free loopback port over HTTPS."""

    base_url: str
    ca_path: Path
    clock: SandboxClock
    faults: Faults
    app: Any
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _tmp: tempfile.TemporaryDirectory[str] = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def stop(self) -> None:
        """Stop serving, wait for the thread, and remove the CA and certificate files."""
        self._server.should_exit = True
        self._thread.join(timeout=0.5)
        if self._thread.is_alive():  # a client still holds a keep-alive or half-open TLS connection
            self._server.force_exit = True
            self._thread.join(timeout=_START_TIMEOUT_S)
        self._tmp.cleanup()


def _dropping_protocol(faults: Faults) -> type[H11Protocol]:
    """An HTTP protocol that closes the connection without an answer when `faults` draws a drop."""

    class Dropping(H11Protocol):
        def data_received(self, data: bytes) -> None:
            if faults.draw_drop():
                self.transport.abort()
                return
            super().data_received(data)

    return Dropping


def _tls_files(host: str) -> tuple[tempfile.TemporaryDirectory[str], Path, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert(host, "localhost", "127.0.0.1")
    tmp = tempfile.TemporaryDirectory(prefix="ccm-sandbox-")
    root = Path(tmp.name)
    ca_path, cert_path, key_path = root / "ca.pem", root / "cert.pem", root / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.private_key_pem.write_to_path(str(key_path))
    for i, blob in enumerate(cert.cert_chain_pems):
        blob.write_to_path(str(cert_path), append=i > 0)
    return tmp, ca_path, cert_path, key_path


def serve(app: Starlette, *, clock: SandboxClock, faults: Faults, host: str = "127.0.0.1",
          port: int = 0) -> Running:  # fmt: skip
    """Serve `app` over HTTPS in a background thread; return once it accepts connections.

    Args:
        app: the sandbox's Starlette app (wrapped here in the fault-injection middleware).
        clock: the sandbox clock, handed back on the Running handle.
        faults: fault settings, changeable while serving.
        host: the address to bind (loopback by default).
        port: the port, or 0 for a free one.

    Returns:
        The Running handle; call `stop()` when done.

    Raises:
        RuntimeError: the server did not start within 10 seconds.
    """
    tmp, ca_path, cert_path, key_path = _tls_files(host)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it; without it Nagle holds the TLS body for a delayed ACK (40 ms a call).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        FaultMiddleware(app, faults), http=_dropping_protocol(faults), ssl_certfile=str(cert_path),
        ssl_keyfile=str(key_path), log_level="warning", access_log=False, lifespan="off", ws="none",
        timeout_keep_alive=30, timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name=f"sandbox-{sock.getsockname()[1]}", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            tmp.cleanup()
            raise RuntimeError(f"sandbox server on {host}:{sock.getsockname()[1]} did not start")
        time.sleep(0.01)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return Running(f"https://{shown}:{bound}", ca_path, clock, faults, app, server, thread, tmp)
