"""Discrepancies: where the ledger's records disagree with each other, each explained in plain language.

Computed against the ledger as it stands now (every allocation, whatever its date), because the ledger's
own figures (amount due, unapplied, remaining) describe now. Explanations name records as a bookkeeper finds
them, never by id: invoices and credit notes by number, payments by what, whom, how much and when ("the
payment of £120.00 from Ann's Café on 3 March 2026"); only `records` carries the ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from connector.model import Allocation, CreditNote, Invoice, Money, Payment, PaymentStatus, SourceKind, Status
from connector.reconcile.agreement import agreement
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger, Applied
from connector.reconcile.snapshot import Snapshot
from connector.words import locale as words


class Kind(StrEnum):
    """What is wrong; the order is the order of the report."""

    AMOUNT_DUE_MISMATCH = "amount_due_mismatch"
    NEGATIVE_OUTSTANDING = "negative_outstanding"
    PAID_WITHOUT_PAYMENT = "paid_without_payment"
    ALLOCATION_TO_DEAD_INVOICE = "allocation_to_dead_invoice"
    ALLOCATION_TO_UNKNOWN_INVOICE = "allocation_to_unknown_invoice"
    CURRENCY_MISMATCH = "currency_mismatch"
    UNAPPLIED_CASH = "unapplied_cash"
    MISSING_RATE = "missing_rate"
    BALANCE_MISMATCH = "balance_mismatch"


_RANK = {k: n for n, k in enumerate(Kind)}


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """A finding: its kind, the records involved ("invoice:ID", ...), labelled amounts and an explanation."""

    kind: Kind
    customer_id: str | None
    records: tuple[str, ...]
    amounts: tuple[tuple[str, Money], ...]
    explanation: str

    def sort_key(self) -> tuple[int, tuple[str, ...], str]:
        return (_RANK[self.kind], self.records, self.explanation)


def _invoice(inv: Invoice) -> str:
    return f"Invoice {inv.number or inv.id}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _payment(p: Payment, snapshot: Snapshot) -> str:
    """E.g. "the payment of £120.00 from Ann's Café on 3 March 2026" (and its reference, if it has one)."""
    who = f" from {snapshot.customer_name(p.customer_id)}" if p.customer_id else ""
    ref = f" (reference {p.reference})" if p.reference else ""
    amount = words.money(p.amount.amount, p.amount.currency)
    return f"the {p.kind.value} of {amount}{who} on {words.long_date(p.date)}{ref}"


def _credit_note(c: CreditNote, snapshot: Snapshot) -> str:
    """E.g. "credit note CN-0001 for Ann's Café"; without a number, its amount and date."""
    who = snapshot.customer_name(c.customer_id)
    if c.number:
        return f"credit note {c.number} for {who}"
    amount = words.money(c.total.amount, c.total.currency)
    return f"the credit note of {amount} for {who} of {words.long_date(c.issue_date)}"


class _Sources:
    """The snapshot's payments and credit notes by id (read when first needed), to put an allocation's
    source in words."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    @cached_property
    def payments(self) -> dict[str, Payment]:
        return {p.id: p for p in self.snapshot.payments}

    @cached_property
    def credits(self) -> dict[str, CreditNote]:
        return {c.id: c for c in self.snapshot.credit_notes}

    def __call__(self, a: Applied) -> str:
        """The payment or credit note (its customer named), starting a sentence."""
        if a.source_kind is SourceKind.PAYMENT:
            paid = self.payments.get(a.source_id)
            return _cap(_payment(paid, self.snapshot)) if paid else "A payment"
        credit = self.credits.get(a.source_id)
        return _cap(_credit_note(credit, self.snapshot)) if credit else "A credit note"


def _for(inv: Invoice, a: Applied, snapshot: Snapshot) -> str:
    """The invoice, with its customer's name when that is not the payment's (already named)."""
    same = inv.customer_id == a.customer_id and a.source_kind is SourceKind.PAYMENT
    return _invoice(inv) if same else f"{_invoice(inv)} for {snapshot.customer_name(inv.customer_id)}"


def _ref(a: Applied | Allocation) -> str:
    return f"{a.source_kind.value}:{a.source_id}"


def _invoice_findings(snapshot: Snapshot, ledger: AllocationLedger) -> Iterator[Discrepancy]:
    for state in ledger.invoices.values():
        inv = state.invoice
        unpaid = inv.status is Status.PAID and inv.total.amount > 0 and not state.allocations
        due = inv.amount_due.amount
        # Over-allocated: a ledger may report the negative figure or clamp it at zero; both agree.
        wrong_due = due != state.outstanding and not (state.outstanding < 0 and due == 0)
        if not (unpaid or wrong_due or state.outstanding < 0):
            continue
        cur = inv.currency
        who = f"{_invoice(inv)} for {snapshot.customer_name(inv.customer_id)}"
        refs = (f"invoice:{inv.id}", *(_ref(a) for a in state.allocations))
        computed = Money(state.outstanding, cur)
        if unpaid:
            yield Discrepancy(
                Kind.PAID_WITHOUT_PAYMENT, inv.customer_id, refs, (("total", inv.total),),
                f"{who} is marked paid, but no live payment or credit note is allocated to it: "
                f"{computed} is unaccounted for",
            )  # fmt: skip
        elif wrong_due:
            yield Discrepancy(
                Kind.AMOUNT_DUE_MISMATCH, inv.customer_id, refs,
                (("ledger amount due", inv.amount_due), ("computed outstanding", computed)),
                f"{who}: the ledger says {inv.amount_due} is due, but its payments and credits leave "
                f"{computed} outstanding",
            )  # fmt: skip
        if state.outstanding < 0:
            yield Discrepancy(
                Kind.NEGATIVE_OUTSTANDING, inv.customer_id, refs,
                (("total", inv.total), ("allocated", Money(state.applied, cur))),
                f"{who}: {Money(state.applied, cur)} was allocated against a total of {inv.total}, "
                f"{Money(-state.outstanding, cur)} too much",
            )  # fmt: skip


