"""TokenVault: the one object adapters, flows and commands hold: storage and refresh coordination together.

It adds nothing of its own: reads and writes go to connector.tokens.storage (one encrypted row per grant),
renewals to connector.tokens.refresh (one holder at a time, stored before used). `refresh_ttl` and
`refresh_wait` may be set per vault (tests shorten the wait).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from connector.config import Settings
from connector.ledger import AuthExpired
from connector.store import Store
from connector.tokens.refresh import REFRESH_TTL, REFRESH_WAIT, RefreshCoordinator
from connector.tokens.storage import TokenStore, load_key
from connector.tokens.tokenset import TokenSet


class TokenVault:
    """Per-tenant tokens (each grant's, shared by its tenants), encrypted at rest, refreshed by one holder."""

    refresh_ttl: timedelta = REFRESH_TTL  # how long a refresh claim lasts unless released
    refresh_wait: timedelta = REFRESH_WAIT  # how long a refresh waits for another holder's before giving up

    def __init__(self, store: Store, key: bytes, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.tokens = TokenStore(store, key, clock)
        self.coordinator = RefreshCoordinator(self.tokens, clock)
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def open(cls, store: Store, settings: Settings) -> TokenVault:
        return cls(store, load_key(settings))

    # -- storage
    def get(self, tenant_id: str) -> TokenSet | None:
        """The tenant's tokens, or None for a tenant without any."""
        return self.tokens.get(tenant_id)

    def put(self, tenant_id: str, tokens: TokenSet, grant: str | None = None) -> None:
        """Store a tenant's tokens; `grant` names the consent they came from (tenants of one consent share
        them: a refresh for any of them rotates them all)."""
        self.tokens.put(tenant_id, tokens, grant)

    def delete(self, tenant_id: str) -> None:
        """Forget the tenant's tokens (the grant's too when no other tenant uses them)."""
        self.tokens.delete(tenant_id)

    def sharing(self, tenant_id: str) -> list[str]:
        """Other tenants whose tokens come from the same consent as this tenant's."""
        return self.tokens.sharing(tenant_id)

    # -- refresh
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

        See `RefreshCoordinator.refresh` (connector.tokens.refresh) for the steps and what it raises.
        """
        return self.coordinator.refresh(
            tenant_id, refresher, force=force, margin=margin, rejected=rejected, ttl=self.refresh_ttl,
            wait=self.refresh_wait,
        )  # fmt: skip

    def fresh(
        self,
        tenant_id: str,
        refresher: Callable[[TokenSet], TokenSet],
        margin: timedelta = timedelta(minutes=2),
    ) -> TokenSet:
        """The tenant's tokens, refreshed first if the access token expires within `margin`.

        Raises:
            AuthExpired: the tenant has no tokens (and what `refresh` raises).
        """
        tokens = self.get(tenant_id)
        if tokens is None:
            raise AuthExpired(f"tenant {tenant_id!r} has no tokens: connect it first")
        if tokens.expires_within(margin, self._clock()):
            return self.refresh(tenant_id, refresher, margin=margin)
        return tokens


__all__ = ["TokenVault"]
