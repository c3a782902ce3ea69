"""Many firms, several processes: unchanged nights and first full syncs, SQLite beside PostgreSQL workers.

`python -m bench scale [--firms 5000] [--workers 1,2,4] [--full-firms 50] [--full-invoices 5000]
[--ledgers xero,quickbooks] [--backends sqlite,postgresql]` prints two markdown tables.

One sandbox per ledger runs in a child process and holds every firm at once: `--firms` small firms (5
customers, 100 invoices, 50 payments) and `--full-firms` firms of `--full-invoices` invoices, with the
ledger's real limits on (Xero: 60/min, 5 in flight, 5,000/day per organisation and 10,000/min per app;
QuickBooks: 10/s, 500/min, 10 in flight per company). Xero's organisations share one consent, as a
bookkeeper's login does; each QuickBooks company is connected by its own authorization-code flow.

Stores are a SQLite file, or a PostgreSQL schema of their own (CCM_BENCH_DATABASE_URL, else
CCM_TEST_DATABASE_URL, else the local server), removed afterwards:

- **unchanged nights**: every small firm is connected and has had its first night (run in this process, four
  threads, at 20:00 London, when nothing may be sent, its limits counted in memory) on a SQLite store, which
  is then copied into PostgreSQL with `ccm db migrate-to-postgres`'s code; then the measured processes
  start with every firm's night a minute ahead: on SQLite one `ccm serve`, on PostgreSQL one
  `ccm serve --no-worker` and N `ccm worker`s (or, where `ccm worker` does not exist, N `ccm serve`s; the
  table says which). The PostgreSQL rows share one store: before each, that date's `nights` rows are
  removed, so every worker count runs the same night on the same unchanged ledger.
- **first full syncs**: the big firms are connected to a fresh store and their first night (the full sync,
  planning and holds) is what the measured processes run.

Figures: nights per minute (first claim to last finish, off the `nights` table); the sync's API calls
(`sync_runs`) against the minimum (one call per stream unchanged; one per 1,000 records per stream on a full
sync) and every call the sandbox answered; the sandbox's 429s; the measured processes' CPU seconds per night
and each one's peak RSS (VmHWM, /proc); the store's size afterwards (SQLite file, or the schema); database
time per night, timed in every measured process around each SQLAlchemy cursor execute (a `sitecustomize`
on PYTHONPATH; pg_stat_statements needs a server restart to load, so it is not used; procrastinate's own
queries go through psycopg directly and are not in the figure).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

CLIENT_ID, CLIENT_SECRET = "ccm-sandbox-client", "ccm-sandbox-secret"  # both sandboxes' default app
ORIGIN = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # a Monday evening in London: outside the send window
FIRST = "03:00"  # the night time while firms are connected (moved before the measured night)
CCM = str(Path(sys.executable).parent / "ccm")
SMALL = (5, 100, 50)  # customers, invoices, payments of an unchanged-night firm
SMALL_PREFIX, FULL_PREFIX = "Small", "Full"
MINIMUM_UNCHANGED = {"xero": 6, "quickbooks": 1}  # calls of a sync that finds nothing: one per stream / CDC
PAGE = 1000  # records per page, both adapters

SITECUSTOMIZE = '''
"""bench.scale: time every SQLAlchemy cursor execute of this process into BENCH_DBTIME_DIR/<pid>.json."""
import atexit, json, os, threading, time

_DIR = os.environ.get("BENCH_DBTIME_DIR")
if _DIR:
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:
        _DIR = None
if _DIR:
    _state = {"seconds": 0.0, "statements": 0}
    _lock = threading.Lock()

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        started = conn.info.get("bench_started")
        if started:
            spent = time.perf_counter() - started.pop()
            with _lock:
                _state["seconds"] += spent
                _state["statements"] += 1

    def _dump():
        path = os.path.join(_DIR, f"{os.getpid()}.json")
        with _lock:
            text = json.dumps(_state)
        with open(path + ".tmp", "w") as out:
            out.write(text)
        os.replace(path + ".tmp", path)

    def _loop():
        while True:
            time.sleep(0.5)
            _dump()

    threading.Thread(target=_loop, name="bench-dbtime", daemon=True).start()
    atexit.register(_dump)
'''


# ---- the sandbox child ------------------------------------------------------------------------------------
def _sandbox(
    ledger: str, firms: int, full_firms: int, full_invoices: int, spec: str, conn: Connection
) -> None:
    """The child: one sandbox of `ledger` holding every firm, on the shared clock, answering the parent."""
    from adapters.sandbox.clock import SandboxClock
    from adapters.sandbox.generator import FirmSize, generate
    from connector.clock import Clock

    clock = Clock.parse(spec)
    today = clock.now().date()
    began = time.perf_counter()
    made = [generate(1000 + i, FirmSize(*SMALL), today=today, name=f"{SMALL_PREFIX} {i:05d} Ltd")
            for i in range(firms)]  # fmt: skip
    big = FirmSize(max(5, full_invoices // 10), full_invoices, full_invoices * 4 // 5)
    made += [
        generate(500_000 + i, big, today=today, name=f"{FULL_PREFIX} {i:03d} Ltd") for i in range(full_firms)
    ]
    generated_s = time.perf_counter() - began
    sandbox_clock = SandboxClock(clock.now(), clock.speed)
    if ledger == "xero":
        from adapters.xero.sandbox import start as start_xero

        xero = start_xero(made[0], extra_firms=made[1:], clock=sandbox_clock, limits=True, day_limit=5000)
        base_url, ca_path = xero.base_url, str(xero.ca_path)
        companies: list[tuple[str, str]] = [(tid, b.firm_name) for tid, b in xero.books.items()]

        def counts() -> tuple[int, int]:
            return xero.accounting.calls, xero.accounting.refused

        stop = xero.stop
    else:
        from adapters.quickbooks.sandbox import start as start_qbo

        qbo = start_qbo(made[0], extra_firms=made[1:], clock=sandbox_clock, limits=True)
        base_url, ca_path = qbo.base_url, str(qbo.ca_path)
        companies = [(realm, api.company.firm.name) for realm, api in qbo.apis.items()]

        def counts() -> tuple[int, int]:
            apis = qbo.apis.values()
            return sum(sum(a.calls.values()) for a in apis), sum(a.refused for a in apis)

        stop = qbo.stop
    del made  # the sandbox keeps what it serves; the generated tuples may go
    conn.send({"base_url": base_url, "ca": ca_path, "companies": companies, "generated_s": generated_s,
               "rss_mb": _peak_rss_mb(os.getpid())})  # fmt: skip
    while True:
        asked = conn.recv()
        if asked == "stop":
            break
        calls, refused = counts()
        conn.send({"calls": calls, "refused": refused, "rss_mb": _peak_rss_mb(os.getpid())})
    stop()


# ---- /proc --------------------------------------------------------------------------------------------
def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- one row ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sandbox:
    """The parent's view of the sandbox child."""

    ledger: str
    base_url: str
    ca: str
    companies: tuple[tuple[str, str], ...]  # (tenant id or realm, name)
    pipe: Connection
    spec: str  # the clock both the sandbox and ccm run on

    def counts(self) -> dict[str, Any]:
        self.pipe.send("counts")
        answer: dict[str, Any] = self.pipe.recv()
        return answer


