"""Where a record lives in QuickBooks Online's own web app (app.qbo.intuit.com), for the bookkeeper's pages.

Ids are QuickBooks' own entity Ids (the canonical ids of the shipped mapping); the links open the record in
the company the person is signed in to.
"""

from __future__ import annotations

from urllib.parse import quote

WEB = "https://app.qbo.intuit.com/app"
_PAGES = {
    "customer": "/customerdetail?nameId={id}",
    "invoice": "/invoice?txnId={id}",
    "credit_note": "/creditmemo?txnId={id}",
    "payment": "/recvpayment?txnId={id}",
}


def record_url(kind: str, ledger_id: str) -> str | None:
    """The record's page in QuickBooks Online, or None when it has none for `kind`."""
    page = _PAGES.get(kind)
    return WEB + page.format(id=quote(ledger_id, safe="")) if page and ledger_id else None
