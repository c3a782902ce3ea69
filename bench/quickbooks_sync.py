"""The QuickBooks adapter end to end: a sandbox company in another process, ccm syncing it into SQLite.

`python -m bench.quickbooks_sync --size large` prints one JSON line: the full sync's records/s, its API
calls against the minimum (ceil(records/1000) per entity) and ccm's peak RSS; then the calls of an
incremental sync of the unchanged company. `--limits` runs against QBO's real limits (500/min, 10 in
flight) and reports the 429s ccm received; `--page-size` shrinks pages so pacing, not the data, binds.
The sandbox runs in a child process, so the RSS measured is ccm's own.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import resource
import secrets
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from cryptography.fernet import Fernet

from adapters.quickbooks import auth
from adapters.quickbooks.ledger import QuickBooksLedger
from adapters.quickbooks.settings import QuickBooksSettings
from connector import ledger as registry
from connector.config import Settings
from connector.ledger import AdapterContext, Services
from connector.logs import configure
from connector.mapping import load_mapping
from connector.model import Tenant
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.tenants import save_tenant
from connector.sync import run_sync

TENANT = "bench-qbo"


def _serve(size: str, limits: bool, pipe: Connection) -> None:
    """The child: a sandbox company, served until the parent says stop."""
    from adapters.quickbooks.sandbox import start

    sb = start(seed=1, size=size, limits=limits)
    pipe.send({"base_url": sb.base_url, "ca": str(sb.ca_path), "client_id": sb.client_id,
               "client_secret": sb.client_secret})  # fmt: skip
    pipe.recv()
    pipe.send(_peak_per_second(list(sb.api.arrivals)))  # measured where QuickBooks would count them
    sb.stop()


def _peak_per_second(arrivals: list[float]) -> int:
    """The most requests any one-second window [t, t + 1) at the sandbox held."""
    times = sorted(arrivals)
    peak, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


def _connect(qbo: QuickBooksSettings, store: Store, vault: TokenVault) -> str:
    """The real authorization-code flow against the sandbox; returns the realmId."""
    state = secrets.token_hex(8)
    url = auth.authorization_url(qbo, state)
    answer = requests.get(url, verify=str(qbo.ca_bundle), allow_redirects=False, timeout=30)
    callback = parse_qs(urlparse(answer.headers["location"]).query)
    with store.begin() as conn:
        save_tenant(conn, Tenant(TENANT, "Bench", "quickbooks"))
    realm = callback["realmId"][0]
    auth.complete(qbo, store, vault, TENANT, callback["code"][0], realm)
    return realm


def measure(size: str, limits: bool, page_size: int | None) -> dict[str, Any]:
    configure("warning")
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(size, limits, child), daemon=True)
    server.start()
    try:
        info = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            qbo = QuickBooksSettings(
                client_id=info["client_id"], client_secret=info["client_secret"],
                authorize_url=info["base_url"] + "/connect/oauth2",
                token_url=info["base_url"] + "/oauth2/v1/tokens/bearer",
                revoke_url=info["base_url"] + "/v2/oauth2/tokens/revoke", api_url=info["base_url"],
                ca_bundle=Path(info["ca"]),
            )  # fmt: skip
            settings = Settings(
                data_dir=Path(tmp), vault_key=Fernet.generate_key().decode(), ledgers={"quickbooks": qbo}
            )
            store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
            vault = TokenVault.open(store, settings)
            realm = _connect(qbo, store, vault)
            spec = registry.get("quickbooks")
            mapping = load_mapping(spec.mapping, schema=spec.schema)
            ledger = spec.factory(AdapterContext(TENANT, realm, settings, Services(store)))
            assert isinstance(ledger, QuickBooksLedger)
            if page_size:
                ledger.puller.page_size = page_size
            began = time.perf_counter()
            full = run_sync(store, TENANT, ledger, mapping, full=True)
            full_s = time.perf_counter() - began
            assert full.outcome == "ok", full.error
            read = {name: c["read"] for name, c in full.counts.items()}
            pages = sum(math.ceil(n / (page_size or 1000)) for n in read.values())
            fresh = spec.factory(AdapterContext(TENANT, realm, settings, Services(store)))
            again = run_sync(store, TENANT, fresh, mapping)
            assert again.outcome == "ok", again.error
            store.close()
    finally:
        parent.send("stop")
        peak = int(parent.recv()) if parent.poll(30) else -1
        server.join(timeout=30)
    records = sum(read.values())
    return {
        "size": size, "limits": limits, "records": records, "read": read, "full_s": full_s,
        "records_per_s": records / full_s, "calls": full.api_calls, "minimum": pages,
        "constant": full.api_calls - pages, "throttled": ledger.api.throttled,
        "paced_s": ledger.api._pacer.waited_s, "incremental_calls": again.api_calls, "peak_per_s": peak,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


RUNS = (  # (label, arguments)
    ("large, limits off", ["--size", "large"]),
    ("large, QBO's limits", ["--size", "large", "--limits"]),
    ("small, QBO's limits, 10-record pages", ["--size", "small", "--limits", "--page-size", "10"]),
)


def run() -> None:
    """`python -m bench quickbooks_sync`: each run in its own process, printed as one table."""
    import subprocess
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(
        "run", "records", "full sync (s)", "records/s", "queries", "minimum", "constant", "429s", "paced (s)",
        "most calls in a second", "unchanged re-sync calls", "peak RSS (MB)",
        title="QuickBooks sync: adapter + engine into SQLite, sandbox in another process "
        "(targets: >= 5,000 records/s, < 400 MB, 1 call unchanged, 0 429s, at most 10 calls in any second)",
    )  # fmt: skip
    for label, args in RUNS:
        done = subprocess.run([sys.executable, "-m", "bench.quickbooks_sync", *args], capture_output=True,
                              text=True, check=True)  # fmt: skip
        r = json.loads(done.stdout.strip().splitlines()[-1])
        table.add_row(
            label, f"{r['records']:,}", f"{r['full_s']:.1f}", f"{r['records_per_s']:,.0f}", str(r["calls"]),
            str(r["minimum"]), str(r["constant"]), str(r["throttled"]), f"{r['paced_s']:.0f}",
            str(r["peak_per_s"]), str(r["incremental_calls"]), f"{r['peak_rss_mb']:.0f}",
        )  # fmt: skip
    Console(highlight=False, width=200).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="large", choices=["demo", "small", "large"])
    parser.add_argument("--limits", action="store_true", help="enforce QBO's real limits in the sandbox")
    parser.add_argument("--page-size", type=int, default=None, help="records per query (default 1000)")
    args = parser.parse_args()
    print(json.dumps(measure(args.size, args.limits, args.page_size)))


if __name__ == "__main__":
    main()
