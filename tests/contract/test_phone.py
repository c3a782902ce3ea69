"""Every ledger's customer phone numbers reach the store dialable, a change of number is a worded change in
the sync log, and a phone entry without a number is skipped (no number kept), never a record error."""

from __future__ import annotations

from connector.store import Store, changewords, synclog
from tests.contract.harness import Harness
from tests.contract.test_contract import stored, sync


def test_phones_are_stored_changed_in_words_and_an_empty_entry_is_no_number(
    harness: Harness, store: Store
) -> None:
    tenant = harness.connect()
    first = sync(harness, store, tenant.id, full=True)
    assert first.outcome == "ok", first.error
    customers = stored(store, tenant.id, "customer")
    cid, number = harness.a_phone()
    assert customers[cid]["phone"] == number
    with_phone = [r for r in customers.values() if r["phone"]]
    assert 0 < len(with_phone) < len(customers)  # most customers have a number, some none
    assert all(str(r["phone"]).startswith("+") for r in with_phone)  # dialable from abroad

    new = harness.change_phone(cid)
    changed = sync(harness, store, tenant.id)
    assert changed.outcome == "ok", changed.error
    assert stored(store, tenant.id, "customer")[cid]["phone"] == new
    with store.read() as conn:
        lines = [d.line() for d in changewords.describe(conn, tenant.id, synclog.changes(conn, tenant.id,
                                                                                          changed.run_id))]  # fmt: skip
    name = customers[cid]["name"]
    assert f"{name}: phone {number} → {new}" in lines

    harness.blank_phone(cid)
    blanked = sync(harness, store, tenant.id)
    assert blanked.outcome == "ok", blanked.error
    assert stored(store, tenant.id, "customer")[cid]["phone"] is None
    with store.read() as conn:
        assert synclog.errors(conn, tenant.id, blanked.run_id) == []
        words = [d.line() for d in changewords.describe(conn, tenant.id, synclog.changes(conn, tenant.id,
                                                                                          blanked.run_id))]  # fmt: skip
    assert f"{name}: phone {new} → none" in words
