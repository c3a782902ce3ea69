"""Reconciliation at scale: 100,000 open invoices (plus 50,000 paid ones as history), 100,000 payments and
10,000 customers, on SQLite and on PostgreSQL.

Each backend runs in two fresh processes: one writes the seeded data through `connector.store.records.upsert`,
the other measures (so its peak RSS is the measurement's own): load the snapshot, reconcile (allocations,
discrepancies, positions, aging), the aging command's work (aging, DSO, CEI), ratings, and the forecast.

    python -m bench.reconcile --url URL --write      # or --measure; `python -m bench reconcile` runs all
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector.logs import configure
from connector.model import (
    Allocation,
    Customer,
    Invoice,
    Money,
    Payment,
    PaymentKind,
    Record,
    SourceKind,
    Status,
    Tenant,
)
from connector.store import Store, records
from connector.store.engine import normalise_url
from connector.store.tenants import save_tenant

TENANT = "bench"
AS_OF = date(2026, 6, 30)
CUSTOMERS = 10_000
OPEN = 100_000
PAID = 50_000
PARTIAL = 45_000  # open invoices part-paid
PREPAID = 5_000  # customers with an unapplied prepayment: 50,000 + 45,000 + 5,000 = 100,000 payments
BATCH = 5_000
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _money(rng: random.Random, currency: str) -> Money:
    return Money(Decimal(rng.randrange(1_000, 500_000)).scaleb(-2), currency)


def _currency(customer: int) -> tuple[str, Decimal | None]:
    return ("USD", Decimal("1.25")) if customer % 10 == 9 else ("GBP", None)


def generate(seed: int = 5) -> Iterator[tuple[str, list[Record]]]:
    """Batches of (entity, records): customers, paid history with its payments, open invoices, payments."""
    rng = random.Random(seed)
    yield "customer", [Customer(f"c{n:05d}", f"Customer {n}") for n in range(CUSTOMERS)]
    for start in range(0, PAID, BATCH):
        invoices: list[Record] = []
        payments: list[Record] = []
        for i in range(start, start + BATCH):
            cust = i % CUSTOMERS
            cur, rate = _currency(cust)
            total = _money(rng, cur)
            issued = AS_OF - timedelta(days=rng.randint(60, 720))
            due = issued + timedelta(days=30)
            paid = min(due + timedelta(days=(cust % 5) * 10 + rng.randint(-5, 15)), AS_OF)
            iid = f"h{i:06d}"
            invoices.append(Invoice(iid, f"c{cust:05d}", total, Money.zero(cur), Status.PAID, issued, due,
                                    f"H-{i}", rate))  # fmt: skip
            alloc = Allocation(SourceKind.PAYMENT, f"ph{i:06d}", iid, total, paid)
            payments.append(Payment(f"ph{i:06d}", f"c{cust:05d}", total, Money.zero(cur), paid,
                                    currency_rate=rate, allocations=(alloc,)))  # fmt: skip
        yield "invoice", invoices
        yield "payment", payments
    for start in range(0, OPEN, BATCH):
        invoices, payments = [], []
        for i in range(start, start + BATCH):
            cust = (i * 7) % CUSTOMERS
            cur, rate = _currency(cust)
            total = _money(rng, cur)
            issued = AS_OF - timedelta(days=rng.randint(0, 180))
            due = issued + timedelta(days=30)
            part = Money(Decimal(0), cur)
            iid = f"o{i:06d}"
            if i < PARTIAL:
                part = Money((total.amount / 2).quantize(Decimal("0.01")), cur)
                when = min(issued + timedelta(days=rng.randint(0, 20)), AS_OF)
                alloc = Allocation(SourceKind.PAYMENT, f"po{i:06d}", iid, part)
                payments.append(Payment(f"po{i:06d}", f"c{cust:05d}", part, Money.zero(cur), when,
                                        currency_rate=rate, allocations=(alloc,)))  # fmt: skip
            elif i >= OPEN - PREPAID:
                payments.append(Payment(f"pp{i:06d}", f"c{cust:05d}", Money(Decimal(50), cur),
                                        Money(Decimal(50), cur), issued, PaymentKind.PREPAYMENT,
                                        currency_rate=rate))  # fmt: skip
            invoices.append(Invoice(iid, f"c{cust:05d}", total, total - part, Status.OPEN, issued, due,
                                    f"O-{i}", rate))  # fmt: skip
        yield "invoice", invoices
        if payments:
            yield "payment", payments


def write(url: str) -> dict[str, float]:
    store = Store.open(url)
    began = time.perf_counter()
    counts: dict[str, int] = {}
    with store.begin() as conn:
        save_tenant(conn, Tenant(TENANT, "Bench Ltd", "synthetic"))
    for n, (entity, batch) in enumerate(generate()):
        with store.begin() as conn:
            records.upsert(conn, TENANT, entity, batch)
            if store.backend == "postgresql" and n % 4 == 3:
                # A fresh schema has no planner statistics: without them PostgreSQL scans whole tables for
                # the upsert's id lookups and each batch gets slower (7.5 minutes instead of 15 s in all).
                conn.execute(text("ANALYZE customers, invoices, payments, allocations"))
        counts[entity] = counts.get(entity, 0) + len(batch)
    store.close()
    return {"write_s": time.perf_counter() - began, **{f"{k}s": float(v) for k, v in counts.items()}}


def _timed(times: dict[str, float], name: str, began: tuple[float, float]) -> None:
    times[f"{name}_s"] = time.perf_counter() - began[0]
    times[f"{name}_cpu_s"] = time.process_time() - began[1]


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def measure(url: str) -> dict[str, float]:
    """Each phase as its command runs it, from the loaded snapshot; wall and CPU seconds."""
    from connector.reconcile import aging, allocate, behaviours, cei, dso, forecast, load_snapshot, reconcile
    from connector.reconcile.fx import Rates

    store = Store.open(url)
    times: dict[str, float] = {}
    began = _now()
    snapshot = load_snapshot(store, TENANT)
    _timed(times, "load", began)
    began = _now()
    result = reconcile(snapshot, AS_OF)
    _timed(times, "reconcile", began)
    counts = {
        "open_invoices": float(len(result.ledger.open_states)),
        "discrepancies": float(len(result.discrepancies)),
    }
    del result
    began = _now()
    rates = Rates.from_snapshot(snapshot)
    ledger = allocate(snapshot, AS_OF)
    aging(snapshot, ledger, rates, AS_OF)
    dso(snapshot, rates, AS_OF, ledger)
    cei(snapshot, rates, AS_OF - timedelta(days=90), AS_OF, ledger)
    _timed(times, "aging", began)
    del ledger
    began = _now()
    rates = Rates.from_snapshot(snapshot)
    behaviours(snapshot, allocate(snapshot, AS_OF), rates, AS_OF)
    _timed(times, "ratings", began)
    began = _now()
    rates = Rates.from_snapshot(snapshot)
    ledger = allocate(snapshot, AS_OF)
    plan = forecast(ledger, rates, behaviours(snapshot, ledger, rates, AS_OF), AS_OF)
    _timed(times, "forecast", began)
    store.close()
    assert len(snapshot.invoices) == OPEN + PAID
    assert len(snapshot.payments) == PAID + PARTIAL + PREPAID
    return {
        **times,
        **counts,
        "payments": float(len(snapshot.payments)),
        "customers": float(len(snapshot.customers)),
        "open_total": float(plan.open_total),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(*args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "bench.reconcile", *args], capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "bench child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _pg_schema(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    url = make_url(normalise_url(base)).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


@contextmanager
def pg_database() -> Iterator[str]:
    """A PostgreSQL schema of its own on the local server (or CCM_TEST_DATABASE_URL's), then dropped."""
    base = os.environ.get("CCM_TEST_DATABASE_URL") or PG_DEFAULT
    schema, url = _pg_schema(base)
    admin = create_engine(normalise_url(base))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_backend(name: str) -> dict[str, float]:
    """Write then measure on one backend, in a database of its own that is removed afterwards."""
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            return {**_child("--url", url, "--write"), **_child("--url", url, "--measure")}
    with pg_database() as url:
        return {**_child("--url", url, "--write"), **_child("--url", url, "--measure")}


def table() -> None:
    """Print the benchmark table (both backends): wall seconds, with CPU seconds in brackets."""
    out = Table(
        "backend", "open invoices", "payments", "customers", "load (s)", "reconcile (s)",
        "load + reconcile (s)", "aging+DSO+CEI (s)", "ratings (s)", "forecast (s)", "peak RSS (MB)",
        title="reconciliation: wall seconds (CPU seconds); targets < 5 s each, peak RSS < 400 MB",
    )  # fmt: skip
    for backend in ("sqlite", "postgresql"):
        r = run_backend(backend)
        r["both_s"], r["both_cpu_s"] = r["load_s"] + r["reconcile_s"], r["load_cpu_s"] + r["reconcile_cpu_s"]
        phases = ("load", "reconcile", "both", "aging", "ratings", "forecast")
        out.add_row(
            backend, f"{r['open_invoices']:,.0f}", f"{r['payments']:,.0f}", f"{r['customers']:,.0f}",
            *(f"{r[f'{p}_s']:.2f} ({r[f'{p}_cpu_s']:.2f})" for p in phases), f"{r['peak_rss_mb']:.0f}",
        )  # fmt: skip
    Console(highlight=False, width=220).print(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true")
    group.add_argument("--measure", action="store_true")
    args = parser.parse_args()
    configure("warning")
    print(json.dumps(write(args.url) if args.write else measure(args.url)))


if __name__ == "__main__":
    main()
