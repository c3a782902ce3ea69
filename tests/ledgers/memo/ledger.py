"""The memo Ledger: one organisation's books in a memo file, through its "API" (tests/ledgers/memo/book.py).

Like the shipped adapters it keeps its tokens only in ccm's vault (refreshed through the vault, so a rotated
refresh token is stored before it is used), waits out a throttled window on the clock the core lends it,
retries 5xx answers and says what the ledger answered when they last, and makes every write-back once per
key (the books honour the key, as an Idempotency-Key header would).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

from connector.ledger import (
    AdapterContext,
    AuthExpired,
    Change,
    Cursor,
    Fatal,
    LedgerError,
    OAuthEndpoints,
    Page,
    Rejected,
    Retriable,
    ServerError,
    Usage,
    WriteResult,
    after_retries,
)
from connector.oauth import TokenSet, TokenVault, load_key
from tests.ledgers.memo import webhooks
from tests.ledgers.memo.book import STREAMS, Book, NotFound, Refused, Throttled, Unauthorized, Unavailable
from tests.ledgers.memo.settings import MemoSettings, memo_settings

T = TypeVar("T")
ATTEMPTS = 6
MARGIN = timedelta(minutes=2)  # refresh this long before the access token ends


def refresher(config: MemoSettings, now: Callable[[], datetime]) -> Callable[[TokenSet], TokenSet]:
    """Trades a refresh token for new tokens at the books' token endpoint, for TokenVault.refresh."""
    book = Book(Path(_book_path(config)), now)

    def renew(current: TokenSet) -> TokenSet:
        try:
            answer = book.token(config.client_id, config.client_secret, refresh_token=current.refresh_token)
        except Refused as exc:
            raise AuthExpired(
                f"the memo books refused the refresh token ({exc}); reconnect the tenant"
            ) from None
        return TokenSet.from_response(answer, current, now())

    return renew


def _book_path(config: MemoSettings) -> str:
    if config.book is None:
        raise Fatal("ledgers.memo.book is not set (ccm.toml [ledgers.memo] book, or CCM_LEDGERS__MEMO__BOOK)")
    return str(config.book)


class MemoLedger:
    """What ccm needs from one memo organisation."""

    def __init__(self, ctx: AdapterContext) -> None:
        self.config = memo_settings(ctx.settings)
        clocked = ctx.services.clocked()
        self.now, self.sleep = clocked.now, clocked.sleep
        self.book = Book(Path(_book_path(self.config)), self.now)
        self.tenant_id, self.org = ctx.tenant_id, ctx.external_id
        self.vault = ctx.services.vault or TokenVault(ctx.services.store, load_key(ctx.settings), self.now)
        self.renew = refresher(self.config, self.now)
        self.calls = self.throttled = 0

    def _call(self, what: str, request: Callable[[str], T]) -> T:
        """One API call with a fresh access token: 401 refreshes once, throttling waits, 5xx retries."""
        seen: list[LedgerError] = []
        for attempt in range(ATTEMPTS):
            access = self.vault.fresh(self.tenant_id, self.renew, MARGIN).access_token
            try:
                answer = request(access)
            except Unauthorized:
                self.vault.refresh(self.tenant_id, self.renew, force=True, rejected=access)
                continue
            except Throttled as exc:
                self.throttled += 1
                self.sleep(exc.retry_after)
                continue
            except Unavailable as exc:
                seen.append(ServerError(f"memo answered HTTP {exc.status}", exc.status))
                self.sleep(2.0**attempt)
                continue
            except NotFound as exc:
                raise Fatal(f"{what}: {exc}") from None
            self.calls += 1
            return answer
        last = seen[-1] if seen else Retriable(f"{what}: no answer after {ATTEMPTS} attempts")
        raise after_retries("Memo", last, seen, what)

    # ---- connecting
    def oauth_endpoints(self) -> OAuthEndpoints:
        return OAuthEndpoints(
            f"memo:authorize?book={self.config.book}", f"memo:token?book={self.config.book}"
        )

    def scopes(self) -> Sequence[str]:
        return ("books",)

    # ---- reading
    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        """Records of `stream` changed since the cursor, `page_size` a page, oldest change first."""
        if stream not in STREAMS:
            raise Fatal(f"memo has no stream {stream!r} (it has: {', '.join(STREAMS)})")
        return self._pages(stream, cursor or Cursor())

    def _pages(self, stream: str, cursor: Cursor) -> Iterator[Page]:
        started = self.now()
        offset = int(cursor.token or 0)
        size = self.config.page_size
        while True:
            read = partial(self.book.read, stream=stream, since=cursor.since, offset=offset, size=size)
            rows, total = self._call(f"{stream} from {offset}", read)
            offset += len(rows)
            done = offset >= total or not rows
            after = Cursor(started, None) if done else Cursor(cursor.since, str(offset))
            yield Page(rows, after, api_calls=1, total_hint=total)
            if done:
                return

    # ---- writing
    def add_note(self, ref: str, text: str, key: str) -> WriteResult:
        kind, _, record_id = ref.rpartition(":")
        kind = kind or "invoice"
        if kind not in ("invoice", "customer"):
            raise Fatal(f"memo keeps notes on invoices and customers, not on {ref!r}")
        applied = self._call("note", lambda access: self.book.note(access, kind, record_id, text, key))
        return WriteResult(applied, f"{kind}:{record_id}")

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        customer = customer_ref.removeprefix("customer:")
        applied = self._call("hold", lambda access: self.book.hold(access, customer, on, reason, key))
        return WriteResult(applied, f"customer:{customer}")

    def send_via_ledger(self, invoice_ref: str, key: str) -> WriteResult:
        invoice = invoice_ref.removeprefix("invoice:")
        applied = self._call("send", lambda access: self.book.send(access, invoice, key))
        return WriteResult(applied, f"invoice:{invoice}")

    def usage(self) -> Usage:
        """Calls made through this ledger and how often it was throttled (memo has no day limit)."""
        return Usage(self.calls, self.throttled)

    # ---- webhooks
    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
        return webhooks.parse(self.config.webhook_secret, headers, raw_body)
