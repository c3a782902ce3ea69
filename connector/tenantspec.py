"""A tenant as a person typed it (CLI options, the connect form), checked field by field.

Each problem is one line naming the field: `timezone: unknown time zone 'Europe/Londn'`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.config import check_time_of_day
from connector.model import ModelError, Tenant

# fullmatch, never `$`: `$` also matches before a trailing newline, and "acme\n" is not an id.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NAME_MAX = 255  # the store's column
MODES = ("auto", "approve", "dry-run")  # connector/outbox.py Mode; a firm's mode (connector/firmmode.py)
EMAIL_MAX = 320


class TenantProblem(ValueError):
    """A field of a tenant is unusable; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


def check_id(tenant_id: str) -> str:
    if not _ID.fullmatch(tenant_id):
        raise TenantProblem(
            "tenant", f"use letters, digits, '.', '_' or '-' (at most 64), not {shown(tenant_id)}"
        )
    return tenant_id


def check_name(name: str, *, empty: bool = False) -> str:
    """A firm's name: one line that fits the store. `empty`: "" is fine (connecting fills in the ledger's)."""
    if not name.strip() and not (empty and name == ""):
        raise TenantProblem("name", "must not be empty")
    if len(name) > NAME_MAX:
        raise TenantProblem("name", f"at most {NAME_MAX} characters (got {len(name):,})")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        raise TenantProblem("name", f"must be one line without control characters, not {shown(name)}")
    return name


def shown(value: str, most: int = 60) -> str:
    """`value` quoted for an error line, cut short: a 100,000-character value is not repeated whole."""
    return repr(value) if len(value) <= most else repr(value[:most]) + f"… ({len(value):,} characters)"


def slug(name: str) -> str:
    """A tenant id made from a firm's name: 'Dale Demo Trading Ltd' -> 'dale-demo-trading-ltd'."""
    made = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return made or "tenant"


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TenantProblem("timezone", f"unknown time zone {shown(name)}") from None
    return name


def check_country(code: str) -> str:
    """A two-letter ISO country code as typed ('gb' is GB), or TenantProblem naming `country`."""
    if len(code) != 2 or not code.isalpha():
        raise TenantProblem("country", f"expected a two-letter ISO code, got {code!r}")
    return code.upper()


def check_email(address: str | None) -> str | None:
    if address in (None, ""):
        return None
    if len(address) > EMAIL_MAX or not _EMAIL.fullmatch(address):
        raise TenantProblem("contact_email", f"not an e-mail address: {shown(address)}")
    return address


def check_mode(value: str) -> str:
    """A firm's mode as typed ('Auto ' is auto), or TenantProblem naming `mode`."""
    mode = value.strip().lower()
    if mode not in MODES:
        raise TenantProblem("mode", f"must be one of {', '.join(MODES)}, not {shown(value)}")
    return mode


def check_night_time(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        return check_time_of_day(value)
    except ValueError as exc:
        raise TenantProblem("night_time", f"{exc} (got {value!r})") from None


def build(
    tenant_id: str,
    name: str,
    ledger: str,
    *,
    base_currency: str = "GBP",
    timezone: str = "Europe/London",
    country: str = "GB",
    night_time: str | None = None,
    contact_email: str | None = None,
) -> Tenant:
    """A Tenant from typed-in values, or TenantProblem naming the first bad field."""
    check_id(tenant_id)
    check_name(name, empty=True)
    check_timezone(timezone)
    country = check_country(country)
    try:
        return Tenant(
            tenant_id,
            name,
            ledger,
            base_currency.upper(),
            timezone,
            country,
            check_night_time(night_time),
            check_email(contact_email),
        )
    except ModelError as exc:
        raise TenantProblem("base_currency", str(exc)) from None


def changed(tenant: Tenant, **fields: str | None) -> Tenant:
    """`tenant` with the given fields replaced (None leaves a field as it is; "" clears an optional one)."""
    wanted: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if "name" in wanted:
        check_name(str(wanted["name"]))
    if "timezone" in wanted:
        check_timezone(str(wanted["timezone"]))
    if "night_time" in wanted:
        wanted["night_time"] = check_night_time(wanted["night_time"])
    if "contact_email" in wanted:
        wanted["contact_email"] = check_email(wanted["contact_email"])
    if "country" in wanted:
        wanted["country"] = check_country(str(wanted["country"]))
    try:
        return replace(tenant, **wanted)
    except ModelError as exc:
        raise TenantProblem("base_currency", str(exc)) from None
