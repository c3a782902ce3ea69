"""Writing to QBO exactly once: notes as Attachables, credit holds as a marked line in Customer.Notes, sends.

Idempotency: every note ccm writes ends with the marker `[ccm:<key>]`; before writing, the record's
Attachables are read and a note already carrying the marker means the write was done (perhaps by a run
that died before recording it). Holds change only ccm's own line in Customer.Notes, by sparse update,
re-reading and re-applying on a stale SyncToken (fault 5010), so the customer's own text is kept.

No blind retry: a write whose answer was lost (OutcomeUnknown from the client) is checked at QBO before it
is sent again, within the same call: a note by its marker, a hold line by re-reading the customer, an
e-mail by the invoice's DeliveryInfo against the time of the send's marker note. When that check cannot be
made, or the answers keep being lost, the call raises OutcomeUnknown; the next call with the same key
begins with the same checks. Each request also carries a `requestid` derived from the key and the request,
the same for a resend of the same request only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.quickbooks.client import OutcomeUnknown, QboApi, QboRefused, StaleObject
from adapters.quickbooks.pull import parse_time
from connector.ledger import Fatal, Retriable, WriteResult

T = TypeVar("T")

HOLD_MARKER = "[ccm credit hold]"
NOTES_MAX = 2000  # QBO's limit on Customer.Notes
STALE_ATTEMPTS = 5
# QBO's faults for an invoice send with no address: a 6000 business validation error (issue 18); 6140 as the
# sandbox answered it before.
NO_EMAIL = frozenset({6000, 6140})
LOST_ANSWER_SENDS = 3  # sends of one write whose answers were lost, each checked at QBO before the next
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


def request_id(key: str, *request: object) -> str:
    """QBO's `requestid` for one request of the write `key`: the same for a resend of that request only."""
    text = json.dumps([key, *request], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
        """The marked note, created once: a lost answer is checked by looking for the marker."""
        body = {
            "Note": f"{text} {marker(key)}",
            "AttachableRef": [
                {"EntityRef": {"type": where.entity, "value": where.id}, "IncludeOnSend": False}
            ],
        }
        rid = request_id(key, "Attachable", body)
        return self._once(
            f"note on {where.entity} {where.id}",
            lambda: self.api.create("Attachable", body, request_id=rid),
            lambda: self._find(where, key),
        )

    @staticmethod
    def _once(what: str, write: Callable[[], T], done: Callable[[], T | None]) -> T:
        """Send `write`; when its answer is lost, ask QBO whether it was done (`done`, None if not) and send
        it again only if not.

        Raises:
            OutcomeUnknown: every answer was lost and QBO shows nothing done yet; or QBO could not be asked.
        """
        for _ in range(LOST_ANSWER_SENDS):
            try:
                return write()
            except OutcomeUnknown:
                pass
            try:
                found = done()
            except Retriable as exc:  # a read that outlasted its retries
                raise OutcomeUnknown(
                    f"{what}: the answer was lost and QuickBooks could not be asked whether it was done "
                    f"({exc}); the next attempt asks first"
                ) from None
            if found is not None:
                return found
        raise OutcomeUnknown(f"{what}: {LOST_ANSWER_SENDS} answers lost and QuickBooks shows nothing done; "
                             "the next attempt asks first")  # fmt: skip

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
        changed = self._edit_notes(where.id, lambda notes: with_hold(notes, on, reason, self.now()), key)
        why = f"Credit hold {'placed' if on else 'released'} by ccm: {reason}"
        noted = self._find(where, key) is None and bool(self._attach(where, why, key))
        return WriteResult(changed or noted, where.id, self.api.calls - calls)

    def _edit_notes(self, customer_id: str, edit: Callable[[str], str], key: str) -> bool:
        """Apply `edit` to Customer.Notes by sparse update; on a stale SyncToken, or an answer lost, re-read
        and re-apply (the re-read shows whether the lost update was done: `edit` then changes nothing)."""
        lost = 0  # updates of ours whose answers were lost
        for _ in range(STALE_ATTEMPTS + LOST_ANSWER_SENDS):
            current = self._reread(customer_id, lost)
            notes = str(current.get("Notes") or "")
            wanted = edit(notes)
            if wanted == notes:
                return lost > 0  # done already, or by an update of ours whose answer was lost
            if lost == LOST_ANSWER_SENDS:
                raise OutcomeUnknown(f"customer {customer_id}: {lost} answers lost and the hold line not "
                                     "there yet; the next attempt looks first")  # fmt: skip
            if len(wanted) > NOTES_MAX:
                raise Fatal(
                    f"customer {customer_id}: Notes would exceed {NOTES_MAX} characters with the hold line"
                )
            body = {"Id": customer_id, "SyncToken": current["SyncToken"], "sparse": True, "Notes": wanted}
            try:
                self.api.update("Customer", body, request_id=request_id(key, "Customer", body))
            except StaleObject:
                continue  # someone changed the customer meanwhile: re-read, re-apply
            except OutcomeUnknown:
                lost += 1  # re-read: a done update shows, and its SyncToken makes a resend of it fail anyway
                continue
            return True
        raise StaleObject(f"customer {customer_id}: still changing after {STALE_ATTEMPTS} attempts")

    def _reread(self, customer_id: str, lost: int) -> dict[str, Any]:
        try:
            return self.api.read("Customer", customer_id)
        except Retriable as exc:
            if lost == 0:
                raise
            raise OutcomeUnknown(
                f"customer {customer_id}: an update's answer was lost and the customer could not be re-read "
                f"({exc}); the next attempt looks first"
            ) from None

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
            found = self._attach(where, "Invoice sent by ccm through QuickBooks e-mail", key)
        elif self._delivered(where.id, found) is not None:
            return WriteResult(False, where.id, self.api.calls - calls)
        try:
            self._send(where.id, None, key, found)
        except QboRefused as exc:
            if exc.code not in NO_EMAIL:
                raise
            self._send(where.id, self._customer_email(where.id), key, found)
        return WriteResult(True, where.id, self.api.calls - calls)

    def _send(self, invoice_id: str, send_to: str | None, key: str, note: dict[str, Any]) -> None:
        """One e-mail of the invoice: a lost answer is checked by the invoice's DeliveryInfo."""
        rid = request_id(key, "send", invoice_id, send_to)
        self._once(
            f"e-mail of invoice {invoice_id}",
            lambda: self.api.send_invoice(invoice_id, send_to, request_id=rid),
            lambda: self._delivered(invoice_id, note),
        )

    def _delivered(self, invoice_id: str, note: dict[str, Any]) -> dict[str, Any] | None:
        """The invoice if QBO e-mailed it since the send's marker `note` was made, else None."""
        invoice = self.api.read("Invoice", invoice_id)
        return invoice if _delivered_since(invoice, note) else None

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
