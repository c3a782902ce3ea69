"""GET /Currencies and GET /Organisation (scope accounting.settings or accounting.settings.read).

Clients call these to check their access before anything else. Currencies lists the organisation's base
currency and every currency its contacts and invoices use; it takes `where` (Code=="USD") and `order`
(Code ASC) as the spec says.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapters.xero.sandbox.answers import json_answer, validation_error
from adapters.xero.sandbox.book import Book
from adapters.xero.sandbox.where import QueryError, compile_order, compile_where, field_names, sort_key

CURRENCY_NAMES = {
    "AUD": "Australian Dollar",
    "CAD": "Canadian Dollar",
    "EUR": "Euro",
    "GBP": "British Pound",
    "NZD": "New Zealand Dollar",
    "USD": "United States Dollar",
}
_VERSIONS = {"GB": "UK", "AU": "AU", "NZ": "NZ", "US": "US"}
_CURRENCY_FIELDS = field_names(("Code", "Description"))


def _envelope(book: Book, key: str, rows: list[dict[str, Any]]) -> Response:
    return json_answer(
        {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": "ccm Xero sandbox",
            "DateTimeUTC": f"/Date({int(book.clock.now().timestamp() * 1000)})/",
            key: rows,
        }
    )


def currencies_of(book: Book) -> list[str]:
    """The base currency first, then the others the organisation's records use, by code."""
    used = {c.currency for c in book.contacts.by_id.values()} | {
        i.currency for i in book.invoices.by_id.values()
    }
    return [book.base_currency, *sorted(used - {book.base_currency})]


async def currencies(request: Request, book: Book) -> Response:
    """GET /Currencies."""
    with book.lock:
        rows = [{"Code": c, "Description": CURRENCY_NAMES.get(c, c)} for c in currencies_of(book)]
    q = request.query_params
    try:
        keep = compile_where(q.get("where") or "", _CURRENCY_FIELDS, "Currency")
        if keep is not None:
            rows = [r for r in rows if keep(r)]
        if q.get("order"):
            for getter, descending in reversed(compile_order(q["order"], _CURRENCY_FIELDS, "Currency")):
                rows.sort(key=lambda r, g=getter: sort_key(g(r)), reverse=descending)  # type: ignore[misc]
    except QueryError as exc:
        return validation_error(str(exc))
    return _envelope(book, "Currencies", rows)


async def organisation(_request: Request, book: Book) -> Response:
    """GET /Organisation: the one organisation this tenant id names."""
    country = book.country
    row = {
        "OrganisationID": book.tenant_id,
        "Name": book.firm_name,
        "LegalName": book.firm_name,
        "PaysTax": True,
        "Version": _VERSIONS.get(country, "GLOBAL"),
        "OrganisationType": "COMPANY",
        "BaseCurrency": book.base_currency,
        "CountryCode": country,
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "ACCRUALS",
        "SalesTaxPeriod": "QUARTERLY",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": f"/Date({int(book.created.timestamp() * 1000)})/",
        "OrganisationEntityType": "COMPANY",
        "Timezone": book.timezone_name,
        "ShortCode": "!" + book.tenant_id[:5],
        "Edition": "BUSINESS",
        "Class": "PREMIUM",
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }
    return _envelope(book, "Organisations", [row])
