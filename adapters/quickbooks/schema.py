"""The shape of QBO's raw records, per stream ccm pulls, read from the checked-in raw_schema.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from connector.ledger import RawSchema

SCHEMA_FILE = Path(__file__).with_name("raw_schema.json")
# The stream ccm pulls -> the QBO entity behind it (query and CDC name).
ENTITIES: dict[str, str] = {
    "customers": "Customer",
    "invoices": "Invoice",
    "payments": "Payment",
    "credit_memos": "CreditMemo",
}


def _with_parents(paths: list[str]) -> frozenset[str]:
    """Every path with each of its prefixes ('Line[].Link.TxnId' brings 'Line[]', 'Line', 'Line[].Link')."""
    out: set[str] = set()
    for path in paths:
        parts = path.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            out.add(prefix)
            if prefix.endswith("[]"):
                out.add(prefix[:-2])
    return frozenset(out)


@cache
def raw_schema() -> RawSchema:
    """Per stream, the frozenset of dotted source paths its records may carry."""
    data = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return {stream: _with_parents(data[stream]) for stream in ENTITIES}
