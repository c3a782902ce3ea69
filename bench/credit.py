"""Credit control at scale: hold decisions for 10,000 customers with 100,000 open invoices, on SQLite.

The data is the dunning benchmark's (bench/dunning.py), plus a credit limit for every customer (one in four
set below what they owe) and a thousand customers already on hold by the rules. Each step runs in a fresh
interpreter, so the measurement's peak RSS is its own:

    python -m bench.credit --write DIR      seed DIR/ccm.db, the limits and the holds
    python -m bench.credit --measure DIR    time load_snapshot, then connector.creditcontrol.decide (twice)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.dunning import CUSTOMERS, TENANT, TODAY, seed
from connector import creditcontrol
from connector.logs import configure
from connector.model import Money
from connector.store import Store

NOW = datetime(2026, 6, 30, 1, 0, tzinfo=UTC)
HELD = 1_000  # customers already on hold by the rules when the night starts
console = Console(highlight=False, width=140)


def write(folder: Path) -> dict[str, float]:
    """The dunning data, a limit per customer (every fourth far too low) and holds for the first 1,000."""
    began = time.perf_counter()
    store = seed(folder, with_policy=False)
    with store.begin() as conn:
        for n in range(CUSTOMERS):
            amount = Decimal(500) if n % 4 == 0 else Decimal(1_000_000)
            creditcontrol.set_limit(conn, TENANT.id, f"c{n:05d}", Money(amount, "GBP"), NOW, "import")
        for n in range(HELD):
            creditcontrol.record_hold(
                conn, TENANT.id, f"c{n:05d}", True, "rule", "seeded", f"hold-seed-{n}", NOW
            )
    store.close()
    return {"write_s": time.perf_counter() - began}


def measure(folder: Path) -> dict[str, float]:
    """Load the snapshot, then decide (exposure, ratings, levels, rules) for every customer, twice."""
    from connector.reconcile import load_snapshot
    from connector.rules.credit import load_rules

    store = Store.open(f"sqlite:///{folder / 'ccm.db'}")
    rules = load_rules()
    began = time.perf_counter()
    snapshot = load_snapshot(store, TENANT.id)
    load_s = time.perf_counter() - began
    runs, cpu = [], []  # CPU seconds beside: on a busy machine the wall clock also counts others' turns
    for _ in range(2):
        began, began_cpu = time.perf_counter(), time.process_time()
        with store.read() as conn:
            decisions, accounts = creditcontrol.decide(conn, snapshot, TODAY, rules)
        runs.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    store.close()
    actions = Counter(d.action for d in decisions)
    return {
        "customers": float(len(accounts)), "invoices": float(len(snapshot.invoices)),
        "holds": float(actions["hold"]), "releases": float(actions["release"]), "load_s": load_s,
        "decide_s": runs[0], "decide_again_s": runs[1], "decide_cpu_s": cpu[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def _child(*args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "bench.credit", *args], capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "bench child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> None:
    """Seed, measure, print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        written = _child("--write", tmp)
        r = _child("--measure", tmp)
    table = Table(
        "customers", "open invoices", "holds / releases decided", "load_snapshot (s)", "decide (s)",
        "decide, CPU (s)", "decide again (s)", "customers/s", "peak RSS (MB)",
        title=f"credit hold evaluation, SQLite (seeded in {written['write_s']:.1f} s; target: decide < 2 s)",
    )  # fmt: skip
    table.add_row(
        f"{r['customers']:,.0f}", f"{r['invoices']:,.0f}", f"{r['holds']:,.0f} / {r['releases']:,.0f}",
        f"{r['load_s']:.2f}", f"{r['decide_s']:.2f}", f"{r['decide_cpu_s']:.2f}",
        f"{r['decide_again_s']:.2f}",
        f"{r['customers'] / r['decide_s']:,.0f}", f"{r['peak_rss_mb']:.0f}",
    )  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.credit")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--measure", type=Path)
    args = parser.parse_args()
    configure("warning")
    if args.write:
        print(json.dumps(write(args.write)))
    elif args.measure:
        print(json.dumps(measure(args.measure)))
    else:
        run()


if __name__ == "__main__":
    main()
