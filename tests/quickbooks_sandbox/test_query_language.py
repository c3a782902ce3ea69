"""The query language subset: parsing, typing of literals, and refusals with QBO's messages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from adapters.quickbooks.sandbox.company import QUERYABLE
from adapters.quickbooks.sandbox.query import QueryError, parse


def test_full_query_is_parsed_with_typed_literals():
    q = parse(
        "select * from invoice where Metadata.LastUpdatedTime >= '2026-10-01T10:00:00-07:00' AND "
        "Balance > 0 AND DueDate < '2026-11-01' orderby MetaData.LastUpdatedTime desc "
        "STARTPOSITION 1001 MAXRESULTS 1000",
        QUERYABLE,
    )
    assert q.entity == "Invoice" and not q.count
    assert [(c.field, c.op, c.values) for c in q.where] == [
        ("MetaData.LastUpdatedTime", ">=", (datetime(2026, 10, 1, 17, 0, tzinfo=UTC),)),
        ("Balance", ">", (Decimal(0),)),
        ("DueDate", "<", (date(2026, 11, 1),)),
    ]
    assert (q.order_by, q.descending, q.start, q.max_results) == (
        "MetaData.LastUpdatedTime",
        True,
        1001,
        1000,
    )


def test_sdk_forms_parse_order_by_with_space_in_lists_and_escaped_quotes():
    q = parse("SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien' ORDER BY Id", QUERYABLE)
    assert q.where[0].values == ("O'Brien",) and q.order_by == "Id"
    q = parse("SELECT * FROM Invoice WHERE Id in ('1', '22', 3)", QUERYABLE)
    assert q.where[0].op == "IN" and q.where[0].values == (1, 22, 3)
    q = parse("SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)", QUERYABLE)
    assert q.count and q.where[0].values == (True, False)


def test_like_matches_with_percent_wildcards_case_insensitively():
    cond = parse("SELECT * FROM Customer WHERE DisplayName LIKE 'acme%ltd'", QUERYABLE).where[0]
    assert cond.test("Acme Widgets Ltd") and not cond.test("The Acme Ltd")


def test_defaults_are_start_1_and_100_results():
    q = parse("SELECT * FROM Payment", QUERYABLE)
    assert (q.start, q.max_results, q.where, q.order_by) == (1, 100, (), None)


@pytest.mark.parametrize(("text", "message"), [
    ("SELECT * FROM Invoice WHERE Colour = 'red'", "property 'Colour' is not queryable for Invoice"),
    ("SELECT * FROM Widget", "Invalid entity name: Widget"),
    ("SELECT * FROM Invoice MAXRESULTS 1001", "MAXRESULTS must be at most 1000"),
    ("SELECT * FROM Invoice STARTPOSITION 0", "STARTPOSITION must be a positive integer"),
    ("SELECT * FROM Invoice WHERE Id = '1' OR Id = '2'", "OR is not supported"),
    ("SELECT * FROM Invoice WHERE DueDate > 'soon'", "invalid value 'soon' for DueDate"),
    ("SELECT * FROM Invoice WHERE Balance LIKE '1%'", "LIKE is not supported on Balance"),
    ("SELECT * FROM Invoice WHERE Balance != 0", "operator '!=' is not supported"),
    ("SELECT Id FROM Invoice", "only SELECT * and SELECT COUNT(*)"),
    ("SELECT * FROM Invoice WHERE", "Encountered end of query"),
    ("SELECT * FROM Invoice ORDERBY Id LIMIT 5", 'Encountered "LIMIT"'),
])  # fmt: skip
def test_bad_queries_are_refused_naming_the_problem(text, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse(text, QUERYABLE)
