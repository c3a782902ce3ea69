"""Sync a large Xero sandbox firm end to end: records/s, calls against the minimum, peak RSS, pacing.

The sandbox runs in a child process (so ccm's peak RSS is its own); ccm connects through the real OAuth flow
and syncs through xero-python, the mapping and the store, exactly as `ccm sync` does.
`python -m bench.xero_sync --mode throughput [--size large]` prints one JSON line:
- throughput: limits off; a full sync, then an incremental sync of the unchanged ledger, then the cost of
  decoding one 1,000-invoice page as raw JSON vs through the SDK's models.
- limits: Xero's real limits on an accelerated sandbox clock; a full sync counting 429s and the share of
  the allowed call rate it used.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.xero import connect
from adapters.xero.ledger import XeroLedger
from adapters.xero.pull import PAGE_SIZE
from adapters.xero.settings import XeroSettings, xero_settings
from connector import ledger as registry
from connector.config import Settings
from connector.logs import configure
from connector.mapping import CompiledMapping, load_mapping
from connector.model import Tenant
from connector.store import Store
from connector.sync import run_sync

CLIENT_ID, CLIENT_SECRET = "ccm-sandbox-client", "ccm-sandbox-secret"  # the sandbox's default app


def _serve(size: str, limits: bool, speed: float, conn: Any) -> None:
    """The child: start the sandbox, report where it is, serve until told to stop."""
    from adapters.sandbox.clock import SandboxClock
    from adapters.xero.sandbox import start

    handle = start(size=size, limits=limits, clock=SandboxClock(speed=speed))
    conn.send((handle.base_url, str(handle.ca_path), handle.clock.now().isoformat()))
    conn.recv()  # any message: stop
    handle.running.stop()


class SandboxProcess:
    def __init__(self, size: str, *, limits: bool, speed: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(size, limits, speed, child), daemon=True)
        self.process.start()
        self.base_url, ca_path, started = self.conn.recv()
        self.ca_path = Path(ca_path)
        self.speed = speed
        # The sandbox clock, mirrored here: it started at `started` and runs `speed` times real time.
        self._origin = time.monotonic()
        self._start = datetime.fromisoformat(started)

    def now(self) -> datetime:
        from datetime import timedelta

        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(timeout=30)


def _settings(sandbox: SandboxProcess, home: Path, *, pacing: bool = True) -> Settings:
    url = sandbox.base_url
    xero = XeroSettings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, login_url=url, identity_url=url,
                        api_url=url, ca_bundle=sandbox.ca_path, pacing=pacing)  # fmt: skip
    return Settings(data_dir=home, ledgers={"xero": xero})


def _connect(settings: Settings, store: Store) -> Tenant:
    auth = connect.begin(xero_settings(settings))
    tokens, orgs = connect.complete(
        xero_settings(settings), connect.consent_code(auth, xero_settings(settings)), auth.code_verifier
    )
    tenant = Tenant("bench", "Bench firm", "xero")
    from connector.oauth import TokenVault

    connect.save(store, TokenVault.open(store, settings), tenant, connect.choose(orgs), tokens)
    return tenant


class _Clock:
    """The sandbox clock as the adapter's services expect it (now() and speed)."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.now = sandbox.now
        self.speed = sandbox.speed


def _ledger(settings: Settings, store: Store, tenant: Tenant, sandbox: SandboxProcess) -> XeroLedger:
    from connector.ledger import AdapterContext, Services
    from connector.store.tenants import get_connection

    with store.read() as conn:
        link = get_connection(conn, tenant.id)
    assert link is not None
    return XeroLedger(AdapterContext(tenant.id, link.external_id, settings, Services(store, _Clock(sandbox))))


def _mapping() -> CompiledMapping:
    spec = registry.get("xero")
    return load_mapping(spec.mapping, schema=spec.schema)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _decode_costs(ledger: XeroLedger) -> dict[str, float]:
    """Seconds to decode one full page of invoices: raw JSON (what pull uses) vs the SDK's models."""
    from adapters.xero.pull import decode

    api = ledger.client.accounting
    response = ledger.client.call("invoices page 1", lambda: api.get_invoices(
        ledger.external_id, page=1, page_size=PAGE_SIZE, _preload_content=False))  # fmt: skip
    body = response.data
    t0 = time.perf_counter()
    records, _ = decode(body, "Invoices")
    raw_s = time.perf_counter() - t0

    class _Body:
        data = body
        text = body.decode("utf-8")

    t0 = time.perf_counter()
    ledger.client.api_client.deserialize(_Body(), "Invoices", api.get_model_finder())
    sdk_s = time.perf_counter() - t0
    return {"page_records": len(records), "raw_json_s": raw_s, "sdk_models_s": sdk_s}


