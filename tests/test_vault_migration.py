"""Migration 0019 on SQLite and PostgreSQL: a store of 0018 (a token copy per tenant) keeps every token.

The 0018 rows are written as ccm 0018 wrote them: a tenant connected alone (no grant), and two tenants of
one consent whose copies differ (the later write holds the rotated tokens). After the upgrade each tenant
reads its tokens back through the vault, the consent's tenants read the latest, a refresh writes one row,
and the downgrade puts a copy back on every tenant row.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine

from connector.store import Store
from connector.store import engine as db
from connector.store.schema import oauth_grants, oauth_tokens
from connector.tokens import TokenSet, TokenVault, expiries

KEY = Fernet.generate_key()
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OLD = sa.table(  # oauth_tokens as migration 0007 left it (0018's)
    "oauth_tokens", sa.column("tenant_id"), sa.column("ciphertext"), sa.column("expires_at", sa.DateTime()),
    sa.column("refresh_expires_at", sa.DateTime()), sa.column("updated_at", sa.DateTime()),
    sa.column("grant_id"),
)  # fmt: skip


def tokens(access: str, refresh: str, hours: int = 1) -> TokenSet:
    return TokenSet(
        access, refresh, T0 + timedelta(hours=hours), ("offline_access",), refresh_expires_at=None
    )


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)  # as UTCDateTime stores it


def _row(tenant: str, tokens: TokenSet, written: datetime, grant: str | None) -> dict[str, object]:
    return {
        "tenant_id": tenant, "ciphertext": Fernet(KEY).encrypt(tokens.to_json().encode()).decode(),
        "expires_at": _naive(tokens.expires_at), "refresh_expires_at": None, "updated_at": _naive(written),
        "grant_id": grant,
    }  # fmt: skip


SOLO = tokens("access-solo", "refresh-solo")
STALE = tokens("access-g1-old", "refresh-g1-old")
ROTATED = tokens("access-g1-new", "refresh-g1-new", hours=2)


@pytest.fixture
def at_0018(db_url: str) -> Iterator[Engine]:
    """A store migrated to 0018 holding the three tenants' token rows."""
    engine = db.create(db_url)
    with engine.connect() as conn:
        command.upgrade(db._alembic_config(conn), "0018")
        conn.commit()
    with engine.begin() as conn:
        conn.execute(sa.insert(OLD), [
            _row("solo", SOLO, T0, None),
            _row("north", STALE, T0, "g1"),
            _row("south", ROTATED, T0 + timedelta(minutes=30), "g1"),  # the refresh wrote south's row last
        ])  # fmt: skip
    yield engine
    engine.dispose()


def test_an_0018_store_upgraded_reads_every_tenants_tokens_back(at_0018: Engine, db_url: str) -> None:
    before, after = db.upgrade(at_0018)
    assert before == frozenset({"0018"}) and after == db.head_revisions()
    store = Store.open(db_url)
    try:
        vault = TokenVault(store, KEY)
        assert vault.get("solo") == SOLO
        assert vault.get("north") == vault.get("south") == ROTATED  # the consent's latest copy
        assert (vault.sharing("north"), vault.sharing("solo")) == (["south"], [])
        with store.read() as conn:
            grants = dict(conn.execute(sa.select(oauth_grants.c.grant_id, oauth_grants.c.ciphertext)).all())
            links = dict(conn.execute(sa.select(oauth_tokens.c.tenant_id, oauth_tokens.c.grant_id)).all())
            dates = expiries(conn)
        assert links == {"solo": "solo", "north": "g1", "south": "g1"}  # alone: its own grant
        assert sorted(grants) == ["g1", "solo"]
        assert all(secret not in text for text in grants.values() for secret in ("access-", "refresh-"))
        assert dates["north"].updated_at == dates["south"].updated_at == T0 + timedelta(minutes=30)
    finally:
        store.close()


def test_after_the_upgrade_a_refresh_of_a_shared_consent_writes_one_row(at_0018: Engine, db_url: str) -> None:
    db.upgrade(at_0018)
    store = Store.open(db_url)
    written: list[str] = []

    def counted(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT")) and "oauth_" in statement:
            written.append(statement)

    try:
        vault = TokenVault(store, KEY, lambda: T0 + timedelta(hours=3))  # both token sets are expired now
        renewed = tokens("access-g1-3", "refresh-g1-3", hours=4)
        sa.event.listen(store.engine, "before_cursor_execute", counted)
        got = vault.fresh("north", lambda current: renewed if current == ROTATED else SOLO)
        sa.event.remove(store.engine, "before_cursor_execute", counted)
        assert got == renewed and vault.get("south") == renewed and vault.get("solo") == SOLO
        assert len(written) == 1 and "oauth_grants" in written[0]
    finally:
        store.close()


def test_the_downgrade_puts_a_copy_back_on_every_tenant(at_0018: Engine) -> None:
    db.upgrade(at_0018)
    with at_0018.connect() as conn:
        command.downgrade(db._alembic_config(conn), "0018")
        conn.commit()
    with at_0018.connect() as conn:
        rows = {r.tenant_id: r for r in conn.execute(sa.select(OLD))}
        tables = sa.inspect(conn).get_table_names()
    assert "oauth_grants" not in tables
    assert {t: r.grant_id for t, r in rows.items()} == {"solo": None, "north": "g1", "south": "g1"}
    fernet = Fernet(KEY)
    read = {t: TokenSet.from_json(fernet.decrypt(r.ciphertext.encode()).decode()) for t, r in rows.items()}
    assert read == {"solo": SOLO, "north": ROTATED, "south": ROTATED}
