"""Fault injection for the sandboxes: latency, 500/503 answers, 429 storms, dropped connections, lost answers.

Latency, errors, 429s and drops fire before the ledger sees the request: nothing happened (drops are drawn
by the server's protocol, for every request). `only` narrows the errors and 429s to requests whose
"METHOD /path" it matches, `latency_only` the latency (a slow token endpoint alone, say). A 429 carries
`throttle_headers` (Retry-After) and `throttle_body`, which a test sets to what its ledger sends
(X-Rate-Limit-Problem for Xero, QuickBooks' XML fault body).

The apply-then-drop fault (`apply_drop_*`) fires after: the ledger applies the request (the handler runs and
commits its effect), then the client loses the answer, its connection closed or a 503 in the place of the
real answer, as when a read timeout or a proxy's 5xx follows a write the ledger did. It hits writes (POST,
PUT, PATCH, DELETE) unless `apply_drop_all_methods` is set. Every field may be changed while the sandbox
runs; draws are seeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import threading
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOST_AS = ("drop", "503", "either")
_DISCONNECT_WAIT_S = 1.0


@dataclass
class Faults:
    """What goes wrong, and how often. Change the fields while the sandbox runs; draws are seeded."""

    latency_s: float = 0.0
    error_rate: float = 0.0  # share of answers replaced by 500/503
    drop_rate: float = 0.0  # share of requests whose connection is closed without an answer
    seed: int = 0
    only: str = ""  # a regex searched in "METHOD /path": only matching requests get errors and 429s
    latency_only: str = ""  # the same for the latency
    error_next: int = 0  # the next N matching answers are 500/503, whatever the rate (a burst)
    throttle_rate: float = 0.0  # share of answers replaced by a 429
    throttle_next: int = 0  # the next N matching requests are answered 429, whatever the rate (a storm)
    throttle_headers: dict[str, str] = field(default_factory=lambda: {"Retry-After": "1"})
    throttle_body: str = "Rate limit exceeded"
    throttle_type: str = "text/plain"
    # "METHOD /path" of every request slowed, or answered 429 before the ledger saw it, in order
    slowed: list[str] = field(default_factory=list, compare=False)
    throttled: list[str] = field(default_factory=list, compare=False)
    drops: int = field(default=0, compare=False)  # connections closed by `drop_rate`
    apply_drop_rate: float = 0.0  # share of requests the ledger applies and whose answer is then lost
    apply_drop_next: int = 0  # the next N eligible requests lose their answer after it, whatever the rate
    apply_drop_skip: int = 0  # eligible requests let through untouched before `apply_drop_next` applies
    apply_drop_all_methods: bool = False  # False: writes only (POST, PUT, PATCH, DELETE); True: reads too
    apply_drop_only: str = ""  # a regex searched in "METHOD /path": only matching requests are eligible
    apply_drop_as: str = "either"  # "drop": the connection is closed; "503": a 503 replaces the answer
    # "METHOD /path" of every request applied whose answer was then lost, in order
    lost: list[str] = field(default_factory=list, compare=False)
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - reproducible faults, not secrets

    def matches(self, method: str, path: str, *, latency: bool = False) -> bool:
        """Whether the request is one the faults (or, with `latency`, the latency) are narrowed to."""
        pattern = self.latency_only if latency else self.only
        return not pattern or re.search(pattern, f"{method.upper()} {path}") is not None

    def draw_throttle(self, method: str, path: str) -> bool:
        """True when this request must be answered 429 (a storm: `throttle_next`, or at `throttle_rate`)."""
        if (self.throttle_rate <= 0 and self.throttle_next <= 0) or not self.matches(method, path):
            return False
        with self._lock:
            if self.throttle_next > 0:
                self.throttle_next -= 1
            elif self._rng.random() >= self.throttle_rate:
                return False
            self.throttled.append(f"{method.upper()} {path}")
            return True

    def draw_error(self) -> int | None:
        """500 or 503 when this answer must fail, else None."""
        if self.error_rate <= 0 and self.error_next <= 0:
            return None
        with self._lock:
            if self.error_next > 0:
                self.error_next -= 1
                return 503 if self.error_next % 2 == 0 else 500
            if self._rng.random() >= self.error_rate:
                return None
            return self._rng.choice((500, 503))

    def draw_drop(self) -> bool:
        """True when this request's connection must be closed without an answer."""
        if self.drop_rate <= 0:
            return False
        with self._lock:
            drop = self._rng.random() < self.drop_rate
            self.drops += drop
            return drop

    def draw_apply_drop(self, method: str, path: str) -> str | None:
        """How this request's answer is lost after the ledger applies it ("drop" or "503"), or None.

        Raises:
            ValueError: `apply_drop_as` is not "drop", "503" or "either".
        """
        if self.apply_drop_rate <= 0 and self.apply_drop_next <= 0:
            return None
        method = method.upper()
        if not self.apply_drop_all_methods and method not in WRITES:
            return None
        if self.apply_drop_only and not re.search(self.apply_drop_only, f"{method} {path}"):
            return None
        if self.apply_drop_as not in LOST_AS:
            raise ValueError(f"apply_drop_as must be one of {LOST_AS}, not {self.apply_drop_as!r}")
        with self._lock:
            if self.apply_drop_next > 0 and self.apply_drop_skip > 0:
                self.apply_drop_skip -= 1
                return None
            if self.apply_drop_next > 0:
                self.apply_drop_next -= 1
            elif self._rng.random() >= self.apply_drop_rate:
                return None
            how = self.apply_drop_as if self.apply_drop_as != "either" else self._rng.choice(("drop", "503"))
            self.lost.append(f"{method} {path}")
            return how

    def clear(self) -> None:
        """No more faults."""
        self.latency_s = self.error_rate = self.drop_rate = self.apply_drop_rate = self.throttle_rate = 0.0
        self.apply_drop_next = self.apply_drop_skip = self.throttle_next = self.error_next = 0
        self.only = self.latency_only = ""


class FaultMiddleware:
    """ASGI middleware adding latency, replacing answers with 500/503 and losing applied requests' answers."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults, method, path = self.faults, scope["method"], scope["path"]
        if faults.latency_s > 0 and faults.matches(method, path, latency=True):
            faults.slowed.append(f"{method} {path}")
            await asyncio.sleep(faults.latency_s)
        if faults.matches(method, path):
            if faults.draw_throttle(method, path):
                await _throttled(send, faults)
                return
            status = faults.draw_error()
            if status is not None:
                await _answer(send, status)
                return
        lost = faults.draw_apply_drop(method, path)
        if lost is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _nowhere)  # the ledger applies the request; its answer goes nowhere
        if lost == "drop" and await _abort(send, receive):
            return
        await _answer(send, 503)


async def _nowhere(message: Message) -> None:
    del message


async def _answer(send: Send, status: int) -> None:
    body = b"Service Unavailable" if status == 503 else b"Internal Server Error"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _throttled(send: Send, faults: Faults) -> None:
    body = faults.throttle_body.encode()
    headers = [(k.lower().encode(), v.encode()) for k, v in faults.throttle_headers.items()]
    headers.append((b"content-type", faults.throttle_type.encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _abort(send: Send, receive: Receive) -> bool:
    """Close the connection without an answer; False when the server does not expose it (answer 503 then).

    uvicorn's `send` is a method of the request's cycle, which holds the connection's transport.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not callable(getattr(transport, "abort", None)):
        return False
    transport.abort()
    with contextlib.suppress(TimeoutError):  # once the server has seen the disconnect it expects no answer
        await asyncio.wait_for(receive(), _DISCONNECT_WAIT_S)
    return True
