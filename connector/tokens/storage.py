"""Token storage: each grant's tokens in one encrypted row, and which tenant uses which grant.

Invariants:
- Tokens are Fernet-encrypted at rest (`oauth_grants.ciphertext`); only their expiries are in clear (for the
  connection-health checks). Every token set read back has its secrets registered with connector.redact.
- One row per grant (consent): tenants connected by one consent (a bookkeeper's Xero login reaching many
  organisations) link to the same row, so storing a rotation is one row written however many tenants share
  it, and every tenant of the grant reads the rotation at once. A tenant connected alone is its own grant:
  the grant id is then the tenant id (so its refresh claim is keyed as it always was).
- A grant row lives while a tenant links to it: `put` moving a tenant to another grant, and `delete`, remove
  the grant they leave when no tenant is left on it.
- The `conn`-taking methods run inside the caller's transaction (the refresh coordination composes them
  into its compare-and-set); `get`, `put`, `delete` and `sharing` open short ones of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connector.config import Settings
from connector.ledger import AuthExpired
from connector.redact import register_secret
from connector.store import Store
from connector.store.engine import KEY_FILE, secure_data_dir
from connector.store.schema import oauth_grants, oauth_tokens
from connector.tokens.tokenset import TokenSet, remember


class VaultKeyError(ValueError):
    """The vault key is missing or unusable; the message is one line."""


def load_key(settings: Settings) -> bytes:
    """settings.vault_key, else <data_dir>/vault.key, created (mode 0600) on first use.

    The data folder is made private (0700) or tightened on the way, the key file too (see secure_data_dir).
    """
    if settings.vault_key:
        key = settings.vault_key.encode()
        where = "vault_key"
    else:
        path = secure_data_dir(settings.data_dir) / KEY_FILE
        where = str(path)
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "wb") as fh:
                    os.fchmod(fh.fileno(), 0o600)  # whatever the umask took
                    fh.write(Fernet.generate_key())
        key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError:
        raise VaultKeyError(f"{where}: not a valid vault key (32 url-safe base64-encoded bytes)") from None
    register_secret(key.decode())
    return key


@dataclass(frozen=True, slots=True)
class Expiry:
    """The clear-text dates kept beside a tenant's encrypted tokens (its grant's)."""

    refresh_expires_at: datetime | None  # the ledger's own word on when the refresh token dies
    updated_at: datetime  # when these tokens were issued: the refresh token was last used then


def expiries(conn: Connection, tenant_ids: Iterable[str] | None = None) -> dict[str, Expiry]:
    """Each connected tenant's token dates (of those named, else of all), by tenant id."""
    g, t = oauth_grants.c, oauth_tokens.c
    query = select(t.tenant_id, g.refresh_expires_at, g.updated_at).join_from(
        oauth_tokens, oauth_grants, t.grant_id == g.grant_id
    )
    if tenant_ids is not None:
        query = query.where(t.tenant_id.in_(list(tenant_ids)))
    return {row.tenant_id: Expiry(row.refresh_expires_at, row.updated_at) for row in conn.execute(query)}


