"""QBO-shaped raw records, as the API (and the sandbox) returns them, for mapping and adapter tests."""

from __future__ import annotations

from typing import Any

STAMP = "2026-01-10T09:30:00-08:00"


def meta(updated: str = STAMP) -> dict[str, str]:
    return {"CreateTime": "2025-12-01T10:00:00-08:00", "LastUpdatedTime": updated}


def customer(cid: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "Id": cid, "SyncToken": "0", "domain": "QBO", "sparse": False, "DisplayName": f"Customer {cid}",
        "CompanyName": f"Customer {cid} Ltd", "Active": True, "Balance": 120.5, "Job": False,
        "PrimaryEmailAddr": {"Address": f"ap{cid}@example.com"},
        "CurrencyRef": {"value": "GBP", "name": "British Pound Sterling"},
        "CustomerTypeRef": {"value": "2", "name": "Trade"}, "MetaData": meta(), **extra,
    }  # fmt: skip


def invoice(iid: str = "130", cid: str = "1", total: float = 150.0, balance: float = 150.0,
            **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "Id": iid, "SyncToken": "2", "domain": "QBO", "sparse": False, "DocNumber": f"INV-{iid}",
        "TxnDate": "2026-01-05", "DueDate": "2026-02-04", "TotalAmt": total, "Balance": balance,
        "CustomerRef": {"value": cid, "name": f"Customer {cid}"},
        "CurrencyRef": {"value": "GBP", "name": "British Pound Sterling"}, "ExchangeRate": 1,
        "Line": [{"Id": "1", "LineNum": 1, "Amount": total, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}, "Qty": 1,
                                          "UnitPrice": total}}],
        "LinkedTxn": [], "EmailStatus": "NotSet", "MetaData": meta(), **extra,
    }  # fmt: skip


def payment(pid: str = "140", cid: str = "1", total: float = 100.0, unapplied: float = 0.0,
            links: list[tuple[str, str, float]] | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    lines = [
        {"Amount": amount, "LinkedTxn": [{"TxnId": txn, "TxnType": kind}]}
        for txn, kind, amount in (links if links is not None else [("130", "Invoice", total)])
    ]
    return {
        "Id": pid, "SyncToken": "0", "domain": "QBO", "sparse": False, "TxnDate": "2026-01-08",
        "TotalAmt": total, "UnappliedAmt": unapplied, "ProcessPayment": False,
        "CustomerRef": {"value": cid, "name": f"Customer {cid}"},
        "CurrencyRef": {"value": "GBP", "name": "British Pound Sterling"}, "Line": lines,
        "MetaData": meta(), **extra,
    }  # fmt: skip


def credit_memo(mid: str = "150", cid: str = "1", total: float = 40.0, remaining: float = 40.0,
                **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "Id": mid, "SyncToken": "0", "domain": "QBO", "sparse": False, "DocNumber": f"CM-{mid}",
        "TxnDate": "2026-01-07", "TotalAmt": total, "RemainingCredit": remaining, "Balance": remaining,
        "CustomerRef": {"value": cid}, "CurrencyRef": {"value": "GBP"},
        "Line": [{"Id": "1", "Amount": total, "DetailType": "SalesItemLineDetail"}],
        "MetaData": meta(), **extra,
    }  # fmt: skip
