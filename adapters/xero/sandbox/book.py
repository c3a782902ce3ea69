"""One Xero organisation's books in memory: records sorted by (UpdatedDateUTC, id), allocations, notes.

Reads take a page by bisecting the sorted keys (If-Modified-Since is "UpdatedDateUTC strictly after"), so a
1,000-record page costs the page, not the organisation. Every change goes through `_put`, which stamps
UpdatedDateUTC from the sandbox clock, re-sorts that one key, and tells the listeners (webhooks).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import (
    Firm,
    GenAllocation,
    GenCreditNote,
    GenCustomer,
    GenInvoice,
    GenLine,
    GenPayment,
)
from adapters.xero.sandbox import render

_TENANT_NS = uuid.UUID("a7d6c3f0-54b1-4c47-9a55-3c7c1b8e9d20")
_XERO_TIMEZONES = {"Europe/London": "GMTSTANDARDTIME", "Pacific/Auckland": "NEWZEALANDSTANDARDTIME"}
_OPEN = ("AUTHORISED",)  # SUBMITTED awaits approval: not posted to the ledger, so not in a balance


class _Dated(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def updated(self) -> datetime: ...


T = TypeVar("T", bound=_Dated)


def _key(rec: _Dated) -> tuple[int, str]:
    return (int(rec.updated.timestamp() * 1000), rec.id)


class Collection(Generic[T]):
    """Records of one kind by id, with their keys kept sorted by (UpdatedDateUTC in ms, id)."""

    def __init__(self, records: Iterator[T] | list[T]) -> None:
        self.by_id: dict[str, T] = {r.id: r for r in records}
        self.keys: list[tuple[int, str]] = sorted(_key(r) for r in self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, record_id: str) -> T | None:
        return self.by_id.get(record_id)

    def put(self, rec: T) -> None:
        old = self.by_id.get(rec.id)
        if old is not None:
            del self.keys[bisect.bisect_left(self.keys, _key(old))]
        self.by_id[rec.id] = rec
        bisect.insort(self.keys, _key(rec))

    def start_after(self, since_ms: int | None) -> int:
        """Index of the first key updated strictly after `since_ms` (0 without a bound)."""
        return 0 if since_ms is None else bisect.bisect_right(self.keys, (since_ms, "\uffff"))


Listener = Callable[
    [str, str, str], None
]  # (category CONTACT|INVOICE|CREDITNOTE, resource id, CREATE|UPDATE)


@dataclass(frozen=True, slots=True)
class HistoryNote:
    """One History record: a change Xero made or a note an app added."""

    changes: str
    details: str
    at: datetime
    user: str = "System Generated"


@dataclass
class Group:
    """A contact group (holds are memberships of one)."""

    id: str
    name: str
    status: str = "ACTIVE"
    members: set[str] = field(default_factory=set)


class Book:
    """The organisation's state. All access goes through `lock`: requests run on the server's threads."""

    def __init__(self, firm: Firm, clock: SandboxClock) -> None:
        self.firm_name = firm.name
        self.base_currency = firm.base_currency
        self.country = firm.country
        self.timezone_name = _XERO_TIMEZONES.get(firm.timezone, "UTC")
        self.created = min(c.created for c in firm.customers)
        self.tenant_id = str(uuid.uuid5(_TENANT_NS, f"{firm.name}:{firm.customers[0].id}"))
        self.clock = clock
        self.lock = threading.RLock()
        self.contacts: Collection[GenCustomer] = Collection(list(firm.customers))
        self.invoices: Collection[GenInvoice] = Collection(list(firm.invoices))
        self.invoices_of: dict[str, set[str]] = defaultdict(set)  # contact id -> its invoice ids
        for inv in firm.invoices:
            self.invoices_of[inv.customer_id].add(inv.id)
        self.credit_notes: Collection[GenCreditNote] = Collection(list(firm.credit_notes))
        self.payments: Collection[GenPayment] = Collection([p for p in firm.payments if p.kind == "payment"])
        self.overpayments: Collection[GenPayment] = Collection(
            [p for p in firm.payments if p.kind == "overpayment"]
        )
        self.prepayments: Collection[GenPayment] = Collection(
            [p for p in firm.payments if p.kind == "prepayment"]
        )
        self.allocated: dict[str, list[tuple[str, str, GenAllocation]]] = defaultdict(list)
        for pay in firm.payments:
            self._index(pay.kind, pay.id, pay.allocations)
        for note in firm.credit_notes:
            self._index("credit_note", note.id, note.allocations)
        self.groups: dict[str, Group] = {}
        self.memberships: dict[str, set[str]] = defaultdict(set)  # contact id -> group ids
        for seg in sorted({c.segment for c in firm.customers}):
            group = self.add_group(seg, quiet=True)
            for c in firm.customers:
                if c.segment == seg:
                    group.members.add(c.id)
                    self.memberships[c.id].add(group.id)
        self.history: dict[str, list[HistoryNote]] = defaultdict(list)
        self.sent: set[str] = set()
        self.emailed: list[str] = []  # invoice ids Xero e-mailed, in order
        self.emails: dict[date, int] = defaultdict(int)
        self.reminders_enabled = False
        # ContactPersons by contact id, as Xero shows them: FirstName, LastName, EmailAddress, IncludeInEmails
        self.contact_persons: dict[str, list[dict[str, Any]]] = {}
        self.listeners: list[Listener] = []

    # ---- lookups --------------------------------------------------------------------------------------
    def _index(self, kind: str, source_id: str, allocs: tuple[GenAllocation, ...]) -> None:
        for alloc in allocs:
            self.allocated[alloc.invoice_id].append((kind, source_id, alloc))

    def _source(self, kind: str, source_id: str) -> GenPayment | GenCreditNote | None:
        if kind == "credit_note":
            note = self.credit_notes.get(source_id)
            return note if note is not None and note.status == "authorised" else None
        coll = {"payment": self.payments, "overpayment": self.overpayments, "prepayment": self.prepayments}[
            kind
        ]
        pay = coll.get(source_id)
        return pay if pay is not None and not pay.deleted else None

    def live_allocations(self, invoice_id: str) -> list[tuple[str, Any, GenAllocation]]:
        """(kind, source record, allocation) of the live payments and credits applied to an invoice."""
        out = []
        for kind, source_id, alloc in self.allocated.get(invoice_id, ()):
            src = self._source(kind, source_id)
            if src is not None:
                out.append((kind, src, alloc))
        return out

    def invoice_status(self, inv: GenInvoice) -> str:
        return render.invoice_status(inv, self.live_allocations(inv.id))

    def balances(self, contact_id: str) -> dict[str, dict[str, float]]:
        """Contact Balances as Xero reports them: AmountDue of the contact's AUTHORISED (posted) sales
        invoices (AccountsReceivable) and bills (AccountsPayable), raw (not converted to the base currency);
        Overdue counts those whose DueDate is before today on the sandbox clock."""
        today = self.clock.now().date()
        sums = {"sales": [Decimal(0), Decimal(0)], "bill": [Decimal(0), Decimal(0)]}
        for invoice_id in self.invoices_of.get(contact_id, ()):
            inv = self.invoices.by_id.get(invoice_id)  # tests may remove records behind the API
            if inv is None:
                continue
            allocs = self.live_allocations(invoice_id)
            if render.invoice_status(inv, allocs) not in _OPEN:
                continue
            due = render.amounts(inv, allocs)[2]
            sums[inv.kind][0] += due
            if inv.due_date < today:
                sums[inv.kind][1] += due
        return {
            side: {"Outstanding": render.num(sums[kind][0]), "Overdue": render.num(sums[kind][1])}
            for side, kind in (("AccountsReceivable", "sales"), ("AccountsPayable", "bill"))
        }

    def customer(self, contact_id: str) -> GenCustomer:
        found = self.contacts.get(contact_id)
        assert found is not None, contact_id  # every record's customer exists: the generator guarantees it
        return found

    # ---- rendering ------------------------------------------------------------------------------------
    def group_refs(self, contact_id: str) -> list[dict[str, Any]]:
        return [
            {"ContactGroupID": g.id, "Name": g.name, "Status": g.status, "HasValidationErrors": False}
            for gid in sorted(self.memberships.get(contact_id, ()))
            if (g := self.groups[gid]).status == "ACTIVE"
        ]

    def render(self, kind: str, rec: Any) -> dict[str, Any]:
        """A record of collection `kind` ("Contacts", "Invoices", ...) in Xero's JSON shape."""
        if kind == "Contacts":
            persons = self.contact_persons.get(rec.id)
            return render.contact(rec, self.group_refs(rec.id), self.balances(rec.id), persons)
        if kind == "Invoices":
            allocs = self.live_allocations(rec.id)
            return render.invoice(rec, self.customer(rec.customer_id), allocs, rec.id in self.sent)
        cust = self.customer(rec.customer_id)
        if kind == "Payments":
            return render.payment(rec, self.invoices.by_id[rec.allocations[0].invoice_id], cust)
        if kind == "CreditNotes":
            return render.credit_note(rec, cust, self.invoices.by_id, self.contacts.by_id)
        return render.credit_payment(rec, cust, self.invoices.by_id, self.contacts.by_id)

    def view(self, kind: str, rec: Any) -> dict[str, Any]:
        """What `where`, `order` and `searchTerm` read: `render`, less an invoice's line items (fast)."""
        if kind != "Invoices":
            return self.render(kind, rec)
        cust = self.customer(rec.customer_id)
        out = render.invoice(rec, cust, self.live_allocations(rec.id), rec.id in self.sent, nested=False)
        out["Contact"] = {"ContactID": cust.id, "Name": cust.name}
        return out

    def render_json(self, kind: str, rec: Any) -> str:
        """`render` as compact JSON; invoices (the bulk of a sync) take a faster path."""
        if kind == "Invoices":
            allocs = self.live_allocations(rec.id)
            return render.invoice_json(rec, self.customer(rec.customer_id), allocs, rec.id in self.sent)
        return json.dumps(self.render(kind, rec), separators=(",", ":"))

    def collection(self, kind: str) -> Collection[Any]:
        colls: dict[str, Collection[Any]] = {
            "Contacts": self.contacts,
            "Invoices": self.invoices,
            "CreditNotes": self.credit_notes,
            "Payments": self.payments,
            "Overpayments": self.overpayments,
            "Prepayments": self.prepayments,
        }
        return colls[kind]

    # ---- changes ---------------------------------------------------------------------------------------
    def _notify(self, category: str, resource_id: str, event: str) -> None:
        for listener in self.listeners:
            listener(category, resource_id, event)

    def _touch(self, coll: Collection[T], rec: T, category: str | None, event: str = "UPDATE") -> T:
        stamped = dataclasses.replace(rec, updated=max(self.clock.now(), rec.updated))  # type: ignore[type-var]
        coll.put(stamped)
        if category:
            self._notify(category, stamped.id, event)
        return stamped

    def touch_invoice(self, invoice_id: str) -> None:
        inv = self.invoices.get(invoice_id)
        if inv is not None:
            self._touch(self.invoices, inv, "INVOICE")

    def touch_contact(self, contact_id: str) -> None:
        self._touch(self.contacts, self.customer(contact_id), "CONTACT")

    def add_group(self, name: str, *, quiet: bool = False) -> Group:
        group = Group(str(uuid.uuid5(_TENANT_NS, f"{self.tenant_id}:group:{name}:{len(self.groups)}")), name)
        self.groups[group.id] = group
        del quiet  # groups carry no UpdatedDateUTC and raise no webhook
        return group

    def join(self, group: Group, contact_id: str) -> None:
        if contact_id not in group.members:
            group.members.add(contact_id)
            self.memberships[contact_id].add(group.id)
            self.touch_contact(contact_id)

    def leave(self, group: Group, contact_id: str) -> None:
        if contact_id in group.members:
            group.members.discard(contact_id)
            self.memberships[contact_id].discard(group.id)
            self.touch_contact(contact_id)

    def add_note(self, record_id: str, details: str, changes: str = "Note") -> HistoryNote:
        note = HistoryNote(changes, details, self.clock.now())
        self.history[record_id].append(note)
        return note

    def record_history(self, record_id: str, created: datetime) -> list[HistoryNote]:
        """What GET .../History shows: the creation, then notes in order."""
        return [
            HistoryNote("Created", "Created by the sandbox generator", created),
            *self.history.get(record_id, ()),
        ]

    # ---- test controls (also used by the handle) --------------------------------------------------------
    def post_payment(
        self, invoice_id: str, amount: Decimal | None = None, on: date | None = None
    ) -> GenPayment:
        """Record a customer's payment against an invoice (the whole amount due by default)."""
        inv = self.invoices.by_id[invoice_id]
        due = inv.total - sum((a.amount for _, _, a in self.live_allocations(invoice_id)), Decimal(0))
        amount = due if amount is None else amount
        now = self.clock.now()
        day = on or now.date()
        pay = GenPayment(
            id=str(uuid.uuid4()),
            customer_id=inv.customer_id,
            date=day,
            currency=inv.currency,
            currency_rate=inv.currency_rate,
            amount=amount,
            kind="payment",
            allocations=(GenAllocation(invoice_id, amount, day),),
            created=now,
            updated=now,
        )
        self.payments.put(pay)
        self._index("payment", pay.id, pay.allocations)
        self.touch_invoice(invoice_id)
        return pay

    def delete_payment(self, payment_id: str) -> GenPayment:
        pay = self.payments.by_id[payment_id]
        done = self._touch(self.payments, dataclasses.replace(pay, deleted=True), None)
        self.touch_invoice(pay.allocations[0].invoice_id)
        return done

    def post_credit_note(self, invoice_id: str, amount: Decimal) -> GenCreditNote:
        """An authorised credit note for `amount` (VAT inclusive) allocated to an invoice."""
        inv = self.invoices.by_id[invoice_id]
        now = self.clock.now()
        net = (amount / Decimal("1.2")).quantize(Decimal("0.01"))
        note = GenCreditNote(
            id=str(uuid.uuid4()),
            number=f"CN-{len(self.credit_notes) + 1:06d}",
            customer_id=inv.customer_id,
            date=now.date(),
            currency=inv.currency,
            currency_rate=inv.currency_rate,
            lines=(GenLine("Credit", Decimal(1), net, amount - net),),
            total=amount,
            status="authorised",
            allocations=(GenAllocation(invoice_id, amount, now.date()),),
            created=now,
            updated=now,
        )
        self.credit_notes.put(note)
        self._index("credit_note", note.id, note.allocations)
        self._notify("CREDITNOTE", note.id, "CREATE")
        self.touch_invoice(invoice_id)
        return note

    def add_invoice(self, contact_id: str, total: Decimal, due: date | None = None) -> GenInvoice:
        """A new authorised sales invoice of `total` (VAT inclusive), issued today."""
        now = self.clock.now()
        net = (total / Decimal("1.2")).quantize(Decimal("0.01"))
        cust = self.customer(contact_id)
        inv = GenInvoice(
            id=str(uuid.uuid4()),
            number=f"INV-{len(self.invoices) + 1:06d}",
            customer_id=contact_id,
            issue_date=now.date(),
            due_date=due or now.date(),
            currency=cust.currency,
            currency_rate=Decimal(1),
            lines=(GenLine("Services", Decimal(1), net, total - net),),
            subtotal=net,
            tax=total - net,
            total=total,
            status="authorised",
            created=now,
            updated=now,
        )
        self.invoices.put(inv)
        self.invoices_of[contact_id].add(inv.id)
        self._notify("INVOICE", inv.id, "CREATE")
        return inv

    def set_invoice_status(self, invoice_id: str, status: str) -> GenInvoice:
        """Void or delete an invoice (any generator status name)."""
        inv = self.invoices.by_id[invoice_id]
        return self._touch(self.invoices, dataclasses.replace(inv, status=status), "INVOICE")  # type: ignore[arg-type]

    def change_contact(self, contact_id: str, **changes: Any) -> GenCustomer:
        """Change a contact's fields (name, email, archived, merged_into); moves its UpdatedDateUTC."""
        return self._touch(
            self.contacts, dataclasses.replace(self.customer(contact_id), **changes), "CONTACT"
        )
