"""Ledger limits shared by every process, on PostgreSQL and on Redis (connector/ratelimits).

The backends' window arithmetic (asked of the in-process backend too: its answers must be theirs) and
in-flight leases, then real processes: three syncs of three Xero firms
of one app against a sandbox whose app-wide minute is lowered keep under it together (the sandbox refuses
none), and two syncs of one QuickBooks company keep its per-realm limits (again none refused).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from adapters.quickbooks import auth as qbo_auth
from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.quickbooks.pacing import Pacer as QboPacer
from adapters.quickbooks.settings import QuickBooksSettings
from adapters.sandbox.generator import FirmSize
from adapters.xero import connect
from adapters.xero import sandbox as xero_sandbox
from connector import ratelimits
from connector.config import LimitsSettings, Settings
from connector.model import Tenant
from connector.oauth import TokenVault, load_key
from connector.ratelimits import Backend, Check
from connector.ratelimits.memory import MemoryBackend
from connector.ratelimits.pgstore import PostgresBackend
from connector.ratelimits.redisstore import RedisBackend
from connector.store import Store
from connector.store.tenants import save_tenant
from tests.clock import NOW
from tests.conftest import PG_URL, pg_schema, unavailable
from tests.serve.harness import SimClock, clean_env

REDIS_URL = "redis://127.0.0.1:6379/0"
APP_LIMIT = 8  # the sandbox's app-wide calls a minute, lowered from Xero's 10,000
FIRM = FirmSize(6, 100, 40)
ROOT = Path(__file__).resolve().parent.parent


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        unavailable(f"Redis: none at {REDIS_URL}")


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of the test's own, its Redis keys deleted afterwards."""
    chosen = f"test-{uuid.uuid4().hex[:12]}"
    yield chosen
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        for key in client.scan_iter(f"{chosen}:*"):
            client.delete(key)
    except redis.RedisError:
        pass


@contextmanager
def _postgresql_schema() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PostgreSQL: set CCM_TEST_DATABASE_URL to run the shared-limits tests on it (CI does)")
    with pg_schema(PG_URL) as url:
        yield url


@pytest.fixture(params=["postgresql", "redis"])
def where(request: pytest.FixtureRequest, prefix: str) -> Iterator[dict[str, str]]:
    """The shared backend's settings (CCM_* names): a PostgreSQL schema of its own, or Redis with `prefix`."""
    if request.param == "postgresql":
        with _postgresql_schema() as url:
            yield {"CCM_DATABASE_URL": url, "CCM_LIMITS__PREFIX": prefix}
        return
    _redis_or_skip()
    yield {"CCM_LIMITS__REDIS_URL": REDIS_URL, "CCM_LIMITS__PREFIX": prefix}


@pytest.fixture
def backend(where: dict[str, str]) -> Iterator[Backend]:
    """A shared backend, from the settings `where` names."""
    prefix = where["CCM_LIMITS__PREFIX"]
    made: Backend = (
        RedisBackend(REDIS_URL, prefix)
        if "CCM_LIMITS__REDIS_URL" in where
        else PostgresBackend(where["CCM_DATABASE_URL"], prefix)
    )
    yield made
    made.close()


@pytest.fixture(params=["memory", "postgresql", "redis"])
def windows(request: pytest.FixtureRequest, prefix: str) -> Iterator[Backend]:
    """Every backend that counts windows, the in-process one too (the pacers without a shared store, and the
    sandboxes, count in it): each must give the same answers to the same questions."""
    made: Backend
    if request.param == "memory":
        made = MemoryBackend()
    elif request.param == "redis":
        _redis_or_skip()
        made = RedisBackend(REDIS_URL, prefix)
    else:
        with _postgresql_schema() as url:
            made = PostgresBackend(url, prefix)
            yield made
            made.close()
        return
    yield made
    made.close()