def _env(sandbox: Sandbox, home: Path, spec: str, database: str | None, dbtime: Path) -> dict[str, str]:
    from adapters.sandbox.handle import settings_env

    site = home / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")} | {
        "CCM_HOME": str(home), "CCM_SERVE__CLOCK": spec, "CCM_SERVE__PORT": "0",
        "CCM_SERVE__POLL_MINUTES": "0",
        "CCM_SMTP__PORT": "1",  # nothing may be sent at these hours; an attempt would fail loudly
        "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p),
        "BENCH_DBTIME_DIR": str(dbtime),
    }  # fmt: skip
    env |= settings_env(sandbox.ledger, _ledger_settings(sandbox))
    if database:
        env["CCM_DATABASE_URL"] = database
    return env


def _ledger_settings(sandbox: Sandbox) -> Any:
    """The ledger's section of ccm's settings for the sandbox: its default app, paced (its limits are on)."""
    from adapters.quickbooks.sandbox import client_settings as quickbooks
    from adapters.xero.sandbox import client_settings as xero

    if sandbox.ledger == "xero":
        return xero(sandbox.base_url, Path(sandbox.ca))
    return quickbooks(sandbox.base_url, Path(sandbox.ca), CLIENT_ID, CLIENT_SECRET, pacing=True)


def _settings(sandbox: Sandbox, home: Path, spec: str, database: str | None) -> Any:
    from connector.config import Settings

    extra: dict[str, Any] = {"ledgers": {sandbox.ledger: _ledger_settings(sandbox)}}
    if "limits" in Settings.model_fields:  # this process's first nights keep their limits to themselves
        extra["limits"] = {"backend": "memory"}  # (its pacers' stamps are not the measured processes' clock)
    return Settings(data_dir=home, database_url=database, serve={"clock": spec}, **extra)  # type: ignore[arg-type]


