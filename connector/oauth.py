"""OAuth 2.0 for ledgers: authlib flows and the encrypted token vault with serialised refresh.

The vault keeps each tenant's tokens encrypted at rest (Fernet). A refresh takes the tenant's lock (a thread
lock, and a database lock so other processes wait too), re-reads the stored tokens in case another holder
already refreshed, calls the ledger, and commits the rotated refresh token BEFORE the new access token is
handed out: a crash can never leave ccm holding only a dead refresh token.

Tenants connected by one consent share one token set (a bookkeeper's Xero login reaches many client
organisations through one grant, whose refresh token rotates on every use): their rows carry the same
`grant_id`, a refresh locks and rewrites them all, and a dead grant marks them all for reconnecting.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, select, update

from adapters.base import AuthExpired, OAuthEndpoints, Retriable
from connector.config import Settings
from connector.model import ConnectionState
from connector.redact import register_secret
from connector.store import Store
from connector.store.engine import KEY_FILE, secure_data_dir
from connector.store.schema import connections, oauth_tokens

AuthMethod = Literal["client_secret_basic", "client_secret_post"]
Verify = Path | str | bool
_DEAD_GRANT = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"}


class VaultKeyError(ValueError):
    """The vault key is missing or unusable; the message is one line."""


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: tuple[str, ...] = ()
    token_type: str = "Bearer"  # noqa: S105 - a token kind, not a secret
    refresh_expires_at: datetime | None = None
    id_token: str | None = None

    def expires_within(self, margin: timedelta, now: datetime | None = None) -> bool:
        """True when the access token is expired or will be within `margin`."""
        return self.expires_at - margin <= (now or datetime.now(UTC))

    def to_json(self) -> str:
        return json.dumps({
            "access_token": self.access_token, "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat(), "scope": list(self.scope),
            "token_type": self.token_type,
            "refresh_expires_at": self.refresh_expires_at.isoformat() if self.refresh_expires_at else None,
            "id_token": self.id_token,
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        data = json.loads(text)
        refresh_expires = data.get("refresh_expires_at")
        return cls(
            access_token=data["access_token"], refresh_token=data["refresh_token"],
            expires_at=datetime.fromisoformat(data["expires_at"]), scope=tuple(data.get("scope") or ()),
            token_type=data.get("token_type") or "Bearer",
            refresh_expires_at=datetime.fromisoformat(refresh_expires) if refresh_expires else None,
            id_token=data.get("id_token"),
        )  # fmt: skip

    @classmethod
    def from_response(cls, token: Mapping[str, Any], previous: TokenSet | None = None,
                      now: datetime | None = None) -> TokenSet:  # fmt: skip
        """A TokenSet from a token endpoint's JSON (keeping the old refresh token if none was sent)."""
        now = now or datetime.now(UTC)
        if "access_token" not in token:
            raise Retriable("the token endpoint answered without an access_token")
        if token.get("expires_in") is not None:
            expires_at = now + timedelta(seconds=int(token["expires_in"]))
        elif token.get("expires_at") is not None:
            expires_at = datetime.fromtimestamp(int(token["expires_at"]), UTC)
        else:
            expires_at = now + timedelta(hours=1)
        refresh = token.get("refresh_token") or (previous.refresh_token if previous else None)
        if not refresh:
            raise AuthExpired("the ledger sent no refresh token (is the offline_access scope granted?)")
        scope_value = token.get("scope")
        scope = tuple(scope_value.split()) if isinstance(scope_value, str) else tuple(scope_value or ())
        refresh_expires = token.get("x_refresh_token_expires_in")
        tokens = cls(
            access_token=token["access_token"], refresh_token=refresh, expires_at=expires_at,
            scope=scope or (previous.scope if previous else ()), token_type=token.get("token_type", "Bearer"),
            refresh_expires_at=(now + timedelta(seconds=int(refresh_expires))) if refresh_expires
            else (previous.refresh_expires_at if previous else None),
            id_token=token.get("id_token") or (previous.id_token if previous else None),
        )  # fmt: skip
        remember(tokens)
        return tokens


def remember(tokens: TokenSet) -> None:
    """Register a token set's secrets so no log line or error ever shows them."""
    for value in (tokens.access_token, tokens.refresh_token, tokens.id_token):
        register_secret(value)


# ---- the vault


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


