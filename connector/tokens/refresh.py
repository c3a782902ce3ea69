"""Refresh coordination: who renews a grant's tokens, across threads and processes, and what is kept.

A refresh never holds a database transaction while it waits on the token endpoint (up to 30 s: under
SQLite's one writer, every tenant's commits would wait behind it). It goes in three short steps:

1. Claim. The grant is claimed with a row in `run_leases` keyed `refresh:<grant>` (a tenant connected alone
   is its own grant: `refresh:<tenant>`; connector.lease: compare-and-set, `REFRESH_TTL` long, well over the
   token call's 30 s timeout). Threads of one process queue on a lock first, so one of them polls; the
   others find the tokens fresh when they get it. A waiter re-reads the tokens and tries the claim again
   after short sleeps, never blocking in the database, and gives up with Retriable after `refresh_wait`. A
   claimant that dies releases by expiry, at once when it was a process on this host.
2. Call the token endpoint, with the tokens read after the claim was taken, outside any transaction.
3. Store, compare-and-set: in one short transaction, the rotated tokens are written (one row: the grant's,
   connector.tokens.storage) only if the stored ones are still those the call used. If another holder stored
   tokens meanwhile (it took over a claim that ran out), ours are dropped unused and theirs returned. Only
   then is the new access token handed out: a rotated refresh token is always stored before the access token
   that came with it is used.

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

A ledger that refuses the refresh token (invalid_grant) marks every connection of the grant
reconnect-needed, unless another holder stored new tokens meanwhile (ours was superseded, not dead): theirs
are returned.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import structlog
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from connector.lease import Busy, Lease, acquire, new_holder, release
from connector.ledger import AuthExpired, Retriable
from connector.model import ConnectionState
from connector.store.schema import connections
from connector.tokens.storage import TokenStore
from connector.tokens.tokenset import TokenSet

REFRESH_TTL = timedelta(
    seconds=90
)  # a refresh claim: well over the token call's 30 s timeout, far under Xero's
# 30-minute grace for a used refresh token
REFRESH_WAIT = timedelta(seconds=100)  # a waiter outlasts a dead holder's claim (one on another host)
_STILL_REFRESHING = (
    "tenant {!r}: its tokens are being refreshed by another holder for too long; try again later"
)
_FIRST_PAUSE_S, _LONGEST_PAUSE_S = 0.05, 0.5  # a waiter's sleeps between looks at the claim
_STORE_TRIES, _STORE_PAUSE_S = 3, 0.2  # storing a rotation the ledger already made: worth a few quick tries
_KEY_LENGTH = 255  # run_leases.tenant_id
log = structlog.get_logger(__name__)


def claim_key(grant: str) -> str:
    """The `run_leases` key of a grant's refresh claim; a long one hashed to fit."""
    key = f"refresh:{grant}"
    if len(key) <= _KEY_LENGTH:
        return key
    return f"refresh:#{hashlib.sha256(grant.encode()).hexdigest()}"


def _no_tokens(tenant_id: str) -> AuthExpired:
    return AuthExpired(f"tenant {tenant_id!r} has no tokens: connect it first")


