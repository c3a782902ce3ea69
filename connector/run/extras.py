"""A reminder's envelope as the executor sends it: the firm's sign-off and bank details in the wording, the
invoice copies, every recipient, the firm's own sender (connector/envelope.py builds the message).

Guarantees:
- Everything here is read before the action is claimed (the executor's prepare step), so the effect is the
  SMTP send alone and the outbox's exactly-once holds with attachments too.
- An invoice copy the level asks for (policy `invoice_copy`, default true) is a link where the ledger serves
  the invoice online (Xero: its online invoice, the pay link) and the PDF attached where it prints one
  (QuickBooks: `invoice_pdf`). A PDF or the contact's people that cannot be fetched make the message wait
  (Retriable, a TryLater): it never goes out without what it says it carries. Only reconnect-needed and
  the ledger's limits pass through as they are, so the executor stops or waits as it does for any call.
- Further recipients are the ledger's (Xero ContactPersons with IncludeInEmails), copied (Cc): the reminder
  stays addressed to the customer's own address, and each address appears once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from connector import envelope, mail
from connector.firmprofile import FirmProfile
from connector.ledger import AuthExpired, LedgerError, RateLimited, Retriable
from connector.rules.dunning import Reminder


def wants_copy(reminder: Reminder) -> bool:
    """Whether the reminder's level (its highest) sends invoice copies."""
    return max(reminder.lines, key=lambda line: line.level.number).level.invoice_copy


def _number(line: Any) -> str:
    return str(line.item.number or line.item.invoice_id)


def dressed(
    shown: mail.ReminderView,
    profile: FirmProfile,
    reminder: Reminder,
    pay_urls: Mapping[str, str],
    ledger: object | None,
) -> mail.ReminderView:
    """The view with the firm's sign-off, its bank details (the reference quoting the invoices) and copies."""
    numbers = [_number(line) for line in reminder.lines]
    copies: tuple[envelope.InvoiceCopy, ...] = ()
    if wants_copy(reminder):
        if callable(getattr(ledger, "invoice_pdf", None)):
            copies = tuple(envelope.InvoiceCopy(number) for number in numbers)
        else:
            copies = tuple(
                envelope.InvoiceCopy(_number(line), pay_urls[line.item.invoice_id])
                for line in reminder.lines
                if pay_urls.get(line.item.invoice_id)
            )
    return replace(
        shown, signoff=envelope.signoff(profile, shown.firm), pay=envelope.pay_details(profile, numbers),
        copies=copies,
    )  # fmt: skip


def _waits(what: str, exc: LedgerError) -> LedgerError:
    """A fetch failure as what the message does next: wait (Retriable), unless the firm must stop or wait."""
    if isinstance(exc, AuthExpired | RateLimited):
        return exc
    return Retriable(f"not sent yet: {what} could not be fetched from the ledger ({exc})")


def _safe_name(number: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", number).strip("-") or "invoice") + ".pdf"


def attachment_names(ledger: object | None, reminder: Reminder) -> tuple[str, ...]:
    """The file names `attachments` attaches, without fetching anything (what a preview lists)."""
    if not callable(getattr(ledger, "invoice_pdf", None)) or not wants_copy(reminder):
        return ()
    return tuple(_safe_name(_number(line)) for line in reminder.lines)


def attachments(ledger: object | None, reminder: Reminder) -> tuple[list[envelope.Attachment], int]:
    """Each invoice's PDF where the ledger prints one and the level wants copies (named as
    `attachment_names` names them); and the calls made."""
    fetch = getattr(ledger, "invoice_pdf", None)
    names = attachment_names(ledger, reminder)
    if not callable(fetch) or not names:
        return [], 0
    found = []
    for line, name in zip(reminder.lines, names, strict=True):
        try:
            content = fetch(line.item.invoice_id)
        except LedgerError as exc:
            raise _waits(f"the PDF of invoice {_number(line)}", exc) from None
        found.append(envelope.Attachment(name, bytes(content)))
    return found, len(found)


def recipients(ledger: object | None, customer_id: str, main: str) -> tuple[tuple[str, ...], int]:
    """The customer's address first, then the ledger's further ones; and the calls made."""
    fetch = getattr(ledger, "extra_recipients", None)
    if not callable(fetch):
        return envelope.recipients([main]), 0
    try:
        more = list(fetch(customer_id))
    except LedgerError as exc:
        raise _waits("the customer's contact people", exc) from None
    return envelope.recipients([main, *more]), 1
