"""The declarative error tables (connector/errormap.py) and the adapters' tables written with them."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from xero_python.exceptions import ApiException

from adapters.quickbooks.client import FAULTS, QboFault, QboNotFound, QboRefused, StaleObject, classify
from adapters.xero.client import ERRORS, XeroAnswer, XeroNotFound
from connector.errormap import ErrorRule, resolve
from connector.ledger import AuthExpired, Fatal, RateLimited, Retriable, ServerError


@dataclass(frozen=True)
class Answer:
    status: int
    what: str = "invoices page 1"


RULES: tuple[ErrorRule[Answer], ...] = (
    ErrorRule(401, AuthExpired, "{what}: HTTP {status}"),
    ErrorRule(range(500, 600), ServerError, "{what}: answered {status}", lambda a: {"status": a.status}),
    ErrorRule(lambda a: a.status >= 400, Fatal, "{what}: refused ({status})"),
)


def test_the_first_matching_row_decides_and_fills_its_template() -> None:
    error = resolve(RULES, Answer(401))
    assert type(error) is AuthExpired and str(error) == "invoices page 1: HTTP 401"
    server = resolve(RULES, Answer(503))
    assert (
        isinstance(server, ServerError)
        and server.status == 503
        and str(server) == "invoices page 1: answered 503"
    )
    assert type(resolve(RULES, Answer(404))) is Fatal  # a predicate row catches the rest
    assert resolve(RULES, Answer(200)) is None  # no row: no error


def _xero(status: int) -> Exception | None:
    return resolve(
        ERRORS, XeroAnswer("contacts", status, ApiException(status=status))
    )  # an answer without a body


def test_the_xero_table_keeps_each_status_apart() -> None:
    assert type(_xero(401)) is AuthExpired and type(_xero(403)) is AuthExpired
    assert type(_xero(404)) is XeroNotFound
    nothing = _xero(0)
    assert type(nothing) is Retriable and str(nothing) == "contacts: Xero answered HTTP nothing"
    server = _xero(502)
    assert isinstance(server, ServerError) and server.status == 502
    refused = _xero(400)
    assert (
        type(refused) is Fatal and str(refused) == "contacts: Xero refused the request (HTTP 400): no detail"
    )


def _response(status: int, body: str, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.headers.update(headers)
    return response


def test_the_quickbooks_tables_read_the_status_the_body_and_the_fault_code() -> None:
    throttled = classify(_response(200, '<Error code="3001">', {"intuit_tid": "tid-1", "Retry-After": "7"}))
    assert isinstance(throttled, RateLimited) and throttled.retry_after == 7.0
    assert str(throttled) == "QuickBooks throttled the request (fault 3001) (intuit_tid tid-1)"
    fault = classify(_response(400, '<Error code="6000">', {}))
    assert type(fault) is Fatal and str(fault) == "QuickBooks fault 6000 (HTTP 400)"
    assert classify(_response(401, '<Error code="100">', {})) is None  # the client refreshes and tries again
    assert classify(_response(200, '{"QueryResponse": {}}', {})) is None
    assert type(resolve(FAULTS, QboFault(5010, "stale"))) is StaleObject
    assert type(resolve(FAULTS, QboFault(610, "gone"))) is QboNotFound
    refused = resolve(FAULTS, QboFault(6000, "QuickBooks fault 6000: invalid"))
    assert (
        isinstance(refused, QboRefused)
        and refused.code == 6000
        and str(refused) == "QuickBooks fault 6000: invalid"
    )
    unreadable = resolve(FAULTS, QboFault(10001, "unreadable"))
    assert type(unreadable) is Retriable
