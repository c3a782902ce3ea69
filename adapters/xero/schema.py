"""The raw schema of the Xero streams: every dotted source path a record may carry.

Derived once from the official OpenAPI spec by `adapters.xero.derive_schema` into raw_schema.json (checked
in, since users' clones have no spec); the mapping loader validates mapping files against it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from connector.ledger import RawSchema

SCHEMA_FILE = Path(__file__).with_name("raw_schema.json")


@cache
def raw_schema() -> RawSchema:
    """Per stream, the frozenset of its dotted source paths."""
    data = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return {stream: frozenset(paths) for stream, paths in data.items()}
