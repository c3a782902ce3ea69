"""The QuickBooks sandbox serving a full read: start-up, records/s over HTTPS, calls, peak RSS.

The sandbox runs in a process of its own (as an adapter bench should run it); the reader is plain requests
(no SDK, no store), so the figures are the sandbox's share of an adapter's end-to-end sync. Limits are off:
throughput is what is measured. `python -m bench.qbo_sandbox --size large` prints one JSON line;
`python -m bench qbo_sandbox` prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from adapters.quickbooks.sandbox.process import spawn

QUERIES = {
    "Customer": "SELECT * FROM Customer WHERE Active IN (true, false)",
    "Invoice": "SELECT * FROM Invoice",
    "Payment": "SELECT * FROM Payment",
    "CreditMemo": "SELECT * FROM CreditMemo",
}


def _read_all(http: requests.Session, url: str, headers: dict[str, str]) -> tuple[int, int]:
    records = calls = 0
    for entity, base in QUERIES.items():
        start_at = 1
        while True:
            text = f"{base} ORDERBY Metadata.LastUpdatedTime STARTPOSITION {start_at} MAXRESULTS 1000"
            answer = http.post(url, data=text.encode(), headers=headers, params={"minorversion": "75"})
            answer.raise_for_status()
            calls += 1
            got = len(answer.json()["QueryResponse"].get(entity, []))
            records += got
            if got < 1000:
                break
            start_at += 1000
    return records, calls


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(size: str) -> dict[str, float]:
    """Spawn a sandbox of `size`, read every record twice (cold, then cached JSON), and report."""
    began = time.perf_counter()
    sandbox = spawn(seed=1, size=size, limits=False)
    ready = time.perf_counter() - began
    http = requests.Session()
    http.verify, http.trust_env = str(sandbox.ca_path), False
    headers = {
        "Authorization": f"Bearer {sandbox.connect()['access_token']}",
        "Content-Type": "application/text",
    }
    url = f"{sandbox.api_url}/company/{sandbox.realm}/query"
    try:
        t0 = time.perf_counter()
        records, calls = _read_all(http, url, headers)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        _read_all(http, url, headers)
        warm = time.perf_counter() - t0
        minimum = 0
        for base in QUERIES.values():
            count = http.post(
                url,
                data=base.replace("*", "COUNT(*)", 1).encode(),
                headers=headers,
                params={"minorversion": "75"},
            ).json()["QueryResponse"]["totalCount"]
            minimum += max(1, math.ceil(count / 1000))
        peak = _peak_rss_mb(sandbox.process.pid)
    finally:
        http.close()
        sandbox.stop()
    return {"records": records, "calls": calls, "min_calls": minimum, "ready_s": ready,
            "cold_rps": records / cold,
            "warm_rps": records / warm, "peak_rss_mb": peak}  # fmt: skip


def table(results: dict[str, dict[str, float]]) -> None:
    """Print the sandbox table."""
    out = Table(
        "size",
        "records",
        "calls (minimum)",
        "ready (s)",
        "first read, records/s",
        "re-read, records/s",
        "sandbox peak RSS (MB)",
        title="QBO sandbox (own process): full read over HTTPS in 1,000-row query pages, limits off",
    )
    for size, r in results.items():
        out.add_row(
            size,
            f"{r['records']:,.0f}",
            f"{r['calls']:.0f} ({r['min_calls']:.0f})",
            f"{r['ready_s']:.1f}",
            f"{r['cold_rps']:,.0f}",
            f"{r['warm_rps']:,.0f}",
            f"{r['peak_rss_mb']:.0f}",
        )
    Console(highlight=False).print(out)


def run() -> None:
    """Measure each size in a process of its own and print the table (`python -m bench qbo_sandbox`)."""
    results = {}
    for size in ("small", "large"):
        args = [sys.executable, "-m", "bench.qbo_sandbox", "--size", size]
        done = subprocess.run(args, capture_output=True, text=True, check=True)
        results[size] = json.loads(done.stdout.strip().splitlines()[-1])
    table(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="demo")
    print(json.dumps(measure(parser.parse_args().size)))
