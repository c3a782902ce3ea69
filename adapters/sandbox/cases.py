"""Named cases a generated firm can carry: one customer each, whose books show one situation ccm must get
right. `generate(..., cases=True)` appends them after the random firm, from their own random stream, so the
rest of the firm is exactly what the same seed gives without them.

Each customer is named for its case (`CASE_NAMES`), and `Firm.cases` lists its records:
- early_payer_allocated_late ("Early Payer Allocated Late Ltd"): an invoice paid ten days before its due
  date by an overpayment the bookkeeper allocated to it about eleven months later;
- paid_without_allocation ("Paid Without Allocation Ltd"): an invoice the ledger marks paid (amount due
  zero) with no payment or credit allocated to it;
- paid_in_other_currency ("Paid In Euros Ltd"): a GBP invoice paid in full by a EUR payment, its amount
  the invoice's at the payment's recorded rate (the allocation is in the invoice's currency, as always);
- inactive_with_open_invoice ("Archived With Open Invoice Ltd"): an archived customer (inactive in
  QuickBooks) with an invoice open and 90 days overdue;
- in_credit ("In Credit Nothing Open Ltd"): a customer whose invoice is paid and who has an unapplied
  overpayment: in credit, nothing open.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from adapters.sandbox.records import (
    Case,
    CaseKind,
    Firm,
    GenAllocation,
    GenCustomer,
    GenInvoice,
    GenLine,
    GenPayment,
)

CASE_NAMES: dict[CaseKind, str] = {
    "early_payer_allocated_late": "Early Payer Allocated Late Ltd",
    "paid_without_allocation": "Paid Without Allocation Ltd",
    "paid_in_other_currency": "Paid In Euros Ltd",
    "inactive_with_open_invoice": "Archived With Open Invoice Ltd",
    "in_credit": "In Credit Nothing Open Ltd",
}
EURO_RATE = Decimal("1.150000")  # EUR per GBP recorded on the EUR payment
_TERMS = 30  # Trade terms, like the generator's "Trade" segment


class _Cases:
    def __init__(self, firm: Firm, seed: int) -> None:
        self.firm = firm
        self.rng = random.Random(f"cases-{seed}")  # noqa: S311 - test data, reproducible by design
        self.today = firm.today
        self.next_number = len(firm.invoices) + 1
        self.customers: list[GenCustomer] = []
        self.invoices: list[GenInvoice] = []
        self.payments: list[GenPayment] = []
        self.cases: list[Case] = []

    def uid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def day(self, days_ago: int) -> date:
        return self.today - timedelta(days=days_ago)

    @staticmethod
    def stamp(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)

    def customer(self, kind: CaseKind, behaviour: str, archived: bool = False) -> GenCustomer:
        created = self.stamp(self.day(600))
        slug = CASE_NAMES[kind].lower().replace(" ", "-")
        cust = GenCustomer(
            id=self.uid(), name=CASE_NAMES[kind], email=f"accounts@{slug}.example.com",
            currency=self.firm.base_currency, behaviour=behaviour, segment="Trade",  # type: ignore[arg-type]
            archived=archived, created=created, updated=self.stamp(self.day(30)) if archived else created,
        )  # fmt: skip
        self.customers.append(cust)
        return cust

    def invoice(self, cust: GenCustomer, issued_days_ago: int, net: Decimal, **extra: object) -> GenInvoice:
        issue = self.day(issued_days_ago)
        tax = (net * Decimal("0.2")).quantize(Decimal("0.01"))
        last = extra.pop("last_event", None)
        inv = GenInvoice(
            id=self.uid(), number=f"INV-{self.next_number:06d}", customer_id=cust.id, issue_date=issue,
            due_date=issue + timedelta(days=_TERMS), currency=cust.currency, currency_rate=Decimal(1),
            lines=(GenLine("Consultancy (day)", Decimal(1), net, tax),), subtotal=net, tax=tax,
            total=net + tax,
            status="authorised", created=self.stamp(issue),
            updated=self.stamp(last) if isinstance(last, date) else self.stamp(issue),
            **extra,  # type: ignore[arg-type]
        )  # fmt: skip
        self.next_number += 1
        self.invoices.append(inv)
        return inv

    def payment(
        self, cust: GenCustomer, day: date, amount: Decimal, kind: str,
        allocations: tuple[GenAllocation, ...],
        currency: str | None = None, rate: Decimal = Decimal(1),
    ) -> GenPayment:  # fmt: skip
        last = max((a.date for a in allocations), default=day)
        pay = GenPayment(
            id=self.uid(), customer_id=cust.id, date=day, currency=currency or cust.currency,
            currency_rate=rate,
            amount=amount, kind=kind, allocations=allocations,  # type: ignore[arg-type]
            created=self.stamp(day), updated=self.stamp(last),
        )  # fmt: skip
        self.payments.append(pay)
        return pay

    def note(self, kind: CaseKind, cust: GenCustomer, *records: str, text: str) -> None:
        self.cases.append(Case(kind, cust.id, CASE_NAMES[kind], tuple(records), text))

    def build(self) -> Firm:
        # Paid ten days early by an overpayment, allocated about eleven months later.
        cust = self.customer("early_payer_allocated_late", "early")
        inv = self.invoice(cust, 400, Decimal("1000.00"), last_event=self.day(45))
        paid = self.day(380)  # due 370 days ago
        over = self.payment(
            cust, paid, inv.total, "overpayment", (GenAllocation(inv.id, inv.total, self.day(45)),)
        )
        why = "paid 10 days before the due date; allocated 335 days after the money came"
        self.note("early_payer_allocated_late", cust, inv.id, over.id, text=why)
        # Marked paid by the ledger, nothing allocated.
        cust = self.customer("paid_without_allocation", "on_time")
        inv = self.invoice(cust, 200, Decimal("400.00"), amount_due_override=Decimal("0.00"))
        self.note("paid_without_allocation", cust, inv.id, text="the ledger says paid; no payment or credit")
        # A GBP invoice paid in EUR at the payment's recorded rate.
        cust = self.customer("paid_in_other_currency", "on_time")
        inv = self.invoice(cust, 90, Decimal("2000.00"), last_event=self.day(58))
        euros = (inv.total * EURO_RATE).quantize(Decimal("0.01"))
        settled = (GenAllocation(inv.id, inv.total, self.day(58)),)
        pay = self.payment(cust, self.day(58), euros, "payment", settled, currency="EUR", rate=EURO_RATE)
        self.note("paid_in_other_currency", cust, inv.id, pay.id,
                  text=f"{inv.total} GBP paid as {euros} EUR at {EURO_RATE} EUR per GBP")  # fmt: skip
        # Archived, with an invoice open and overdue.
        cust = self.customer("inactive_with_open_invoice", "never", archived=True)
        inv = self.invoice(cust, 120, Decimal("800.00"))
        self.note("inactive_with_open_invoice", cust, inv.id, text="archived; the invoice is 90 days overdue")
        # In credit: the invoice paid, and an overpayment nobody applied.
        cust = self.customer("in_credit", "on_time")
        inv = self.invoice(cust, 150, Decimal("500.00"), last_event=self.day(125))
        pay = self.payment(
            cust, self.day(125), inv.total, "payment", (GenAllocation(inv.id, inv.total, self.day(125)),)
        )
        over = self.payment(cust, self.day(100), Decimal("750.00"), "overpayment", ())
        self.note("in_credit", cust, inv.id, pay.id, over.id, text="750.00 unapplied; nothing open")
        return dataclasses.replace(
            self.firm,
            customers=(*self.firm.customers, *self.customers),
            invoices=(*self.firm.invoices, *self.invoices),
            payments=(
                *self.firm.payments,
                *self.payments,
            ),  # appended: the firm's own records keep their order
            cases=tuple(self.cases),
        )


def with_cases(firm: Firm, seed: int) -> Firm:
    """`firm` plus one customer per named case (`CASE_NAMES`), dated relative to `firm.today`."""
    return _Cases(firm, seed).build()
