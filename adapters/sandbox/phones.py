"""Plausible phone numbers for generated customers, from the numbering ranges set aside for fiction.

`phone_for(customer_id, currency)` is deterministic: it draws from its own random stream seeded by the
customer's id (itself drawn from the firm's seed), so adding phones changed no other generated figure.
About one customer in nine has none, as in real ledgers; a customer in a currency with no country here has
none either. UK numbers come from Ofcom's drama ranges (020 7946 0xxx, 0113 496 0xxx, 07700 900xxx, ...),
US ones from 555-01xx: they look real and reach nobody.
"""

from __future__ import annotations

import random

from adapters.sandbox.records import GenPhone

WITHOUT = 0.11  # the share of customers the ledger keeps no number for
MOBILE = 0.2  # the share of those with a number whose number is a mobile
# (country code, area codes) per currency; the local part is drawn per country below.
_UK_AREAS = ("20", "113", "114", "115", "117", "118", "121", "131", "141", "151", "161", "191")
_COUNTRIES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "GBP": (("44", _UK_AREAS),),
    "EUR": (("353", ("1", "21", "91")), ("49", ("30", "40", "89")), ("33", ("1", "4", "5"))),
    "USD": (("1", ("212", "312", "415", "617")),),
}


def phone_for(customer_id: str, currency: str) -> GenPhone | None:
    """A plausible number for the customer (None for about one in nine), the same every time."""
    rng = random.Random(f"phone:{customer_id}")  # noqa: S311 - test data: it must be reproducible
    countries = _COUNTRIES.get(currency)
    if countries is None or rng.random() < WITHOUT:
        return None
    country, areas = rng.choice(countries)
    n = rng.randrange(1000)
    if rng.random() < MOBILE:
        return GenPhone(country, *_mobile(country, n, rng), mobile=True)
    area = rng.choice(areas)
    return GenPhone(country, area, _landline(country, area, n, rng))


def _landline(country: str, area: str, n: int, rng: random.Random) -> str:
    if country == "44":
        return f"7946 0{n:03d}" if area == "20" else f"496 0{n:03d}"
    if country == "1":
        return f"555-01{n % 100:02d}"
    return f"{rng.randrange(200, 999)} {rng.randrange(1000, 9999)}"


def _mobile(country: str, n: int, rng: random.Random) -> tuple[str, str]:
    if country == "44":
        return "7700", f"900{n:03d}"
    if country == "1":
        return "646", f"555-01{n % 100:02d}"
    return {"353": "87", "49": "151", "33": "6"}.get(country, "7"), f"{rng.randrange(100, 999)} {n:04d}"
