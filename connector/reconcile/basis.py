"""What dunning and credit control read from reconciliation, computed once per tenant and date.

`reconcile()` also builds aging and discrepancies; the nightly rules need only the dated allocation ledger,
the rates, positions and payment behaviour, so they share one Basis instead of reconciling again each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connector.reconcile.agreement import Agreement, agreement
from connector.reconcile.behaviour import Behaviour, behaviours
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger, allocate
from connector.reconcile.positions import Position, positions
from connector.reconcile.rating import DEFAULT_MODEL, RatingModel
from connector.reconcile.snapshot import Snapshot, without_gc


@dataclass(frozen=True)
class Basis:
    snapshot: Snapshot
    today: date
    ledger: AllocationLedger  # what ccm may act on: less the invoices `agreement` holds back
    rates: Rates
    positions: Mapping[str, Position]
    behaviours: Mapping[str, Behaviour]
    agreement: Agreement  # what ccm and the ledger disagree on, and the inactive customers
    # What is computed from this basis and the same other inputs more than once a night (tonight's hold
    # decisions: planning words reminders by them, then the night writes them), kept with those inputs.
    memo: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def leave_alone(self, customer_id: str) -> str | None:
        """Why ccm must neither chase nor hold the customer tonight (None: it may act)."""
        return self.agreement.customer_reason(customer_id)

    @classmethod
    @without_gc
    def of(cls, snapshot: Snapshot, today: date, rating: RatingModel = DEFAULT_MODEL) -> Basis:
        rates = Rates.from_snapshot(snapshot)
        dated = allocate(snapshot, today)
        # Against the ledger's figures of now: an allocation dated after today that the ledger already counts
        # makes the two differ, and the invoice is left alone (the ledger's truth first: it says paid).
        agreed = agreement(snapshot, dated, rates)
        ledger = dated.without(agreed.invoices)  # act only on what ccm and the ledger agree on
        return cls(
            snapshot, today, ledger, rates, positions(snapshot, ledger, rates, today),
            behaviours(snapshot, ledger, rates, today, rating), agreed,
        )  # fmt: skip
