"""Connecting memo books (`AdapterSpec.connect`): the authorization-code flow without a browser.

The authorize "URL" is `memo:authorize?book=...&client_id=...&redirect_uri=...&state=...`; a person consents
by having the books issue a code (`consent`, what the sandbox's `RunningSandbox.consent` does). Saving the
organisation as the tenant's connection is the core's (`connector.flow.save_grant`), as for every ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

from connector.config import Settings
from connector.flow import Choice, Grant
from connector.ledger import AuthExpired
from connector.oauth import TokenSet, TokenVault
from connector.store import Store
from tests.ledgers.memo.book import Book, Refused
from tests.ledgers.memo.ledger import _book_path
from tests.ledgers.memo.settings import memo_settings


class MemoFlow:
    def redirect_uri(self, settings: Settings) -> str:
        return memo_settings(settings).redirect_uri

    def begin(self, settings: Settings, state: str) -> tuple[str, str | None]:
        config = memo_settings(settings)
        query = {"book": _book_path(config), "client_id": config.client_id, "redirect_uri": config.redirect_uri,
                 "state": state}  # fmt: skip
        return f"memo:authorize?{urlencode(query)}", None

    def exchange(
        self,
        settings: Settings,
        callback: Mapping[str, str],
        code_verifier: str | None,
        now: datetime | None = None,
    ) -> Grant:
        config = memo_settings(settings)
        at = now or datetime.now(UTC)
        try:
            answer = Book(Path(_book_path(config)), lambda: at).token(
                config.client_id, config.client_secret, code=callback["code"]
            )
        except Refused as exc:
            raise AuthExpired(f"the memo books refused the code ({exc})") from None
        return Grant(
            TokenSet.from_response(answer, None, at), (Choice(answer["org"], answer["org_name"], "books"),)
        )

    def revoke(self, settings: Settings, store: Store, tenant_id: str) -> str:
        tokens = TokenVault.open(store, settings).get(tenant_id)
        if tokens is None:
            raise AuthExpired(f"tenant {tenant_id!r} holds no tokens to revoke")
        Book(Path(_book_path(memo_settings(settings))), lambda: datetime.now(UTC)).revoke(
            tokens.refresh_token
        )
        return "the grant was revoked in the memo books"


def consent(url: str, now: datetime | None = None) -> dict[str, str]:
    """Follow a memo authorize URL as a consenting person: the callback's query (code, state)."""
    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    at = now or datetime.now(UTC)
    code = Book(Path(query["book"]), lambda: at).authorize(
        query["client_id"], query["redirect_uri"], query["state"]
    )
    return {"code": code, "state": query["state"]}


FLOW = MemoFlow()
