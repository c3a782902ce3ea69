"""Where a record lives in Xero's own web app (go.xero.com), for the bookkeeper's pages.

Links open the record in the organisation the person last used in Xero; ids are Xero's own GUIDs (the
canonical ids of the shipped mapping). Xero has no page of its own for a payment: None.
"""

from __future__ import annotations

from urllib.parse import quote

WEB = "https://go.xero.com"
_PAGES = {
    "customer": "/Contacts/View/{id}",
    "invoice": "/AccountsReceivable/View.aspx?InvoiceID={id}",
    "credit_note": "/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={id}",
}


def record_url(kind: str, ledger_id: str) -> str | None:
    """The record's page in Xero, or None when Xero has none for `kind`."""
    page = _PAGES.get(kind)
    return WEB + page.format(id=quote(ledger_id, safe="")) if page and ledger_id else None
