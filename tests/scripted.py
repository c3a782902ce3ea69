"""A scripted stand-in for a ledger API, for engine tests before (and beside) the real adapters.

It behaves like an incremental API ordered by (updated, id): `pull(stream, cursor)` returns records changed
at or after `cursor.since`, resuming after `cursor.token` (the last id read at that instant), in pages. Its
clock only moves when something changes, so tests are deterministic. Hard deletes come back as tombstones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.ledger import Change, Cursor, OAuthEndpoints, Page, Rejected, WriteResult

SCHEMA: dict[str, frozenset[str]] = {
    "contacts": frozenset({
        "ContactID", "Name", "EmailAddress", "Phone", "ContactStatus", "Groups[]", "UpdatedAt",
    }),
    "invoices": frozenset({
        "InvoiceID", "Number", "Type", "Contact.ContactID", "Currency", "Total", "AmountDue", "Status",
        "Date", "DueDate", "UpdatedAt",
    }),
    "payments": frozenset({
        "PaymentID", "Contact.ContactID", "Currency", "Amount", "Unapplied", "Date", "Status", "UpdatedAt",
        "Allocations[].InvoiceID", "Allocations[].Amount",
    }),
}  # fmt: skip


class Crash(BaseException):
    """Raised to simulate the process dying: the engine does not catch it, like a SIGKILL."""


@dataclass
class ScriptedLedger:
    page_size: int = 3
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    tombstones: dict[str, dict[str, datetime]] = field(default_factory=dict)
    ticks: int = 0
    calls: int = 0
    crash_on_page: int | None = None  # raise Crash while producing this page (1-based, counted across pulls)
    pages_served: int = 0
    keys_seen: set[str] = field(default_factory=set)
    notes: dict[str, list[str]] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    ledger_emails: list[str] = field(default_factory=list)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.ticks)

    def _tick(self) -> str:
        self.ticks += 1
        return self.now().isoformat()

    # ---- changing the source ----
    def put(self, stream: str, raw: dict[str, Any]) -> None:
        rid = raw[_ID[stream]]
        self.records.setdefault(stream, {})[rid] = {**raw, "UpdatedAt": self._tick()}
        self.tombstones.get(stream, {}).pop(rid, None)

    def remove(self, stream: str, rid: str) -> None:
        self.records.get(stream, {}).pop(rid, None)
        self._tick()
        self.tombstones.setdefault(stream, {})[rid] = self.now()

    # ---- the Ledger protocol ----
    def oauth_endpoints(self) -> OAuthEndpoints:
        return OAuthEndpoints("https://scripted.invalid/authorize", "https://scripted.invalid/token")

    def scopes(self) -> Sequence[str]:
        return ("read",)

    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        key = _ID[stream]
        items: list[tuple[datetime, str, dict[str, Any] | None]] = [
            (datetime.fromisoformat(r["UpdatedAt"]), r[key], r) for r in self.records.get(stream, {}).values()
        ]
        items += [(at, rid, None) for rid, at in self.tombstones.get(stream, {}).items()]
        items.sort(key=lambda item: (item[0], item[1]))
        if cursor is not None and cursor.since is not None:
            since, after = cursor.since, cursor.token or ""
            items = [i for i in items if i[0] > since or (i[0] == since and i[1] > after)]
        if not items:
            self.calls += 1
            yield Page([], cursor or Cursor(), api_calls=1)
            return
        total = len(items)
        for start in range(0, total, self.page_size):
            self.calls += 1
            self.pages_served += 1
            if self.crash_on_page == self.pages_served:
                raise Crash(f"crash while reading page {self.pages_served}")
            chunk = items[start : start + self.page_size]
            last_at, last_id, _ = chunk[-1]
            yield Page(
                records=[dict(r) for _, _, r in chunk if r is not None],
                deleted_ids=[rid for _, rid, r in chunk if r is None],
                cursor=Cursor(since=last_at, token=last_id),
                total_hint=total,
            )

    # ---- write-backs: idempotent by key, like the real ledgers (Xero's Idempotency-Key)
    def _once(self, key: str) -> bool:
        if key in self.keys_seen:
            return False
        self.keys_seen.add(key)
        self.calls += 1
        return True

    def add_note(self, ref: str, text: str, key: str) -> WriteResult:
        if self._once(key):
            self.notes.setdefault(ref, []).append(text)
            return WriteResult(True, f"note-{len(self.notes[ref])}")
        return WriteResult(False, None, api_calls=0)

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        if self._once(key):
            (self.held.add if on else self.held.discard)(customer_ref)
            return WriteResult(True)
        return WriteResult(False, None, api_calls=0)

    def send_via_ledger(self, invoice_ref: str, key: str) -> WriteResult:
        if self._once(key):
            self.ledger_emails.append(invoice_ref)
            return WriteResult(True)
        return WriteResult(False, None, api_calls=0)

    def online_invoice_url(self, invoice_ref: str) -> str:
        self.calls += 1
        return f"https://pay.scripted.invalid/{invoice_ref}"

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
        return Rejected("the scripted ledger sends no webhooks", 404)


_ID = {"contacts": "ContactID", "invoices": "InvoiceID", "payments": "PaymentID"}


def contact(cid: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"ContactID": cid, "Name": name or f"Customer {cid}", "ContactStatus": "ACTIVE", **extra}


def invoice(
    iid: str, contact_id: str = "C1", total: str = "100.00", due: str = "2026-02-01", **extra: Any
) -> dict[str, Any]:
    return {
        "InvoiceID": iid, "Number": f"INV-{iid}", "Type": "ACCREC", "Contact": {"ContactID": contact_id},
        "Currency": "GBP", "Total": total, "AmountDue": extra.pop("AmountDue", total),
        "Status": extra.pop("Status", "AUTHORISED"), "Date": "/Date(1767225600000+0000)/", "DueDate": due,
        **extra,
    }  # fmt: skip


def payment(pid: str, invoice_id: str, amount: str, contact_id: str = "C1") -> dict[str, Any]:
    return {
        "PaymentID": pid, "Contact": {"ContactID": contact_id}, "Currency": "GBP", "Amount": amount,
        "Unapplied": "0", "Date": "2026-01-15", "Status": "AUTHORISED",
        "Allocations": [{"InvoiceID": invoice_id, "Amount": amount}],
    }  # fmt: skip
