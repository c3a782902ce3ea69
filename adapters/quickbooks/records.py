"""What the adapter does to QBO records before mapping: tombstones split off, payment links exposed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def is_deleted(record: dict[str, Any]) -> bool:
    """CDC returns deleted objects as `{"Id": ..., "status": "Deleted", ...}`."""
    return record.get("status") == "Deleted"


def expose_payment_links(record: dict[str, Any]) -> dict[str, Any]:
    """Give each payment line a `Link`: its first LinkedTxn (a payment line links one transaction).

    The mapping reads `Link.TxnId` because its path checker refuses an indexed path (`LinkedTxn[0].TxnId`)
    for a one-value field; the record is otherwise untouched (the link is shared, not copied).
    """
    for line in record.get("Line") or ():
        links = line.get("LinkedTxn") if isinstance(line, dict) else None
        if links:
            line["Link"] = links[0]
    return record


def split(entity: str, records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Live records (prepared for the mapping) and the ids of deleted ones."""
    live: list[dict[str, Any]] = []
    deleted: list[str] = []
    payments = entity == "Payment"
    for record in records:
        if is_deleted(record):
            deleted.append(str(record.get("Id")))
        else:
            live.append(expose_payment_links(record) if payments else record)
    return live, deleted