class RefreshCoordinator:
    """Renews a grant's tokens one holder at a time (threads, then processes), storing before using."""

    _locks: ClassVar[dict[str, threading.Lock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, tokens: TokenStore, clock: Callable[[], datetime] | None = None) -> None:
        self.tokens = tokens
        self.store = tokens.store
        self._clock = clock or (lambda: datetime.now(UTC))

    def _load(self, tenant_id: str, grant: str) -> tuple[TokenSet, str]:
        """The grant's tokens and their ciphertext (what a compare-and-set compares), in a short read."""
        with self.store.read() as conn:
            text = self.tokens.ciphertext(conn, grant)
        if text is None:
            raise _no_tokens(tenant_id)
        return self.tokens.decrypt(tenant_id, text), text

    def _due(self, tokens: TokenSet, stale: str | None, margin: timedelta) -> bool:
        """Whether `tokens` need a refresh: near their expiry, or still carrying the access token refused."""
        return tokens.access_token == stale or tokens.expires_within(margin, self._clock())

    @classmethod
    @contextmanager
    def _one_thread(cls, grant: str, tenant_id: str, deadline: float) -> Iterator[None]:
        """One thread of this process at a time refreshes a grant; the others wait here, not in the DB."""
        with cls._locks_guard:
            lock = cls._locks.setdefault(grant, threading.Lock())
        if not lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise Retriable(_STILL_REFRESHING.format(tenant_id))
        try:
            yield
        finally:
            lock.release()

    def _claim(
        self,
        tenant_id: str,
        grant: str,
        deadline: float,
        ttl: timedelta,
        stale: str | None,
        margin: timedelta,
    ) -> Lease | TokenSet:
        """The grant's refresh claim, or the tokens another holder refreshed while this one waited for it."""
        key, holder, pause = claim_key(grant), new_holder(), _FIRST_PAUSE_S
        while True:
            current, _ = self._load(tenant_id, grant)
            if not self._due(current, stale, margin):
                return current
            try:
                return acquire(self.store, key, holder, datetime.now(UTC), ttl)
            except Busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Retriable(_STILL_REFRESHING.format(tenant_id)) from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, _LONGEST_PAUSE_S)

    def _release(self, claim: Lease) -> None:
        try:
            release(self.store, claim)
        except SQLAlchemyError as exc:  # it runs out by itself within the claim's ttl
            log.warning("token.claim_not_released", key=claim.tenant_id, error=type(exc).__name__)

    def _keep(self, tenant_id: str, grant: str, used: str, fresh: TokenSet) -> TokenSet:
        """Store `fresh` unless the stored tokens changed since `used` was read; what is stored then.

        Raises:
            AuthExpired: the grant's tokens were deleted meanwhile (disconnected): not brought back.
            Retriable: the database refused every try; `fresh` is not used (see the module docstring).
        """
        for attempt in range(_STORE_TRIES):
            try:
                with self.store.begin() as conn:
                    stored = self.tokens.ciphertext(conn, grant, lock=True)
                    if stored == used:
                        self.tokens.write(conn, grant, fresh)
            except SQLAlchemyError as exc:
                log.warning(
                    "token.store_failed", tenant=tenant_id, attempt=attempt + 1, error=type(exc).__name__
                )
                time.sleep(_STORE_PAUSE_S * 2**attempt)
                continue
            if stored is None:
                raise _no_tokens(tenant_id)
            if stored == used:
                return fresh
            log.info("token.refresh_superseded", tenant=tenant_id)  # another holder stored first: use theirs
            return self.tokens.decrypt(tenant_id, stored)
        log.error("token.rotation_unstored", tenant=tenant_id)
        raise Retriable(
            f"tenant {tenant_id!r}: the refreshed tokens could not be stored, so they are not used; "
            "the next refresh renews them"
        )

    def _refused(self, tenant_id: str, grant: str, used: str, refusal: AuthExpired) -> TokenSet:
        """The ledger refused the refresh token: mark every tenant of the grant for reconnecting, unless
        another holder stored new tokens meanwhile (the refused one was superseded): then those."""
        with self.store.begin() as conn:
            stored = self.tokens.ciphertext(conn, grant, lock=True)
            if stored == used:
                conn.execute(
                    update(connections)
                    .where(connections.c.tenant_id.in_(self.tokens.tenants_of(conn, grant) or [tenant_id]))
                    .values(state=str(ConnectionState.RECONNECT_NEEDED),
                            message=f"reconnect needed: {refusal}", updated_at=self._clock())
                )  # fmt: skip
        if stored is None or stored == used:
            raise refusal
        return self.tokens.decrypt(tenant_id, stored)

    def refresh(
        self,
        tenant_id: str,
        refresher: Callable[[TokenSet], TokenSet],
        *,
        force: bool = False,
        margin: timedelta = timedelta(minutes=2),
        rejected: str | None = None,
        ttl: timedelta = REFRESH_TTL,
        wait: timedelta = REFRESH_WAIT,
    ) -> TokenSet:
        """Refresh the tenant's tokens (its grant's) unless another holder just did; stored before returned.

        Claim, call, compare-and-set (the module docstring): no transaction is open while `refresher` runs.
        `force` refreshes tokens that are not near their expiry (the ledger refused the access token), unless
        they changed since: since `rejected` (the access token refused), else since this call began. `ttl`:
        how long the claim lasts unless released; `wait`: how long to wait for another holder's.

        Raises:
            AuthExpired: no tokens, undecryptable tokens, or the ledger refused the refresh token; the
                connections of the grant are then marked reconnect_needed with the reason.
            Retriable: another holder's refresh outlasted `wait`, or the refreshed tokens could not be
                stored (they are not used; the next refresh renews them); and what `refresher` raises.
        """
        deadline = time.monotonic() + wait.total_seconds()
        with self.store.read() as conn:
            grant = self.tokens.grant_of(conn, tenant_id)
        if grant is None:
            raise _no_tokens(tenant_id)
        stale = rejected
        if force and stale is None:
            stale = self._load(tenant_id, grant)[0].access_token
        with self._one_thread(grant, tenant_id, deadline):
            claim = self._claim(tenant_id, grant, deadline, ttl, stale, margin)
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


__all__ = ["REFRESH_TTL", "REFRESH_WAIT", "RefreshCoordinator", "claim_key"]
