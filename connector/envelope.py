"""What surrounds a reminder's wording: who it is from and to, how to pay, the invoice copies, the headers.

Guarantees:
- Every e-mail ccm sends (mail.build_message comes here too) carries `Auto-Submitted: auto-generated`
  (RFC 3834: no auto-replies loop back), a `Date` with its numeric offset (RFC 5322, from an aware datetime),
  and a Message-ID derived from the action key on the sending firm's own domain: a resend is recognisable.
- From, Reply-To, the signature and the legal footer are the firm's own (connector/firmprofile.py), falling
  back to the server's smtp settings only where the firm has set nothing: two firms never share a sender.
- The first recipient is To; every further one (a Xero contact person marked "include in e-mails") is Cc,
  each address once, case-insensitively: the customer's main address stays the one the reminder is to.
- An attachment is added as the bytes given (fetched at send time by the caller, before the claim).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import TYPE_CHECKING

from connector.config import SmtpSettings
from connector.firmprofile import FirmProfile

if TYPE_CHECKING:
    from connector.mail import Rendered


@dataclass(frozen=True, slots=True)
class SignOff:
    """The sign-off a template shows (`_signoff.*`): signature lines, the name signed, the legal footer."""

    signature: tuple[str, ...] = ()
    name: str | None = None  # None: the firm's name as the ledger has it
    footer: tuple[str, ...] = ()


NO_SIGNOFF = SignOff()


@dataclass(frozen=True, slots=True)
class PayDetails:
    """Bank transfer details a template shows (`_pay.*`), with the reference already worded."""

    account_name: str
    reference: str
    sort_code: str | None = None
    account_number: str | None = None
    iban: str | None = None
    bic: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceCopy:
    """An invoice's copy: a link to it (url) or, url None, a PDF attached to the e-mail."""

    number: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"


class _Headers(HeaderRegistry):
    """The standard header classes, each made once: the stdlib's registry makes a new class for every header
    set (about a sixth of building a message). The headers, and so the bytes sent, are the same."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


POLICY = default_policy.clone(header_factory=_Headers())  # email.policy.default, its header classes kept


def signoff(profile: FirmProfile, firm: str) -> SignOff:
    lines = tuple(line.rstrip() for line in (profile.signature or "").splitlines() if line.strip())
    return SignOff(lines, profile.from_name or firm, profile.footer())


def pay_details(profile: FirmProfile, invoice_numbers: Sequence[str]) -> PayDetails | None:
    transfer = profile.pay_by_transfer
    if transfer is None:
        return None
    return PayDetails(
        transfer.account_name, transfer.reference_for(invoice_numbers), transfer.sort_code,
        transfer.account_number, transfer.iban, transfer.bic,
    )  # fmt: skip


def recipients(addresses: Sequence[str | None]) -> tuple[str, ...]:
    """Each address once (case-insensitive), in order, empty ones left out."""
    seen: set[str] = set()
    out = []
    for address in addresses:
        if address and address.strip() and address.strip().lower() not in seen:
            seen.add(address.strip().lower())
            out.append(address.strip())
    return tuple(out)


def build(
    rendered: Rendered,
    to: Sequence[str],
    key: str,
    smtp: SmtpSettings,
    profile: FirmProfile | None = None,
    when: datetime | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """The e-mail as it goes out: the firm's sender, To the first address and Cc the others, the headers."""
    profile = profile or FirmProfile()
    sender, reply_to = profile.sender(smtp)
    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = f"<{key}@{profile.domain(smtp)}>"
    message["From"] = sender
    message["To"] = to[0] if to else ""
    if len(to) > 1:
        message["Cc"] = ", ".join(to[1:])
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = rendered.subject
    when = when or datetime.now(UTC)
    message["Date"] = format_datetime(when if when.tzinfo is not None else when.replace(tzinfo=UTC))
    message["Auto-Submitted"] = "auto-generated"
    message["X-CCM-Action"] = key
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    for item in attachments:
        message.add_attachment(
            item.content, maintype=item.maintype, subtype=item.subtype, filename=item.filename
        )
    return message
