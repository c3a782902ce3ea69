"""Conversion to the tenant's base currency at the ledger's own rates.

A rate is units of the record's currency per 1 unit of base currency (as Xero's CurrencyRate), so
base = amount / rate. A record without a rate of its own uses the rate of the latest-dated record in the
same currency; when no record in that currency carries one, the amount cannot be converted (None).
Converted amounts are rounded to 4 places at once, so sums of them are exact and independent of order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from connector.reconcile.snapshot import Snapshot

QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class Rates:
    """The base currency and a fallback rate per foreign currency."""

    base: str
    fallback: Mapping[str, Decimal]

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Rates:
        """Fallback rates: per currency, the rate of the latest-dated record (ties broken by id)."""
        best: dict[str, tuple[date, str, Decimal]] = {}
        base = snapshot.tenant.base_currency
        # Only foreign records carrying a rate matter; skip the rest before building anything for them.
        dated = (
            *((i.total.currency, i.issue_date, i.id, i.currency_rate) for i in snapshot.invoices
              if i.currency_rate is not None and i.total.currency != base),
            *((c.total.currency, c.issue_date, c.id, c.currency_rate) for c in snapshot.credit_notes
              if c.currency_rate is not None and c.total.currency != base),
            *((p.amount.currency, p.date, p.id, p.currency_rate) for p in snapshot.payments
              if p.currency_rate is not None and p.amount.currency != base),
        )  # fmt: skip
        for currency, when, rid, rate in dated:
            if rate is None or rate <= 0:
                continue
            seen = best.get(currency)
            if seen is None or (when, rid) > seen[:2]:
                best[currency] = (when, rid, rate)
        return cls(snapshot.tenant.base_currency, {cur: rate for cur, (_, _, rate) in best.items()})

    def rate_for(self, currency: str, rate: Decimal | None) -> Decimal | None:
        """The rate to use for a record in `currency` carrying `rate` (None: cannot convert)."""
        if currency == self.base:
            return Decimal(1)
        if rate is not None and rate > 0:
            return rate
        return self.fallback.get(currency)

    def to_base(self, amount: Decimal, currency: str, rate: Decimal | None) -> Decimal | None:
        """`amount` in base currency, rounded to 4 places; None when no rate is known."""
        if currency == self.base:  # the common case, called for every open invoice: rate_for's 1
            return amount.quantize(QUANTUM, ROUND_HALF_EVEN)  # rounding passed by position: half the cost
        use = self.rate_for(currency, rate)
        if use is None:
            return None
        if use == 1:
            return amount.quantize(QUANTUM, ROUND_HALF_EVEN)
        return (amount / use).quantize(QUANTUM, ROUND_HALF_EVEN)