class TokenStore:
    """Encrypted token rows: read and written whole, one row per grant."""

    def __init__(self, store: Store, key: bytes, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self._fernet = Fernet(key)
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- ciphertext
    def encrypt(self, tokens: TokenSet) -> str:
        return self._fernet.encrypt(tokens.to_json().encode()).decode()

    def decrypt(self, tenant_id: str, ciphertext: str) -> TokenSet:
        """The token set in `ciphertext`, its secrets registered for redaction.

        Raises:
            AuthExpired: the ciphertext was made with another vault key.
        """
        try:
            tokens = TokenSet.from_json(self._fernet.decrypt(ciphertext.encode()).decode())
        except InvalidToken:
            raise AuthExpired(
                f"tokens of tenant {tenant_id!r} cannot be decrypted with this vault key (was it changed?); "
                "reconnect the tenant"
            ) from None
        remember(tokens)
        return tokens

    # -- inside the caller's transaction
    @staticmethod
    def grant_of(conn: Connection, tenant_id: str) -> str | None:
        """The grant whose tokens the tenant uses; None for a tenant without tokens."""
        t = oauth_tokens.c
        found: str | None = conn.execute(select(t.grant_id).where(t.tenant_id == tenant_id)).scalar()
        return found

    @staticmethod
    def ciphertext(conn: Connection, grant_id: str, *, lock: bool = False) -> str | None:
        """The grant's encrypted tokens; `lock`: its row held to the transaction's end (PostgreSQL's row lock;
        SQLite's writers are one at a time anyway)."""
        query = select(oauth_grants.c.ciphertext).where(oauth_grants.c.grant_id == grant_id)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        found: str | None = conn.execute(query).scalar()
        return found

    def write(self, conn: Connection, grant_id: str, tokens: TokenSet) -> None:
        """Store the grant's tokens: one row, for every tenant of the grant."""
        values = {
            "ciphertext": self.encrypt(tokens), "expires_at": tokens.expires_at,
            "refresh_expires_at": tokens.refresh_expires_at, "updated_at": self._clock(),
        }  # fmt: skip
        dialect = (
            sqlite if conn.dialect.name == "sqlite" else postgresql
        )  # one statement, whoever writes first
        stmt = dialect.insert(oauth_grants).values(grant_id=grant_id, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["grant_id"], set_=values))

    @staticmethod
    def tenants_of(conn: Connection, grant_id: str) -> list[str]:
        """The tenants using the grant's tokens, sorted."""
        t = oauth_tokens.c
        return sorted(conn.execute(select(t.tenant_id).where(t.grant_id == grant_id)).scalars())

    @staticmethod
    def _drop_if_unused(conn: Connection, grant_id: str) -> None:
        t = oauth_tokens.c
        if conn.execute(select(func.count()).where(t.grant_id == grant_id)).scalar_one() == 0:
            conn.execute(delete(oauth_grants).where(oauth_grants.c.grant_id == grant_id))

    # -- short transactions of their own
    def get(self, tenant_id: str) -> TokenSet | None:
        """The tenant's tokens (its grant's), or None for a tenant without any."""
        g, t = oauth_grants.c, oauth_tokens.c
        with self.store.read() as conn:
            text = conn.execute(
                select(g.ciphertext).join_from(oauth_tokens, oauth_grants, t.grant_id == g.grant_id)
                .where(t.tenant_id == tenant_id)
            ).scalar()  # fmt: skip
        return self.decrypt(tenant_id, text) if text else None

    def put(self, tenant_id: str, tokens: TokenSet, grant: str | None = None) -> None:
        """Store a tenant's tokens as its grant's: `grant` names the consent they came from (tenants of one
        consent share them: a refresh for any of them rotates them all); without it, the grant the tenant
        already uses, else a grant of its own."""
        remember(tokens)
        with self.store.begin() as conn:
            current = self.grant_of(conn, tenant_id)
            target = grant or current or tenant_id
            self.write(conn, target, tokens)
            if current == target:
                return
            if current is None:
                conn.execute(insert(oauth_tokens).values(tenant_id=tenant_id, grant_id=target))
                return
            conn.execute(
                update(oauth_tokens).where(oauth_tokens.c.tenant_id == tenant_id).values(grant_id=target)
            )
            self._drop_if_unused(conn, current)

    def delete(self, tenant_id: str) -> None:
        """Forget the tenant's tokens (and its grant's, when no other tenant uses them)."""
        with self.store.begin() as conn:
            grant = self.grant_of(conn, tenant_id)
            conn.execute(delete(oauth_tokens).where(oauth_tokens.c.tenant_id == tenant_id))
            if grant is not None:
                self._drop_if_unused(conn, grant)

    def sharing(self, tenant_id: str) -> list[str]:
        """Other tenants whose tokens come from the same consent as this tenant's."""
        with self.store.read() as conn:
            grant = self.grant_of(conn, tenant_id)
            if grant is None:
                return []
            return [other for other in self.tenants_of(conn, grant) if other != tenant_id]


__all__ = ["Expiry", "TokenStore", "VaultKeyError", "expiries", "load_key"]