class TokenVault:
    """Per-tenant tokens, encrypted at rest, refreshed one holder at a time."""

    _locks: ClassVar[dict[str, threading.Lock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, store: Store, key: bytes, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self._fernet = Fernet(key)
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def open(cls, store: Store, settings: Settings) -> TokenVault:
        return cls(store, load_key(settings))

    # -- storage
    def _encrypt(self, tokens: TokenSet) -> str:
        return self._fernet.encrypt(tokens.to_json().encode()).decode()

    def _decrypt(self, tenant_id: str, ciphertext: str) -> TokenSet:
        try:
            tokens = TokenSet.from_json(self._fernet.decrypt(ciphertext.encode()).decode())
        except InvalidToken:
            raise AuthExpired(
                f"tokens of tenant {tenant_id!r} cannot be decrypted with this vault key (was it changed?); "
                "reconnect the tenant"
            ) from None
        remember(tokens)
        return tokens

    def _write(self, conn: Connection, tenant_id: str, tokens: TokenSet, grant: str | None = None) -> None:
        """Store the tenant's tokens, and those of every tenant sharing its grant."""
        values = {
            "ciphertext": self._encrypt(tokens), "expires_at": tokens.expires_at,
            "refresh_expires_at": tokens.refresh_expires_at, "updated_at": self._clock(),
        }  # fmt: skip
        t = oauth_tokens.c
        shared = grant or conn.execute(select(t.grant_id).where(t.tenant_id == tenant_id)).scalar()
        if grant is not None:
            values["grant_id"] = grant
        done = conn.execute(update(oauth_tokens).where(t.tenant_id == tenant_id).values(**values))
        if done.rowcount == 0:
            conn.execute(oauth_tokens.insert().values(tenant_id=tenant_id, **values))
        if shared:
            conn.execute(
                update(oauth_tokens).where(t.grant_id == shared, t.tenant_id != tenant_id).values(**values)
            )

    def _grant(self, conn: Connection, tenant_id: str) -> str | None:
        t = oauth_tokens.c
        return conn.execute(select(t.grant_id).where(t.tenant_id == tenant_id)).scalar()

    def sharing(self, tenant_id: str) -> list[str]:
        """Other tenants whose tokens come from the same consent as this tenant's."""
        t = oauth_tokens.c
        with self.store.read() as conn:
            grant = self._grant(conn, tenant_id)
            if grant is None:
                return []
            rows = conn.execute(select(t.tenant_id).where(t.grant_id == grant, t.tenant_id != tenant_id))
            return sorted(rows.scalars())

    def get(self, tenant_id: str) -> TokenSet | None:
        with self.store.read() as conn:
            text = conn.execute(
                select(oauth_tokens.c.ciphertext).where(oauth_tokens.c.tenant_id == tenant_id)
            ).scalar()
        return self._decrypt(tenant_id, text) if text else None

    def put(self, tenant_id: str, tokens: TokenSet, grant: str | None = None) -> None:
        """Store a tenant's tokens; `grant` names the consent they came from (tenants of one consent share
        them: a refresh for any of them rotates them all)."""
        remember(tokens)
        with self.store.begin() as conn:
            self._write(conn, tenant_id, tokens, grant)

    def delete(self, tenant_id: str) -> None:
        with self.store.begin() as conn:
            conn.execute(oauth_tokens.delete().where(oauth_tokens.c.tenant_id == tenant_id))

    # -- refresh
    @classmethod
    @contextmanager
    def _thread_lock(cls, tenant_id: str) -> Iterator[None]:
        with cls._locks_guard:
            lock = cls._locks.setdefault(tenant_id, threading.Lock())
        with lock:
            yield

    def refresh(
        self,
        tenant_id: str,
        refresher: Callable[[TokenSet], TokenSet],
        *,
        force: bool = False,
        margin: timedelta = timedelta(minutes=2),
    ) -> TokenSet:
        """Refresh the tenant's tokens unless another holder just did; store the result before returning it.

        Raises:
            AuthExpired: no tokens, undecryptable tokens, or the ledger refused the refresh token; the
                tenant's connection is then marked reconnect_needed with the reason.
        """
        failure: AuthExpired | None = None
        with self.store.read() as conn:
            grant = self._grant(conn, tenant_id)
        with self._thread_lock(grant or tenant_id), self.store.begin() as conn:
            t = oauth_tokens.c
            query = select(t.ciphertext).where(t.grant_id == grant if grant else t.tenant_id == tenant_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()  # other processes wait here; SQLite's BEGIN IMMEDIATE too
            rows = conn.execute(query.order_by(t.updated_at.desc())).scalars().all()
            text = rows[0] if rows else None
            if text is None:
                raise AuthExpired(f"tenant {tenant_id!r} has no tokens: connect it first")
            current = self._decrypt(tenant_id, text)
            if not force and not current.expires_within(margin, self._clock()):
                return current
            try:
                fresh = refresher(current)
            except AuthExpired as exc:
                failure = exc
                affected = [tenant_id]
                if grant:
                    affected = list(conn.execute(select(t.tenant_id).where(t.grant_id == grant)).scalars())
                conn.execute(
                    update(connections)
                    .where(connections.c.tenant_id.in_(affected))
                    .values(state=str(ConnectionState.RECONNECT_NEEDED), message=f"reconnect needed: {exc}",
                            updated_at=self._clock())
                )  # fmt: skip
            else:
                self._write(conn, tenant_id, fresh)
        if failure is not None:
            raise failure
        return fresh

    def fresh(
        self,
        tenant_id: str,
        refresher: Callable[[TokenSet], TokenSet],
        margin: timedelta = timedelta(minutes=2),
    ) -> TokenSet:
        """The tenant's tokens, refreshed first if the access token expires within `margin`."""
        tokens = self.get(tenant_id)
        if tokens is None:
            raise AuthExpired(f"tenant {tenant_id!r} has no tokens: connect it first")
        if tokens.expires_within(margin, self._clock()):
            return self.refresh(tenant_id, refresher, margin=margin)
        return tokens


# ---- OAuth 2.0 client helpers (authlib)


def _verify(verify: Verify) -> str | bool:
    return str(verify) if isinstance(verify, Path) else verify


def _session(
    client_id: str,
    client_secret: str | None,
    redirect_uri: str | None = None,
    scopes: Sequence[str] = (),
    auth_method: AuthMethod = "client_secret_basic",
) -> OAuth2Session:
    if client_secret:
        register_secret(client_secret)
    return OAuth2Session(
        client_id, client_secret, token_endpoint_auth_method=auth_method,
        revocation_endpoint_auth_method=auth_method, redirect_uri=redirect_uri,
        scope=" ".join(scopes) or None, code_challenge_method="S256", default_timeout=30,
    )  # fmt: skip


def _call(action: Callable[[], Any]) -> Any:
    """Run a token-endpoint call, mapping failures to what the caller does next."""
    try:
        return action()
    except OAuthError as exc:
        if exc.error in _DEAD_GRANT:
            raise AuthExpired(f"the ledger refused the grant ({exc.error})") from None
        raise Retriable(f"token endpoint error: {exc.error}") from None
    except requests.RequestException as exc:
        raise Retriable(f"token endpoint unreachable: {type(exc).__name__}") from None
    except ValueError as exc:  # a non-JSON answer (a 5xx page)
        raise Retriable(f"token endpoint answered badly: {exc}") from None


def new_state() -> str:
    return os.urandom(16).hex()


def new_code_verifier() -> str:
    return os.urandom(40).hex()


def authorization_url(
    endpoints: OAuthEndpoints,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    code_verifier: str | None = None,
    **extra: str,
) -> str:
    """The URL to send the person to; PKCE (S256) when a code verifier is given."""
    session = _session(client_id, None, redirect_uri, scopes)
    url, _ = session.create_authorization_url(
        endpoints.authorize_url, state=state, code_verifier=code_verifier, **extra
    )
    return str(url)


def exchange_code(
    endpoints: OAuthEndpoints,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
    code_verifier: str | None = None,
    *,
    auth_method: AuthMethod = "client_secret_basic",
    verify: Verify = True,
    now: datetime | None = None,
) -> TokenSet:
    """Trade an authorization code for tokens."""
    session = _session(client_id, client_secret, redirect_uri, auth_method=auth_method)
    extra = {"code_verifier": code_verifier} if code_verifier else {}
    token = _call(
        lambda: session.fetch_token(
            endpoints.token_url, grant_type="authorization_code", code=code, verify=_verify(verify), **extra
        )
    )
    return TokenSet.from_response(token, now=now)


def refresh_tokens(
    endpoints: OAuthEndpoints,
    client_id: str,
    client_secret: str,
    tokens: TokenSet,
    *,
    auth_method: AuthMethod = "client_secret_basic",
    verify: Verify = True,
    now: datetime | None = None,
) -> TokenSet:
    """Use the refresh token; the answer may rotate it (Xero always does, QuickBooks daily)."""
    session = _session(client_id, client_secret, auth_method=auth_method)
    token = _call(
        lambda: session.refresh_token(
            endpoints.token_url, refresh_token=tokens.refresh_token, verify=_verify(verify)
        )
    )
    return TokenSet.from_response(token, previous=tokens, now=now)


def revoke(
    endpoints: OAuthEndpoints,
    client_id: str,
    client_secret: str,
    token: str,
    *,
    auth_method: AuthMethod = "client_secret_basic",
    verify: Verify = True,
) -> None:
    """Revoke a refresh token at the ledger (disconnecting the app)."""
    if endpoints.revoke_url is None:
        return
    session = _session(client_id, client_secret, auth_method=auth_method)
    url = endpoints.revoke_url
    response = _call(
        lambda: session.revoke_token(
            url,
            token=token,
            token_type_hint="refresh_token",  # noqa: S106 - a hint's name, not a secret
            verify=_verify(verify),
        )
    )
    if response.status_code >= 500:
        raise Retriable(f"revocation failed with HTTP {response.status_code}")
    if response.status_code >= 400 and response.status_code not in (400, 401):
        raise AuthExpired(f"revocation refused with HTTP {response.status_code}")


__all__ = [
    "TokenSet", "TokenVault", "VaultKeyError", "authorization_url", "exchange_code", "load_key",
    "new_code_verifier", "new_state", "refresh_tokens", "remember", "revoke",
]  # fmt: skip
