"""Column types that keep money exact and instants in UTC on both SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.types import TypeDecorator

MONEY_SCALE = 4
RATE_SCALE = 10


class ScaledDecimal(TypeDecorator[Decimal]):
    """A Decimal stored as a scaled 64-bit integer: exact, and summable in SQL on every backend.

    SQLite has no exact decimal type (NUMERIC becomes a float), so amounts are stored in units of
    10**-scale. Values are rounded half-even to the scale before they are compared or stored.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = MONEY_SCALE) -> None:
        super().__init__()
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def quantize(self, value: Decimal) -> Decimal:
        """`value` rounded half-even to the scale: what storing it and reading it back gives."""
        return value.quantize(self._quantum, rounding=ROUND_HALF_EVEN)

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        """The stored integer: `value` in units of 10**-scale, rounded half-even.

        Raises:
            TypeError: `value` is not a Decimal (a float would not be exact).
        """
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"expected Decimal, got {type(value).__name__}")
        return int(value.scaleb(self.scale).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """The Decimal the stored integer stands for, with exactly `scale` decimal places."""
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.scale)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime, stored as naive UTC so both backends compare and sort it alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        """`value` converted to UTC, stored without its zone.

        Raises:
            TypeError: `value` is not an aware datetime (a naive one would be ambiguous).
        """
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"expected an aware datetime, got {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """The stored instant as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC)
