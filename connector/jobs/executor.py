"""How `ccm serve`, the webhooks and the CLI ask for background work, whichever executor runs it.

The work itself is recorded in ccm's tables first (a `nights` row, `sync_requests` rows, outbox actions):
an executor only makes sure something runs it soon. Asking twice is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Protocol


class TaskRunner(Protocol):
    """What runs background work. `at` is an instant on the server's clock (simulated or real)."""

    name: str

    def defer_night(self, tenant_id: str, night: date, at: datetime | None = None) -> bool:
        """Run the firm's night of local date `night` (its `nights` row says whether it still must)."""
        ...

    def request_sync(self, tenant_ids: Iterable[str], delay: float | None = None) -> None:
        """The firms have new `sync_requests` rows: sync them after the debounce time (or `delay` s)."""
        ...

    def sends_due(self) -> None:
        """Outbox actions may have come due: look for them soon."""
        ...

    def defer_send(self, tenant_id: str) -> None:
        """Send the firm's due outbox actions."""
        ...

    def depths(self) -> dict[str, int]:
        """What waits and what runs, for /metrics and /healthz."""
        ...

    def close(self) -> None: ...


class InProcess:
    """SQLite (and any single process): the work waits in ccm's tables and the in-process dispatcher
    (connector/serve/dispatch.py) looks at them whenever woken and every tick."""

    name = "in-process"

    def __init__(self, wake: Callable[[], None], depths: Callable[[], dict[str, int]]) -> None:
        self._wake = wake
        self._depths = depths

    def defer_night(self, tenant_id: str, night: date, at: datetime | None = None) -> bool:
        self._wake()
        return True

    def request_sync(self, tenant_ids: Iterable[str], delay: float | None = None) -> None:
        self._wake()

    def sends_due(self) -> None:
        self._wake()

    def defer_send(self, tenant_id: str) -> None:
        self._wake()

    def depths(self) -> dict[str, int]:
        return self._depths()

    def close(self) -> None:
        return None