def _connect(sandbox: Sandbox, settings: Any, store: Any, prefix: str, now: Any) -> list[str]:
    """Connect every company whose name starts with `prefix`; returns ccm's tenant ids, in name order."""
    from connector.model import Tenant
    from connector.oauth import TokenVault, load_key

    vault = TokenVault(store, load_key(settings), now)
    wanted = sorted((name, ident) for ident, name in sandbox.companies if name.startswith(prefix))
    ids = [f"{prefix[0].lower()}{i:05d}" for i in range(len(wanted))]
    if sandbox.ledger == "xero":
        from adapters.xero import connect, flow
        from adapters.xero.settings import xero_settings
        from connector.flow import save_grant

        xero = xero_settings(settings)
        auth = connect.begin(xero)
        code = connect.consent_code(auth, xero)
        grant = flow.exchange(settings, {"code": code}, auth.code_verifier, now())
        by_name = {c.name: c for c in grant.choices}
        for tenant_id, (name, _) in zip(ids, wanted, strict=True):
            tenant = Tenant(tenant_id, name, "xero", "GBP", "Europe/London", "GB", FIRST)
            save_grant(store, vault, tenant, grant, by_name[name])
        return ids
    import requests

    from adapters.quickbooks import auth as qbo_auth
    from adapters.quickbooks.settings import quickbooks_settings
    from connector.store.tenants import save_tenant

    qbo = quickbooks_settings(settings)
    http = requests.Session()
    http.verify, http.trust_env = sandbox.ca, False
    for tenant_id, (name, realm) in zip(ids, wanted, strict=True):
        url = qbo_auth.authorization_url(qbo, f"s{tenant_id}") + f"&realmId={realm}"
        answer = http.get(url, allow_redirects=False, timeout=30)
        callback = parse_qs(urlparse(answer.headers["location"]).query)
        with store.begin() as conn:
            save_tenant(conn, Tenant(tenant_id, name, "quickbooks", "GBP", "Europe/London", "GB", FIRST))
        qbo_auth.complete(qbo, store, vault, tenant_id, callback["code"][0], callback["realmId"][0])
    return ids


