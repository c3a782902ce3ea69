"""Shared fixtures. Store tests run on SQLite always and on PostgreSQL when CCM_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adapters.base import AdapterSpec, register
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
PG_URL = os.environ.get("CCM_TEST_DATABASE_URL")


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
        pytest.skip("PostgreSQL: set CCM_TEST_DATABASE_URL to run store tests on it (CI does)")
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
