"""Reconciliation: allocations, discrepancies, positions, aging, DSO/CEI, payment behaviour and forecast.

Ledger-neutral and pure: `reconcile(snapshot, as_of)` computes everything from one tenant's canonical
records (`load_snapshot(store, tenant_id)` reads them), the same whatever order the records come in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from connector.reconcile.aging import DEFAULT_BOUNDS, Aging, AgingRow, BoundsError, aging
from connector.reconcile.basis import Basis
from connector.reconcile.behaviour import Behaviour, Risk, Trend, behaviours
from connector.reconcile.discrepancies import Discrepancy, Kind, find_discrepancies
from connector.reconcile.forecast import Forecast, Week, forecast
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger, InvoiceState, allocate, latest_date, live_allocations
from connector.reconcile.load import load_snapshot, read_snapshot
from connector.reconcile.metrics import cei, dso
from connector.reconcile.positions import Balance, Position, positions
from connector.reconcile.snapshot import Snapshot, without_gc

__all__ = [
    "DEFAULT_BOUNDS", "Aging", "AgingRow", "AllocationLedger", "Balance", "Basis", "Behaviour", "BoundsError",
    "Discrepancy", "Forecast", "InvoiceState", "Kind", "Position", "Rates", "Reconciliation", "Risk",
    "Snapshot", "Trend", "Week", "aging", "allocate", "behaviours", "cei", "dso", "find_discrepancies",
    "forecast", "live_allocations", "load_snapshot", "positions", "read_snapshot", "reconcile",
]  # fmt: skip


@dataclass(frozen=True)
class Reconciliation:
    """Everything computed for one tenant as of one date."""

    as_of: date
    snapshot: Snapshot
    ledger: AllocationLedger  # as of `as_of`
    discrepancies: tuple[Discrepancy, ...]  # as the ledger stands now
    positions: Mapping[str, Position]
    aging: Aging

    @property
    def invoices(self) -> Mapping[str, InvoiceState]:
        return self.ledger.invoices


@without_gc
def reconcile(snapshot: Snapshot, as_of: date, bounds: Sequence[int] = DEFAULT_BOUNDS) -> Reconciliation:
    """Allocations, discrepancies, positions and aging of `snapshot` as of `as_of`."""
    rates = Rates.from_snapshot(snapshot)
    ledger = allocate(snapshot, as_of)
    latest = latest_date(snapshot)
    # As of a date on or after every record's, the ledger as of then is the ledger now: build it once.
    now = ledger if latest is None or latest <= as_of else allocate(snapshot)
    return Reconciliation(
        as_of, snapshot, ledger,
        find_discrepancies(snapshot, now, rates),
        positions(snapshot, ledger, rates, as_of),
        aging(snapshot, ledger, rates, as_of, bounds),
    )  # fmt: skip
