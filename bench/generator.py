"""Sandbox data: generating firms (records/s, peak RSS) and serving them from the Xero sandbox (records/s).

`python -m bench generator` prints both tables. Each measurement runs in a fresh interpreter so that its peak
RSS is its own: `python -m bench.generator --size large` generates; `--serve large` starts a Xero sandbox and
reads every page of it from a second process (`--client URL CA`), as an adapter on the same machine would.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlparse

from rich.console import Console
from rich.table import Table

from adapters.sandbox.generator import SIZES, generate

SIZES_MEASURED = ("demo", "small", "large")
SERVED = ("Invoices", "Payments", "Contacts")
CLIENT = ("ccm-sandbox-client", "ccm-sandbox-secret")
console = Console(highlight=False)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.generator", *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(size: str) -> dict[str, float]:
    """Generate one firm; its record count, seconds, records/s and the process's peak RSS."""
    began = time.perf_counter()
    firm = generate(1, size, today=date(2026, 11, 23))
    seconds = time.perf_counter() - began
    records = len(firm.customers) + len(firm.invoices) + len(firm.payments) + len(firm.credit_notes)
    return {"records": records, "seconds": seconds, "rps": records / seconds, "peak_rss_mb": _rss_mb()}


def serve(size: str) -> dict[str, Any]:
    """Start a Xero sandbox of `size` (limits off) and have a client process read it all."""
    from adapters.xero.sandbox import start

    began = time.perf_counter()
    handle = start(size=size, limits=False)
    ready = time.perf_counter() - began
    try:
        read = _child("--client", handle.base_url, str(handle.ca_path))
    finally:
        handle.stop()
    return {"ready_s": ready, "sandbox_rss_mb": _rss_mb(), **read}


def client(base_url: str, ca: str) -> dict[str, Any]:
    """Connect through the OAuth code flow, then page through each list at pageSize 1000."""
    import requests

    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would override the session's own `verify`
    http.verify = ca
    redirect = "https://bench.example.com/callback"
    answer = http.get(
        f"{base_url}/identity/connect/authorize",
        allow_redirects=False,
        params={
            "response_type": "code",
            "client_id": CLIENT[0],
            "redirect_uri": redirect,
            "scope": "offline_access accounting.transactions accounting.contacts",
        },
    )
    code = parse_qs(urlparse(answer.headers["location"]).query)["code"][0]
    tokens = http.post(
        f"{base_url}/connect/token",
        auth=CLIENT,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
    ).json()
    http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
    http.headers["xero-tenant-id"] = http.get(f"{base_url}/connections").json()[0]["tenantId"]
    out: dict[str, Any] = {}
    for kind in SERVED:
        began, records, page, calls = time.perf_counter(), 0, 1, 0
        while True:
            body = http.get(f"{base_url}/api.xro/2.0/{kind}", params={"page": page, "pageSize": 1000}).json()
            calls += 1
            records += len(body[kind])
            if page >= body["pagination"]["pageCount"]:
                break
            page += 1
        seconds = time.perf_counter() - began
        out[kind] = {"records": records, "calls": calls, "seconds": seconds, "rps": records / seconds}
    out["client_rss_mb"] = _rss_mb()
    return out


def bench() -> None:
    """Print the generator table and the Xero sandbox serving table."""
    gen = Table(
        "size",
        "customers / invoices / payments",
        "records",
        "seconds",
        "records/s",
        "peak RSS (MB)",
        title="generate(seed, size): firm generation (target: large in a few seconds, lean)",
    )
    for size in SIZES_MEASURED:
        r, s = _child("--size", size), SIZES[size]
        gen.add_row(
            size,
            f"{s.customers:,} / {s.invoices:,} / {s.payments:,}",
            f"{r['records']:,.0f}",
            f"{r['seconds']:.2f}",
            f"{r['rps']:,.0f}",
            f"{r['peak_rss_mb']:.0f}",
        )
    console.print(gen)
    served = _child("--serve", "large")
    table = Table(
        "list",
        "records",
        "calls (pageSize 1000)",
        "seconds",
        "records/s served + parsed",
        title=f"Xero sandbox, large firm, limits off: ready in {served['ready_s']:.1f} s, "
        f"sandbox peak RSS {served['sandbox_rss_mb']:.0f} MB (client in its own process)",
    )
    for kind in SERVED:
        r = served[kind]
        table.add_row(kind, f"{r['records']:,}", f"{r['calls']:,}", f"{r['seconds']:.1f}", f"{r['rps']:,.0f}")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--size", choices=sorted(SIZES))
    group.add_argument("--serve", choices=sorted(SIZES))
    group.add_argument("--client", nargs=2, metavar=("BASE_URL", "CA"))
    args = parser.parse_args()
    if args.size:
        print(json.dumps(measure(args.size)))
    elif args.serve:
        print(json.dumps(serve(args.serve)))
    else:
        print(json.dumps(client(*args.client)))
