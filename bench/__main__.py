"""Run the benchmarks and print their tables: `python -m bench [map_upsert ...]`."""

from __future__ import annotations

import json
import subprocess
import sys

from rich.console import Console
from rich.table import Table

from bench.generator import bench as generator

console = Console(highlight=False)


def _child(module: str, *args: str) -> dict[str, float]:
    """Run one measurement in a fresh interpreter, so its peak RSS is its own."""
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def map_upsert() -> None:
    table = Table(
        "records", "first sync (s)", "records/s", "records/s excl. raw generation", "unchanged re-sync (s)",
        "records/s", "peak RSS (MB)",
        title="map + upsert through the sync engine, SQLite (target ≥ 20,000 records/s, RSS < 250 MB, flat)",
    )  # fmt: skip
    for count in (50_000, 200_000):
        r = _child("bench.map_upsert", "--records", str(count))
        table.add_row(
            f"{count:,}", f"{r['insert_s']:.1f}", f"{r['insert_rps']:,.0f}", f"{r['insert_ours_rps']:,.0f}",
            f"{r['unchanged_s']:.1f}",
            f"{r['unchanged_rps']:,.0f}", f"{r['peak_rss_mb']:.0f}",
        )  # fmt: skip
    console.print(table)


BENCHES = {"map_upsert": map_upsert, "generator": generator}
BENCHES["qbo_sandbox"] = lambda: __import__("bench.qbo_sandbox", fromlist=["run"]).run()
BENCHES["quickbooks_sync"] = lambda: __import__("bench.quickbooks_sync", fromlist=["run"]).run()
BENCHES["reconcile"] = lambda: __import__("bench.reconcile", fromlist=["table"]).table()
BENCHES["xero_sync"] = lambda: __import__("bench.xero_sync", fromlist=["bench"]).bench()
BENCHES["dunning"] = lambda: __import__("bench.dunning", fromlist=["run"]).run()
BENCHES["credit"] = lambda: __import__("bench.credit", fromlist=["run"]).run()
BENCHES["serve"] = lambda: __import__("bench.serve", fromlist=["table"]).table()
BENCHES["web"] = lambda: __import__("bench.web", fromlist=["table"]).table()
BENCHES["scale"] = lambda: __import__("bench.scale", fromlist=["table"]).table()


def main(names: list[str]) -> None:
    if names[:1] == ["scale"]:  # the one bench with options: `python -m bench scale --firms 100`
        __import__("bench.scale", fromlist=["table"]).table(names[1:])
        return
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        sys.exit(f"bench: unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(BENCHES)})")
    for name in names or list(BENCHES):
        BENCHES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
