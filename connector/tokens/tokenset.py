"""One consent's tokens as the vault keeps them: TokenSet, its JSON, and reading a token endpoint's answer.

Every token set that passes through here (read from the vault, or answered by a ledger) has its secrets
registered with connector.redact first (`remember`), so no log line or error ever shows them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.ledger import AuthExpired, Retriable
from connector.redact import register_secret


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


__all__ = ["TokenSet", "remember"]
