"""OAuth 2.0 for ledgers: authlib flows and the encrypted token vault with serialised refresh.

The vault keeps each tenant's tokens encrypted at rest (Fernet). Tenants connected by one consent share one
token set (a bookkeeper's Xero login reaches many client organisations through one grant, whose refresh token
rotates on every use): their rows carry the same `grant_id`, a refresh rewrites them all, and a dead grant
marks them all for reconnecting.

A refresh never holds a database transaction while it waits on the token endpoint (up to 30 s: under
SQLite's one writer, every tenant's commits would wait behind it). It goes in three short steps:

1. Claim. The grant (else the tenant) is claimed with a row in `run_leases` keyed `refresh:<grant or tenant>`
   (connector.lease: compare-and-set, `REFRESH_TTL` long, well over the token call's 30 s timeout). Threads of
   one process queue on a lock first, so one of them polls; the others find the tokens fresh when they get it.
   A waiter re-reads the tokens and tries the claim again after short sleeps, never blocking in the database,
   and gives up with Retriable after `refresh_wait`. A claimant that dies releases by expiry, at once when it
   was a process on this host.
2. Call the token endpoint, with the tokens read after the claim was taken, outside any transaction.
3. Store, compare-and-set: in one short transaction, the rotated tokens are written only if the stored ones
   are still those the call used. If another holder stored tokens meanwhile (it took over a claim that ran
   out), ours are dropped unused and theirs returned. Only then is the new access token handed out: a rotated
   refresh token is always stored before the access token that came with it is used.

An answer that cannot be stored is the dangerous case: the ledger has rotated, the vault still holds the old
refresh token. The new tokens are then never used: after a few quick tries to store them the refresh fails
with Retriable, and a process that dies between the answer and the commit uses nothing either. The next
refresh spends the old refresh token again. Xero accepts a used refresh token again for 30 minutes, its
grace for a lost answer (LEDGER-API-FACTS; the sandbox replays the same new pair); Intuit keeps the previous
value working until the new one is first used (as the QuickBooks sandbox plays it), and ccm never used it.
So the lost answer costs one more call, provided ccm refreshes again within Xero's 30 minutes: a waiting
refresher takes over within `REFRESH_TTL` (at once from a dead process on this host), but if the process died
with nobody else refreshing that grant for half an hour, the Xero grant dies and the tenant must reconnect.
The window is the milliseconds between the answer and the commit.

A ledger that refuses the refresh token (invalid_grant) marks the connection reconnect-needed, unless
another holder stored new tokens meanwhile (ours was superseded, not dead): theirs are returned.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import requests
import structlog
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import SQLAlchemyError

from connector.config import Settings
from connector.lease import Busy, Lease, acquire, new_holder, release
from connector.ledger import AuthExpired, OAuthEndpoints, Retriable
from connector.model import ConnectionState
from connector.redact import register_secret
from connector.store import Store
from connector.store.engine import KEY_FILE, secure_data_dir
from connector.store.schema import connections, oauth_tokens

AuthMethod = Literal["client_secret_basic", "client_secret_post"]
REFRESH_TTL = timedelta(
    seconds=90
)  # a refresh claim: well over the token call's 30 s timeout, far under Xero's
# 30-minute grace for a used refresh token
REFRESH_WAIT = timedelta(seconds=100)  # a waiter outlasts a dead holder's claim (one on another host)
Verify = Path | str | bool
_DEAD_GRANT = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"}
_STILL_REFRESHING = (
    "tenant {!r}: its tokens are being refreshed by another holder for too long; try again later"
)
_FIRST_PAUSE_S, _LONGEST_PAUSE_S = 0.05, 0.5  # a waiter's sleeps between looks at the claim
_STORE_TRIES, _STORE_PAUSE_S = 3, 0.2  # storing a rotation the ledger already made: worth a few quick tries
_KEY_LENGTH = 255  # run_leases.tenant_id
log = structlog.get_logger(__name__)


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


def claim_key(grant_or_tenant: str) -> str:
    """The `run_leases` key of a grant's (else a tenant's) refresh claim; a long one hashed to fit."""
    key = f"refresh:{grant_or_tenant}"
    if len(key) <= _KEY_LENGTH:
        return key
    return f"refresh:#{hashlib.sha256(grant_or_tenant.encode()).hexdigest()}"


class TokenVault:
    """Per-tenant tokens, encrypted at rest, refreshed one holder at a time."""

    _locks: ClassVar[dict[str, threading.Lock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()
    refresh_ttl: timedelta = REFRESH_TTL  # how long a refresh claim lasts unless released
    refresh_wait: timedelta = REFRESH_WAIT  # how long a refresh waits for another holder's before giving up

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
    def _stored(
        self, conn: Connection, tenant_id: str, grant: str | None, *, lock: bool = False
    ) -> str | None:
        """The ciphertext of the tenant's tokens (its grant's latest); `lock`: held to the transaction's end
        (PostgreSQL row locks; SQLite's writers are one at a time anyway)."""
        t = oauth_tokens.c
        query = select(t.ciphertext).where(t.grant_id == grant if grant else t.tenant_id == tenant_id)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        rows = conn.execute(query.order_by(t.updated_at.desc())).scalars().all()
        return rows[0] if rows else None

    def _load(self, tenant_id: str, grant: str | None) -> tuple[TokenSet, str]:
        """The tenant's tokens and their ciphertext (what a compare-and-set compares), in a short read."""
        with self.store.read() as conn:
            text = self._stored(conn, tenant_id, grant)
        if text is None:
            raise AuthExpired(f"tenant {tenant_id!r} has no tokens: connect it first")
        return self._decrypt(tenant_id, text), text

    def _due(self, tokens: TokenSet, stale: str | None, margin: timedelta) -> bool:
        """Whether `tokens` need a refresh: near their expiry, or still carrying the access token refused."""
        return tokens.access_token == stale or tokens.expires_within(margin, self._clock())

    @classmethod
    @contextmanager
    def _one_thread(cls, key: str, tenant_id: str, deadline: float) -> Iterator[None]:
        """One thread of this process at a time refreshes a grant; the others wait here, not in the DB."""
        with cls._locks_guard:
            lock = cls._locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise Retriable(_STILL_REFRESHING.format(tenant_id))
        try:
            yield
        finally:
            lock.release()

    def _claim(
        self, tenant_id: str, grant: str | None, deadline: float, stale: str | None, margin: timedelta
    ) -> Lease | TokenSet:
        """The grant's refresh claim, or the tokens another holder refreshed while this one waited for it."""
        key, holder, pause = claim_key(grant or tenant_id), new_holder(), _FIRST_PAUSE_S
        while True:
            current, _ = self._load(tenant_id, grant)
            if not self._due(current, stale, margin):
                return current
            try:
                return acquire(self.store, key, holder, datetime.now(UTC), self.refresh_ttl)
            except Busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Retriable(_STILL_REFRESHING.format(tenant_id)) from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, _LONGEST_PAUSE_S)

    def _release(self, claim: Lease) -> None:
        try:
            release(self.store, claim)
        except SQLAlchemyError as exc:  # it runs out by itself within refresh_ttl
            log.warning("token.claim_not_released", key=claim.tenant_id, error=type(exc).__name__)

    def _keep(self, tenant_id: str, grant: str | None, used: str, fresh: TokenSet) -> TokenSet:
        """Store `fresh` unless the stored tokens changed since `used` was read; what is stored then.

        Raises:
            AuthExpired: the tenant's tokens were deleted meanwhile (disconnected): not brought back.
            Retriable: the database refused every try; `fresh` is not used (see the module docstring).
        """
        for attempt in range(_STORE_TRIES):
            try:
                with self.store.begin() as conn:
                    stored = self._stored(conn, tenant_id, grant, lock=True)
                    if stored == used:
                        self._write(conn, tenant_id, fresh)
            except SQLAlchemyError as exc:
                log.warning(
                    "token.store_failed", tenant=tenant_id, attempt=attempt + 1, error=type(exc).__name__
                )
                time.sleep(_STORE_PAUSE_S * 2**attempt)
                continue
            if stored is None:
                raise AuthExpired(f"tenant {tenant_id!r} has no tokens: connect it first")
            if stored == used:
                return fresh
            log.info("token.refresh_superseded", tenant=tenant_id)  # another holder stored first: use theirs
            return self._decrypt(tenant_id, stored)
        log.error("token.rotation_unstored", tenant=tenant_id)
        raise Retriable(
            f"tenant {tenant_id!r}: the refreshed tokens could not be stored, so they are not used; "
            "the next refresh renews them"
        )

    def _refused(self, tenant_id: str, grant: str | None, used: str, refusal: AuthExpired) -> TokenSet:
        """The ledger refused the refresh token: mark every tenant of the grant for reconnecting, unless
        another holder stored new tokens meanwhile (the refused one was superseded): then those."""
        t = oauth_tokens.c
        with self.store.begin() as conn:
            stored = self._stored(conn, tenant_id, grant, lock=True)
            if stored == used:
                affected = [tenant_id]
                if grant:
                    affected = list(conn.execute(select(t.tenant_id).where(t.grant_id == grant)).scalars())
                conn.execute(
                    update(connections)
                    .where(connections.c.tenant_id.in_(affected))
                    .values(state=str(ConnectionState.RECONNECT_NEEDED),
                            message=f"reconnect needed: {refusal}", updated_at=self._clock())
                )  # fmt: skip
        if stored is None or stored == used:
            raise refusal
        return self._decrypt(tenant_id, stored)

    def refresh(
        self,
        tenant_id: str,
        refresher: Callable[[TokenSet], TokenSet],
        *,
        force: bool = False,
        margin: timedelta = timedelta(minutes=2),
        rejected: str | None = None,
    ) -> TokenSet:
        """Refresh the tenant's tokens unless another holder just did; store the result before returning it.

        Claim, call, compare-and-set (the module docstring): no transaction is open while `refresher` runs.
        `force` refreshes tokens that are not near their expiry (the ledger refused the access token), unless
        they changed since: since `rejected` (the access token refused), else since this call began.

        Raises:
            AuthExpired: no tokens, undecryptable tokens, or the ledger refused the refresh token; the
                tenant's connection is then marked reconnect_needed with the reason.
            Retriable: another holder's refresh outlasted `refresh_wait`, or the refreshed tokens could not
                be stored (they are not used; the next refresh renews them); and what `refresher` raises.
        """
        deadline = time.monotonic() + self.refresh_wait.total_seconds()
        with self.store.read() as conn:
            grant = self._grant(conn, tenant_id)
        stale = rejected
        if force and stale is None:
            stale = self._load(tenant_id, grant)[0].access_token
        with self._one_thread(grant or tenant_id, tenant_id, deadline):
            claim = self._claim(tenant_id, grant, deadline, stale, margin)
            if isinstance(claim, TokenSet):
                return claim
            try:
                current, used = self._load(tenant_id, grant)  # as the last holder left them
                if not self._due(current, stale, margin):
                    return current
                try:
                    fresh = refresher(current)  # the token endpoint: no transaction open
                except AuthExpired as refusal:
                    return self._refused(tenant_id, grant, used, refusal)
                return self._keep(tenant_id, grant, used, fresh)
            finally:
                self._release(claim)

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
    "REFRESH_TTL", "REFRESH_WAIT", "TokenSet", "TokenVault", "VaultKeyError", "authorization_url",
    "claim_key", "exchange_code", "load_key", "new_code_verifier", "new_state", "refresh_tokens", "remember",
    "revoke",
]  # fmt: skip
