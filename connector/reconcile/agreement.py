"""What ccm and the ledger agree on, and so what ccm may act on: chase, hold, suggest a limit.

The ledger's truth first. Measured against the ledger as it stands now:
- an invoice ccm would call owed (outstanding > 0) that the ledger marks paid, or whose amount due differs
  from ccm's outstanding, is held back: never chased, never counted toward a hold (voided and deleted
  invoices never count at all);
- a customer archived, deleted or merged in the ledger is inactive: never held (a hold ccm placed is
  released), never chased, never suggested a limit;
- a customer whose balance in the ledger (Xero's AccountsReceivable.Outstanding, QuickBooks'
  Customer.Balance) differs from ccm's open balance by more than a small tolerance, once held-back invoices
  are taken at the ledger's own figures, is neither held nor chased until the two agree. A ledger may
  report its figure with or without unapplied payments and credit netted off (Xero counts invoices only,
  QuickBooks nets credit): either agrees.
Each finding carries its explanation in the bookkeeper's words; `ccm discrepancies` lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from connector.model import Customer, CustomerStatus, Money, PaymentStatus, Status
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger, InvoiceState
from connector.reconcile.snapshot import Snapshot

BALANCE_TOLERANCE = Decimal("1.00")  # in the customer's currency: rounding, never a real difference
CONVERTED_TOLERANCE = Decimal("0.01")  # and 1 % more when amounts in other currencies were converted
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class HeldBack:
    """An invoice ccm leaves alone: the ledger says something else is owed on it."""

    state: InvoiceState  # as ccm computes it now
    reason: str

    @property
    def ledger_due(self) -> Decimal:
        """What the ledger says is due (nothing when it marks the invoice paid)."""
        inv = self.state.invoice
        return _ZERO if inv.status is Status.PAID else inv.amount_due.amount


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    """A customer's balance in the ledger against ccm's, in the customer's currency."""

    customer_id: str
    name: str
    currency: str
    ledger: Decimal  # the ledger's own figure
    open: Decimal  # ccm's open balance: what its payments and credits leave on the customer's invoices
    unapplied: Decimal  # ccm's unapplied payments and credit of the customer
    held_back: Decimal  # of `open`, the difference the held-back invoices already explain

    @property
    def explanation(self) -> str:
        cur = self.currency
        parts = f"ccm's open balance is {Money(self.open, cur)}"
        if self.unapplied:
            parts += (
                f" ({Money(self.open - self.unapplied, cur)} after {Money(self.unapplied, cur)} unapplied)"
            )
        return (
            f"{self.name}: the ledger's balance is {Money(self.ledger, cur)}, but {parts}: "
            "neither held nor chased until they agree"
        )


@dataclass(frozen=True)
class Agreement:
    """What ccm leaves alone: held-back invoices, customers whose balances differ, inactive customers."""

    invoices: Mapping[str, HeldBack]
    balances: Mapping[str, BalanceCheck]  # only customers whose balances differ
    inactive: Mapping[str, str]  # customer id -> what the ledger says of them

    def customer_reason(self, customer_id: str) -> str | None:
        """Why ccm must not act on the customer at all (None: it may)."""
        if customer_id in self.inactive:
            return self.inactive[customer_id]
        check = self.balances.get(customer_id)
        return check.explanation if check is not None else None


def inactive_reason(customer: Customer, snapshot: Snapshot) -> str | None:
    """Why the ledger no longer counts the customer as active (None when it does)."""
    if customer.merged_into:
        return f"{customer.name} was merged into {snapshot.customer_name(customer.merged_into)} in the ledger"
    if customer.status is CustomerStatus.ARCHIVED:
        return f"{customer.name} is archived (inactive) in the ledger"
    if customer.status is CustomerStatus.DELETED:
        return f"{customer.name} is deleted in the ledger"
    return None


