"""The bookkeeper's pages at scale: each page's p50 / p95 / max over N requests, on SQLite and PostgreSQL.

The firm has `--customers` customers and ten times as many invoices (by default 10,000 and 100,000: two
thirds open, a part of them part-paid, a third paid as history over two years), written through
`connector.store.records.upsert`. The app is `ccm serve`'s own (`connector.serve.app.build`), driven in
process by uvicorn on a local port and read over real HTTP by a signed-in admin; every GET page without
further path parameters
is measured (so pages added later are measured too), and the page of the customer with the most invoices
(one customer has a share of `BIG_EVERY`'s invoices besides the ten of every other). The firm's books and
pages are computed first as `ccm serve` does after the firm's night (connector/web/snapshots.py: the time
is printed); then each page is requested once ("first" column: the first view after a night), then
`--requests` times.

    python -m bench web                                  both backends, the full size
    python -m bench.web --customers 500 --requests 20    a small run; --backend sqlite|postgresql, or
                                                         --db URL for one database of your own
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, text

from connector.clock import Clock
from connector.config import Settings
from connector.logs import configure
from connector.model import Allocation, Customer, Invoice, Money, Payment, Record, SourceKind, Status, Tenant
from connector.serve.runtime import Runtime
from connector.store import Store, records
from connector.store.schema import invoices
from connector.store.tenants import save_tenant
from connector.web import snapshots, users
from connector.web.users import Role

TENANT = Tenant("bench", "Bench Trading Ltd", "synthetic", "GBP", "Europe/London", "GB")
TODAY = date(2026, 6, 30)
NOW = datetime(2026, 6, 30, 9, 0, tzinfo=UTC)
PASSWORD = "bench password 1234"
BATCH = 5_000
BIG_EVERY = 500  # every this many-th invoice is the big customer's (c00000): 200 of 100,000
BUDGET = 60.0  # seconds of repeated requests per page at most (a slow page gets fewer, at least 3)
console = Console(highlight=False, width=140)


def generate(customers: int, seed: int = 11) -> Iterator[tuple[str, list[Record]]]:
    """Batches of (entity, records): customers, then 10 invoices per customer with their payments."""
    rng = random.Random(seed)
    yield "customer", [Customer(f"c{n:05d}", f"Customer {n} Ltd", email=f"ap@c{n:05d}.example")
                       for n in range(customers)]  # fmt: skip
    count = customers * 10
    for start in range(0, count, BATCH):
        invoices: list[Record] = []
        payments: list[Record] = []
        for i in range(start, min(start + BATCH, count)):
            cust = f"c{0 if i % BIG_EVERY == 0 else (i * 7) % customers:05d}"
            total = Money(Decimal(rng.randrange(5_000, 500_000)).scaleb(-2), "GBP")
            paid = i % 3 == 0
            issued = TODAY - timedelta(days=rng.randint(60, 720) if paid else rng.randint(0, 150))
            due = issued + timedelta(days=30)
            applied = total if paid else Money.zero("GBP")
            if not paid and i % 3 == 1 and i % 2:
                applied = Money((total.amount / 2).quantize(Decimal("0.01")), "GBP")
            if applied.amount:
                on = min(due + timedelta(days=rng.randint(-10, 40)), TODAY)
                alloc = Allocation(SourceKind.PAYMENT, f"p{i:06d}", f"i{i:06d}", applied, on)
                payments.append(
                    Payment(f"p{i:06d}", cust, applied, Money.zero("GBP"), on, allocations=(alloc,))
                )
            status = Status.PAID if paid else Status.OPEN
            invoices.append(Invoice(f"i{i:06d}", cust, total, total - applied, status, issued, due,
                                    f"INV-{i:06d}"))  # fmt: skip
        yield "invoice", invoices
        if payments:
            yield "payment", payments


def seed(store: Store, customers: int) -> None:
    with store.begin() as conn:
        save_tenant(conn, TENANT)
        users.add(conn, "bench", Role.ADMIN, PASSWORD, NOW)
    for n, (entity, batch) in enumerate(generate(customers)):
        with store.begin() as conn:
            records.upsert(conn, TENANT.id, entity, batch)
            if store.backend == "postgresql" and n % 4 == 3:
                conn.execute(text("ANALYZE customers, invoices, payments, allocations"))


def pages(app: Any) -> list[str]:
    """Every GET page of the app that needs no more than the firm in its path."""
    found = []
    for route in app.routes:
        path = getattr(route, "path", "")
        if "GET" not in (getattr(route, "methods", None) or ()) or path in ("/login", "/healthz", "/metrics"):
            continue
        if path.startswith("/static") or path.startswith("/connect") or path.startswith("/oauth"):
            continue
        rest = path.replace("{tenant}", "")
        if "{" in rest:
            continue
        found.append(path.replace("{tenant}", TENANT.id))
    return sorted(set(found), key=lambda p: (len(p), p))


def customer_page(store: Store) -> str:
    """The page of the customer with the most invoices."""
    i = invoices.c
    with store.read() as conn:
        cid = conn.execute(
            select(i.customer_id).where(i.tenant_id == TENANT.id).group_by(i.customer_id)
            .order_by(func.count().desc(), i.customer_id).limit(1)
        ).scalar_one()  # fmt: skip
    return f"/t/{TENANT.id}/customers/{cid}"


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app served by uvicorn on a free local port, in a thread; its base URL."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def measure(url: str, customers: int, requests: int, folder: Path) -> list[dict[str, Any]]:
    from requests import Session

    from connector.serve.app import build

    store = Store.open(url)
    began = time.perf_counter()
    seed(store, customers)
    console.print(f"  seeded {customers:,} customers / {customers * 10:,} invoices in "
                  f"{time.perf_counter() - began:.0f} s")  # fmt: skip
    settings = Settings(data_dir=folder)
    clock = Clock.parse(f"{NOW.isoformat()}x1")
    rt = Runtime(settings, store, clock, "bench")
    app = build(rt, lambda _tenants: None, lambda: {}, lambda: None)
    began = time.perf_counter()
    warming = snapshots.warm(store, settings, TENANT.id, NOW, always=True)  # as `ccm serve` after a night
    if warming is not None:
        warming.join()
    console.print(f"  the firm's books and pages computed as after its night in "
                  f"{time.perf_counter() - began:.0f} s")  # fmt: skip
    rows = []
    with served(app) as base:
        client = Session()
        client.trust_env = False
        login = client.get(base + "/login", timeout=30)
        csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"csrf": csrf, "name": "bench", "password": PASSWORD, "next": "/"}
        answer = client.post(base + "/login", data=form, allow_redirects=False, timeout=30)
        assert answer.status_code == 303, answer.text
        for path in [*pages(app), customer_page(store)]:
            rows.append(_page(client, base, path, requests))
            console.print(f"  {path}: p95 {rows[-1]['p95']:,.0f} ms over {rows[-1]['n']} requests")
    store.close()
    return rows


def _page(client: Any, base: str, path: str, requests: int, budget: float = BUDGET) -> dict[str, Any]:
    """One page: its first answer's time, then up to `requests` more (fewer when they exceed `budget` s)."""
    t0 = time.perf_counter()
    first = client.get(base + path, timeout=900)
    cold = time.perf_counter() - t0
    times: list[float] = []
    got = first
    while len(times) < requests and (len(times) < 3 or sum(times) < budget):
        t0 = time.perf_counter()
        got = client.get(base + path, timeout=900)
        times.append(time.perf_counter() - t0)
    if got.status_code != 200:
        raise RuntimeError(f"{path}: {got.status_code} {got.text[:200]}")
    times.sort()
    return {
        "page": path, "first": cold * 1000, "p50": statistics.median(times) * 1000,
        "p95": times[max(0, math.ceil(0.95 * len(times)) - 1)] * 1000, "max": times[-1] * 1000,
        "n": len(times), "rows": got.text.count("<tr"), "kb": len(got.content) / 1024,
    }  # fmt: skip


