"""Writing to QBO exactly once: notes as Attachables, credit holds as a marked line in Customer.Notes, sends.

Idempotency: every note ccm writes ends with the marker `[ccm:<key>]`; before writing, the record's
Attachables are read and a note already carrying the marker means the write was done (perhaps by a run
that died before recording it). Holds change only ccm's own line in Customer.Notes, by sparse update,
re-reading and re-applying on a stale SyncToken (fault 5010), so the customer's own text is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.base import Fatal, WriteResult
from adapters.quickbooks.client import QboApi, Refused, StaleObject
from adapters.quickbooks.pull import parse_time

HOLD_MARKER = "[ccm credit hold]"
NOTES_MAX = 2000  # QBO's limit on Customer.Notes
STALE_ATTEMPTS = 5
NO_EMAIL = 6140  # QBO's fault for an invoice send with no address
_KINDS = {"invoice": "Invoice", "invoices": "Invoice", "customer": "Customer", "customers": "Customer"}


@dataclass(frozen=True, slots=True)
class Target:
    entity: str  # "Invoice" or "Customer"
    id: str


def target(ref: str, default: str = "Invoice") -> Target:
    """Read a reference: `invoice:130`, `customer:58` (a bare id is a `default` one)."""
    kind, sep, rid = ref.partition(":")
    if not sep:
        kind, rid = default.lower(), ref
    entity = _KINDS.get(kind.strip().lower())
    rid = rid.strip()
    if entity is None or not rid.isdigit():
        raise Fatal(
            f"not a QuickBooks invoice or customer reference: {ref!r} (use invoice:ID or customer:ID)"
        )
    return Target(entity, rid)


def marker(key: str) -> str:
    if not key or "]" in key or len(key) > 200:
        raise Fatal(f"unusable idempotency key {key!r}")
    return f"[ccm:{key}]"


class Writer:
    """Write-backs for one company."""

    def __init__(self, api: QboApi, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.api = api
        self.now = now

    def _notes_on(self, where: Target) -> list[dict[str, Any]]:
        # An entity name of ours and a numeric id: nothing to inject.
        text = (
            f"SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Type = '{where.entity}' "  # noqa: S608
            f"AND AttachableRef.EntityRef.value = '{where.id}' MAXRESULTS 1000"
        )
        answer = self.api.query(text)
        return list((answer.get("QueryResponse") or {}).get("Attachable") or [])

    def _find(self, where: Target, key: str) -> dict[str, Any] | None:
        tag = marker(key)
        return next((a for a in self._notes_on(where) if tag in str(a.get("Note", ""))), None)

    def _attach(self, where: Target, text: str, key: str) -> dict[str, Any]:
        body = {
            "Note": f"{text} {marker(key)}",
            "AttachableRef": [
                {"EntityRef": {"type": where.entity, "value": where.id}, "IncludeOnSend": False}
            ],
        }
        return self.api.create("Attachable", body)

    def add_note(self, ref: str, text: str, key: str) -> WriteResult:
        """An Attachable note on an invoice or customer, once per key."""
        where = target(ref)
        calls = self.api.calls
        found = self._find(where, key)
        if found is not None:
            return WriteResult(False, str(found.get("Id")), self.api.calls - calls)
        made = self._attach(where, text, key)
        return WriteResult(True, str(made.get("Id")), self.api.calls - calls)

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        """Put a customer on credit hold (or release it): ccm's line in Notes, plus a note saying why."""
        where = target(customer_ref, default="Customer")
        if where.entity != "Customer":
            raise Fatal(f"a credit hold applies to a customer, not {customer_ref!r}")
        calls = self.api.calls
        changed = self._edit_notes(where.id, lambda notes: with_hold(notes, on, reason, self.now()))
        why = f"Credit hold {'placed' if on else 'released'} by ccm: {reason}"
        noted = self._find(where, key) is None and bool(self._attach(where, why, key))
        return WriteResult(changed or noted, where.id, self.api.calls - calls)

    def _edit_notes(self, customer_id: str, edit: Callable[[str], str]) -> bool:
        """Apply `edit` to Customer.Notes by sparse update; on a stale SyncToken re-read and re-apply."""
        for _ in range(STALE_ATTEMPTS):
            current = self.api.read("Customer", customer_id)
            notes = str(current.get("Notes") or "")
            wanted = edit(notes)
            if wanted == notes:
                return False
            if len(wanted) > NOTES_MAX:
                raise Fatal(
                    f"customer {customer_id}: Notes would exceed {NOTES_MAX} characters with the hold line"
                )
            body = {"Id": customer_id, "SyncToken": current["SyncToken"], "sparse": True, "Notes": wanted}
            try:
                self.api.update("Customer", body)
            except StaleObject:
                continue  # someone changed the customer meanwhile: re-read, re-apply
            return True
        raise StaleObject(f"customer {customer_id}: still changing after {STALE_ATTEMPTS} attempts")

    def send_invoice(self, invoice_ref: str, key: str) -> WriteResult:
        """QBO e-mails the invoice, once per key.

        A marker note is written BEFORE sending; a retry that finds it sends again only if the invoice's
        DeliveryInfo shows no delivery since the marker was made (the earlier run died before sending).
        """
        where = target(invoice_ref)
        if where.entity != "Invoice":
            raise Fatal(f"only invoices can be sent, not {invoice_ref!r}")
        calls = self.api.calls
        found = self._find(where, key)
        if found is None:
            self._attach(where, "Invoice sent by ccm through QuickBooks e-mail", key)
        elif _delivered_since(self.api.read("Invoice", where.id), found):
            return WriteResult(False, where.id, self.api.calls - calls)
        try:
            self.api.send_invoice(where.id)
        except Refused as exc:
            if exc.code != NO_EMAIL:
                raise
            self.api.send_invoice(where.id, self._customer_email(where.id))
        return WriteResult(True, where.id, self.api.calls - calls)

    def _customer_email(self, invoice_id: str) -> str:
        """The invoice's customer's e-mail, for an invoice that has no BillEmail of its own."""
        customer_id = str((self.api.read("Invoice", invoice_id).get("CustomerRef") or {}).get("value", ""))
        customer = self.api.read("Customer", customer_id) if customer_id else {}
        email = (customer.get("PrimaryEmailAddr") or {}).get("Address")
        if not email:
            raise Fatal(f"invoice {invoice_id}: no e-mail address to send it to (no BillEmail, and customer "
                        f"{customer_id or '?'} has no PrimaryEmailAddr)")  # fmt: skip
        return str(email)


def with_hold(notes: str, on: bool, reason: str, today: datetime) -> str:
    """`notes` with ccm's hold line added (on) or removed (off); every other line kept as it was."""
    lines = notes.split("\n") if notes else []
    ours = [line for line in lines if line.startswith(HOLD_MARKER)]
    theirs = [line for line in lines if not line.startswith(HOLD_MARKER)]
    if on:
        if ours:
            return notes
        reason_line = " ".join(reason.split())[:200]
        return "\n".join([*theirs, f"{HOLD_MARKER} since {today:%Y-%m-%d}: {reason_line}"])
    return "\n".join(theirs) if ours else notes


def _delivered_since(invoice: dict[str, Any], note: dict[str, Any]) -> bool:
    delivered = (invoice.get("DeliveryInfo") or {}).get("DeliveryTime")
    made = (note.get("MetaData") or {}).get("CreateTime")
    if not isinstance(delivered, str) or not isinstance(made, str):
        return False
    return parse_time(delivered) >= parse_time(made)
