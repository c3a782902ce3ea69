"""The token vault: encrypted at rest, rotated tokens stored before use, one refresh at a time."""

from __future__ import annotations

import multiprocessing
import stat
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from connector.config import ConfigError, load_settings
from connector.ledger import AuthExpired
from connector.model import ConnectionState
from connector.oauth import TokenSet, TokenVault, load_key
from connector.store import Store
from connector.store.schema import oauth_grants, oauth_tokens
from connector.store.tenants import get_connection

KEY = Fernet.generate_key()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def tokens(access: str = "access-1", refresh: str = "refresh-1", expires_in: int = 1800) -> TokenSet:
    return TokenSet(access, refresh, datetime.now(UTC) + timedelta(seconds=expires_in), ("offline_access",))


def test_tokens_are_encrypted_at_rest(store: Store, tenant):
    vault = TokenVault(store, KEY)
    vault.put("acme", tokens("eyJ-access-secret", "rt-refresh-secret"))
    with store.read() as conn:
        ciphertext = conn.execute(select(oauth_grants.c.ciphertext)).scalar_one()
    assert "eyJ-access-secret" not in ciphertext
    assert "rt-refresh-secret" not in ciphertext
    got = vault.get("acme")
    assert got is not None
    assert (got.access_token, got.refresh_token) == ("eyJ-access-secret", "rt-refresh-secret")


def test_a_fresh_token_is_not_refreshed(store: Store, tenant):
    vault = TokenVault(store, KEY)
    vault.put("acme", tokens())
    calls: list[TokenSet] = []

    def refresher(current: TokenSet) -> TokenSet:
        calls.append(current)
        return tokens("access-2", "refresh-2")

    got = vault.refresh("acme", refresher)
    assert calls == []
    assert got.access_token == "access-1"


def test_an_expiring_token_is_refreshed_and_the_rotation_stored_before_it_is_returned(store: Store, tenant):
    vault = TokenVault(store, KEY)
    vault.put("acme", tokens(expires_in=30))
    seen_in_store: list[str] = []

    def refresher(current: TokenSet) -> TokenSet:
        assert current.refresh_token == "refresh-1"
        return tokens("access-2", "refresh-2")

    got = vault.fresh("acme", refresher)
    stored = vault.get("acme")
    assert stored is not None
    seen_in_store.append(stored.refresh_token)
    assert got.access_token == "access-2"
    assert seen_in_store == ["refresh-2"]


def test_a_dead_refresh_token_marks_the_connection_and_keeps_the_old_tokens(store: Store, tenant):
    vault = TokenVault(store, KEY)
    vault.put("acme", tokens(expires_in=0))

    def refresher(current: TokenSet) -> TokenSet:
        raise AuthExpired("the ledger refused the grant (invalid_grant)")

    with pytest.raises(AuthExpired, match="invalid_grant"):
        vault.refresh("acme", refresher)
    with store.read() as conn:
        link = get_connection(conn, "acme")
    assert link is not None
    assert link.state is ConnectionState.RECONNECT_NEEDED
    assert link.message == "reconnect needed: the ledger refused the grant (invalid_grant)"
    assert vault.get("acme") is not None


def test_a_changed_key_asks_for_a_reconnect_without_leaking(store: Store, tenant):
    TokenVault(store, KEY).put("acme", tokens("eyJ-secret-access"))
    with pytest.raises(AuthExpired, match="cannot be decrypted with this vault key") as exc:
        TokenVault(store, Fernet.generate_key()).get("acme")
    assert "eyJ" not in str(exc.value)


def test_no_tokens_means_connect_first(store: Store, tenant):
    with pytest.raises(AuthExpired, match="has no tokens: connect it first"):
        TokenVault(store, KEY).fresh("acme", lambda t: t)


def test_threads_refresh_one_at_a_time(store: Store, tenant):
    vault = TokenVault(store, KEY)
    vault.put("acme", tokens(expires_in=0))
    calls: list[int] = []

    def refresher(current: TokenSet) -> TokenSet:
        calls.append(1)
        time.sleep(0.05)
        return tokens(f"access-{len(calls) + 1}", f"refresh-{len(calls) + 1}")

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(vault.fresh("acme", refresher).access_token))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == ["access-2"] * 8


def _refresh_in_a_process(url: str, key: bytes, marker: str) -> str:
    store = Store.open(url)
    vault = TokenVault(store, key)

    def refresher(current: TokenSet) -> TokenSet:
        with Path(marker).open("a") as fh:
            fh.write("refreshed\n")
        time.sleep(0.3)
        return TokenSet("access-new", "refresh-new", datetime.now(UTC) + timedelta(minutes=30))

    try:
        return vault.fresh("acme", refresher).access_token
    finally:
        store.close()


def test_processes_refresh_one_at_a_time(db_url: str, store: Store, tenant, tmp_path):
    TokenVault(store, KEY).put("acme", tokens(expires_in=0))
    marker = tmp_path / "refreshes.log"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        answers = pool.starmap(_refresh_in_a_process, [(db_url, KEY, str(marker))] * 3)
    assert answers == ["access-new"] * 3
    assert marker.read_text() == "refreshed\n"


