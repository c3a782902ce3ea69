"""`ccm aging`, `ccm discrepancies`, `ccm forecast` and `ccm customer` through the real entry point."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from connector.model import Status, Tenant
from connector.store import Store, records
from connector.store.tenants import save_tenant
from tests.reconcile.firm import ANN, BOB, CHEN, books, credit, invoice, payment
from tests.test_cli import ccm


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CCM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CCM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CCM_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def put_firm(home: Path, tenant_id: str = "firm") -> None:
    firm = books(
        invoice("42", ANN, "120.00", "2026-01-01", "2026-01-31", due_amount="120.00"),
        payment("P1", ANN, "2026-01-20", ("42", "100.00")),
        invoice("43", BOB, "300.00", "2026-01-01", "2026-03-31", due_amount="200.00"),
        credit("CN1", BOB, "100.00", "2026-01-10", ("43", "100.00")),
        invoice("44", BOB, "1000.00", "2025-09-01", "2025-10-01", due_amount="0", status=Status.PAID),
        payment("P2", BOB, "2025-10-21", ("44", "1000.00")),
        invoice("U1", CHEN, "110.00", "2026-01-01", "2026-01-15", currency="USD", rate="1.1"),
    )
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant(tenant_id, "Small Firm Ltd", "scripted"))
        for entity, items in (("customer", firm.customers), ("invoice", firm.invoices),
                              ("credit_note", firm.credit_notes), ("payment", firm.payments)):  # fmt: skip
            records.upsert(conn, tenant_id, entity, list(items))
    store.close()


def test_aging_as_a_table_csv_and_json(capsys, home):
    put_firm(home)
    code, out, err = ccm(capsys, "aging", "--as-of", "2026-03-05")
    assert code == 0, err
    assert "aging · Small Firm Ltd · as of 2026-03-05 · GBP" in out
    assert "Ann's Café" in out and "20.00" in out and "DSO (count-back)" in out

    code, out, _ = ccm(capsys, "aging", "--as-of", "2026-03-05", "--format", "csv")
    assert code == 0
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["customer", "name", "current", "1-30", "31-60", "61-90", "90+", "total"]
    assert ["C1", "Ann's Café", "0.00", "0.00", "20.00", "0.00", "0.00", "20.00"] in table
    assert ["C2", "Bob's Bikes", "200.00", "0.00", "0.00", "0.00", "0.00", "200.00"] in table
    assert ["C3", "Chen Trading", "0.00", "0.00", "100.00", "0.00", "0.00", "100.00"] in table
    assert table[-1] == ["total", "", "200.00", "0.00", "120.00", "0.00", "0.00", "320.00"]

    code, out, _ = ccm(capsys, "aging", "--as-of", "2026-03-05", "--buckets", "14,45", "-f", "csv")
    table = list(csv.reader(io.StringIO(out)))
    assert table[0][2:] == ["current", "1-14", "15-45", "45+", "total"]
    assert table[-1] == ["total", "", "200.00", "0.00", "20.00", "100.00", "320.00"]

    code, out, _ = ccm(capsys, "aging", "--as-of", "2026-03-05", "--cei-from", "2026-01-01", "-f", "json")
    body = json.loads(out)
    # 320.00 owed; nothing sold in the last two months (28 + 31 days), then 320 of January's 520: 78.1 days.
    # CEI: began 0, sold 520, ended 320 of which 200 not yet due: 200 / 320 = 62.5 %.
    assert (body["cei_from"], body["dso_days"], body["cei_percent"]) == ("2026-01-01", "78.1", "62.5")

    code, out, _ = ccm(capsys, "aging", "--as-of", "2026-03-05", "--customer", "ann's café", "-f", "json")
    assert code == 0
    body = json.loads(out)
    assert (body["tenant"], body["as_of"], body["currency"]) == ("firm", "2026-03-05", "GBP")
    assert [r["customer"] for r in body["rows"]] == ["C1"]
    assert body["rows"][0]["31-60"] == "20.00"


def test_discrepancies_lists_each_with_its_explanation(capsys, home):
    put_firm(home)
    code, out, err = ccm(capsys, "discrepancies", "--tenant", "firm", "--format", "json")
    assert code == 0, err
    body = json.loads(out)
    assert body["count"] == 1
    [row] = body["rows"]
    assert row["kind"] == "amount_due_mismatch" and row["records"] == "invoice:42 payment:P1"
    assert row["explanation"] == (
        "Invoice INV-42 for Ann's Café: the ledger says 120.00 GBP is due, but its payments and credits "
        "leave 20.00 GBP outstanding"
    )
    code, out, _ = ccm(capsys, "discrepancies")
    assert code == 0 and "amount_due_mismatch" in out and "1 discrepancies" in out


def test_forecast_has_thirteen_weeks_and_the_rest(capsys, home):
    put_firm(home)
    code, out, err = ccm(capsys, "forecast", "--as-of", "2026-03-05", "--format", "csv")
    assert code == 0, err
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["week", "from", "to", "low", "expected", "high"]
    assert [r[0] for r in table[1:]] == [*(str(n) for n in range(1, 14)), "later", "total"]
    assert table[-1][4] == "320.00"
    expected = sum(float(r[4]) for r in table[1:-1])
    assert round(expected, 2) == 320.00
    code, out, _ = ccm(capsys, "forecast", "--as-of", "2026-03-05")
    assert code == 0 and "cash forecast" in out


def test_customer_shows_position_rating_and_invoices(capsys, home):
    put_firm(home)
    code, out, err = ccm(capsys, "customer", "C2", "--as-of", "2026-03-05")
    assert code == 0, err
    assert "Bob's Bikes (C2)" in out and "rating C" in out and "risk medium" in out
    assert "position" in out and "INV-43" in out and "INV-44" in out
    code, out, _ = ccm(capsys, "customer", "Bob's Bikes", "--as-of", "2026-03-05", "-f", "json")
    body = json.loads(out)
    assert (body["rating"], body["open"], body["weighted_days_late"]) == ("C", "200.00", "20.0")
    assert [(r["invoice"], r["state"], r["days late"]) for r in body["rows"]] == [
        ("INV-44", "paid", 20),
        ("INV-43", "open", 0),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("aging", "--as-of", "2026-02-30"),
            "ccm: error: --as-of: not a date (expected YYYY-MM-DD): '2026-02-30'",
        ),
        (
            ("aging", "--customer", "Nobody"),
            "ccm: error: unknown customer 'Nobody' in tenant 'firm' (give its id or exact name)",
        ),
        (
            ("customer", "Nobody"),
            "ccm: error: unknown customer 'Nobody' in tenant 'firm' (give its id or exact name)",
        ),
        (("forecast", "--tenant", "ghost"), "ccm: error: unknown tenant 'ghost' (see `ccm tenants list`)"),
        (
            ("aging", "--cei-from", "March"),
            "ccm: error: --cei-from: not a date (expected YYYY-MM-DD): 'March'",
        ),
        (
            ("aging", "--as-of", "2026-03-05", "--cei-from", "2026-04-01"),
            "ccm: error: --cei-from: 2026-04-01 is after the report date 2026-03-05",
        ),
        (
            ("aging", "--buckets", "30,sixty"),
            "ccm: error: --buckets: expected day counts like 30,60,90, got '30,sixty'",
        ),
        (
            ("aging", "--buckets", "60,30"),
            "ccm: error: --buckets: aging bounds must be increasing positive day counts, got [60, 30]",
        ),
        (("discrepancies", "--format", "xml"), "ccm: error: Invalid value for '--format' / '-f'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, home, args, message):
    put_firm(home)
    code, _, err = ccm(capsys, *args)
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_the_tenant_may_be_omitted_only_when_there_is_one(capsys, home):
    code, _, err = ccm(capsys, "aging")
    assert (code, err) == (2, "ccm: error: no tenants yet: add one with `ccm tenants add`\n")
    put_firm(home)
    put_firm(home, "other")
    code, _, err = ccm(capsys, "forecast")
    assert (code, err) == (2, "ccm: error: 2 tenants: choose one with --tenant (firm, other)\n")
