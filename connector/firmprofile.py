"""A firm's profile: who its reminders come from, how its customers pay it, and how it writes to them.

Guarantees:
- `load_profile` always answers: a firm with nothing stored gets `FirmProfile()` (every field empty), and a
  sender left empty falls back to the server's `smtp` settings (`sender`): nothing that worked before stops.
- Every stored profile is valid: `FirmProfile.checked()` (which `save_profile` calls) refuses a bad e-mail
  address, an IBAN whose checksum fails, a UK sort code not of the form 12-34-56, or bank details a customer
  could not pay to, with a one-line `ProfileProblem` naming the field (as its CLI option).
- A profile is one row per tenant (`firm_profiles`); saving replaces it whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from email.utils import formataddr, parseaddr
from typing import Any

from sqlalchemy import Connection, select

from connector.config import SmtpSettings
from connector.errors import NeedsPerson
from connector.store.schema import firm_profiles


class ProfileProblem(NeedsPerson, ValueError):
    """A profile value cannot be used; the message is one line naming the option and the problem."""


QUOTE = "{invoice_numbers}"  # where the reference wording puts the invoice numbers
DEFAULT_REFERENCE = "Please quote " + QUOTE + " as the payment reference."

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_SORT_CODE = re.compile(r"^\d{2}-\d{2}-\d{2}$")
_ACCOUNT_NUMBER = re.compile(r"^\d{8}$")
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?$")
_LOCALE = re.compile(r"^[a-z]{2,3}(?:[_-][A-Za-z]{2,4})?$")


def check_email(value: str, option: str) -> str:
    """The address as given, or a one-line ProfileProblem naming the option."""
    name, address = parseaddr(value)
    if name or address != value.strip() or not _EMAIL.match(address):
        raise ProfileProblem(f"{option}: {value!r} is not an e-mail address (like accounts@example.co.uk)")
    return address


def check_iban(value: str, option: str = "--iban") -> str:
    """The IBAN in groups of four (GB29 NWBK 6016 1331 9268 19), or a ProfileProblem if its checksum fails."""
    compact = "".join(value.split()).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", compact):
        raise ProfileProblem(
            f"{option}: {value!r} is not an IBAN (two letters, two digits, then the account)"
        )
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    if int(digits) % 97 != 1:
        raise ProfileProblem(f"{option}: {value!r} fails the IBAN checksum (a mistyped character?)")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def check_sort_code(value: str, option: str = "--sort-code") -> str:
    """A UK sort code written 12-34-56 (123456 and 12 34 56 are accepted and written so)."""
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{6}", digits):
        raise ProfileProblem(f"{option}: {value!r} is not a UK sort code (six digits, like 12-34-56)")
    return f"{digits[:2]}-{digits[2:4]}-{digits[4:]}"


@dataclass(frozen=True, slots=True)
class BankTransfer:
    """How a customer pays the firm by transfer: a UK account (sort code and number) and/or IBAN and BIC."""

    account_name: str
    sort_code: str | None = None
    account_number: str | None = None
    iban: str | None = None
    bic: str | None = None
    reference: str = DEFAULT_REFERENCE  # `{invoice_numbers}` becomes "INV-0001, INV-0002"

    def checked(self) -> BankTransfer:
        """This transfer with values written the usual way; ProfileProblem on the first bad one."""
        if not self.account_name.strip():
            raise ProfileProblem("--account-name: the name on the firm's bank account is required")
        sort_code = check_sort_code(self.sort_code) if self.sort_code else None
        account = "".join(self.account_number.split()) if self.account_number else None
        if account is not None and not _ACCOUNT_NUMBER.match(account):
            raise ProfileProblem(
                f"--account-number: {self.account_number!r} is not a UK account number (8 digits)"
            )
        if (sort_code is None) != (account is None):
            raise ProfileProblem("--sort-code and --account-number: give both or neither")
        iban = check_iban(self.iban) if self.iban else None
        bic = "".join(self.bic.split()).upper() if self.bic else None
        if bic is not None and not _BIC.match(bic):
            raise ProfileProblem(
                f"--bic: {self.bic!r} is not a BIC (8 or 11 letters and digits, like NWBKGB2L)"
            )
        if sort_code is None and iban is None:
            raise ProfileProblem("--pay-by-transfer: give a sort code and account number, or an IBAN")
        if bic is not None and iban is None:
            raise ProfileProblem("--bic: a BIC goes with an IBAN; give --iban too")
        if QUOTE not in self.reference:
            raise ProfileProblem(
                f"--reference: the wording must contain {QUOTE} (where the invoice numbers go)"
            )
        return BankTransfer(self.account_name.strip(), sort_code, account, iban, bic, self.reference.strip())

    def reference_for(self, invoice_numbers: Sequence[str]) -> str:
        """The reference wording with the invoices' numbers: "Please quote INV-0001, INV-0002 as ..."."""
        return self.reference.replace(QUOTE, ", ".join(invoice_numbers))


_TRANSFER_KEYS = {
    "name": "account_name", "account name": "account_name", "account_name": "account_name",
    "sort code": "sort_code", "sort_code": "sort_code", "account": "account_number",
    "account number": "account_number", "account_number": "account_number", "iban": "iban", "bic": "bic",
    "swift": "bic", "reference": "reference",
}  # fmt: skip


