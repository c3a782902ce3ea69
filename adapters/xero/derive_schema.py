"""Derive the raw schema of the Xero streams from the official OpenAPI spec (run once; output checked in).

`python -m adapters.xero.derive_schema SPEC.yaml > adapters/xero/raw_schema.json` writes, per stream, every
dotted source path its records may carry (`Contact.ContactID`, `Allocations[].Invoice.InvoiceID`). Users'
clones have no spec, so ccm reads the generated file; tests/xero/test_schema.py checks it is up to date.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

# The stream ccm pulls -> the spec's schema of one record of it.
STREAMS = {
    "contacts": "Contact",
    "invoices": "Invoice",
    "credit_notes": "CreditNote",
    "payments": "Payment",
    "overpayments": "Overpayment",
    "prepayments": "Prepayment",
}
MAX_DEPTH = 3  # schemas nested along one path: Payment > Invoice > Contact holds every path a mapping needs


def _paths(
    schemas: Mapping[str, Any], node: Mapping[str, Any], prefix: str, trail: tuple[str, ...]
) -> Iterator[str]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in trail or len(trail) >= MAX_DEPTH:
            return
        yield from _paths(schemas, schemas[name], prefix, (*trail, name))
        return
    if node.get("type") == "array" and "items" in node:
        yield prefix + "[]"
        yield from _paths(schemas, node["items"], prefix + "[]", trail)
        return
    properties = node.get("properties")
    if not properties:
        return
    for key, child in properties.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path
        yield from _paths(schemas, child, path, trail)


def derive(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per stream, the sorted dotted source paths of its record schema."""
    schemas = spec["components"]["schemas"]
    return {
        stream: sorted(set(_paths(schemas, schemas[name], "", (name,)))) for stream, name in STREAMS.items()
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m adapters.xero.derive_schema PATH/xero_accounting.yaml", file=sys.stderr)
        return 2
    spec = yaml.safe_load(Path(argv[0]).read_text(encoding="utf-8"))
    print(json.dumps(derive(spec), indent=0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
