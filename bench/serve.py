"""One `ccm serve` process running 1,000 sandbox tenants' nightly runs: runs per minute, CPU s per run.

A Xero sandbox in a child process holds 1,000 small organisations (5 customers, 100 invoices, 50 payments
each) with Xero's real limits on; one consent connects them all, as a bookkeeper's Xero login does, so the
tenants share one rotating token set. Each tenant has had its first night already (its full sync, planning
and holds, run here through `run_night` at 20:00, when no reminder may go out). Then `ccm serve` runs as a
subprocess on the same clock with every tenant's night set a minute ahead: the steady state the target is
about, an incremental sync that finds nothing changed (one call per stream), planning that finds nothing
new, nothing to send. Figures come off the store (each night's claim and finish, the sync runs' calls) and
off /proc (the server's CPU and peak RSS).

`python -m bench.serve --tenants 1000 [--database postgresql://...]` prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from adapters.xero.settings import XeroSettings, xero_settings
from connector.clock import Clock
from connector.config import Settings
from connector.model import Tenant
from connector.oauth import TokenVault, load_key
from connector.store import Store
from connector.store.schema import nights, sync_runs

CLIENT_ID, CLIENT_SECRET = "ccm-sandbox-client", "ccm-sandbox-secret"  # the sandbox's default app
ORIGIN = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # a Monday evening in London: outside the send window
FIRST = "03:00"  # the tenants' night time while they are connected (moved before the measured night)
CCM = str(Path(sys.executable).parent / "ccm")


def _serve(orgs: int, spec: str, conn: Any) -> None:
    """The child: a Xero sandbox with `orgs` organisations on the shared clock, until told to stop."""
    from adapters.sandbox.clock import SandboxClock
    from adapters.sandbox.generator import FirmSize, generate
    from adapters.xero.sandbox import start

    clock = Clock.parse(spec)
    today = clock.now().date()
    firms = [
        generate(1000 + i, FirmSize(5, 100, 50), today=today, name=f"Firm {i:04d} Ltd") for i in range(orgs)
    ]
    handle = start(
        firms[0],
        extra_firms=firms[1:],
        clock=SandboxClock(clock.now(), clock.speed),
        limits=True,
        day_limit=5000,
    )
    conn.send((handle.base_url, str(handle.ca_path)))
    conn.recv()
    handle.stop()


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _connect(settings: Settings, store: Store, orgs: int) -> None:
    """One consent, every organisation a tenant sharing it (the connect page with every one picked)."""
    from adapters.xero import connect, flow
    from connector.flow import save_grant

    auth = connect.begin(xero_settings(settings))
    grant = flow.exchange(
        settings,
        {"code": connect.consent_code(auth, xero_settings(settings))},
        auth.code_verifier,
        Clock.parse(settings.serve.clock).now(),
    )
    assert len(grant.choices) == orgs, f"the consent reached {len(grant.choices)} organisations, not {orgs}"
    vault = TokenVault(store, load_key(settings), Clock.parse(settings.serve.clock).now)
    for i, choice in enumerate(sorted(grant.choices, key=lambda c: c.name)):
        tenant = Tenant(f"t{i:04d}", choice.name, "xero", "GBP", "Europe/London", "GB", FIRST)
        save_grant(store, vault, tenant, grant, choice)


def _first_nights(settings: Settings, store: Store, tenants: int, clock: Clock, workers: int = 4) -> float:
    """Every tenant's first night (full sync, planning, holds), as ccm runs it; returns the seconds taken."""
    from concurrent.futures import ThreadPoolExecutor

    from connector.logs import configure
    from connector.run.night import run_night

    configure("error")
    began = time.perf_counter()

    def one(tenant_id: str) -> None:
        summary = run_night(store, settings, tenant_id, now=clock.now(), clock=clock.now)
        if summary.stopped:
            raise SystemExit(f"bench.serve: {tenant_id}'s first night stopped: {summary.stopped}")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, [f"t{i:04d}" for i in range(tenants)]))
    return time.perf_counter() - began


def _night(store: Store, day: date) -> dict[str, Any]:
    with store.read() as conn:
        rows = conn.execute(select(nights).where(nights.c.night == day)).all()
        calls = conn.execute(
            select(func.coalesce(func.sum(sync_runs.c.api_calls), 0)).where(sync_runs.c.trigger == "night")
        ).scalar_one()
    done = [r for r in rows if r.state == "done"]
    return {
        "rows": len(rows),
        "done": len(done),
        "states": sorted({r.state for r in rows}),
        "first": min((r.started_at for r in done), default=None),
        "last": max((r.finished_at for r in done), default=None),
        "calls": int(calls),
    }


