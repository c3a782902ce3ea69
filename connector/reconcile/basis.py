"""What dunning and credit control read from reconciliation, computed once per tenant and date.

`reconcile()` also builds aging and discrepancies; the nightly rules need only the dated allocation ledger,
the rates, positions and payment behaviour, so they share one Basis instead of reconciling again each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from connector.reconcile.behaviour import Behaviour, behaviours
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger, allocate
from connector.reconcile.positions import Position, positions
from connector.reconcile.snapshot import Snapshot, without_gc


@dataclass(frozen=True)
class Basis:
    snapshot: Snapshot
    today: date
    ledger: AllocationLedger
    rates: Rates
    positions: Mapping[str, Position]
    behaviours: Mapping[str, Behaviour]

    @classmethod
    @without_gc
    def of(cls, snapshot: Snapshot, today: date) -> Basis:
        rates = Rates.from_snapshot(snapshot)
        ledger = allocate(snapshot, today)
        return cls(
            snapshot, today, ledger, rates, positions(snapshot, ledger, rates, today),
            behaviours(snapshot, ledger, rates, today),
        )  # fmt: skip
