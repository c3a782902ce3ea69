"""PostgreSQL connections the server dropped while they sat in the pool are replaced, not handed out.

The store pings a pooled connection before use only when it has been idle longer than
PING_AFTER_IDLE_SECONDS (connector/store/engine.py), not before every transaction. The server here really
drops the connection (pg_terminate_backend), as a restart or an idle timeout would.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from connector.model import Tenant
from connector.store import Store
from connector.store import engine as store_engine
from connector.store.engine import normalise_url
from connector.store.tenants import list_tenants, save_tenant
from tests.conftest import PG_URL


def _open(url: str, after: float, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(store_engine, "PING_AFTER_IDLE_SECONDS", after)
    store = Store.open(url)
    with store.begin() as conn:
        save_tenant(conn, Tenant("t1", "Acme Ltd", "xero", "GBP", "Europe/London", "GB", "03:00"))
    return store


def _drop_pooled(store: Store) -> int:
    """Have the server end the store's one pooled connection (back in the pool); its backend's pid."""
    with store.read() as conn:
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    assert store.engine.pool.checkedin() == 1  # type: ignore[attr-defined]  # QueuePool: the one to drop
    assert PG_URL
    admin = create_engine(normalise_url(PG_URL))
    try:
        with admin.begin() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        for _ in range(200):  # the backend takes a moment to go
            with admin.begin() as conn:
                gone = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                if gone.scalar_one() == 0:
                    return pid
            time.sleep(0.01)
    finally:
        admin.dispose()
    raise AssertionError(f"backend {pid} still there")


def test_a_connection_dropped_while_idle_in_the_pool_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(pg_url, 0.0, monkeypatch)  # every connection back in the pool counts as idle
    try:
        dropped = _drop_pooled(store)
        with store.read() as conn:
            assert [t.name for t in list_tenants(conn)] == ["Acme Ltd"]
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != dropped
    finally:
        store.engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trade-off, shown: within the idle window no ping, so a dropped one fails once, then is replaced."""
    store = _open(pg_url, 3600.0, monkeypatch)
    try:
        _drop_pooled(store)
        with pytest.raises(OperationalError), store.read() as conn:
            list_tenants(conn)
        with store.read() as conn:  # the pool dropped it on the disconnect
            assert [t.name for t in list_tenants(conn)] == ["Acme Ltd"]
    finally:
        store.engine.dispose()
