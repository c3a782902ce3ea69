"""Write-backs to Xero, each done once per key: History notes, credit holds, Xero's own invoice e-mail.

Two guards make a retry harmless: every write carries the key as Idempotency-Key (Xero replays the first
answer, so the client may resend it after a lost answer), and before writing we look in the record's History
for the key's marker, so a retry after the process died between Xero's answer and our commit never writes
twice. The one write without a key, a release's DELETE of a group membership, is idempotent itself.
Xero has no credit-hold field: a hold is membership of a contact group (its name from the mapping's
`options.hold_group`, created if missing) plus a contact History note saying why.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from xero_python.accounting import (
    Contact,
    ContactGroup,
    ContactGroups,
    Contacts,
    HistoryRecord,
    HistoryRecords,
    RequestEmpty,
)

from adapters.xero.client import XeroClient
from connector.ledger import Fatal, WriteResult

MAX_DETAILS = 2500  # Xero's limit on a History record's Details
MAX_KEY = 128  # Xero's limit on an Idempotency-Key
# ref kind -> (History getter, History creator) of the SDK
_HISTORY = {
    "invoice": ("get_invoice_history", "create_invoice_history"),
    "contact": ("get_contact_history", "create_contact_history"),
    "credit_note": ("get_credit_note_history", "create_credit_note_history"),
    "payment": ("get_payment_history", "create_payment_history"),
}
_ALIASES = {"customer": "contact", "invoice": "invoice", "contact": "contact", "credit_note": "credit_note",
            "payment": "payment"}  # fmt: skip


class BadReference(Fatal):
    """A write-back named a record in a form this adapter does not know."""


def parse_ref(ref: str, default: str = "invoice") -> tuple[str, str]:
    """`kind:id` (invoice, contact/customer, credit_note, payment) or a bare id of `default` kind."""
    kind, sep, rid = ref.partition(":")
    if not sep:
        return default, ref
    if kind not in _ALIASES or not rid:
        raise BadReference(f"write-back reference {ref!r}: expected invoice:ID, customer:ID, credit_note:ID "
                           "or payment:ID")  # fmt: skip
    return _ALIASES[kind], rid


def short_key(key: str) -> str:
    """The key as sent: itself if it fits Xero's 128 characters, else a digest of it."""
    if len(key) <= MAX_KEY - 4 and key.isprintable():
        return key
    return "sha-" + hashlib.sha256(key.encode()).hexdigest()


def marker(key: str) -> str:
    return f"[ccm:{short_key(key)}]"


def with_marker(text: str, key: str) -> str:
    """The note's Details: the text (cut to fit) and the key's marker at its end."""
    tag = " " + marker(key)
    room = MAX_DETAILS - len(tag)
    body = text if len(text) <= room else text[: room - 1] + "…"
    return body + tag


@dataclass(frozen=True, slots=True)
class HoldGroup:
    group_id: str
    members: frozenset[str]