def parse_transfer(text: str, option: str = "--pay-by-transfer") -> BankTransfer:
    """Read 'name=Acme Ltd; sort code=12-34-56; account=12345678; iban=...; bic=...; reference=...'."""
    values: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        field = _TRANSFER_KEYS.get(key.strip().lower())
        if not sep or field is None:
            known = "name, sort code, account, iban, bic, reference"
            raise ProfileProblem(
                f"{option}: {part.strip()!r} is not one of {known} (as key=value; key=value)"
            )
        values[field] = value.strip()
    if "account_name" not in values:
        raise ProfileProblem(f"{option}: name=... (the name on the firm's bank account) is required")
    return BankTransfer(**values).checked()


@dataclass(frozen=True, slots=True)
class FirmProfile:
    """A firm's sender identity, legal footer, locale and ways to pay. Empty fields: the server's defaults."""

    from_name: str | None = None
    from_address: str | None = None
    reply_to: str | None = None
    signature: str | None = None  # the lines above the footer, e.g. "Jane Smith\nCredit Control"
    company_number: str | None = None  # e.g. "Registered in England and Wales no. 01234567"
    registered_office: str | None = None  # the address the law wants in a UK/EU business e-mail
    locale: str | None = None  # e.g. "en_GB"; None: derived from the tenant's country
    pay_by_transfer: BankTransfer | None = None
    statements: bool = False  # send a monthly statement of account

    def checked(self) -> FirmProfile:
        """This profile with addresses and bank details checked; ProfileProblem naming the first bad one."""
        text = {f.name: _clean(getattr(self, f.name)) for f in fields(self) if f.type == "str | None"}
        for option in ("from_address", "reply_to"):
            if text[option] is not None:
                text[option] = check_email(text[option], "--" + option.replace("_", "-"))
        if text["from_name"] is not None and ("\n" in text["from_name"] or "\r" in text["from_name"]):
            raise ProfileProblem("--from-name: one line only")
        if text["locale"] is not None and not _LOCALE.match(text["locale"]):
            raise ProfileProblem(f"--locale: {self.locale!r} is not a locale (like en_GB, de_DE or fr)")
        transfer = self.pay_by_transfer.checked() if self.pay_by_transfer is not None else None
        return replace(self, pay_by_transfer=transfer, **text)

    def sender(self, smtp: SmtpSettings) -> tuple[str, str | None]:
        """(From header, Reply-To or None): the firm's own, else the server's smtp settings."""
        if self.from_address:
            return formataddr((self.from_name or "", self.from_address)), self.reply_to or smtp.reply_to
        return formataddr((self.from_name or smtp.from_name or "", smtp.from_address)), (
            self.reply_to or smtp.reply_to
        )

    def domain(self, smtp: SmtpSettings) -> str:
        """The domain the firm's Message-IDs are made on: its own From address's, else the server's."""
        return (self.from_address or smtp.from_address).rpartition("@")[2] or "localhost"

    def footer(self) -> tuple[str, ...]:
        """The legal footer's lines (company number, registered office), empty when none is set."""
        lines = [self.company_number] if self.company_number else []
        if self.registered_office:
            lines.append("Registered office: " + ", ".join(_lines(self.registered_office)))
        return tuple(lines)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _lines(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[\n,]", text) if part.strip()]


def load_profile(conn: Connection, tenant_id: str) -> FirmProfile:
    """The firm's stored profile; `FirmProfile()` when none is stored."""
    row = conn.execute(select(firm_profiles).where(firm_profiles.c.tenant_id == tenant_id)).mappings().first()
    if row is None:
        return FirmProfile()
    transfer = None
    if row["pay_account_name"]:
        transfer = BankTransfer(
            account_name=row["pay_account_name"], sort_code=row["pay_sort_code"],
            account_number=row["pay_account_number"], iban=row["pay_iban"], bic=row["pay_bic"],
            reference=row["pay_reference"] or DEFAULT_REFERENCE,
        )  # fmt: skip
    return FirmProfile(
        from_name=row["from_name"], from_address=row["from_address"], reply_to=row["reply_to"],
        signature=row["signature"], company_number=row["company_number"],
        registered_office=row["registered_office"], locale=row["locale"], pay_by_transfer=transfer,
        statements=bool(row["statements"]),
    )  # fmt: skip


def save_profile(conn: Connection, tenant_id: str, profile: FirmProfile) -> None:
    """Store the firm's profile (checked first: ProfileProblem and nothing stored if a value is bad)."""
    profile = profile.checked()
    values = {f: v for f, v in asdict(profile).items() if f != "pay_by_transfer"}
    transfer = profile.pay_by_transfer
    values.update(
        pay_account_name=transfer.account_name if transfer else None,
        pay_sort_code=transfer.sort_code if transfer else None,
        pay_account_number=transfer.account_number if transfer else None,
        pay_iban=transfer.iban if transfer else None,
        pay_bic=transfer.bic if transfer else None,
        pay_reference=transfer.reference if transfer else None,
        updated_at=datetime.now(UTC),
    )
    c = firm_profiles.c
    if conn.execute(select(c.tenant_id).where(c.tenant_id == tenant_id)).first() is None:
        conn.execute(firm_profiles.insert().values(tenant_id=tenant_id, **values))
    else:
        conn.execute(firm_profiles.update().where(c.tenant_id == tenant_id).values(**values))