def _print(backend: str, customers: int, requests: int, rows: list[dict[str, Any]]) -> None:
    out = Table("page", "first (ms)", "requests", "p50 (ms)", "p95 (ms)", "max (ms)", "table rows", "KB",
                title=f"bookkeeper's pages, {backend}: {customers:,} customers, {customers * 10:,} invoices, "
                f"{requests} requests each (target p95 < 300 ms)")  # fmt: skip
    for r in rows:
        flag = "" if r["p95"] < 300 else " ✗"
        out.add_row(
            r["page"], f"{r['first']:,.0f}", str(r["n"]), f"{r['p50']:,.0f}", f"{r['p95']:,.0f}{flag}",
            f"{r['max']:,.0f}", f"{r['rows']:,}", f"{r['kb']:,.0f}",
        )  # fmt: skip
    console.print(out)


def run(customers: int = 10_000, requests: int = 50, db: str | None = None, backend: str = "both") -> None:
    """Measure on `db`, or on a fresh SQLite file and/or a fresh PostgreSQL schema (`backend`)."""
    configure("warning")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if db:
            _print(db.split(":", 1)[0], customers, requests, measure(db, customers, requests, folder))
            return
        if backend in ("sqlite", "both"):
            url = f"sqlite:///{folder / 'web.db'}"
            _print("sqlite", customers, requests, measure(url, customers, requests, folder))
        if backend in ("postgresql", "both"):
            from bench.reconcile import pg_database

            with pg_database() as url:
                _print("postgresql", customers, requests, measure(url, customers, requests, folder))


def table() -> None:
    run(int(os.environ.get("CCM_BENCH_CUSTOMERS", "10000")), int(os.environ.get("CCM_BENCH_REQUESTS", "50")))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--customers", type=int, default=10_000, help="customers (invoices: ten times as many)"
    )
    parser.add_argument("--requests", type=int, default=50, help="requests per page after the first")
    parser.add_argument("--db", help="one database URL to use (default: a fresh SQLite file and PostgreSQL "
                        "schema; CCM_TEST_DATABASE_URL's server or the local one)")  # fmt: skip
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    run(args.customers, args.requests, args.db, args.backend)


if __name__ == "__main__":
    main()