# ---- the backends' arithmetic -------------------------------------------------------------------------------
def test_a_sliding_window_admits_its_limit_then_waits_for_the_oldest_start_to_leave(windows: Backend) -> None:
    check = Check("tenant-a:minute", ((3, 60.0),))
    assert [windows.admit([check], 1000.0).admitted for _ in range(3)] == [True, True, True]
    refused = windows.admit([check], 1010.0)
    assert refused.key == "tenant-a:minute"
    assert refused.wait == pytest.approx(50.0, abs=0.01)  # the first start leaves the window at 1060
    assert not windows.admit([check], 1059.9).admitted
    assert windows.admit([check], 1010.0 + refused.wait).admitted
    assert windows.admit([Check("tenant-b:minute", ((3, 60.0),))], 1010.0).admitted  # keys are apart


def test_a_call_must_fit_the_second_and_the_minute_of_its_key(windows: Backend) -> None:
    check = Check("realm", ((2, 1.1), (5, 60.0)))
    starts: list[float] = []
    now = 0.0
    while len(starts) < 6:
        verdict = windows.admit([check], now)
        if verdict.admitted:
            starts.append(now)
        else:
            now += verdict.wait
    assert starts[:2] == [0.0, 0.0]
    assert starts[2] == pytest.approx(1.1, abs=0.01)  # two a second
    assert starts[5] == pytest.approx(60.0, abs=0.01)  # five a minute: the sixth waits for the first
    for start in starts:
        assert sum(1 for s in starts if start <= s < start + 1.1) <= 2


def test_a_fixed_day_window_ends_at_utc_midnight(windows: Backend) -> None:
    day = Check("tenant-a:day", ((2, 86_400.0),), fixed=True)
    evening = datetime(2026, 3, 2, 23, 59, 58, tzinfo=UTC).timestamp()
    assert windows.admit([day], evening).admitted
    assert windows.admit([day], evening + 1).admitted
    refused = windows.admit([day], evening + 1)
    assert refused.wait == pytest.approx(1.0, abs=0.01)  # until midnight, not a day after the first call
    assert windows.admit([day], evening + 2).admitted


def test_a_refused_check_names_its_key_and_every_check_must_fit(windows: Backend) -> None:
    tenant, app = Check("t1:minute", ((5, 60.0),)), Check("app:minute", ((2, 60.0),))
    assert windows.admit([tenant, app], 0.0).admitted
    assert windows.admit([Check("t2:minute", ((5, 60.0),)), app], 0.0).admitted
    refused = windows.admit([Check("t3:minute", ((5, 60.0),)), app], 1.0)
    assert refused.key == "app:minute"
    assert refused.wait == pytest.approx(59.0, abs=0.01)