def _wait_done(store: Store, day: date, tenants: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _night(store, day)
        if seen["done"] >= tenants:
            return seen
        time.sleep(0.25)
    raise SystemExit(f"bench.serve: only {_night(store, day)['done']} of {tenants} nights of {day} finished")


def run(tenants: int, database: str | None) -> dict[str, Any]:
    clock = Clock(ORIGIN, time.time(), 1.0)  # real time, moved to a weekday evening: no sends
    spec = clock.spec()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    sandbox = context.Process(target=_serve, args=(tenants, spec, child), daemon=True)
    sandbox.start()
    base_url, ca_path = parent.recv()
    home = Path(tempfile.mkdtemp(prefix="ccm-bench-serve-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")} | {
        "CCM_HOME": str(home),
        "CCM_SERVE__CLOCK": spec,
        "CCM_SERVE__PORT": "0",
        "CCM_SERVE__POLL_MINUTES": "0",
        "CCM_XERO__CLIENT_ID": CLIENT_ID,
        "CCM_XERO__CLIENT_SECRET": CLIENT_SECRET,
        "CCM_XERO__LOGIN_URL": base_url,
        "CCM_XERO__IDENTITY_URL": base_url,
        "CCM_XERO__API_URL": base_url,
        "CCM_XERO__CA_BUNDLE": ca_path,
        "CCM_SMTP__PORT": "1",  # nothing may be sent at these hours; an attempt would fail loudly
    }
    if database:
        env["CCM_DATABASE_URL"] = database
    xero = XeroSettings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        login_url=base_url,
        identity_url=base_url,
        api_url=base_url,
        ca_bundle=Path(ca_path),
    )
    settings = Settings(data_dir=home, database_url=database, ledgers={"xero": xero}, serve={"clock": spec})  # type: ignore[arg-type]
    store = Store.open(settings.db_url)
    began = time.perf_counter()
    _connect(settings, store, tenants)
    connect_s = time.perf_counter() - began
    first_s = _first_nights(settings, store, tenants, clock)
    ahead = clock.now() + timedelta(seconds=20)  # time for the server to start and schedule everyone
    due = (ahead + timedelta(minutes=1)).replace(second=0, microsecond=0)
    _set_night_time(store, f"{due:%H:%M}")
    log = home / "serve.log"  # a file, not a pipe: one line per run would fill a pipe nobody reads
    with log.open("w") as sink:
        server = subprocess.Popen([CCM, "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        url = _url(log)
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        time.sleep(max(0.0, clock.to_real(due) - time.time()))
        cpu_before = _cpu(server.pid)
        steady = _wait_done(store, due.date(), tenants, timeout=900)
        cpu_after = _cpu(server.pid)
        peak = _peak_rss_mb(server.pid)
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        all_calls = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                        if line.startswith("ccm_api_calls_total{"))  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        parent.send("stop")
        sandbox.join(30)
        store.close()
    span = (steady["last"] - steady["first"]).total_seconds()
    return {
        "tenants": tenants,
        "backend": "postgresql" if database else "sqlite",
        "connect_s": connect_s,
        "first_nights_s": first_s,
        "runs_per_min": tenants / span * 60 if span > 0 else float("inf"),
        "span_s": span,
        "calls": steady["calls"],
        "all_calls": all_calls,
        "cpu_per_run_s": (cpu_after - cpu_before) / tenants,
        "peak_rss_mb": peak,
        "states": steady["states"],
    }


def _url(log: Path, timeout: float = 30) -> str:
    """The server's base URL, from its first line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "listening on " in text:
            return text.split("listening on ", 1)[1].split(";", 1)[0]
        time.sleep(0.1)
    raise SystemExit(f"bench.serve: the server did not start: {log.read_text()[-2000:]}")


def _set_night_time(store: Store, at: str) -> None:
    """Every tenant's night moves to `at`; the running server re-times their jobs within seconds."""
    from connector.store.schema import tenants

    with store.begin() as conn:
        conn.execute(tenants.update().values(night_time=at))


def table() -> None:
    """`python -m bench serve`: the table, on SQLite and on PostgreSQL (a schema of its own, then removed)."""
    from rich.console import Console
    from rich.table import Table

    from bench.reconcile import pg_database

    columns = ("backend", "tenants", "nightly runs/min", "CPU s per run", "sync calls (minimum)",
               "all API calls", "server peak RSS (MB)", "first nights in-process, 4 threads (s)")  # fmt: skip
    title = "one ccm serve, 1,000 Xero sandbox tenants, a night with nothing changed (target ≥ 300 runs/min)"
    shown = Table(*columns, title=title)
    for backend in ("sqlite", "postgresql"):
        args = [sys.executable, "-m", "bench.serve", "--tenants", "1000"]
        if backend == "sqlite":
            done = subprocess.run(args, capture_output=True, text=True, check=True)
        else:  # a schema of its own, removed afterwards
            with pg_database() as url:
                done = subprocess.run([*args, "--database", url], capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        shown.add_row(
            r["backend"], f"{r['tenants']:,}", f"{r['runs_per_min']:,.0f}", f"{r['cpu_per_run_s']:.3f}",
            f"{r['calls']:,} ({6 * r['tenants']:,})", f"{r['all_calls']:,.0f}", f"{r['peak_rss_mb']:.0f}",
            f"{r['first_nights_s']:.0f}",
        )  # fmt: skip
    Console(highlight=False, width=200).print(shown)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--database", default=None, help="PostgreSQL URL (default: SQLite)")
    opts = parser.parse_args()
    print(json.dumps(run(opts.tenants, opts.database), default=str))


if __name__ == "__main__":
    main()