def throughput(size: str) -> dict[str, Any]:
    sandbox = SandboxProcess(size, limits=False, speed=1.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            settings = _settings(sandbox, home, pacing=False)  # limits off at both ends
            store = Store.open(f"sqlite:///{home / 'ccm.db'}")
            tenant = _connect(settings, store)
            mapping = _mapping()
            ledger = _ledger(settings, store, tenant, sandbox)
            t0 = time.perf_counter()
            full = run_sync(store, tenant.id, ledger, mapping, full=True, clock=sandbox.now)
            full_s = time.perf_counter() - t0
            http_s = ledger.client.http_seconds
            read = {name: c["read"] for name, c in full.counts.items()}
            minimum = sum(max(1, math.ceil(n / PAGE_SIZE)) for n in read.values())
            t0 = time.perf_counter()
            again = run_sync(store, tenant.id, _ledger(settings, store, tenant, sandbox), mapping,
                             clock=sandbox.now)  # fmt: skip
            again_s = time.perf_counter() - t0
            costs = _decode_costs(_ledger(settings, store, tenant, sandbox))
            store.close()
    finally:
        sandbox.stop()
    records = sum(read.values())
    return {
        "size": size, "outcome": full.outcome, "records": records, "full_s": full_s,
        "records_per_s": records / full_s, "http_s": http_s, "ccm_records_per_s": records / (full_s - http_s),
        "calls": full.api_calls, "min_calls": minimum,
        "streams": len(read), "per_stream": read, "incremental_calls": again.api_calls,
        "incremental_s": again_s, "peak_rss_mb": _peak_rss_mb(), **costs,
    }  # fmt: skip


def limits(size: str, speed: float) -> dict[str, Any]:
    sandbox = SandboxProcess(size, limits=True, speed=speed)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            settings = _settings(sandbox, home)
            store = Store.open(f"sqlite:///{home / 'ccm.db'}")
            tenant = _connect(settings, store)
            mapping = _mapping()
            ledger = _ledger(settings, store, tenant, sandbox)
            t0, s0 = time.perf_counter(), sandbox.now()
            full = run_sync(store, tenant.id, ledger, mapping, full=True, clock=sandbox.now)
            real_s = time.perf_counter() - t0
            sandbox_minutes = (sandbox.now() - s0).total_seconds() / 60
            store.close()
    finally:
        sandbox.stop()
    calls = ledger.client.calls
    return {
        "size": size, "speed": speed, "outcome": full.outcome, "calls": calls,
        "throttled": ledger.client.throttled, "real_s": real_s, "sandbox_minutes": sandbox_minutes,
        "rate_used": calls / (sandbox_minutes * 60) if sandbox_minutes else 0.0,  # share of 60 calls/min
    }  # fmt: skip


def table(results: dict[str, dict[str, Any]]) -> None:
    """Print the measurements as tables (called by `python -m bench xero_sync`)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if "throughput" in results:
        r = results["throughput"]
        t = Table("records", "full (s)", "records/s", "sandbox wait (s)", "records/s excl. wait", "calls",
                  "minimum", "overhead", "incremental calls", "RSS (MB)",
                  title=f"Xero sandbox firm '{r['size']}', limits off: full sync, then the unchanged ledger "
                        "again (targets: ≥ 5,000 records/s, < 400 MB; minimum = ceil(records/1000) per "
                        "stream; incremental: one call per stream)")  # fmt: skip
        t.add_row(f"{r['records']:,}", f"{r['full_s']:.1f}", f"{r['records_per_s']:,.0f}",
                  f"{r['http_s']:.1f}", f"{r['ccm_records_per_s']:,.0f}", str(r["calls"]),
                  str(r["min_calls"]),
                  str(r["calls"] - r["min_calls"]), f"{r['incremental_calls']} ({r['streams']} streams)",
                  f"{r['peak_rss_mb']:.0f}")  # fmt: skip
        console.print(t)
        d = Table("records on the page", "raw JSON decode (ms)", "SDK model decode (ms)", "ratio",
                  title="decoding one page of invoices")  # fmt: skip
        d.add_row(str(r["page_records"]), f"{r['raw_json_s'] * 1000:.0f}", f"{r['sdk_models_s'] * 1000:.0f}",
                  f"{r['sdk_models_s'] / max(r['raw_json_s'], 1e-9):.0f}x")  # fmt: skip
        console.print(d)
    if "limits" in results:
        r = results["limits"]
        t = Table("calls", "429 answers", "sandbox minutes", "allowed rate used", "real seconds",
                  title=f"Xero's real limits (60/min) on a {r['speed']:g}x sandbox clock, firm '{r['size']}' "
                        "(targets: zero 429s, ≥ 90% of the allowed rate)")  # fmt: skip
        t.add_row(str(r["calls"]), str(r["throttled"]), f"{r['sandbox_minutes']:.1f}",
                  f"{r['rate_used'] * 100:.1f}%", f"{r['real_s']:.0f}")  # fmt: skip
        console.print(t)


def bench() -> None:
    """`python -m bench xero_sync`: both measurements, each in its own process, printed as tables."""
    import subprocess
    import sys

    results = {}
    for mode, extra in (("throughput", []), ("limits", ["--speed", "4"])):
        done = subprocess.run([sys.executable, "-m", "bench.xero_sync", "--mode", mode, *extra],
                              capture_output=True, text=True, check=True)  # fmt: skip
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    table(results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("throughput", "limits"), required=True)
    parser.add_argument("--size", default="large")
    parser.add_argument("--speed", type=float, default=4.0)
    args = parser.parse_args()
    configure("error")
    result = throughput(args.size) if args.mode == "throughput" else limits(args.size, args.speed)
    result["at"] = datetime.now(UTC).isoformat()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
