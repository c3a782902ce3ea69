"""`ccm aging`, `ccm discrepancies`, `ccm forecast` and `ccm customer` through the real entry point."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from connector.model import Customer, Status, Tenant
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
        "Invoice INV-42 for Ann's Café: the ledger says £120.00 is due, but its payments and credits "
        "leave £20.00 outstanding"
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


def put_harbour(home: Path) -> None:
    """Harbour paid INV-h1 early by an overpayment the bookkeeper allocated eleven months later."""
    from connector.model import PaymentKind

    harbour = Customer("H", "Harbour Roofing Supplies")
    firm = books(
        invoice("h1", harbour, "2400.00", "2025-12-01", "2025-12-31", due_amount="0", status=Status.PAID),
        payment("O1", harbour, "2025-12-20", ("h1", "2400.00", "2026-11-20"), kind=PaymentKind.OVERPAYMENT),
        invoice(
            "h2", harbour, "600.00", "2026-05-01", "2026-05-31", due_amount="600.00"
        ),  # 183 days past due
        invoice("h3", harbour, "40000.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P3", harbour, "2026-01-31", ("h3", "40000.00")),
        invoice("h4", harbour, "1000.00", "2026-02-01", "2026-02-28", due_amount="0", status=Status.PAID),
        payment("P4", harbour, "2026-02-28", ("h4", "1000.00")),
        invoice("h5", harbour, "1000.00", "2026-03-01", "2026-03-31", due_amount="0", status=Status.PAID),
        payment("P5", harbour, "2026-03-25", ("h5", "1000.00")),
        customers=(harbour,),
    )
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("firm", "Small Firm Ltd", "scripted"))
        for entity, items in (("customer", firm.customers), ("invoice", firm.invoices),
                              ("payment", firm.payments)):  # fmt: skip
            records.upsert(conn, "firm", entity, list(items))
    store.close()


def test_customer_explains_the_rating_by_its_invoices_and_dates_payment_by_the_money(capsys, home):
    put_harbour(home)
    code, out, err = ccm(
        capsys, "customer", "Harbour Roofing Supplies", "--as-of", "2026-11-30", "-f", "json"
    )
    assert code == 0, err
    body = json.loads(out)
    assert [(r["invoice"], r["paid on"], r["days late"]) for r in body["rows"]][:2] == [
        ("INV-h1", "2025-12-20", -11),  # the day the money came, not the allocation's 2026-11-20
        ("INV-h3", "2026-01-31", 0),
    ]
    # 600.00 unpaid 183 days is 1.3 % of the 45,000.00 rated: small, so B, not E (by
    # its 2.4 weighted days late and 80 % on time it would be A).
    assert body["rating"] == "B"
    reasons = body["rating_reasons"].split("\n")
    assert reasons[2] == (
        "small old debt, not enough for E (£600.00; E needs £500.00 and 10% of the £45,000.00 rated), "
        "but keeps the rating at B or below: INV-h2 (£600.00) unpaid 183 days past due"
    )
    code, out, _ = ccm(capsys, "customer", "H", "--as-of", "2026-11-30")
    assert "why this rating:" in out and "2025-12-20" in out
    assert "INV-h2 (£600.00) unpaid 183 days past due" in out.replace("\n", " ")

    # The firm's own thresholds: old debt of 500.00 and 1 % of what is rated makes an E.
    own = home / "tenants" / "firm" / "credit.yaml"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text("version: 1\nrules: []\nrating:\n  severe_min_percent: 1\n")
    code, out, _ = ccm(capsys, "customer", "H", "--as-of", "2026-11-30", "-f", "json")
    assert json.loads(out)["rating"] == "E"
    own.write_text("version: 1\nrules: []\nrating:\n  severe_min_percent: 500\n")
    code, out, err = ccm(capsys, "customer", "H", "--as-of", "2026-11-30")
    assert code == 2
    assert err == (
        f"ccm: error: {own}: rating.severe_min_percent: must be a percentage from 0 to 100, got 500\n"
    )