def _held_back(state: InvoiceState, snapshot: Snapshot) -> HeldBack | None:
    inv = state.invoice
    if state.outstanding <= 0:
        return None  # ccm would not act on it
    paid = inv.status is Status.PAID
    if not paid and inv.amount_due.amount == state.outstanding:
        return None  # the ledger and ccm agree (the common case: no text built)
    who = f"Invoice {inv.number or inv.id} for {snapshot.customer_name(inv.customer_id)}"
    computed = Money(state.outstanding, inv.currency)
    if paid:
        why = f"{who}: the ledger marks it paid, but ccm's payments and credits leave {computed} outstanding"
    else:
        due = inv.amount_due
        why = f"{who}: the ledger says {due} is due, but ccm's payments and credits leave {computed}"
    return HeldBack(state, f"{why}: not chased and not counted toward a hold until they agree")


class _Sums:
    """Per customer, amounts in the customer's currency (converted through base when needed)."""

    def __init__(self, snapshot: Snapshot, rates: Rates) -> None:
        self.rates = rates
        self.base = snapshot.tenant.base_currency
        self.currency = {c.id: c.currency or self.base for c in snapshot.customers}
        self.sums: dict[str, Decimal] = {}
        self.converted: set[str] = set()

    def add(self, customer_id: str | None, amount: Decimal, currency: str, rate: Decimal | None) -> None:
        if customer_id is None or not amount:
            return
        target = self.currency.get(customer_id)
        if target is None:
            return
        if currency != target:
            in_base = self.rates.to_base(amount, currency, rate)
            back = self.rates.rate_for(target, None)
            if in_base is None or back is None:
                return  # no rate: `find_discrepancies` reports the amount as left out
            amount = in_base * back
            self.converted.add(customer_id)
        self.sums[customer_id] = self.sums.get(customer_id, _ZERO) + amount


def agreement(snapshot: Snapshot, now: AllocationLedger, rates: Rates) -> Agreement:
    """What ccm may act on, from `now` (the ledger as it stands now: `allocate(snapshot)`)."""
    held: dict[str, HeldBack] = {}
    open_sums, ledgered, unapplied = _Sums(snapshot, rates), _Sums(snapshot, rates), _Sums(snapshot, rates)
    checked = {c.id for c in snapshot.customers if c.ledger_balance is not None}  # sums only where needed
    for state in now.open():  # held back needs outstanding > 0: only open invoices can be
        inv = state.invoice
        agreed = inv.status is not Status.PAID and inv.amount_due.amount == state.outstanding
        found = None if agreed else _held_back(state, snapshot)  # `_held_back`'s common case, without a call
        if found is not None:
            held[inv.id] = found
            ledgered.add(
                inv.customer_id, state.outstanding - found.ledger_due, inv.currency, inv.currency_rate
            )
        if inv.customer_id in checked:
            open_sums.add(inv.customer_id, state.outstanding, inv.currency, inv.currency_rate)
    if checked:
        for p in snapshot.payments:
            if p.status is PaymentStatus.LIVE and p.customer_id in checked:
                unapplied.add(p.customer_id, p.unapplied.amount, p.amount.currency, p.currency_rate)
        for c in snapshot.credit_notes:
            if c.status is Status.OPEN and c.customer_id in checked:
                unapplied.add(c.customer_id, c.remaining.amount, c.total.currency, c.currency_rate)
    inactive: dict[str, str] = {}
    differ: dict[str, BalanceCheck] = {}
    for customer in snapshot.customers:
        reason = inactive_reason(customer, snapshot)
        if reason is not None:
            inactive[customer.id] = reason
            continue
        if customer.ledger_balance is None:
            continue
        cid = customer.id
        check = BalanceCheck(
            cid, customer.name, open_sums.currency[cid], customer.ledger_balance,
            _cents(open_sums.sums.get(cid, _ZERO)), _cents(unapplied.sums.get(cid, _ZERO)),
            _cents(ledgered.sums.get(cid, _ZERO)),
        )  # fmt: skip
        converted = cid in open_sums.converted or cid in unapplied.converted or cid in ledgered.converted
        if not _agrees(check, converted):
            differ[cid] = check
    return Agreement(held, differ, inactive)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))


def _agrees(check: BalanceCheck, converted: bool) -> bool:
    tolerance = BALANCE_TOLERANCE + (abs(check.ledger) * CONVERTED_TOLERANCE if converted else _ZERO)
    expected = check.open - check.held_back  # held-back invoices at the ledger's own figures
    return any(abs(check.ledger - figure) <= tolerance for figure in (expected, expected - check.unapplied))
