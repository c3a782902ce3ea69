"""The token vault: ledgers' OAuth tokens, encrypted at rest, one row per consent, renewed by one holder.

- `tokenset`: TokenSet (what a token endpoint answers, as stored) and `remember` (secrets kept out of logs).
- `storage`: TokenStore, the encrypted rows (`oauth_grants`, one per grant; `oauth_tokens`, which tenant uses
  which grant), the vault key (`load_key`) and the clear-text expiries the health checks read.
- `refresh`: RefreshCoordinator, who renews a grant (a lock per process, a claim across processes), the
  compare-and-set that stores a rotation before it is used, and a refused grant marking its connections.
- `vault`: TokenVault, storage and refresh behind the one object the adapters and flows hold.

The authlib client helpers (authorization URL, code exchange, refresh and revoke calls) are connector.oauth.
"""

from connector.tokens.refresh import REFRESH_TTL, REFRESH_WAIT, RefreshCoordinator, claim_key
from connector.tokens.storage import Expiry, TokenStore, VaultKeyError, expiries, load_key
from connector.tokens.tokenset import TokenSet, remember
from connector.tokens.vault import TokenVault

__all__ = [
    "REFRESH_TTL", "REFRESH_WAIT", "Expiry", "RefreshCoordinator", "TokenSet", "TokenStore", "TokenVault",
    "VaultKeyError", "claim_key", "expiries", "load_key", "remember",
]  # fmt: skip