def _stray_findings(snapshot: Snapshot, ledger: AllocationLedger) -> Iterator[Discrepancy]:
    source = _Sources(snapshot)
    for a in ledger.stray:
        inv = snapshot.invoices_by_id.get(a.invoice_id)
        amount = Money(a.amount, a.currency)
        refs = (_ref(a), f"invoice:{a.invoice_id}")
        if inv is None:
            yield Discrepancy(
                Kind.ALLOCATION_TO_UNKNOWN_INVOICE, a.customer_id, refs, (("allocated", amount),),
                f"{source(a)} allocates {amount} to invoice {a.invoice_id}, which is not among "
                "the synced sales invoices",
            )  # fmt: skip
        elif not inv.status.live:
            yield Discrepancy(
                Kind.ALLOCATION_TO_DEAD_INVOICE, inv.customer_id, refs, (("allocated", amount),),
                f"{source(a)} allocates {amount} to {_for(inv, a, snapshot)}, which is "
                f"{inv.status.value}",
            )  # fmt: skip
        else:
            yield Discrepancy(
                Kind.CURRENCY_MISMATCH, inv.customer_id, refs,
                (("allocated", amount), ("invoice total", inv.total)),
                f"{source(a)} allocates {amount} to {_for(inv, a, snapshot)}, which is in "
                f"{inv.currency}: not applied",
            )  # fmt: skip


def _crossed_findings(snapshot: Snapshot, ledger: AllocationLedger) -> Iterator[Discrepancy]:
    source = _Sources(snapshot)
    for c in ledger.crossed:
        a = c.allocation
        inv = snapshot.invoices_by_id[a.invoice_id]
        amount, applied = Money(a.amount, a.currency), Money(c.applied, inv.currency)
        yield Discrepancy(
            Kind.CURRENCY_MISMATCH, inv.customer_id, (_ref(a), f"invoice:{a.invoice_id}"),
            (("allocated", amount), ("applied", applied)),
            f"{source(a)} allocates {amount} to {_for(inv, a, snapshot)}, which is in "
            f"{inv.currency}: applied as {applied} at the rates the ledger records",
        )  # fmt: skip


def _balance_findings(snapshot: Snapshot, ledger: AllocationLedger, rates: Rates) -> Iterator[Discrepancy]:
    for check in agreement(snapshot, ledger, rates).balances.values():
        yield Discrepancy(
            Kind.BALANCE_MISMATCH, check.customer_id, (f"customer:{check.customer_id}",),
            (("ledger balance", Money(check.ledger, check.currency)),
             ("ccm open balance", Money(check.open, check.currency)),
             ("ccm unapplied", Money(check.unapplied, check.currency))),
            check.explanation,
        )  # fmt: skip


def _unapplied_findings(snapshot: Snapshot, ledger: AllocationLedger) -> Iterator[Discrepancy]:
    cash: list[tuple[str, str, str, str | None, Money]] = [
        ("payment", p.id, _cap(_payment(p, snapshot)), p.customer_id, p.unapplied)
        for p in snapshot.payments
        if p.status is PaymentStatus.LIVE and p.unapplied.amount > 0
    ]
    cash += [
        ("credit_note", c.id, _cap(_credit_note(c, snapshot)), c.customer_id, c.remaining)
        for c in snapshot.credit_notes
        if c.status is Status.OPEN and c.remaining.amount > 0
    ]
    holders = {customer for _, _, _, customer, _ in cash}
    owing: dict[str, list[str]] = {}
    for state in ledger.open():
        if state.invoice.customer_id in holders:
            owing.setdefault(state.invoice.customer_id, []).append(state.invoice.id)
    for kind, sid, label, customer, money in cash:
        open_invoices = owing.get(customer or "", [])
        if not open_invoices:
            continue
        yield Discrepancy(
            Kind.UNAPPLIED_CASH, customer, (f"{kind}:{sid}", *(f"invoice:{i}" for i in open_invoices)),
            (("unapplied", money),),
            f"{label} leaves {money} unapplied on the account while {len(open_invoices)} invoice(s) are "
            "open: apply it before chasing",
        )  # fmt: skip


def _rate_findings(snapshot: Snapshot, ledger: AllocationLedger, rates: Rates) -> Iterator[Discrepancy]:
    for state in ledger.open():
        inv = state.invoice
        if rates.rate_for(inv.currency, inv.currency_rate) is None:
            yield Discrepancy(
                Kind.MISSING_RATE, inv.customer_id, (f"invoice:{inv.id}",),
                (("outstanding", Money(state.outstanding, inv.currency)),),
                f"{_invoice(inv)} for {snapshot.customer_name(inv.customer_id)} is in {inv.currency} and no "
                f"record carries a rate to {rates.base}: left out of {rates.base} totals",
            )  # fmt: skip


def find_discrepancies(snapshot: Snapshot, ledger: AllocationLedger, rates: Rates) -> tuple[Discrepancy, ...]:
    """Every discrepancy in `ledger` (built as of now, `allocate(snapshot)`), in report order."""
    found = [
        *_invoice_findings(snapshot, ledger),
        *_stray_findings(snapshot, ledger),
        *_crossed_findings(snapshot, ledger),
        *_unapplied_findings(snapshot, ledger),
        *_rate_findings(snapshot, ledger, rates),
        *_balance_findings(snapshot, ledger, rates),
    ]
    return tuple(sorted(found, key=Discrepancy.sort_key))
