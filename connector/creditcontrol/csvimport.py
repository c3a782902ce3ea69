"""Credit limits as people give them: typed ('5,000.00 EUR') or a CSV file of `customer,amount[,currency]`.

An import is all or nothing: every bad row is reported with the line it starts on (`LimitFileError`), and
nothing is written unless every row is good. A customer named twice with different limits is an error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from connector.chasing import CustomerOrInvoiceNotFound, find_customer, parse_amount
from connector.creditcontrol.store import set_limit
from connector.model import Money, Tenant


class LimitFileError(ValueError):
    """A limits CSV has bad rows; the message lists each with its line number. Nothing was imported."""


def parse_limit(text: str, base_currency: str) -> Money:
    """A credit limit as typed ('5000', '5,000.00 EUR'): 0 or more (0: no credit at all), plain digits,
    at most 4 decimal places, under 10**14; else ValueError with a one-line reason."""
    return parse_amount(text, base_currency, zero=True)


def _read_csv_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LimitFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _csv_text(path, raw)


def _csv_text(path: Path | str, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise LimitFileError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as CSV UTF-8"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise LimitFileError(f"{path}: line {line}: not a CSV text file (it holds NUL bytes)")
    return text


def _records(path: Path | str, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, its fields) for every non-blank record; quoted newlines kept."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise LimitFileError(f"{path}: line {start}: not valid CSV: {exc}") from None
        if any(field.strip() for field in record):
            yield start, record


def import_limits(conn: Connection, tenant: Tenant, path: Path, now: datetime) -> int:
    """Import `customer,amount[,currency]` rows (with a header) all or nothing; returns how many.

    Every bad row is reported with the line it starts on. A customer named twice with the same limit is
    fine; with different limits it is an error naming both lines (which one was meant is not ours to guess).
    """
    return _import(conn, tenant, path, _read_csv_text(path), now)


def import_limits_upload(conn: Connection, tenant: Tenant, name: str, raw: bytes, now: datetime) -> int:
    """`import_limits` for a file's bytes (an upload); errors name it `name`, exactly as the CLI's would."""
    return _import(conn, tenant, name, _csv_text(name, raw), now)


def _import(conn: Connection, tenant: Tenant, path: Path | str, text: str, now: datetime) -> int:
    records = _records(path, text)
    first = next(records, None)
    header = [h.strip().lower() for h in first[1]] if first else []
    if "customer" not in header or "amount" not in header:
        raise LimitFileError(
            f"{path}: line {first[0] if first else 1}: the header must name the columns customer and amount "
            "(and currency)"
        )
    for name in ("customer", "amount", "currency"):
        if header.count(name) > 1:
            raise LimitFileError(f"{path}: line {first[0] if first else 1}: the header names {name} twice")
    column = {name: i for i, name in enumerate(header)}
    found: dict[str, tuple[int, Money, str]] = {}
    problems: list[str] = []
    for number, record in records:
        row = {name: (record[i].strip() if i < len(record) else "") for name, i in column.items()}
        try:
            if not row["customer"]:
                raise ValueError("no customer given")
            customer_id, name = find_customer(conn, tenant.id, row["customer"])
            amount = row["amount"] + (f" {row['currency']}" if row.get("currency") else "")
            limit = parse_limit(amount, tenant.base_currency)
        except (CustomerOrInvoiceNotFound, ValueError) as exc:
            problems.append(f"line {number}: {exc}")
            continue
        earlier = found.get(customer_id)
        if earlier is None:
            found[customer_id] = (number, limit, name)
        elif earlier[1] != limit:
            problems.append(
                f"lines {earlier[0]} and {number}: two different limits for {name} ({earlier[1]} and {limit})"
            )
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise LimitFileError(f"{path}: nothing imported: {shown}")
    for customer_id, (_, limit, _) in found.items():
        set_limit(conn, tenant.id, customer_id, limit, now, "import")
    return len(found)
