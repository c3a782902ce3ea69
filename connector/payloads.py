"""What an outbox action carries, typed per kind: one frozen dataclass per kind, one `encode`/`decode` pair.

Invariants:
- The JSON stored is exactly what ccm wrote before payloads were typed (same keys, same order, same value
  forms: dates as ISO text, money as decimal text), so rows need no migration and `decode` reads every
  row ever written. `decode` is lenient: a key an older row lacks takes its default, an extra one is
  ignored. `encode(decode(x)) == x` for every payload ccm writes.
- `retry_base` (the attempts an action had when a person re-planned it) is the outbox's own key beside the
  payload: connector/outbox.py keeps it on `Action.retry_base`, never here.
- Invoice lines stay the JSON objects they are stored as (`ReminderLine`, `StatementLine`: TypedDicts,
  typed for mypy at no cost): planning writes about 100,000 of them a night, and a dataclass per line
  would cost more than the rest of the payload (bench/dunning.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, TypedDict


class Kind(StrEnum):
    """What an action does; stored as its value."""

    REMINDER = "reminder"  # a reminder to a customer, by e-mail or the ledger's invoice e-mail
    CALL_TASK = "call_task"  # a call for the bookkeeper to make
    NOTE = "note"  # a note written on an invoice in the ledger
    HOLD = "hold"  # a customer put on credit hold in the ledger
    RELEASE = "release"  # ... and taken off it
    NOTICE = "notice"  # an e-mail to the firm itself: a connection-health notice or the morning digest
    STATEMENT = "statement"  # a customer's monthly statement


class ReminderLine(TypedDict, total=False):
    """One invoice of a reminder, at its level, as planned (amount: decimal text; due_date: ISO)."""

    invoice_id: str
    number: str
    due_date: str
    level: int
    level_name: str
    amount: str
    currency: str
    days_overdue: int


class StatementLine(TypedDict, total=False):
    """One open invoice of a statement, as it stood (amount, total: decimal text; due_date: ISO)."""

    invoice_id: str
    number: str
    due_date: str
    days_overdue: int
    amount: str
    total: str
    currency: str


@dataclass(frozen=True, slots=True)
class ReminderPayload:
    """A reminder (kind reminder): the customer as planned, policy and wording, the top level, the lines."""

    customer_name: str
    email: str | None
    policy: str
    policy_version: str
    level: int
    level_name: str
    template: str
    worded_for: str
    lines: tuple[ReminderLine, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_name": self.customer_name, "email": self.email, "policy": self.policy,
            "policy_version": self.policy_version, "level": self.level, "level_name": self.level_name,
            "template": self.template, "worded_for": self.worded_for, "lines": list(self.lines),
        }  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReminderPayload:
        return cls(**_reminder_fields(raw))

    def invoice_numbers(self) -> tuple[str, ...]:
        """Each line's invoice number (its id when it has none), as a bookkeeper reads them."""
        return _numbers(self.lines)


@dataclass(frozen=True, slots=True)
class CallTaskPayload(ReminderPayload):
    """A call task (kind call_task): a reminder's fields, and the number it was planned with."""

    phone: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"phone": self.phone, **ReminderPayload.to_json(self)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CallTaskPayload:
        return cls(**_reminder_fields(raw), phone=raw.get("phone"))


@dataclass(frozen=True, slots=True)
class NotePayload:
    """A note on an invoice (kind note): the ledger's invoice id and the text."""

    ref: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "text": self.text}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NotePayload:
        return cls(str(raw.get("ref") or ""), str(raw.get("text") or ""))


@dataclass(frozen=True, slots=True)
class HoldPayload:
    """A credit hold or its release (kinds hold, release): why, and who asked (`rule` or `manual`)."""

    customer_name: str
    reason: str
    source: str = "rule"

    def to_json(self) -> dict[str, Any]:
        return {"customer_name": self.customer_name, "reason": self.reason, "source": self.source}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> HoldPayload:
        return cls(
            str(raw.get("customer_name") or ""), str(raw.get("reason") or ""), str(raw.get("source", "rule"))
        )


@dataclass(frozen=True, slots=True)
class NoticePayload:
    """A connection-health notice to the firm (kind notice): its address, the issue and the ledger's name."""

    email: str
    issue: str  # the health issue's kind (stored as "kind")
    message: str
    firm: str
    ledger: str

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "kind": self.issue, "message": self.message, "firm": self.firm,
                "ledger": self.ledger}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NoticePayload:
        return cls(*(str(raw.get(k) or "") for k in ("email", "kind", "message", "firm", "ledger")))