class Writer:
    """Idempotent write-backs for one tenant."""

    def __init__(self, client: XeroClient, hold_group: str) -> None:
        self.client = client
        self.hold_group = hold_group
        self._group_id: str | None = None

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One AccountingApi call for this tenant on the raw-JSON path; the parsed body ({} if none)."""
        request = getattr(self.client.accounting, method)
        response = self.client.call(
            what, lambda: request(self.client.xero_tenant_id, *args, _preload_content=False, **kwargs)
        )
        body = getattr(response, "data", b"")
        return json.loads(body) if body else {}

    # ---- notes
    def has_note(self, kind: str, rid: str, key: str) -> bool:
        data = self._call(f"{kind} {rid} history", _HISTORY[kind][0], rid)
        tag = marker(key)
        return any(tag in (r.get("Details") or "") for r in data.get("HistoryRecords") or [])

    def add_note(self, ref: str, text: str, key: str) -> WriteResult:
        """A History note on an invoice, contact, credit note or payment, written once per key."""
        kind, rid = parse_ref(ref)
        before = self.client.calls
        if self.has_note(kind, rid, key):
            return WriteResult(False, rid, self.client.calls - before)
        self._write_note(kind, rid, text, key)
        return WriteResult(True, rid, self.client.calls - before)

    def _write_note(self, kind: str, rid: str, text: str, key: str) -> None:
        records = HistoryRecords(history_records=[HistoryRecord(details=with_marker(text, key))])
        idempotency = short_key(f"{key}:note")  # one key, several writes: each write's own Idempotency-Key
        self._call(f"note on {kind} {rid}", _HISTORY[kind][1], rid, records, idempotency_key=idempotency)

    # ---- holds
    def _find_group(self) -> str | None:
        if self._group_id is not None:
            return self._group_id
        data = self._call("contact groups", "get_contact_groups")
        wanted = self.hold_group.casefold()
        for group in data.get("ContactGroups") or []:
            if (group.get("Name") or "").casefold() == wanted and group.get("Status", "ACTIVE") == "ACTIVE":
                self._group_id = str(group["ContactGroupID"])
        return self._group_id

    def _create_group(self, key: str) -> str:
        body = ContactGroups(contact_groups=[ContactGroup(name=self.hold_group)])
        idempotency = short_key(f"group:{self.hold_group}:{key}")
        data = self._call("create the hold group", "create_contact_group", body, idempotency_key=idempotency)
        groups = data.get("ContactGroups") or []
        if not groups or not groups[0].get("ContactGroupID"):
            raise Fatal(f"Xero did not create the contact group {self.hold_group!r}")
        self._group_id = str(groups[0]["ContactGroupID"])
        return self._group_id

    def _members(self, group_id: str) -> frozenset[str]:
        data = self._call("hold group members", "get_contact_group", group_id)
        groups = data.get("ContactGroups") or [{}]
        return frozenset(str(c.get("ContactID")) for c in groups[0].get("Contacts") or [])

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        """Put a customer on credit hold (group membership + note) or release it; once per key."""
        _, contact_id = parse_ref(customer_ref, default="contact")
        before = self.client.calls
        group_id = self._find_group()
        changed = False
        if group_id is None and on:
            group_id = self._create_group(key)
        if group_id is not None:
            members = self._members(group_id)
            if on and contact_id not in members:
                contacts = Contacts(contacts=[Contact(contact_id=contact_id)])
                self._call(f"hold contact {contact_id}", "create_contact_group_contacts", group_id, contacts,
                           idempotency_key=short_key(f"{key}:hold"))  # fmt: skip
                changed = True
            elif not on and contact_id in members:
                self._call(
                    f"release contact {contact_id}", "delete_contact_group_contact", group_id, contact_id
                )
                changed = True
        verb = "put on credit hold" if on else "released from credit hold"
        note = self.add_note(f"contact:{contact_id}", f"ccm: {verb}. {reason}".strip(), key)
        return WriteResult(changed or note.applied, contact_id, self.client.calls - before)

    # ---- Xero's own invoice e-mail, online invoice, reminders
    def send_invoice(self, invoice_ref: str, key: str) -> WriteResult:
        """Have Xero e-mail the invoice with its own template; once per key (a History note records it)."""
        _, invoice_id = parse_ref(invoice_ref)
        before = self.client.calls
        if self.has_note("invoice", invoice_id, key):
            return WriteResult(False, invoice_id, self.client.calls - before)
        self._call(f"e-mail invoice {invoice_id}", "email_invoice", invoice_id, RequestEmpty(),
                   idempotency_key=short_key(f"{key}:email"))  # fmt: skip
        self._write_note("invoice", invoice_id, "ccm: invoice e-mailed to the customer through Xero.", key)
        return WriteResult(True, invoice_id, self.client.calls - before)

    def online_invoice_url(self, invoice_id: str) -> str | None:
        """The customer's pay-online link for an invoice, to put in reminders (None if Xero has none)."""
        data = self._call(f"online invoice {invoice_id}", "get_online_invoice", invoice_id)
        for item in data.get("OnlineInvoices") or []:
            if item.get("OnlineInvoiceUrl"):
                return str(item["OnlineInvoiceUrl"])
        return None

    def extra_recipients(self, contact_id: str) -> list[str]:
        """The addresses of the contact's people marked "Include in emails" (ContactPersons), in Xero's order:
        Xero sends its own invoice e-mails to them too, so a reminder copies them."""
        data = self._call(f"contact {contact_id}", "get_contact", contact_id)
        found = []
        for contact in data.get("Contacts") or []:
            for person in contact.get("ContactPersons") or []:
                if person.get("IncludeInEmails") and (person.get("EmailAddress") or "").strip():
                    found.append(str(person["EmailAddress"]).strip())
        return found

    def reminders_enabled(self) -> bool:
        """Whether Xero's own invoice reminders are on (then customers would be chased twice: warn)."""
        data = self._call("invoice reminder settings", "get_invoice_reminders")
        return any(bool(r.get("Enabled")) for r in data.get("InvoiceReminders") or [])
