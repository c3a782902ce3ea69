"""The in-memory company: start-up shortcuts agree with the rendered JSON; indexes stay ordered."""

from __future__ import annotations

from adapters.quickbooks.sandbox.company import QUERYABLE, Company, keys_of
from adapters.quickbooks.sandbox.query import parse
from adapters.sandbox.generator import generate
from tests.clock import NOW, TODAY


def _company(size: str = "demo") -> Company:
    return Company("1", generate(seed=3, size=size, today=TODAY), lambda: NOW)


def test_keys_computed_at_start_up_equal_the_keys_of_the_rendered_json():
    company = _company()
    for entity, table in company.tables.items():
        for row in table.by_id.values():
            assert row.values == keys_of(entity, company.doc(entity, row)), (entity, row.id)


def test_bisected_range_queries_agree_with_a_full_scan():
    company = _company()
    rows = sorted(company.tables["Invoice"].by_id.values(), key=lambda r: (r.updated, r.id))
    live = [r for r in rows if not r.deleted]
    cut = live[len(live) // 3].updated
    query = parse(
        f"SELECT * FROM Invoice WHERE Metadata.LastUpdatedTime >= '{cut.isoformat()}' "
        "ORDERBY Metadata.LastUpdatedTime DESC STARTPOSITION 11 MAXRESULTS 40",
        QUERYABLE,
    )
    got, _ = company.select(query)
    expected = [r for r in reversed(live) if r.updated >= cut][10:50]
    assert [r.id for r in got] == [r.id for r in expected]
    by_id = parse("SELECT * FROM Invoice WHERE Id > '100' AND Id <= '140' AND Balance > '0'", QUERYABLE)
    got, _ = company.select(by_id)
    assert [r.id for r in got] == [
        r.id for r in sorted(live, key=lambda r: r.id) if 100 < r.id <= 140 and r.keys["Balance"] > 0
    ]


def test_a_changed_row_moves_to_the_end_of_the_update_order():
    company = _company()
    first = min(company.tables["Customer"].by_id.values(), key=lambda r: (r.updated, r.id))
    company.update("Customer", {"Id": str(first.id), "SyncToken": "0", "sparse": True, "Notes": "x"})
    query = parse(
        "SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY Metadata.LastUpdatedTime DESC "
        "MAXRESULTS 1",
        QUERYABLE,
    )
    assert company.select(query)[0][0] is first and first.sync_token == 1


def test_rendered_json_is_cached_for_the_most_recent_renders_only(monkeypatch):
    import adapters.quickbooks.sandbox.company as company_module

    monkeypatch.setattr(company_module, "TEXT_CACHE", 10)
    company = _company()
    rows = list(company.tables["Invoice"].by_id.values())[:15]
    texts = [company.text("Invoice", r) for r in rows]
    assert [r.text is not None for r in rows] == [False] * 5 + [True] * 10
    assert company.text("Invoice", rows[-1]) is texts[-1]  # served from the cache
    assert company.text("Invoice", rows[0]) == texts[0]  # rendered again, identically


def _page(company: Company, start: int, descending: bool = False, fresh: bool = False) -> list[int]:
    table = company.tables["Invoice"]
    if fresh:
        table._resume.clear()
    order = "DESC" if descending else "ASC"
    query = parse(
        f"SELECT * FROM Invoice WHERE Balance >= '0' ORDERBY Metadata.LastUpdatedTime {order} "
        f"STARTPOSITION {start} MAXRESULTS 37",
        QUERYABLE,
    )
    return [r.id for r in company.select(query)[0]]


def test_paging_resumes_where_the_last_page_ended_with_the_same_answers():
    company = _company()
    for descending in (False, True):
        start, resumed, fresh = 1, [], []
        while page := _page(company, start, descending):
            resumed += page
            if len(page) == 37:  # the next page will resume here
                assert start + 37 in [v[0] for v in company.tables["Invoice"]._resume.values()]
            fresh += _page(company, start, descending, fresh=True)
            _page(company, start, descending)  # re-arm the resume point as a pager would have it
            start += 37
        assert resumed == fresh and len(resumed) == len(set(resumed)) > 300


def test_a_change_between_pages_is_seen_by_the_next_page():
    company = _company()
    first = _page(company, 1)
    company.update("Invoice", {"Id": str(first[0]), "SyncToken": "0", "sparse": True, "PrivateNote": "x"})
    assert _page(company, 38) == _page(company, 38, fresh=True)
    assert first[0] not in _page(company, 1)  # it moved to the end of the order


def test_json_rendered_across_a_concurrent_change_is_not_cached():
    company = _company()
    row = company.tables["Customer"].by_id[2]
    render = company.doc

    def render_while_another_thread_commits(entity, r):
        doc = render(entity, r)
        company.doc = render  # type: ignore[method-assign]
        company.update("Customer", {"Id": "2", "SyncToken": "0", "sparse": True, "Notes": "newer"})
        return doc

    company.doc = render_while_another_thread_commits  # type: ignore[method-assign]
    stale = company.text("Customer", row)
    assert '"Notes"' not in stale and row.text is None  # served once, never kept