def _first_nights(store: Any, settings: Any, ids: Sequence[str], now: Any) -> float:
    """Every firm's first night (full sync, planning, holds) in this process, four threads; seconds taken."""
    from concurrent.futures import ThreadPoolExecutor

    from connector.run.night import run_night

    began = time.perf_counter()

    def one(tenant_id: str) -> None:
        summary = run_night(store, settings, tenant_id, now=now(), clock=now)
        if summary.stopped:
            raise SystemExit(f"bench.scale: {tenant_id}'s first night stopped: {summary.stopped}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, ids))
    return time.perf_counter() - began


def _has(command: Sequence[str], flag: str) -> bool:
    done = subprocess.run([CCM, *command, "--help"], capture_output=True, text=True, check=False)
    return done.returncode == 0 and (not flag or flag in done.stdout)


def _commands(backend: str, workers: int) -> tuple[list[list[str]], str]:
    """The processes to start and how the row names them."""
    if backend == "sqlite":
        return [["serve"]], "1 ccm serve"
    if _has(["worker"], "") and _has(["serve"], "--no-worker"):
        return [["serve", "--no-worker"]] + [
            ["worker"]
        ] * workers, f"ccm serve --no-worker + {workers} ccm worker"
    return [["serve"]] * workers, f"{workers} ccm serve (no `ccm worker` yet)"


@contextmanager
def _processes(commands: Sequence[Sequence[str]], env: dict[str, str], home: Path) -> Iterator[list[Any]]:
    started: list[subprocess.Popen[str]] = []
    try:
        for i, command in enumerate(commands):
            log = (home / f"process-{i}.log").open("w")  # a file, not a pipe: nobody reads it while running
            started.append(subprocess.Popen([CCM, *command], env=env, stdout=log, stderr=subprocess.STDOUT,
                                            text=True))  # fmt: skip
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _nights(store: Any, day: date, since: datetime) -> dict[str, Any]:
    from sqlalchemy import func, select

    from connector.store.schema import nights, sync_runs

    with store.read() as conn:
        rows = conn.execute(select(nights).where(nights.c.night == day)).all()
        runs = conn.execute(select(sync_runs.c.api_calls, sync_runs.c.counts, sync_runs.c.kind)
                            .where(sync_runs.c.started_at >= since)).all()  # fmt: skip
        failed = conn.execute(select(func.count()).select_from(nights).where(nights.c.state == "failed"))
    done = [r for r in rows if r.state == "done"]
    minimum = 0
    for run in runs:
        counts = run.counts if isinstance(run.counts, dict) else json.loads(run.counts or "{}")
        minimum += sum(max(1, math.ceil(int(c.get("read", 0)) / PAGE)) for c in counts.values()
                       if isinstance(c, dict))  # fmt: skip
    return {
        "rows": len(rows), "done": len(done), "failed": int(failed.scalar_one()),
        "states": sorted({r.state for r in rows}),
        "first": min((r.started_at for r in done), default=None),
        "last": max((r.finished_at for r in done), default=None),
        "calls": sum(int(r.api_calls or 0) for r in runs), "full_minimum": minimum,
    }  # fmt: skip


def _store_mb(store: Any) -> float:
    """The store's size: the SQLite file (with its WAL), or the PostgreSQL schema's tables and indexes."""
    from sqlalchemy import text

    if store.backend == "sqlite":
        path = Path(str(store.engine.url.database))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 2**20
    with store.read() as conn:
        size = conn.execute(text(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )).scalar_one()  # fmt: skip
    return float(size) / 2**20


def _dbtime(folder: Path, pids: set[int]) -> tuple[float, int]:
    seconds, statements = 0.0, 0
    for path in folder.glob("*.json"):
        if int(path.stem) in pids:
            with_ = json.loads(path.read_text())
            seconds += with_["seconds"]
            statements += with_["statements"]
    return seconds, statements


def _set_night_time(store: Any, at: str) -> None:
    from connector.store.schema import tenants

    with store.begin() as conn:
        conn.execute(tenants.update().values(night_time=at))


@dataclass(frozen=True)
class Prepared:
    """A store with the phase's firms connected (and, for unchanged nights, their first night run)."""

    sandbox: Sandbox
    phase: str
    backend: str
    database: str | None
    spec: str
    home: Path
    settings: Any
    store: Any
    ids: tuple[str, ...]
    connect_s: float
    first_nights_s: float


@contextmanager
def prepared(
    sandbox: Sandbox, phase: str, backend: str, database: str | None, spec: str
) -> Iterator[Prepared]:
    from connector.clock import Clock
    from connector.logs import configure
    from connector.store import Store

    configure("error")
    clock = Clock.parse(spec)
    home = Path(tempfile.mkdtemp(prefix="ccm-bench-scale-"))
    settings = _settings(sandbox, home, spec, database)
    store = Store.open(settings.db_url)
    try:
        began = time.perf_counter()
        ids = _connect(
            sandbox, settings, store, SMALL_PREFIX if phase == "nights" else FULL_PREFIX, clock.now
        )
        connect_s = time.perf_counter() - began
        first_s = _first_nights(store, settings, ids, clock.now) if phase == "nights" else 0.0
        yield Prepared(sandbox, phase, backend, database, spec, home, settings, store, tuple(ids), connect_s,
                       first_s)  # fmt: skip
    finally:
        store.close()
        shutil.rmtree(home, ignore_errors=True)


def measure(ready: Prepared, workers: int) -> dict[str, Any]:
    """The measured processes start with every firm's night a minute ahead; one night of every firm.

    A store measured before has that date's `nights` rows removed first, so the same night runs again on
    the same (unchanged) ledger and the same local date: every row does the same work.
    """
    from sqlalchemy import delete

    from connector.clock import Clock
    from connector.store.schema import nights

    sandbox, store, ids, home = ready.sandbox, ready.store, ready.ids, ready.home
    clock = Clock.parse(ready.spec)
    commands, label = _commands(ready.backend, workers)
    ahead = clock.now() + timedelta(seconds=25)  # time for the processes to start and schedule everyone
    due = (ahead + timedelta(minutes=1)).replace(second=0, microsecond=0)
    with store.begin() as conn:
        conn.execute(delete(nights).where(nights.c.night == due.date(), nights.c.due_at > ORIGIN))
    _set_night_time(store, f"{due:%H:%M}")
    dbtime = home / f"dbtime-{ready.backend}-{workers}"
    dbtime.mkdir()
    env = _env(sandbox, home, ready.spec, ready.database, dbtime)
    since = clock.now().replace(microsecond=0) - timedelta(seconds=1)
    with _processes(commands, env, home) as procs:
        pids = {p.pid for p in procs}
        time.sleep(max(0.0, clock.to_real(due) - time.time() - 1))
        before_db, before = _dbtime(dbtime, pids), sandbox.counts()
        cpu_before = sum(_cpu_s(p.pid) for p in procs)
        deadline = time.monotonic() + max(600.0, len(ids) * 0.5)
        while True:
            seen = _nights(store, due.date(), since)
            if seen["done"] + seen["failed"] >= len(ids):
                break
            dead = [p.args for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join((home / f"process-{i}.log").read_text()[-1500:] for i in range(len(procs)))
                raise SystemExit(
                    f"bench.scale: {seen['done']} of {len(ids)} nights done; exited {dead}\n{logs}"
                )
            time.sleep(0.5)
        time.sleep(1.0)  # one more dump of every process's database time
        after_db, after = _dbtime(dbtime, pids), sandbox.counts()
        cpu = sum(_cpu_s(p.pid) for p in procs) - cpu_before
        rss = [_peak_rss_mb(p.pid) for p in procs]
    span = (seen["last"] - seen["first"]).total_seconds() if seen["first"] else float("nan")
    firms = len(ids)
    return {
        "ledger": sandbox.ledger, "phase": ready.phase, "backend": ready.backend, "workers": workers,
        "processes": label, "firms": firms, "done": seen["done"], "failed": seen["failed"],
        "connect_s": ready.connect_s, "first_nights_s": ready.first_nights_s, "span_s": span,
        "nights_per_min": firms / span * 60 if span > 0 else 0.0, "sync_calls": seen["calls"],
        "minimum": (MINIMUM_UNCHANGED[sandbox.ledger] * firms if ready.phase == "nights"
                    else seen["full_minimum"]),
        "sandbox_calls": after["calls"] - before["calls"], "refused": after["refused"] - before["refused"],
        "rss_mb": rss, "db_s_per_night": (after_db[0] - before_db[0]) / firms,
        "statements_per_night": (after_db[1] - before_db[1]) / firms, "sandbox_rss_mb": after["rss_mb"],
        "store_mb": _store_mb(store), "cpu_s_per_night": cpu / firms,
    }  # fmt: skip


# ---- the whole bench ----------------------------------------------------------------------------------
@contextmanager
def sandbox_of(ledger: str, firms: int, full_firms: int, full_invoices: int) -> Iterator[Sandbox]:
    from connector.clock import Clock

    spec = Clock(ORIGIN, time.time(), 1.0).spec()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    proc = context.Process(target=_sandbox, args=(ledger, firms, full_firms, full_invoices, spec, child),
                           daemon=True)  # fmt: skip
    proc.start()
    try:
        info = parent.recv()
        up = f"{len(info['companies']):,} companies, generated in {info['generated_s']:.0f} s"
        print(f"bench.scale: {ledger} sandbox up: {up}, {info['rss_mb']:.0f} MB", file=sys.stderr)
        yield Sandbox(
            ledger, info["base_url"], info["ca"], tuple(map(tuple, info["companies"])), parent, spec
        )
    finally:
        parent.send("stop")
        proc.join(30)


@contextmanager
def _database(backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    from bench.reconcile import pg_database

    if os.environ.get("CCM_BENCH_DATABASE_URL"):
        os.environ["CCM_TEST_DATABASE_URL"] = os.environ["CCM_BENCH_DATABASE_URL"]
    with pg_database() as url:
        yield url


@contextmanager
def copied_to_postgresql(ready: Prepared, url: str) -> Iterator[Prepared]:
    """The prepared SQLite store copied into PostgreSQL by `ccm db migrate-to-postgres`'s own code: the same
    firms after the same first nights, without preparing them a second time (at 5,000 firms that is most of
    the bench's time), and the copy itself exercised at that size."""
    from dataclasses import replace

    from connector.store import Store, copy

    began = time.perf_counter()
    ends = copy.prepare(ready.settings.db_url, url)
    try:
        tables = copy.copy(ends)
    finally:
        ends.dispose()
    if not copy.rows_equal(tables):
        raise SystemExit(f"bench.scale: the copy into PostgreSQL differs: {tables}")
    rows = sum(t.postgresql_rows or 0 for t in tables if not t.note)
    took = time.perf_counter() - began
    print(f"bench.scale: copied {rows:,} rows into PostgreSQL in {took:.0f} s", file=sys.stderr, flush=True)
    settings = _settings(ready.sandbox, ready.home, ready.spec, url)
    store = Store.open(settings.db_url)
    try:
        yield replace(ready, backend="postgresql", database=url, settings=settings, store=store)
    finally:
        store.close()


def run(opts: argparse.Namespace) -> list[dict[str, Any]]:
    """Per ledger one sandbox; unchanged nights on one store prepared on SQLite and copied into PostgreSQL
    (PostgreSQL's measured with each worker count in turn); first full syncs on a fresh store per row."""
    plan = [("sqlite", 1)] if "sqlite" in opts.backends else []
    plan += [("postgresql", n) for n in opts.workers] if "postgresql" in opts.backends else []
    rows = []

    def keep(r: dict[str, Any]) -> None:
        print(json.dumps(r), file=sys.stderr, flush=True)
        rows.append(r)

    for ledger in opts.ledgers:
        with sandbox_of(ledger, opts.firms, opts.full_firms, opts.full_invoices) as sandbox:
            with ExitStack() as stack:
                ready = stack.enter_context(prepared(sandbox, "nights", "sqlite", None, sandbox.spec))
                on = {"sqlite": ready}
                if "postgresql" in opts.backends:
                    pg_url = stack.enter_context(_database("postgresql")) or ""  # PostgreSQL's is never None
                    on["postgresql"] = stack.enter_context(copied_to_postgresql(ready, pg_url))
                for backend, workers in plan:
                    keep(measure(on[backend], workers))
            for backend, workers in plan if opts.full_firms else ():
                with (
                    _database(backend) as url,
                    prepared(sandbox, "full", backend, url, sandbox.spec) as full,
                ):
                    keep(measure(full, workers))
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    heads = ("ledger", "store", "processes", "firms", "nights/min", "CPU s per night", "sync calls (minimum)",
             "API calls", "429s", "peak RSS per process (MB)", "DB time per night (ms)",
             "statements per night", "store size (MB)", "sandbox RSS (MB)")  # fmt: skip
    out = []
    for phase, title in (("nights", "Unchanged nights"), ("full", "First full syncs")):
        chosen = [r for r in rows if r["phase"] == phase]
        if not chosen:
            continue
        out += [f"**{title}**", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for r in chosen:
            rss = " / ".join(f"{m:.0f}" for m in r["rss_mb"])
            out.append("| " + " | ".join((
                r["ledger"], r["backend"], r["processes"], f"{r['firms']:,}" + (
                    f" ({r['failed']} failed)" if r["failed"] else ""),
                f"{r['nights_per_min']:,.0f}", f"{r.get('cpu_s_per_night', float('nan')):.3f}",
                f"{r['sync_calls']:,} ({r['minimum']:,})",
                f"{r['sandbox_calls']:,}", f"{r['refused']:,}", rss, f"{r['db_s_per_night'] * 1000:.1f}",
                f"{r['statements_per_night']:.0f}", f"{r.get('store_mb', 0):.0f}",
                f"{r['sandbox_rss_mb']:.0f}",
            )) + " |")  # fmt: skip
        out.append("")
    return "\n".join(out)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench scale", description="many firms, several processes"
    )
    parser.add_argument("--firms", type=int, default=5000, help="small firms for unchanged nights (5000)")
    parser.add_argument("--workers", default="1,2,4", help="PostgreSQL worker counts (1,2,4)")
    parser.add_argument("--full-firms", type=int, default=50, help="firms for first full syncs (50; 0: none)")
    parser.add_argument("--full-invoices", type=int, default=5000, help="invoices of each of those (5000)")
    parser.add_argument("--ledgers", default="xero,quickbooks")
    parser.add_argument("--backends", default="sqlite,postgresql")
    opts = parser.parse_args(list(argv))
    opts.workers = [int(n) for n in opts.workers.split(",") if n]
    opts.ledgers = [n for n in opts.ledgers.split(",") if n]
    opts.backends = [n for n in opts.backends.split(",") if n]
    bad = [n for n in opts.ledgers if n not in MINIMUM_UNCHANGED] + [
        n for n in opts.backends if n not in ("sqlite", "postgresql")
    ]
    if bad or opts.firms < 1 or any(n < 1 for n in opts.workers):
        parser.error(f"bad value(s): {', '.join(bad) or '--firms and --workers must be at least 1'}")
    return opts


def table(argv: Sequence[str] = ()) -> None:
    """`python -m bench scale [options]`: the tables, as markdown."""
    print(markdown(run(parse(argv))), flush=True)


if __name__ == "__main__":
    table(sys.argv[1:])
