"""Shared fixtures. Store tests run on SQLite always and on PostgreSQL when CCM_TEST_DATABASE_URL is set.

A test that cannot run here (no PostgreSQL, no ../shared specs, no Chromium) calls `unavailable(reason)`:
it skips on a developer's machine and fails on CI (`CI=true`), so a broken CI machine never passes by
skipping its checks. A plain `pytest.skip` that names CCM_TEST_DATABASE_URL fails on CI all the same
(`pytest_runtest_makereport` below), so a new test that skips the old way cannot hide a missing database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector.ledger import AdapterSpec, register
from connector.logs import configure
from connector.mapping import CompiledMapping, load_mapping
from connector.model import Connection, Tenant
from connector.store import Store
from connector.store.engine import normalise_url
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import SCHEMA, ScriptedLedger
from tests.smtp import Inbox, smtp_server

FIXTURES = Path(__file__).parent / "fixtures"
configure("warning")
NEEDS_PG = "CCM_TEST_DATABASE_URL"
PG_URL = os.environ.get(NEEDS_PG)


def on_ci(env: Mapping[str, str] | None = None) -> bool:
    """CI=true (or 1, yes) in the environment: what the CI script runs with."""
    return (os.environ if env is None else env).get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str, env: Mapping[str, str] | None = None) -> NoReturn:
    """Skip the calling test because `reason` (something it needs is missing); on CI fail it instead."""
    if on_ci(env):
        pytest.fail(f"{reason}; CI=true, so this fails instead of skipping")
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On CI, a skip for want of PostgreSQL is a failure, whichever way the test asked for it."""
    report = yield
    if (
        report.skipped
        and on_ci()
        and isinstance(report.longrepr, tuple)
        and NEEDS_PG in str(report.longrepr[2])
    ):
        report.outcome = "failed"
        report.longrepr = f"{report.longrepr[2]}; CI=true, so this fails instead of skipping"
    return report


def pg_schema_url(base: str, schema: str) -> str:
    """A URL whose connections see only `schema`: each test gets a PostgreSQL of its own, cheaply."""
    url = make_url(normalise_url(base)).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ccm.db'}"
        return
    if not PG_URL:
        unavailable("PostgreSQL: set CCM_TEST_DATABASE_URL to run store tests on it (CI does)")
    with pg_schema(PG_URL) as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL schema of its own, for what runs only on PostgreSQL (procrastinate, workers, servers
    sharing a database); skips without CCM_TEST_DATABASE_URL (fails on CI)."""
    if not PG_URL:
        unavailable("PostgreSQL only: set CCM_TEST_DATABASE_URL to run it (CI does)")
    with pg_schema(PG_URL) as url:
        yield url


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    """A PostgreSQL schema of its own for the block (a URL whose connections see only it), then dropped."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(base))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schema_url(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def scripted_mapping() -> CompiledMapping:
    return load_mapping(FIXTURES / "scripted.yaml", schema=SCHEMA)


@pytest.fixture
def ledger() -> ScriptedLedger:
    return ScriptedLedger()


@pytest.fixture
def tenant(store: Store) -> Tenant:
    t = Tenant("acme", "Acme Ltd", "scripted")
    with store.begin() as conn:
        save_tenant(conn, t)
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    return t


@pytest.fixture
def registered(ledger: ScriptedLedger) -> ScriptedLedger:
    """The scripted ledger registered as adapter 'scripted', so the CLI can sync it."""
    register(AdapterSpec("scripted", lambda ctx: ledger, FIXTURES / "scripted.yaml", SCHEMA))
    return ledger


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CCM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CCM_SERVE__SAFE_NIGHTS", "0")  # an established firm: past its safe first nights
    monkeypatch.delenv("CCM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CCM_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on a free loopback port, keeping what it accepts."""
    with smtp_server() as box:
        yield box
