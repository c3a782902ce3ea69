"""Canonical records: what every ledger's data becomes after mapping.

Records are immutable. Money is `Decimal` with an ISO 4217 currency; dates are `date`; instants are UTC
`datetime`. Record ids are the ledger's own ids (strings); the store scopes every record by tenant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ModelError(ValueError):
    """A value does not fit the canonical model (bad currency, naive instant, ...)."""


_KNOWN_CURRENCIES: set[str] = set()


def check_currency(code: str) -> str:
    """Return `code` if it is an ISO 4217-shaped currency code, else raise ModelError."""
    if code in _KNOWN_CURRENCIES:
        return code
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise ModelError(f"not an ISO currency code: {code!r}")
    _KNOWN_CURRENCIES.add(code)
    return code


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. Arithmetic across currencies is an error, never a silent sum."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise ModelError(f"money amount must be Decimal, got {type(self.amount).__name__}")
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ModelError(f"currency mismatch: {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        """As the locale of the firm in hand writes it: "£1,317.00" (connector.words.locale.writing_in)."""
        from connector.words.locale import money  # the model stays free of babel until money is shown

        return money(self.amount, self.currency)


def parse_money(text: str, default_currency: str) -> Money:
    """'5000', '5000 GBP' or '5,000.00 EUR' as Money; raises ValueError with a short reason."""
    parts = text.replace(",", "").split()
    if not parts or len(parts) > 2:
        raise ValueError(f"not an amount: {text!r}")
    try:
        amount = Decimal(parts[0])
    except ArithmeticError:
        raise ValueError(f"not an amount: {parts[0]!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"must be a positive amount: {parts[0]!r}")
    currency = parts[1].upper() if len(parts) == 2 else default_currency
    try:
        return Money(amount, check_currency(currency))
    except ModelError as exc:
        raise ValueError(str(exc)) from None


class Status(StrEnum):
    """Normalised status of an invoice or credit note."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOIDED = "voided"
    DELETED = "deleted"

    @property
    def live(self) -> bool:
        """True for documents that count in balances (open or paid)."""
        return self in (Status.OPEN, Status.PAID)


class PaymentStatus(StrEnum):
    """Normalised status of a payment, overpayment or prepayment."""

    LIVE = "live"
    VOIDED = "voided"
    DELETED = "deleted"


class PaymentKind(StrEnum):
    PAYMENT = "payment"
    OVERPAYMENT = "overpayment"
    PREPAYMENT = "prepayment"


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    RECONNECT_NEEDED = "reconnect_needed"
    DISCONNECTED = "disconnected"


class SourceKind(StrEnum):
    """What an allocation takes money from."""

    PAYMENT = "payment"
    CREDIT_NOTE = "credit_note"


def _check_utc(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() != timedelta(0):
        raise ModelError(f"{name} must be a UTC datetime, got {value!r}")


@dataclass(frozen=True, slots=True)
class Tenant:
    """One firm's ledger organisation as ccm knows it."""

    id: str
    name: str
    ledger: str
    base_currency: str = "GBP"
    timezone: str = "UTC"
    country: str = "GB"
    night_time: str | None = None  # HH:MM local for `ccm serve`'s nightly run; None: the server's default
    contact_email: str | None = None  # the firm's address for connection-health notices

    def __post_init__(self) -> None:
        check_currency(self.base_currency)


@dataclass(frozen=True, slots=True)
class Connection:
    """The OAuth link between a tenant and its ledger organisation (tokens live in the vault, not here)."""

    tenant_id: str
    ledger: str
    external_id: str
    state: ConnectionState = ConnectionState.CONNECTED
    message: str = ""


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    status: CustomerStatus = CustomerStatus.ACTIVE
    email: str | None = None
    currency: str | None = None
    segments: tuple[str, ...] = ()
    merged_into: str | None = None
    updated_at: datetime | None = None
    ledger_balance: Decimal | None = None  # the ledger's own balance, in `currency` (None: not reported)
    phone: str | None = None  # a number to call, dialable as written ("+44 20 7946 0958"); None: none kept

    def __post_init__(self) -> None:
        if self.currency is not None:
            check_currency(self.currency)
        _check_utc("updated_at", self.updated_at)


@dataclass(frozen=True, slots=True)
class Invoice:
    """A sales invoice. `amount_due` is the ledger's own figure; reconciliation computes its own."""

    id: str
    customer_id: str
    total: Money
    amount_due: Money
    status: Status
    issue_date: date
    due_date: date | None = None
    number: str | None = None
    currency_rate: Decimal | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.amount_due.currency != self.total.currency:
            raise ModelError(f"invoice {self.id}: amount_due and total in different currencies")
        _check_utc("updated_at", self.updated_at)

    @property
    def currency(self) -> str:
        return self.total.currency


@dataclass(frozen=True, slots=True)
class Allocation:
    """Money from a payment or credit note applied to one invoice."""

    source_kind: SourceKind
    source_id: str
    invoice_id: str
    amount: Money
    date: date | None = None


@dataclass(frozen=True, slots=True)
class CreditNote:
    id: str
    customer_id: str
    total: Money
    remaining: Money
    status: Status
    issue_date: date
    number: str | None = None
    currency_rate: Decimal | None = None
    allocations: tuple[Allocation, ...] = ()
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_utc("updated_at", self.updated_at)

    @property
    def currency(self) -> str:
        return self.total.currency


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received. Over- and prepayments are payments whose `unapplied` part awaits allocation."""

    id: str
    customer_id: str | None
    amount: Money
    unapplied: Money
    date: date
    kind: PaymentKind = PaymentKind.PAYMENT
    status: PaymentStatus = PaymentStatus.LIVE
    reference: str | None = None
    currency_rate: Decimal | None = None
    allocations: tuple[Allocation, ...] = field(default=())
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_utc("updated_at", self.updated_at)

    @property
    def currency(self) -> str:
        return self.amount.currency


Record = Customer | Invoice | CreditNote | Payment

RECORD_TYPES: dict[str, type[Record]] = {
    "customer": Customer,
    "invoice": Invoice,
    "credit_note": CreditNote,
    "payment": Payment,
}


@dataclass(frozen=True, slots=True)
class RecordError:
    """A raw record that could not be mapped: stored in the sync log, never dropped silently.

    Attributes:
        stream: The raw stream it came from ("invoices").
        record_id: The ledger's id of the raw record; None when it had none.
        reason: Why it could not be mapped, in one line.
    """

    stream: str
    record_id: str | None
    reason: str