@dataclass(frozen=True, slots=True)
class DigestPayload:
    """The morning digest (kind notice, stored with `"digest": true`): rendered when it was planned."""

    email: str
    firm: str
    night: str  # the night's local date, ISO
    subject: str
    text: str
    html: str

    def to_json(self) -> dict[str, Any]:
        return {"digest": True, "email": self.email, "firm": self.firm, "night": self.night,
                "subject": self.subject, "text": self.text, "html": self.html}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DigestPayload:
        return cls(*(str(raw.get(k) or "") for k in ("email", "firm", "night", "subject", "text", "html")))


@dataclass(frozen=True, slots=True)
class StatementPayload:
    """A monthly statement (kind statement): the customer, the month, the day it stands at, its lines."""

    customer_name: str
    email: str | None
    month: date
    as_at: date
    template: str
    lines: tuple[StatementLine, ...]

    def to_json(self) -> dict[str, Any]:
        return {"customer_name": self.customer_name, "email": self.email, "month": self.month.isoformat(),
                "as_at": self.as_at.isoformat(), "template": self.template,
                "lines": list(self.lines)}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StatementPayload:
        return cls(
            str(raw.get("customer_name") or ""), raw.get("email"), date.fromisoformat(str(raw["month"])),
            date.fromisoformat(str(raw["as_at"])), str(raw.get("template") or ""),
            tuple(raw.get("lines") or ()),
        )  # fmt: skip

    def invoice_numbers(self) -> tuple[str, ...]:
        """Each line's invoice number (its id when it has none)."""
        return _numbers(self.lines)


Payload = (
    ReminderPayload
    | CallTaskPayload
    | NotePayload
    | HoldPayload
    | NoticePayload
    | DigestPayload
    | StatementPayload
)


def encode(payload: Payload) -> dict[str, Any]:
    """The JSON object stored for a payload (what ccm always stored for its kind)."""
    return payload.to_json()


def decode(kind: str, raw: Mapping[str, Any] | None) -> Payload:
    """The payload of a stored action of `kind` from its JSON object (extra keys, `retry_base`, ignored).

    Raises:
        ValueError: `kind` is no action kind.
    """
    found = raw or {}
    match Kind(kind):
        case Kind.REMINDER:
            return ReminderPayload.from_json(found)
        case Kind.CALL_TASK:
            return CallTaskPayload.from_json(found)
        case Kind.NOTE:
            return NotePayload.from_json(found)
        case Kind.HOLD | Kind.RELEASE:
            return HoldPayload.from_json(found)
        case Kind.NOTICE:
            return DigestPayload.from_json(found) if found.get("digest") else NoticePayload.from_json(found)
        case Kind.STATEMENT:
            return StatementPayload.from_json(found)


def customer_name(payload: Payload) -> str | None:
    """The customer's name as planned (None: the payload names none, as a note's or a notice's)."""
    if isinstance(payload, ReminderPayload | HoldPayload | StatementPayload):
        return payload.customer_name or None
    return None


def email_of(payload: Payload) -> str | None:
    """The address the action writes to (None: a ledger write-back, or none was known)."""
    if isinstance(payload, ReminderPayload | StatementPayload | NoticePayload | DigestPayload):
        return payload.email or None
    return None


def reason_of(payload: Payload) -> str | None:
    """Why a hold or release was planned (None for other kinds)."""
    return payload.reason or None if isinstance(payload, HoldPayload) else None


def lines_of(payload: Payload) -> tuple[ReminderLine, ...]:
    """A reminder's or call task's invoice lines (none for other kinds)."""
    return payload.lines if isinstance(payload, ReminderPayload) else ()


def _reminder_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "customer_name": str(raw.get("customer_name") or ""), "email": raw.get("email"),
        "policy": str(raw.get("policy") or ""), "policy_version": str(raw.get("policy_version") or ""),
        "level": int(raw.get("level") or 0), "level_name": str(raw.get("level_name") or ""),
        "template": str(raw.get("template") or ""), "worded_for": str(raw.get("worded_for") or ""),
        "lines": tuple(raw.get("lines") or ()),
    }  # fmt: skip


def _numbers(lines: tuple[ReminderLine, ...] | tuple[StatementLine, ...]) -> tuple[str, ...]:
    return tuple(str(line.get("number") or line.get("invoice_id")) for line in lines)