def test_the_key_file_is_made_once_and_private(tmp_path):
    settings = load_settings(None, {"CCM_HOME": str(tmp_path)})
    key = load_key(settings)
    assert load_key(settings) == key
    mode = stat.S_IMODE((tmp_path / "vault.key").stat().st_mode)
    assert mode == 0o600


def test_a_bad_configured_key_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^CCM_VAULT_KEY: not a valid vault key") as bad:
        load_settings(None, {"CCM_HOME": str(tmp_path), "CCM_VAULT_KEY": "not-a-key"})
    assert "not-a-key" not in str(bad.value)


def test_token_responses_keep_what_the_server_did_not_resend():
    previous = TokenSet(
        "a1", "r1", NOW, ("accounting.transactions",), refresh_expires_at=NOW + timedelta(days=90)
    )
    got = TokenSet.from_response(
        {"access_token": "a2", "expires_in": 3600, "token_type": "bearer"}, previous, NOW
    )
    assert (got.access_token, got.refresh_token, got.expires_at) == ("a2", "r1", NOW + timedelta(hours=1))
    assert got.scope == ("accounting.transactions",)
    assert got.refresh_expires_at == NOW + timedelta(days=90)


def test_token_responses_read_scopes_and_quickbooks_refresh_expiry():
    got = TokenSet.from_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 3600, "scope": "openid offline_access",
         "x_refresh_token_expires_in": 8_726_400},
        now=NOW,
    )  # fmt: skip
    assert got.scope == ("openid", "offline_access")
    assert got.refresh_expires_at == NOW + timedelta(days=101)


def test_a_token_response_without_a_refresh_token_is_a_reconnect():
    with pytest.raises(AuthExpired, match="offline_access"):
        TokenSet.from_response({"access_token": "a", "expires_in": 60}, now=NOW)


# ---- one row per consent (migration 0019): storage apart from refresh coordination


def _set(access: str, refresh: str = "refresh-1") -> TokenSet:
    return TokenSet(access, refresh, NOW + timedelta(minutes=30), ("offline_access",))


def _rows(store: Store) -> tuple[dict[str, str], list[str]]:
    """(tenant -> grant, grants stored)."""
    with store.read() as conn:
        links = dict(conn.execute(select(oauth_tokens.c.tenant_id, oauth_tokens.c.grant_id)).all())
        grants = sorted(conn.execute(select(oauth_grants.c.grant_id)).scalars())
    return links, grants


def test_tenants_of_one_consent_share_one_row_and_a_tenant_alone_is_its_own_grant(store: Store):
    vault = TokenVault(store, KEY)
    for name in ("north", "south", "east"):
        vault.put(name, _set("access-g", "refresh-g"), "consent-1")
    vault.put("solo", _set("access-s", "refresh-s"))
    assert _rows(store) == (
        {"north": "consent-1", "south": "consent-1", "east": "consent-1", "solo": "solo"},
        ["consent-1", "solo"],
    )
    assert (vault.sharing("south"), vault.sharing("solo")) == (["east", "north"], [])
    vault.put("south", _set("access-g2", "refresh-g2"))  # no grant named: the one it uses
    assert {vault.get(t).access_token for t in ("north", "south", "east")} == {"access-g2"}  # type: ignore[union-attr]
    assert vault.get("solo") == _set("access-s", "refresh-s")


def test_a_tenant_leaving_a_grant_takes_it_away_only_when_it_was_the_last(store: Store):
    vault = TokenVault(store, KEY)
    vault.put("north", _set("access-1"), "consent-1")
    vault.put("south", _set("access-1"), "consent-1")
    vault.put("north", _set("access-2"), "consent-2")  # reconnected by another consent
    assert _rows(store) == ({"north": "consent-2", "south": "consent-1"}, ["consent-1", "consent-2"])
    vault.delete("south")  # consent-1's last tenant
    assert _rows(store) == ({"north": "consent-2"}, ["consent-2"])
    vault.put("east", _set("access-2"), "consent-2")
    vault.delete("north")
    assert _rows(store) == ({"east": "consent-2"}, ["consent-2"])
    assert vault.get("north") is None and vault.get("east") == _set("access-2")


def test_a_refresh_for_one_tenant_of_a_consent_writes_one_row_and_every_tenant_reads_it(store: Store):
    from sqlalchemy import event

    vault = TokenVault(store, KEY)
    for i in range(50):
        vault.put(f"firm{i:02d}", tokens(expires_in=0), "consent-1")
    written: list[str] = []

    def counted(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT")) and "oauth_" in statement:
            written.append(statement)

    event.listen(store.engine, "before_cursor_execute", counted)
    try:
        got = vault.fresh("firm07", lambda current: tokens("access-2", "refresh-2"))
    finally:
        event.remove(store.engine, "before_cursor_execute", counted)
    assert got.access_token == "access-2" and len(written) == 1 and "oauth_grants" in written[0]
    assert {vault.get(f"firm{i:02d}").access_token for i in range(50)} == {"access-2"}  # type: ignore[union-attr]
