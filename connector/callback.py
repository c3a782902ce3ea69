"""A one-shot loopback HTTP server that receives the OAuth redirect for `ccm connect`.

It listens on the host and port of the configured redirect URI, answers the browser with a short page, and
hands the callback's query (code, state, realmId, or error) to the waiting command.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class CallbackError(RuntimeError):
    """The redirect did not come, or came wrong; the message is one line."""


@dataclass
class Receiver:
    """Waits for one GET on `path`; `wait()` returns its query parameters."""

    host: str
    port: int
    path: str
    _got: dict[str, str] = field(default_factory=dict)
    _done: threading.Event = field(default_factory=threading.Event)
    _server: HTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != receiver.path:
                    self.send_error(404)
                    return
                receiver._got = {k: v[0] for k, v in parse_qs(url.query).items()}
                ok = "error" not in receiver._got
                body = (b"ccm: connected. You can close this window." if ok
                        else b"ccm: access was not granted. You can close this window.")  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                receiver._done.set()

            def log_message(self, fmt: str, *args: Any) -> None:  # the query holds a code: never log it
                return

        try:
            self._server = HTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise CallbackError(
                f"cannot listen on {self.host}:{self.port} for the redirect: {exc.strerror}"
            ) from None
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def wait(self, timeout: float) -> dict[str, str]:
        try:
            if not self._done.wait(timeout):
                raise CallbackError(f"no redirect came back within {timeout:.0f}s; nothing was stored")
            return dict(self._got)
        finally:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()


def receiver_for(redirect_uri: str) -> Receiver:
    """A receiver listening where `redirect_uri` points (loopback http only)."""
    url = urlparse(redirect_uri)
    if url.scheme != "http" or url.hostname not in ("localhost", "127.0.0.1", "::1") or not url.port:
        raise CallbackError(f"redirect_uri must be a loopback http URL with a port, got {redirect_uri!r}")
    return Receiver(url.hostname, url.port, url.path or "/")
