"""Property: whatever the source does and wherever the process dies, a final sync leaves store == source."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.mapping import load_mapping
from connector.model import Tenant
from connector.store import Store
from connector.store.tenants import save_tenant
from connector.sync import run_sync
from tests.conftest import FIXTURES
from tests.scripted import SCHEMA, Crash, ScriptedLedger, contact, invoice, payment
from tests.syncstate import assert_store_equals_source, insert_change_counts

MAPPING = load_mapping(FIXTURES / "scripted.yaml", schema=SCHEMA)
IDS = st.sampled_from([f"X{i}" for i in range(6)])

put_invoice = st.builds(
    lambda i, cents, paid: ("put_invoice", i, cents, paid), IDS, st.integers(1, 10**7), st.booleans()
)
remove_invoice = st.builds(lambda i: ("remove_invoice", i), IDS)
put_payment = st.builds(lambda i, inv, cents: ("put_payment", i, inv, cents), IDS, IDS, st.integers(1, 10**6))
put_contact = st.builds(lambda i, name: ("put_contact", i, name), IDS, st.text(min_size=1, max_size=12))
remove_payment = st.builds(lambda i: ("remove_payment", i), IDS)
sync_op = st.builds(lambda crash: ("sync", crash), st.one_of(st.none(), st.integers(1, 12)))
tick = st.builds(lambda s: ("tick", s), st.integers(0, 30))
OPS = st.lists(
    st.one_of(put_invoice, remove_invoice, put_payment, put_contact, remove_payment, sync_op, tick),
    max_size=30,
)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def apply(ledger: ScriptedLedger, store: Store, op: tuple) -> None:
    kind = op[0]
    if kind == "put_invoice":
        _, iid, cents, paid = op
        ledger.put("invoices", invoice(iid, total=_money(cents), AmountDue="0" if paid else _money(cents),
                                       Status="PAID" if paid else "AUTHORISED"))  # fmt: skip
    elif kind == "remove_invoice":
        ledger.remove("invoices", op[1])
    elif kind == "put_payment":
        ledger.put("payments", payment(op[1], op[2], _money(op[3])))
    elif kind == "remove_payment":
        ledger.remove("payments", op[1])
    elif kind == "put_contact":
        ledger.put("contacts", contact(op[1], op[2]))
    elif kind == "tick":
        ledger.ticks += op[1]
    else:
        ledger.crash_on_page = None if op[1] is None else ledger.pages_served + op[1]
        with contextlib.suppress(Crash):
            run_sync(store, "t", ledger, MAPPING, clock=ledger.now, overlap=timedelta(seconds=3))
        ledger.crash_on_page = None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, page_size=st.integers(1, 4))
def test_any_updates_deletes_and_crashes_end_with_store_equal_to_source(ops, page_size):
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'ccm.db'}")
        try:
            with store.begin() as conn:
                save_tenant(conn, Tenant("t", "T", "scripted"))
            ledger = ScriptedLedger(page_size=page_size)
            for op in ops:
                apply(ledger, store, op)
            result = run_sync(store, "t", ledger, MAPPING, clock=ledger.now, overlap=timedelta(seconds=3))
            assert result.outcome == "ok"
            assert_store_equals_source(store, "t", ledger, MAPPING)
            assert all(n == 1 for n in insert_change_counts(store, "t").values())
        finally:
            store.close()
