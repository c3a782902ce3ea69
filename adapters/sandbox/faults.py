"""Fault injection for the sandboxes: latency, 500/503 answers and dropped connections, changeable live."""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class Faults:
    """What goes wrong, and how often. Change the fields while the sandbox runs; draws are seeded."""

    latency_s: float = 0.0
    error_rate: float = 0.0  # share of answers replaced by 500/503
    drop_rate: float = 0.0  # share of requests whose connection is closed without an answer
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - reproducible faults, not secrets

    def draw_error(self) -> int | None:
        """500 or 503 when this answer must fail, else None."""
        if self.error_rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self.error_rate:
                return None
            return self._rng.choice((500, 503))

    def draw_drop(self) -> bool:
        """True when this request's connection must be closed without an answer."""
        if self.drop_rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < self.drop_rate

    def clear(self) -> None:
        """No more faults."""
        self.latency_s = self.error_rate = self.drop_rate = 0.0


class FaultMiddleware:
    """ASGI middleware adding latency and replacing answers with 500/503 as `faults` says."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.faults.latency_s > 0:
            await asyncio.sleep(self.faults.latency_s)
        status = self.faults.draw_error()
        if status is None:
            await self.app(scope, receive, send)
            return
        body = b"Service Unavailable" if status == 503 else b"Internal Server Error"
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