def test_in_flight_places_are_capped_released_and_expire(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = backend.lease("t1:inflight", 2), backend.lease("t1:inflight", 2)
    assert first and second
    assert backend.lease("t1:inflight", 2) is None
    assert backend.lease("t2:inflight", 2) is not None  # another tenant's places
    backend.release("t1:inflight", first)
    assert backend.lease("t1:inflight", 2) is not None
    # a process that died mid-call never releases: its place comes back when the lease expires
    for module in ("pgstore", "redisstore"):
        monkeypatch.setattr(f"connector.ratelimits.{module}.LEASE_SECONDS", 0.2)
    dead = [backend.lease("t3:inflight", 2), backend.lease("t3:inflight", 2)]
    assert all(dead) and backend.lease("t3:inflight", 2) is None
    time.sleep(0.3)
    assert backend.lease("t3:inflight", 2) is not None


def test_a_window_that_a_longer_one_makes_moot_is_dropped() -> None:
    rates = Check("realm", ((10, 1.1), (5, 60.0))).rates()  # five a minute: ten a second never binds
    assert [(r.limit, r.interval) for r in rates] == [(5, 60_000)]
    rates = Check("realm", ((475, 60.0), (10, 1.1))).rates()
    assert [(r.limit, r.interval) for r in rates] == [(10, 1_100), (475, 60_000)]


def test_settings_choose_the_backend(tmp_path: Path, prefix: str) -> None:
    memory = Settings(data_dir=tmp_path)
    assert ratelimits.backend_for(memory) is None  # SQLite store, no Redis: in memory, as before
    forced = Settings(
        data_dir=tmp_path, database_url="postgresql://x@127.0.0.1/y", limits=LimitsSettings(backend="memory")
    )
    assert ratelimits.backend_for(forced) is None
    with pytest.raises(ValueError, match="backend is redis but redis_url is not set"):  # refused at load
        Settings(data_dir=tmp_path, limits=LimitsSettings(backend="redis"))
    _redis_or_skip()
    chosen = Settings(data_dir=tmp_path, limits=LimitsSettings(redis_url=REDIS_URL, prefix=prefix))
    found = ratelimits.backend_for(chosen)
    assert found is not None and found.name == "redis"
    assert ratelimits.backend_for(chosen) is found  # one per process


class _FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _batch_starts(shared: Backend | None) -> list[float]:
    t = _FakeTime()
    pacer = QboPacer(clock=lambda: t.now, sleep=t.sleep, shared=shared, realm=f"r-{uuid.uuid4().hex[:8]}")
    starts = []
    for _ in range(45):
        with pacer.slot(batch=True):
            starts.append(t.now)
    return starts


def _kept_under_forty_a_minute(starts: list[float]) -> None:
    for start in starts:
        assert sum(1 for s in starts if start <= s < start + 60.0) <= 39  # one spare under QBO's 40
    assert starts[39] >= starts[0] + 60.0  # the fortieth waited for the first to leave the minute


def test_quickbooks_batches_keep_under_forty_a_minute_in_memory() -> None:
    _kept_under_forty_a_minute(_batch_starts(None))


def test_quickbooks_batches_keep_under_forty_a_minute_in_the_shared_backend(backend: Backend) -> None:
    _kept_under_forty_a_minute(_batch_starts(backend))


# ---- real processes against the sandboxes -------------------------------------------------------------------
def _run_all(env: dict[str, str], runs: list[list[str]]) -> list[str]:
    """Start every run at once, each `python -m tests.limits_sync ...`; their outputs once all have ended."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.limits_sync", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for args in runs
    ]
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out[-3000:]
        outputs.append(out)
    return outputs


def _most_in_a_minute(instants: list[float]) -> int:
    """The most calls in any fixed minute of the sandbox clock (how Xero and the sandbox count them)."""
    return max(Counter(int(t // 60) for t in instants).values())


@pytest.mark.slow
def test_three_processes_of_one_xero_app_never_pass_its_app_minute_limit(
    where: dict[str, str], tmp_path: Path
) -> None:
    # 8x: a minute in 7.5 s, and the second pacing allows a call to reach the sandbox is 125 ms of real time
    clock = SimClock.starting(NOW + timedelta(seconds=30), 8)
    firms = [clock.firm(60 + i, FIRM, name=f"Firm {i} Ltd") for i in range(3)]
    sb = xero_sandbox.start(
        firms[0], extra_firms=firms[1:], clock=clock.sandbox(), app_minute_limit=APP_LIMIT
    )
    try:
        xero = sb.settings().model_copy(update={"app_minute_limit": APP_LIMIT})
        home = tmp_path / "home"
        settings = Settings(data_dir=home, database_url=where.get("CCM_DATABASE_URL"), ledgers={"xero": xero})
        store = Store.open(settings.db_url)
        vault = TokenVault(store, load_key(settings), clock.now)
        for i, org_id in enumerate(sb.books):
            auth = connect.begin(xero)  # one consent per firm: each keeps tokens of its own
            tokens, orgs = connect.complete(
                xero, connect.consent_code(auth, xero), auth.code_verifier, clock.now()
            )
            connect.save(
                store, vault, Tenant(f"x{i}", f"Firm {i} Ltd", "xero"), connect.choose(orgs, org_id), tokens
            )
        store.close()
        env = clean_env() | where | sb.env() | {
            "CCM_HOME": str(home), "CCM_SERVE__CLOCK": clock.spec, "CCM_XERO__APP_MINUTE_LIMIT": str(APP_LIMIT),
        }  # fmt: skip
        if "CCM_DATABASE_URL" not in env:
            env["CCM_DATABASE_URL"] = settings.db_url
        _run_all(env, [["x0"], ["x1"], ["x2"]])
        arrivals = [at for _, at in sb.accounting.arrivals]
        assert sb.accounting.refused == 0
        assert len(arrivals) > 2 * APP_LIMIT  # the app's minute bound: the calls spanned several minutes
        assert _most_in_a_minute(arrivals) <= APP_LIMIT
        assert len({tenant for tenant, _ in sb.accounting.arrivals}) == 3
    finally:
        sb.stop()


@pytest.mark.slow
def test_two_processes_on_one_quickbooks_company_keep_its_limits(
    where: dict[str, str], tmp_path: Path
) -> None:
    sb = qbo_sandbox.start(
        seed=5, size="demo", limits=True
    )  # real time: 10 a second, 500 a minute, 10 in flight
    try:
        qbo = sb.settings()  # paced: the sandbox counts
        home = tmp_path / "home"
        settings = Settings(
            data_dir=home, database_url=where.get("CCM_DATABASE_URL"), ledgers={"quickbooks": qbo}
        )
        store = Store.open(settings.db_url)
        _connect_quickbooks(store, settings, qbo)
        store.close()
        env = clean_env() | where | sb.env() | {"CCM_HOME": str(home)}
        if "CCM_DATABASE_URL" not in env:
            env["CCM_DATABASE_URL"] = settings.db_url
        _run_all(env, [["q0", "3"], ["q0", "3"]])  # two workers on one company, no run lease between them
        arrivals = sorted(sb.api.arrivals)
        assert sb.api.refused == 0
        assert len(arrivals) >= 3 * 10  # enough calls that the second's limit bound
        assert max(Counter(int(t) for t in arrivals).values()) <= 10  # QBO's fixed seconds, as it counts
        assert max(Counter(int(t // 60) for t in arrivals).values()) <= 500
    finally:
        sb.stop()


def _connect_quickbooks(store: Store, settings: Settings, qbo: QuickBooksSettings) -> None:
    import secrets
    from urllib.parse import parse_qs, urlparse

    import requests

    state = secrets.token_hex(8)
    answer = requests.get(qbo_auth.authorization_url(qbo, state), verify=str(qbo.ca_bundle),
                          allow_redirects=False, timeout=10)  # fmt: skip
    callback = parse_qs(urlparse(answer.headers["location"]).query)
    with store.begin() as conn:
        save_tenant(conn, Tenant("q0", "Company Ltd", "quickbooks"))
    vault = TokenVault(store, load_key(settings))
    qbo_auth.complete(qbo, store, vault, "q0", callback["code"][0], callback["realmId"][0])


# ---- a store that is down, and settings that cannot work


def test_an_unreachable_limits_store_is_a_retry_later_not_a_crash(tmp_path: Path):
    """A Redis that does not answer: the call is not made uncounted; the caller is told to try again later."""
    settings = Settings(
        data_dir=tmp_path, limits=LimitsSettings(redis_url="redis://127.0.0.1:1/0", prefix="down")
    )
    backend = ratelimits.backend_for(settings)
    assert backend is not None
    check = Check("down:tenant", ((5, 60.0),))
    with pytest.raises(ratelimits.LimitsUnavailable, match=r"rate-limit store \(redis\) is unreachable"):
        backend.admit([check], NOW.timestamp())
    with (
        pytest.raises(ratelimits.LimitsUnavailable),
        ratelimits.in_flight(backend, "down:tenant:inflight", 5),
    ):
        pytest.fail("a call ran without an in-flight place")
    from connector.errors import TryLater

    assert issubclass(ratelimits.LimitsUnavailable, TryLater)  # a night is retried, as for a ledger down


def test_limits_settings_that_cannot_work_are_one_line_errors(tmp_path: Path):
    from connector.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="limits: backend is redis but redis_url is not set"):
        load_settings(None, {"CCM_HOME": str(tmp_path), "CCM_LIMITS__BACKEND": "redis"})
    with pytest.raises(
        ConfigError, match=r"limits\.backend is postgresql but database_url is not a PostgreSQL URL"
    ):
        load_settings(None, {"CCM_HOME": str(tmp_path), "CCM_LIMITS__BACKEND": "postgresql"})
