"""What every part of one `ccm serve` process shares: settings, store, clock, metrics, the stop signal.

(Not `connector/wiring.py`, which builds one tenant's ledger and mapping.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connector.clock import Clock
from connector.config import Settings
from connector.ledger import Ledger
from connector.model import Tenant
from connector.outbox import Mode
from connector.serve.metrics import Metrics
from connector.store import Store
from connector.wiring import ledger_for

Report = Callable[[str], None]


def _quiet(line: str) -> None:
    return None


@dataclass
class Runtime:
    """One server's shared state. `stopping` is set on SIGTERM: work stops at its next safe point."""

    settings: Settings
    store: Store
    clock: Clock
    server_id: str
    metrics: Metrics = field(default_factory=Metrics)
    stopping: threading.Event = field(default_factory=threading.Event)
    report: Report = _quiet  # one line per finished job, for the operator's console
    pages: bool = True  # it serves the web pages, so a finished night warms their cache (`ccm worker`: no)

    @property
    def mode(self) -> Mode:
        return Mode.APPROVE if self.settings.serve.mode == "approve" else Mode.AUTO

    def lent_clock(self) -> Clock | None:
        """The clock adapters run on: the simulated one, when there is one (None: real time)."""
        return self.clock if self.clock.simulated else None

    def ledger(self, tenant: Tenant) -> Ledger:
        return ledger_for(self.settings, self.store, tenant, self.lent_clock())

    def should_stop(self) -> bool:
        return self.stopping.is_set()

    @staticmethod
    def real_now() -> datetime:
        """Real UTC time: leases and debouncing are about processes and bursts, not the schedule."""
        return datetime.now(UTC)
