"""The firm-profile options of `ccm tenants set` and the lines `ccm tenants show` prints about a profile.

An option left out keeps what is stored; '' clears it (`--pay-by-transfer ''` drops the bank details). A bad
value is one line naming the option (`--iban: 'GB28…' fails the IBAN checksum`) and nothing is stored.
Bank details come whole (`--pay-by-transfer "name=Acme Ltd; sort code=12-34-56; account=12345678"`) or
field by field (`--account-name`, `--sort-code`, `--account-number`, `--iban`, `--bic`, `--pay-reference`),
the fields applied over the whole.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import typer

from connector.firmprofile import (
    DEFAULT_REFERENCE,
    BankTransfer,
    FirmProfile,
    ProfileProblem,
    check_iban,
    check_sort_code,
    parse_transfer,
)


def _opt(help_: str) -> Any:
    return typer.Option(help=help_, rich_help_panel="Sender and payment (reminders)")


FromNameOpt = Annotated[str | None, _opt("Name reminders come from, e.g. 'Acme Ltd Accounts'; '' for none.")]
FromAddressOpt = Annotated[str | None, _opt("Address reminders come from; '' for smtp.from_address.")]
ReplyToOpt = Annotated[str | None, _opt("Where customers' replies go; '' for none.")]
SignatureOpt = Annotated[str | None, _opt("Lines signed above the firm's name ('\\n' between lines).")]
CompanyNumberOpt = Annotated[str | None, _opt("Legal footer, e.g. 'Registered in England no. 01234567'.")]
OfficeOpt = Annotated[str | None, _opt("Registered office for the legal footer (commas between lines).")]
LocaleOpt = Annotated[str | None, _opt("Locale of dates and money, e.g. en_GB; '' for the country's.")]
TransferOpt = Annotated[
    str | None,
    _opt("Bank details: 'name=...; sort code=...; account=...; iban=...; bic=...; reference=...'."),
]
AccountNameOpt = Annotated[str | None, _opt("Name on the firm's bank account.")]
SortCodeOpt = Annotated[str | None, _opt("UK sort code, 12-34-56.")]
AccountNumberOpt = Annotated[str | None, _opt("UK account number, 8 digits.")]
IbanOpt = Annotated[str | None, _opt("IBAN (its checksum is checked).")]
BicOpt = Annotated[str | None, _opt("BIC of the IBAN's bank.")]
PayReferenceOpt = Annotated[str | None, _opt("Reference wording with {invoice_numbers} in it.")]
StatementsOpt = Annotated[bool | None, _opt("Send monthly statements of account.")]

_BANK_OPTIONS = ("account_name", "sort_code", "account_number", "iban", "bic", "pay_reference")


def _text(value: str | None) -> str | None:
    return value.replace("\\n", "\n") if value is not None else None


def changed(
    profile: FirmProfile, pay_by_transfer: str | None, statements: bool | None, **given: str | None
) -> FirmProfile:
    """The profile with the options given applied and checked; ProfileProblem naming the first bad option.

    `given`: from_name, from_address, reply_to, signature, company_number, registered_office, locale (the
    profile's own) and account_name, sort_code, account_number, iban, bic, pay_reference (the bank's).
    """
    texts = {k: v for k, v in given.items() if k not in _BANK_OPTIONS}
    bank = {("reference" if k == "pay_reference" else k): v for k, v in given.items() if k in _BANK_OPTIONS}
    flags = {"statements": statements}
    transfer = pay_by_transfer
    updates: dict[str, Any] = {k: (_text(v) or None) for k, v in texts.items() if v is not None}
    updates.update({k: v for k, v in flags.items() if v is not None})
    pay = profile.pay_by_transfer
    if transfer is not None:
        pay = parse_transfer(transfer) if transfer.strip() else None
    given = {k: v for k, v in bank.items() if v is not None}
    if given:
        iban, sort_code = given.get("iban"), given.get("sort_code")
        if iban:  # a value typed wrong is named before what is missing
            check_iban(iban)
        if sort_code:
            check_sort_code(sort_code)
        if pay is None and not given.get("account_name"):
            raise ProfileProblem("--account-name: the name on the firm's bank account is required")
        base = pay or BankTransfer(account_name="")
        fields: dict[str, Any] = {k: (v or None) if k != "reference" else v for k, v in given.items()}
        pay = replace(base, **fields)
        if pay.reference == "":
            pay = replace(pay, reference=DEFAULT_REFERENCE)  # '' restores the default wording
    return replace(profile, pay_by_transfer=pay, **updates).checked()


def lines(profile: FirmProfile, from_default: str) -> list[tuple[str, str]]:
    """What `ccm tenants show` prints about the profile, in the bookkeeper's words."""
    sender = profile.from_address or f"{from_default} (the server's smtp.from_address)"
    pay = profile.pay_by_transfer
    if pay is None:
        bank = "none (set --pay-by-transfer)"
    else:
        parts = [pay.account_name]
        if pay.sort_code:
            parts.append(f"sort code {pay.sort_code}, account {pay.account_number}")
        if pay.iban:
            parts.append(f"IBAN {pay.iban}" + (f", BIC {pay.bic}" if pay.bic else ""))
        bank = "; ".join(parts) + f'; "{pay.reference}"'
    return [
        ("from", f"{profile.from_name} <{sender}>" if profile.from_name else sender),
        ("reply to", profile.reply_to or "-"),
        ("signature", " / ".join(profile.signature.splitlines()) if profile.signature else "-"),
        ("footer", " / ".join(profile.footer()) or "none (set --company-number, --registered-office)"),
        ("locale", profile.locale or "from the firm's country"),
        ("bank transfer", bank),
        ("statements", "yes" if profile.statements else "no"),
    ]
