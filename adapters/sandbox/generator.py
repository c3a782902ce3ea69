"""A ledger-neutral, seeded generator of realistic small firms for the sandboxes.

`generate(seed, size)` builds customers who pay early, on time, late, chronically late or never; invoices
with catalogue lines and VAT; full, partial and split payments; credit notes with allocations; overpayments
and prepayments applied later; voided, deleted and draft invoices; deleted payments; archived and merged
customers; a few EUR and USD customers; a few bills; and `Plant`s: deliberate inconsistencies for
reconciliation to find. Most customers have a phone number for their country (adapters/sandbox/phones.py).
Same seed, size and `today` -> an identical Firm. The generator knows no ledger's
JSON: each sandbox renders it in its own API's shape and derives "paid", amounts due and remaining credit
from the allocations (`invoice_allocations`, `remaining_credit` help with that).

Amounts are computed in integer pennies and turned into Decimal once; catalogue lines are shared objects, so
the "large" firm (10,000 / 100,000 / 100,000) builds in seconds and stays lean.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from adapters.sandbox.cases import CASE_NAMES, with_cases
from adapters.sandbox.phones import phone_for
from adapters.sandbox.records import (
    PLANT_KINDS,
    SIZES,
    Behaviour,
    CreditStatus,
    Firm,
    FirmSize,
    GenAllocation,
    GenCreditNote,
    GenCustomer,
    GenInvoice,
    GenLine,
    GenPayment,
    InvoiceStatus,
    PaymentKindName,
    Plant,
    PlantKind,
    invoice_allocations,
    remaining_credit,
)

# The records live in records.py; they are re-exported here, where the sandbox contract names them.
__all__ = [
    "CASE_NAMES", "PLANT_KINDS", "SIZES", "Behaviour", "CreditStatus", "Firm", "FirmSize", "GenAllocation",
    "GenCreditNote", "GenCustomer", "GenInvoice", "GenLine", "GenPayment", "InvoiceStatus", "PaymentKindName",
    "Plant", "PlantKind", "generate", "invoice_allocations", "remaining_credit",
]  # fmt: skip

HISTORY_DAYS = 540
SEGMENT_TERMS = {"Retail": 14, "Trade": 30, "Wholesale": 45}
_BEHAVIOURS: tuple[Behaviour, ...] = ("early", "on_time", "late", "chronic", "never")
_BEHAVIOUR_WEIGHTS = (15, 40, 25, 13, 7)
# Days from the due date to payment, per behaviour.
_PAY_DELAY = {"early": (-12, -1), "on_time": (-2, 3), "late": (5, 40), "chronic": (30, 150)}
# Units of currency per 1 GBP, and the spread a rate wanders within.
_RATES = {"EUR": (1.14, 1.19), "USD": (1.22, 1.32), "GBP": (1.0, 1.0)}
_PREFIX = (
    "Acme", "Bramble", "Castle", "Dale", "Elm", "Fenwick", "Granite", "Harbour", "Ivy", "Juniper", "Kestrel",
    "Larch", "Meadow", "Northgate", "Oakridge", "Pennine", "Quarry", "Riverside", "Saxon", "Thistle",
    "Upland", "Vale", "Willow", "Yew", "Ashford", "Beacon", "Cobalt", "Derwent", "Eastwick", "Foxglove",
    "Glen", "Heath", "Ironbridge", "Kingfisher", "Linden", "Marlow", "Nettle", "Orchard", "Pike", "Redwood",
    "Sterling", "Tamar", "Union", "Viking", "Westbury", "Alder", "Birch", "Cedar", "Drake", "Ember",
)  # fmt: skip
_TRADE = (
    "Joinery", "Bakery", "Plumbing", "Electrical", "Print", "Garden Centre", "Motors", "Dental", "Cafe",
    "Builders", "Florist", "Logistics", "Design", "Roofing", "Fitness", "Opticians", "Catering", "Tiling",
    "Pharmacy", "Books", "Kitchens", "Signs", "Cleaning", "Vets", "Studio", "Brewery", "Farm Shop", "Salon",
    "Surveyors", "Glazing", "Textiles", "Engineering", "Hardware", "Coffee", "Interiors", "Removals",
    "Scaffolding", "Security", "Software", "Tailors",
)  # fmt: skip
_SUFFIX = ("Ltd", "Limited", "& Co", "LLP", "Group", "Services", "Supplies", "Trading")
_GOODS = (
    "Consultancy (day)", "Site visit", "Installation", "Maintenance contract (month)", "Call-out fee",
    "Materials", "Delivery", "Design work (hour)", "Spare parts", "Training session", "Annual service",
    "Repair", "Survey", "Cleaning (visit)", "Hire (week)", "Licence", "Support (hour)", "Printing (batch)",
    "Catering (event)", "Storage (month)",
)  # fmt: skip
_QUANTITIES = (1, 1, 1, 2, 3, 5, 10)
_LINE_COUNTS = (1, 1, 2, 2, 3)
_ONE = Decimal(1)


@lru_cache(maxsize=1 << 16)
def _money(pennies: int) -> Decimal:
    """Pennies as a Decimal, one shared object per amount (a Decimal is immutable): thousands of small firms
    in one sandbox repeat prices, VAT and allocations; sharing them saves about an eighth of their memory."""
    return Decimal(pennies).scaleb(-2)


@lru_cache(maxsize=64)
def _qty(n: int) -> Decimal:
    return Decimal(n)


@dataclass(slots=True)
class _Inv:
    """An invoice while it is being built (mutable); frozen into a GenInvoice at the end."""

    id: str
    customer: GenCustomer
    issue: date
    due: date
    rate: Decimal
    lines: tuple[GenLine, ...]
    subtotal: int
    tax: int
    status: InvoiceStatus = "authorised"
    kind: Literal["sales", "bill"] = "sales"
    open: int = 0  # pennies still due, as allocations are made
    last_event: date | None = None
    override: Decimal | None = None
    reference: str | None = None
    reserved: bool = False  # a plant that must stay exactly as planted

    @property
    def total(self) -> int:
        return self.subtotal + self.tax


@dataclass(slots=True)
class _Pay:
    customer: GenCustomer
    day: date
    amount: int
    kind: PaymentKindName = "payment"
    currency: str | None = None
    allocs: list[tuple[_Inv, int, date]] = field(default_factory=list)
    planted: bool = False  # plants must stay as planted: never deleted at random


class _Builder:
    """Holds the random stream and the records while a firm is generated; `firm()` freezes them."""

    def __init__(self, seed: int, size: FirmSize, today: date, base: str) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - test data, not secrets: it must be reproducible
        self.size = size
        self.today = today
        self.last_day = today - timedelta(days=1)  # history ends yesterday: no timestamp lies in the future
        self.first_day = today - timedelta(days=HISTORY_DAYS)
        self.base = base
        self.customers: list[GenCustomer] = []
        self.invoices: list[_Inv] = []
        self.pays: list[_Pay] = []
        self.credits: list[GenCreditNote] = []
        self.plants: list[tuple[PlantKind, tuple[str | _Pay, ...], str]] = []
        self.line_cache: dict[tuple[int, int, str], tuple[GenLine, int, int]] = {}
        self.rate_cache: dict[tuple[str, int], Decimal] = {}
        self.catalogue = [
            (self.rng.choice(_GOODS), self.rng.randrange(1_500, 60_000, 25)) for _ in range(150)
        ]

    # ---- small helpers --------------------------------------------------------------------------------
    def uid(self) -> str:
        """A uuid4-shaped id from the seeded stream (formatted by hand: uuid.UUID is slow in bulk)."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def stamp(self, day: date) -> datetime:
        """An instant during business hours (08:00-18:00 UTC) on `day`, to the millisecond."""
        millis = 28_800_000 + int(self.rng.random() * 36_000_000)
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(milliseconds=millis)

    def day_between(self, start: date, end: date) -> date:
        span = (end - start).days
        return start + timedelta(days=int(self.rng.random() * (span + 1))) if span > 0 else start

    def rate(self, currency: str, day: date) -> Decimal:
        """A rate that drifts by month, shared between records of the same month."""
        key = (currency, day.year * 12 + day.month)
        if key not in self.rate_cache:
            low, high = _RATES.get(currency, (1.0, 1.0))
            self.rate_cache[key] = _ONE if low == high else Decimal(f"{self.rng.uniform(low, high):.6f}")
        return self.rate_cache[key]

    def line(self, item: int, qty: int, currency: str, rate: Decimal) -> tuple[GenLine, int, int]:
        """A catalogue line (a shared object) with its net and VAT in pennies; prices are per currency."""
        key = (item, qty, currency)
        if key not in self.line_cache:
            text, price = self.catalogue[item]
            if currency != self.base:
                price = int(Decimal(price) * rate)
            vat = (qty * price * 20 + 50) // 100
            self.line_cache[key] = (GenLine(text, _qty(qty), _money(price), _money(vat)), qty * price, vat)
        return self.line_cache[key]

    # ---- customers ------------------------------------------------------------------------------------
    def make_customers(self) -> None:
        rng, names = self.rng, set[str]()
        for index in range(self.size.customers):
            name = f"{rng.choice(_PREFIX)} {rng.choice(_TRADE)} {rng.choice(_SUFFIX)}"
            base_name, n = name, 2
            while name in names:  # ledgers insist on unique customer names
                name, n = f"{base_name} ({n})", n + 1
            names.add(name)
            # Every 25th customer pays in EUR and every 25th in USD (offset): a few, in every firm size.
            currency = {3: "EUR", 7: "USD"}.get(index % 25, self.base) if self.base == "GBP" else self.base
            created = self.stamp(self.day_between(self.first_day - timedelta(days=200), self.first_day))
            slug = (
                "".join(ch if ch.isalnum() else "-" for ch in base_name.lower()).strip("-").replace("--", "-")
            )
            cid = self.uid()
            self.customers.append(
                GenCustomer(
                    id=cid,
                    name=name,
                    email=None if rng.random() < 0.05 else f"accounts@{slug}.example.com",
                    currency=currency,
                    behaviour=rng.choices(_BEHAVIOURS, _BEHAVIOUR_WEIGHTS)[0],
                    segment=rng.choice(tuple(SEGMENT_TERMS)),
                    created=created,
                    updated=created,
                    phone=phone_for(cid, currency),
                )
            )

    def retire_customers(self) -> None:
        """Archive a few customers and merge a few into another (after their history was generated)."""
        rng, count = self.rng, len(self.customers)
        for i in range(count):
            c = self.customers[i]
            roll = rng.random()
            # Customers 11 (archived) and 13 (merged) make sure every firm, however small, has both.
            merge = i == 13 or 0.03 <= roll < 0.045
            if not (roll < 0.03 or merge or i == 11):
                continue
            into = None
            if merge:
                into = self.customers[(i + 1 + rng.randrange(count - 1)) % count]
                if i == 13:  # the guaranteed merge takes any earlier live customer in the same currency
                    into = next(
                        (o for o in self.customers[:13] if not o.archived and o.currency == c.currency), into
                    )
                if into.archived or into.currency != c.currency:
                    into = None
            changed = self.stamp(self.day_between(self.last_day - timedelta(days=120), self.last_day))
            self.customers[i] = _replace_customer(c, into, changed)

    # ---- invoices ------------------------------------------------------------------------------------
    def make_invoices(self) -> None:
        rng, customers = self.rng, self.customers
        issues = sorted(self.day_between(self.first_day, self.last_day) for _ in range(self.size.invoices))
        pick, n_items, n_customers = rng.random, len(self.catalogue), len(customers)
        for issue in issues:
            # Indexing with random() is the hot path's cheap `choice` (100,000 invoices in the large firm).
            cust = customers[int(pick() * n_customers)]
            rate = self.rate(cust.currency, issue)
            made = [
                self.line(
                    int(pick() * n_items), _QUANTITIES[int(pick() * len(_QUANTITIES))], cust.currency, rate
                )
                for _ in range(_LINE_COUNTS[int(pick() * len(_LINE_COUNTS))])
            ]
            lines = tuple(m[0] for m in made)
            sub, tax = sum(m[1] for m in made), sum(m[2] for m in made)
            due = issue + timedelta(days=SEGMENT_TERMS[cust.segment])
            inv = _Inv(self.uid(), cust, issue, due, rate, lines, sub, tax)
            inv.open = inv.total
            roll = rng.random()
            recent = (self.last_day - issue).days < 20
            if roll < 0.03:
                inv.kind = "bill"
            elif roll < 0.05 or (recent and roll < 0.12):
                inv.status = "draft"
            elif roll < 0.065:
                inv.status = "submitted"
            elif roll < 0.085:
                inv.status, inv.last_event = "voided", self.day_between(issue, self.last_day)
            elif roll < 0.095:
                inv.status, inv.last_event = "deleted", self.day_between(issue, self.last_day)
            if rng.random() < 0.3:
                inv.reference = f"PO-{rng.randrange(10_000, 99_999)}"
            self.invoices.append(inv)

    def payable(self) -> list[_Inv]:
        return [
            i
            for i in self.invoices
            if i.kind == "sales" and i.status == "authorised" and i.open > 0 and not i.reserved
        ]

    # ---- credit notes ---------------------------------------------------------------------------------
    def make_credit_notes(self) -> None:
        rng = self.rng
        for inv in self.payable():
            if rng.random() >= 0.05:
                continue
            day = self.day_between(inv.issue, min(inv.issue + timedelta(days=20), self.last_day))
            share = rng.choice((10, 20, 25, 50, 100))
            amount = inv.total * share // 100
            self.add_credit(inv.customer, day, amount, [(inv, amount)] if rng.random() < 0.85 else [])
        for cust in rng.sample(self.customers, k=max(2, len(self.customers) // 40)):
            day = self.day_between(self.first_day, self.last_day)
            status: CreditStatus = rng.choice(("draft", "voided", "authorised", "authorised"))
            self.add_credit(cust, day, rng.randrange(2_000, 30_000), [], status)

    def add_credit(
        self, cust: GenCustomer, day: date, amount: int, allocs: list[tuple[_Inv, int]],
        status: CreditStatus = "authorised",
    ) -> GenCreditNote:  # fmt: skip
        rate = self.rate(cust.currency, day)
        net = amount * 100 // 120
        line = GenLine("Credit: " + self.rng.choice(_GOODS), _ONE, _money(net), _money(amount - net))
        gen_allocs = []
        for inv, part in allocs:
            inv.open -= part
            inv.last_event = max(inv.last_event or day, day)
            gen_allocs.append(GenAllocation(inv.id, _money(part), day))
        stamp = self.stamp(day)
        note = GenCreditNote(
            id=self.uid(), number=f"CN-{len(self.credits) + 1:06d}", customer_id=cust.id, date=day,
            currency=cust.currency, currency_rate=rate, lines=(line,), total=_money(amount), status=status,
            allocations=tuple(gen_allocs), created=stamp, updated=stamp,
        )  # fmt: skip
        self.credits.append(note)
        return note

    # ---- payments -------------------------------------------------------------------------------------
    def plan_payments(self) -> list[_Pay]:
        """One plain payment per invoice its customer has paid by yesterday (partial for some)."""
        rng, plans = self.rng, []
        for inv in self.payable():
            delay = _PAY_DELAY.get(inv.customer.behaviour)
            if delay is None:
                continue
            day = max(inv.issue, inv.due + timedelta(days=rng.randint(*delay)))
            if day > self.last_day:
                continue
            amount = inv.open
            if inv.customer.behaviour in ("late", "chronic") and rng.random() < 0.25:
                amount = inv.open * rng.choice((30, 50, 70)) // 100
            plans.append(_Pay(inv.customer, day, amount, allocs=[(inv, amount, day)]))
        return plans

    def apply(self, pay: _Pay) -> None:
        for inv, part, day in pay.allocs:
            inv.open -= part
            inv.last_event = max(inv.last_event or day, day)

    def make_credit_payments(self, kind: PaymentKindName, count: int) -> None:
        """Over/prepayments: money ahead of invoices, applied later to the customer's open invoices."""
        rng = self.rng
        by_customer: dict[str, list[_Inv]] = defaultdict(list)
        for inv in self.payable():
            by_customer[inv.customer.id].append(inv)
        candidates = [c for c in self.customers if by_customer.get(c.id) and not c.archived]
        for cust in rng.sample(candidates, k=min(count, len(candidates))):
            targets = by_customer[cust.id]
            anchor = rng.choice(targets)
            day = anchor.issue - timedelta(days=rng.randint(1, 30)) if kind == "prepayment" else anchor.issue
            day = max(self.first_day, min(day, self.last_day))
            left = rng.randrange(5_000, 80_000)
            pay = _Pay(cust, day, left, kind)
            if rng.random() < 0.8:  # most are applied later; the rest stay unapplied credit
                for inv in targets:
                    if left <= 0 or inv.issue < day:
                        continue
                    part = min(left, inv.open)
                    when = self.day_between(max(inv.issue, day), self.last_day)
                    pay.allocs.append((inv, part, when))
                    left -= part
            self.apply(pay)
            self.pays.append(pay)

    def fit_payment_count(self, plans: list[_Pay], fixed: int) -> list[_Pay]:
        """Split or drop plain payments so the firm has exactly `size.payments` payments."""
        rng, target = self.rng, self.size.payments - fixed
        rng.shuffle(plans)
        if len(plans) > target:
            plans = plans[: max(target, 0)]
        extra, splittable = target - len(plans), [p for p in plans if p.amount >= 200]
        out = list(plans)
        while extra > 0 and splittable:
            for pay in splittable[:extra]:
                inv, amount, day = pay.allocs[0]
                first = amount * rng.choice((25, 40, 50, 60)) // 100
                earlier = self.day_between(inv.issue, day)
                pay.amount, pay.allocs[0] = amount - first, (inv, amount - first, day)
                out.append(_Pay(pay.customer, earlier, first, allocs=[(inv, first, earlier)]))
            extra -= min(extra, len(splittable))
            splittable = [p for p in out if p.amount >= 200]
        return out

    # ---- plants ---------------------------------------------------------------------------------------
    def make_plants(self) -> None:
        """One of each deliberate inconsistency, plus one more of each per 20,000 invoices."""
        for _ in range(1 + len(self.invoices) // 20_000):
            fresh = [i for i in self.payable() if i.open == i.total and i.customer.currency == self.base]
            a, b, c, d, e, f = self.rng.sample(fresh, 6)
            a.reserved = c.reserved = d.reserved = True
            a.override = _money(a.open + 1_000)
            self.plant(
                "amount_due_mismatch", (a.id,), "the ledger reports 10.00 more due than its allocations"
            )
            pay = self.planted_payment(b, b.open)
            b.status, b.last_event = "voided", self.last_day
            self.plant("allocation_to_void", (b.id, pay), "a live payment is allocated to a voided invoice")
            over = _Pay(
                c.customer, self.day_between(c.issue, self.last_day), 25_000, "overpayment", planted=True
            )
            self.pays.append(over)
            self.plant("unapplied_with_open_invoices", (c.customer.id, c.id, over),
                       "unapplied overpayment while the customer has an open invoice")  # fmt: skip
            d.override, d.last_event = Decimal("0.00"), self.last_day
            self.plant(
                "paid_without_payment", (d.id,), "the ledger reports it paid with no payment or credit"
            )
            foreign = "EUR" if self.base != "EUR" else "USD"
            mism = self.planted_payment(e, e.open, currency=foreign)
            self.plant(
                "currency_mismatch", (e.id, mism), f"a {foreign} payment allocated to a {self.base} invoice"
            )
            twice = self.planted_payment(f, f.total)
            self.add_credit(f.customer, twice.day, f.total // 2, [(f, f.total // 2)])
            self.plant(
                "negative_outstanding", (f.id, twice), "paid in full and credited half: outstanding < 0"
            )

    def planted_payment(self, inv: _Inv, amount: int, currency: str | None = None) -> _Pay:
        pay = _Pay(
            inv.customer, self.day_between(inv.issue, self.last_day), amount, currency=currency, planted=True
        )
        pay.allocs.append((inv, amount, pay.day))
        self.apply(pay)
        self.pays.append(pay)
        return pay

    def plant(self, kind: PlantKind, ids: tuple[str | _Pay, ...], note: str) -> None:
        self.plants.append((kind, ids, note))

    # ---- freezing ------------------------------------------------------------------------------------
    def firm(self, name: str, plain: list[_Pay]) -> Firm:
        rng = self.rng
        for pay in plain:
            self.apply(pay)
        payments: list[GenPayment] = []
        pay_ids: dict[int, str] = {}
        for pay in sorted(self.pays + plain, key=lambda p: p.day):
            currency = pay.currency or pay.customer.currency
            deleted = pay.kind == "payment" and not pay.planted and rng.random() < 0.01
            created = self.stamp(pay.day)
            last = max((d for _, _, d in pay.allocs), default=pay.day)
            updated = (
                max(created, self.stamp(self.day_between(pay.day, self.last_day))) if deleted else created
            )
            if last > pay.day:
                updated = max(updated, self.stamp(last))
            pay_ids[id(pay)] = pid = self.uid()
            reference = f"BACS {rng.randrange(100_000, 999_999)}" if rng.random() < 0.5 else None
            payments.append(GenPayment(
                id=pid, customer_id=pay.customer.id, date=pay.day, currency=currency,
                currency_rate=self.rate(currency, pay.day), amount=_money(pay.amount), kind=pay.kind,
                allocations=tuple(GenAllocation(i.id, _money(part), d) for i, part, d in pay.allocs),
                deleted=deleted, reference=reference,
                created=created, updated=updated,
            ))  # fmt: skip
        plants = tuple(
            Plant(kind, tuple(r if isinstance(r, str) else pay_ids[id(r)] for r in ids), note)
            for kind, ids, note in self.plants
        )
        invoices = []
        for number, inv in enumerate(self.invoices, start=1):
            created = self.stamp(inv.issue)
            updated = max(created, self.stamp(inv.last_event)) if inv.last_event else created
            prefix = "INV" if inv.kind == "sales" else "BILL"
            invoices.append(GenInvoice(
                id=inv.id, number=f"{prefix}-{number:06d}", customer_id=inv.customer.id, issue_date=inv.issue,
                due_date=inv.due, currency=inv.customer.currency, currency_rate=inv.rate, lines=inv.lines,
                subtotal=_money(inv.subtotal), tax=_money(inv.tax), total=_money(inv.total),
                status=inv.status, kind=inv.kind, amount_due_override=inv.override, reference=inv.reference,
                created=created, updated=updated,
            ))  # fmt: skip
        return Firm(
            name=name, base_currency=self.base, country="GB" if self.base == "GBP" else self.base[:2],
            timezone="Europe/London", today=self.today, customers=tuple(self.customers),
            invoices=tuple(invoices), payments=tuple(payments), credit_notes=tuple(self.credits),
            plants=plants,
        )  # fmt: skip


def _replace_customer(c: GenCustomer, into: GenCustomer | None, changed: datetime) -> GenCustomer:
    merged = into.id if into else None
    return dataclasses.replace(c, archived=True, merged_into=merged, updated=max(changed, c.created))


def generate(
    seed: int = 1, size: str | FirmSize = "demo", today: date | None = None, name: str | None = None,
    base_currency: str = "GBP", cases: bool = False,
) -> Firm:  # fmt: skip
    """Generate a firm deterministically.

    Args:
        seed: the random seed; the same seed, size and `today` give an identical Firm.
        size: "demo", "small", "large" or an explicit FirmSize.
        today: the firm's "now" (history spans 18 months before it, ending yesterday); default the UTC date.
        name: the firm's name (default derived from the seed).
        base_currency: the firm's home currency.
        cases: append one customer per named case (adapters/sandbox/cases.py: an early payer whose
            overpayment was allocated late, a paid invoice with no allocation, a payment in another
            currency, an archived customer with an open invoice, a customer in credit); the rest of the
            firm is the same as without them.

    Returns:
        The Firm, with at least one Plant of every kind.

    Raises:
        ValueError: an unknown size name, or a size too small to hold the plants.
    """
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown firm size {size!r} (known: {', '.join(SIZES)})")
        size = SIZES[size]
    if size.customers < 5 or size.invoices < 100:
        raise ValueError(f"firm size {size} is too small: at least 5 customers and 100 invoices")
    today = today or datetime.now(UTC).date()
    b = _Builder(seed, size, today, base_currency)
    b.make_customers()
    b.make_invoices()
    b.make_credit_notes()
    b.make_plants()
    b.make_credit_payments("overpayment", max(2, size.invoices // 150))
    b.make_credit_payments("prepayment", max(2, size.invoices // 200))
    plans = b.plan_payments()
    plain = b.fit_payment_count(plans, len(b.pays))
    b.retire_customers()
    firm = b.firm(name or f"{_PREFIX[seed % len(_PREFIX)]} Demo Trading Ltd", plain)
    return with_cases(firm, seed) if cases else firm
