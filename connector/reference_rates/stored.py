"""The `reference_rates` table: what each source last answered, and the rate table the rules are given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, delete, func, select

from connector.reference_rates.sources import percent
from connector.rules import interest
from connector.rules.interest import Changes, Observed, RateTable
from connector.store.schema import reference_rates

RATES_FILE = "reference_rates.yaml"  # a tenant's own entries, in its tenant directory


@dataclass(frozen=True, slots=True)
class Stored:
    """One source's observations as its last successful fetch answered them."""

    series: str
    changes: Changes
    fetched_at: datetime

    @property
    def newest(self) -> date:
        return self.changes[-1][0]

    def observed(self) -> Observed:
        """What the rules merge: the series is confirmed up to the day (UTC) it was fetched."""
        return Observed(self.series, self.changes, max(self.fetched_at.date(), self.newest))


def save(conn: Connection, series: str, changes: Changes, fetched_at: datetime) -> None:
    """Replace the series' rows by `changes` (a fetch's whole answer), stamped `fetched_at`."""
    conn.execute(delete(reference_rates).where(reference_rates.c.source == series))
    conn.execute(
        reference_rates.insert(),
        [{"source": series, "effective_date": d, "rate": v, "fetched_at": fetched_at} for d, v in changes],
    )


def load(conn: Connection) -> dict[str, Stored]:
    """Every source's stored observations, by series."""
    r = reference_rates.c
    query = select(r.source, r.effective_date, r.rate, r.fetched_at).order_by(r.source, r.effective_date)
    changes: dict[str, list[tuple[date, Decimal]]] = {}
    fetched: dict[str, datetime] = {}
    for row in conn.execute(query):
        changes.setdefault(row.source, []).append((row.effective_date, percent(row.rate)))
        fetched[row.source] = max(row.fetched_at, fetched.get(row.source, row.fetched_at))
    return {s: Stored(s, tuple(c), fetched[s]) for s, c in changes.items()}


def newest(conn: Connection, series: str) -> date | None:
    """The newest observation stored for `series`."""
    r = reference_rates.c
    found: date | None = conn.execute(select(func.max(r.effective_date)).where(r.source == series)).scalar()
    return found


def observed(conn: Connection) -> dict[str, Observed]:
    return {s: stored.observed() for s, stored in load(conn).items()}


def rates_for(conn: Connection, tenant_dir: Path | None = None) -> RateTable:
    """The rate table statutory interest uses: shipped, the tenant's file (in `tenant_dir`), then fetched."""
    tenant_file = tenant_dir / RATES_FILE if tenant_dir is not None else None
    return interest.load_rates(tenant_file, observed(conn))
