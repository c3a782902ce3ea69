"""Credit control end to end: limits, holds written to the ledger through the outbox, release on payment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connector import chasing, creditcontrol
from connector.config import ConfigError, Settings, load_settings
from connector.model import Connection, Customer, Money, Tenant
from connector.reconcile import read_snapshot
from connector.run.night import run_night
from connector.store import Store, records
from connector.store.tenants import get_tenant, save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice, payment
from tests.smtp import Inbox
from tests.test_cli import ccm

MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, inbox: Inbox) -> Settings:
    return load_settings(None, {
        "CCM_HOME": str(tmp_path / "home"), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SYNC__OVERLAP_SECONDS": "0",
    })  # fmt: skip


@pytest.fixture
def firm(store: Store, registered: ScriptedLedger) -> ScriptedLedger:
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="1500.00", due="2026-12-20", Number="INV-0001"))
    return registered


def set_limit(store: Store, amount: str, currency: str = "GBP") -> None:
    with store.begin() as conn:
        creditcontrol.set_limit(conn, "acme", "C1", Money(Decimal(amount), currency), MORNING, "set")


def held(store: Store) -> dict[str, creditcontrol.Held]:
    with store.read() as conn:
        return creditcontrol.holds(conn, "acme")


def test_over_the_limit_is_held_in_the_ledger_then_released_after_paying(store, settings, firm):
    set_limit(store, "1000")
    night = run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert [(d.customer_id, d.action) for d in night.holds] == [("C1", "hold")]
    assert firm.held == {"C1"}
    assert held(store)["C1"].reason == "exposure £1,500.00 is over the limit £1,000.00 by more than 5%"
    again = run_night(store, settings, "acme", now=MORNING.replace(hour=11), ledger=firm)
    assert again.holds == []  # the same night twice changes nothing
    firm.put("payments", payment("P1", "I1", "1500.00", "C1"))
    next_day = run_night(store, settings, "acme", now=MORNING.replace(day=25), ledger=firm)
    assert [(d.action, d.reason) for d in next_day.holds] == [
        ("release", "no hold rule applies any more: nothing is owed (net exposure £0.00)")
    ]
    assert firm.held == set()
    assert not held(store)["C1"].on_hold


def test_a_manual_hold_stays_until_released_by_hand(store, settings, firm):
    with store.begin() as conn:
        chasing.update_settings(
            conn, "acme", "C1", MORNING, manual_hold=True, manual_hold_reason="cheque bounced"
        )
    run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert firm.held == {"C1"}
    assert held(store)["C1"].source == "manual"
    run_night(store, settings, "acme", now=MORNING.replace(day=25), ledger=firm)
    assert firm.held == {"C1"}  # no rule applies, but a manual hold is never released automatically


def test_a_never_hold_customer_is_not_held(store, settings, firm):
    set_limit(store, "100")
    with store.begin() as conn:
        chasing.update_settings(conn, "acme", "C1", MORNING, never_hold=True)
    night = run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert night.holds == []
    assert firm.held == set()


def test_a_limit_in_a_currency_without_a_rate_is_never_compared_blindly(store, settings, firm):
    with store.begin() as conn:
        creditcontrol.set_limit(conn, "acme", "C1", Money(Decimal("100"), "EUR"), MORNING, "set")
    night = run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert night.holds == []  # 1,500 GBP against 100 EUR, with no GBP/EUR rate known: no false hold
    with store.read() as conn:
        [ann] = creditcontrol.decide(conn, read_snapshot(conn, "acme"), date(2026, 11, 24), ())[1]
    assert ann.exposure == Money(Decimal("1500.0000"), "GBP")


def test_limits_import_is_all_or_nothing_with_line_numbers(capsys, home):
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted"))
        records.upsert(
            conn, "acme", "customer", [Customer("C1", "Ann's Café"), Customer("C2", "Bob's Bikes")]
        )
    bad = home / "limits.csv"
    bad.write_text("customer,amount,currency\nAnn's Café,5000,GBP\nZed,100,GBP\nBob's Bikes,lots,\n")
    code, _, err = ccm(capsys, "limit", "import", str(bad))
    assert code == 2
    assert err == (
        f"ccm: error: {bad}: nothing imported: line 3: no customer 'Zed' in tenant 'acme'; "
        "line 4: not an amount: 'lots'\n"
    )
    with store.read() as conn:
        assert creditcontrol.limits(conn, "acme") == {}
    good = home / "good.csv"
    good.write_text("Customer,Amount,Currency\nAnn's Café,5000,GBP\nBob's Bikes,\"2,500\",EUR\n")
    code, out, _ = ccm(capsys, "limit", "import", str(good))
    assert (code, out) == (0, "imported 2 credit limit(s)\n")
    with store.read() as conn:
        assert creditcontrol.limits(conn, "acme") == {
            "C1": Money(Decimal(5000), "GBP"), "C2": Money(Decimal(2500), "EUR"),
        }  # fmt: skip
        assert get_tenant(conn, "acme").base_currency == "GBP"
    assert ccm(capsys, "limit", "set", "Ann", "7000 EUR")[1] == "Ann's Café: credit limit €7,000.00\n"
    code, _, err = ccm(capsys, "limit", "set", "Ann", "five")
    assert (code, err) == (2, "ccm: error: AMOUNT: not an amount: 'five'\n")
    code, _, err = ccm(capsys, "hold", "Ann", "--reason", " ")
    assert (code, err) == (2, "ccm: error: --reason: say why, in a few words\n")
    store.close()


def test_segment_defaults_from_settings_apply_when_a_customer_has_no_limit_of_its_own(
    store, tmp_path, inbox, firm
):
    config = tmp_path / "ccm.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "seg"}"\n[smtp]\nhost = "{inbox.host}"\nport = {inbox.port}\n'
        '[sync]\noverlap_seconds = 0\n[credit]\nsegment_limits = { Retail = "1000 GBP" }\n'
    )
    settings = load_settings(config, {})
    firm.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com", Groups=["Retail"]))
    night = run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert [(d.customer_id, d.reason) for d in night.holds] == [
        ("C1", "exposure £1,500.00 is over the limit £1,000.00 by more than 5%")
    ]


def test_a_bad_segment_default_is_a_one_line_settings_error(tmp_path):
    config = tmp_path / "ccm.toml"
    config.write_text('[credit]\nsegment_limits = { Retail = "lots" }\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(config, {})
    assert str(exc.value).startswith(f"{config}: credit.segment_limits: ")
    assert "Retail: not an amount: 'lots'" in str(exc.value)


def test_a_held_customer_is_not_chased_unless_the_policy_says_so(store, settings, firm, inbox):
    set_limit(store, "1000")
    firm.put("invoices", invoice("I1", "C1", total="1500.00", due="2026-11-10", Number="INV-0001"))
    night = run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert firm.held == {"C1"}
    assert inbox.messages == []  # put on hold tonight: the planner knew, so no gentle reminder went out
    assert night.skipped == {"customer is on credit hold and the policy does not chase held customers": 1}
    later = run_night(store, settings, "acme", now=MORNING.replace(day=28), ledger=firm)
    assert inbox.messages == []
    assert later.skipped == {"customer is on credit hold and the policy does not chase held customers": 1}
    assert night.holds


def test_customer_shows_limit_hold_and_chasing_history(capsys, home, registered, monkeypatch):
    monkeypatch.setattr("connector.cli.commands.chasing._now", lambda: MORNING)
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    store.close()
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="1500.00", due="2026-10-01", Number="INV-0001"))
    assert ccm(capsys, "sync", "-t", "acme")[0] == 0
    assert ccm(capsys, "limit", "set", "Ann", "1000")[0] == 0
    assert ccm(capsys, "hold", "Ann", "--reason", "cheque bounced")[0] == 0
    assert ccm(capsys, "promise", "Ann", "--until", "2026-12-01", "--note", "said Friday")[0] == 0
    assert ccm(capsys, "consumer", "Ann")[1] == "Ann's Café: a consumer (no statutory interest)\n"
    code, out, err = ccm(capsys, "customer", "Ann's Café")
    assert code == 0, err
    assert "credit limit £1,000.00 · not on hold" in out  # the manual hold reaches the ledger with `ccm run`
    assert "promise until: 2026-12-01" in out and "consumer (no statutory interest)" in out
    assert "chasing history" in out and "said Friday" in out
    code, out, _ = ccm(capsys, "customer", "Ann's Café", "--format", "json")
    assert '"credit_limit": "£1,000.00"' in out and '"over_limit": true' in out


def test_suggestions_raise_idle_lines_for_reliable_payers_and_cut_limits_too_high_for_the_rating():
    from connector.model import Allocation, Customer, Invoice, Payment, PaymentKind, SourceKind, Status
    from connector.reconcile import Snapshot

    def gbp_(amount: str) -> Money:
        return Money(Decimal(amount), "GBP")

    tenant = Tenant("acme", "Acme Ltd", "scripted")
    invoices, payments = [], []
    for i in range(12):  # Ann: 12 monthly invoices of 2,000, each paid on time
        issued = date(2026, i % 12 + 1, 1) if i < 11 else date(2025, 12, 1)
        iid = f"A{i}"
        invoices.append(Invoice(iid, "C1", gbp_("2000"), gbp_("0"), Status.PAID, issued, issued, iid))
        payments.append(Payment(f"PA{i}", "C1", gbp_("2000"), gbp_("0"), issued, PaymentKind.PAYMENT,
                                allocations=(Allocation(SourceKind.PAYMENT, f"PA{i}", iid, gbp_("2000"), issued),)))  # fmt: skip
    for i in range(4):  # Bob: 4 invoices of 300, never paid, long overdue
        iid = f"B{i}"
        invoices.append(
            Invoice(iid, "C2", gbp_("300"), gbp_("300"), Status.OPEN, date(2026, 1, 1), date(2026, 2, 1), iid)
        )
    snapshot = Snapshot(tenant, (Customer("C1", "Ann's Café"), Customer("C2", "Bob's Bikes")), tuple(invoices), (),
                        tuple(payments))  # fmt: skip
    found = creditcontrol.suggest(snapshot, date(2026, 11, 24), {"C1": gbp_("500"), "C2": gbp_("20000")})
    by_name = {s.name: s for s in found}
    assert by_name["Ann's Café"].rating == "A"
    assert by_name["Ann's Café"].suggested == gbp_("2500")  # peak 2,000 open, x1.25, rounded up to 500s
    assert by_name["Bob's Bikes"].rating == "E"
    # Bob has never paid: no further credit until he does (not merely his 1,200 peak, rounded up).
    assert (by_name["Bob's Bikes"].kind, by_name["Bob's Bikes"].suggested) == ("lower", gbp_("0"))


def test_a_manual_hold_released_by_hand_comes_off_in_the_ledger_on_the_next_run(
    capsys, home, registered, inbox
):
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="100.00", due="2026-12-20", Number="INV-0001"))
    settings = load_settings(None, {"CCM_HOME": str(home), "CCM_SMTP__HOST": inbox.host,
                                    "CCM_SMTP__PORT": str(inbox.port)})  # fmt: skip
    assert ccm(capsys, "sync", "-t", "acme")[0] == 0
    assert ccm(capsys, "hold", "Ann", "--reason", "cheque bounced")[0] == 0
    run_night(store, settings, "acme", now=MORNING, ledger=registered)
    assert registered.held == {"C1"}
    code, out, _ = ccm(capsys, "release", "Ann")
    assert code == 0
    assert "releases it in the ledger unless a rule applies" in out
    night = run_night(store, settings, "acme", now=MORNING.replace(day=25), ledger=registered)
    assert [(d.action, d.reason) for d in night.holds] == [("release", "no hold rule applies any more")]
    assert registered.held == set()
    store.close()


def test_limits_suggest_from_the_command_line(capsys, home):
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted"))
        records.upsert(conn, "acme", "customer", [Customer("C1", "Ann's Café")])
    store.close()
    code, out, _ = ccm(capsys, "limits", "suggest")
    assert (code, out) == (0, "no suggestions: every limit fits how its customer pays\n")
    code, _, err = ccm(capsys, "limits", "suggest", "--tenant", "zeta")
    assert code == 2
    assert err.startswith("ccm: error: unknown tenant 'zeta'")


def test_the_night_rates_with_the_firm_s_own_thresholds(store, settings, firm):
    """A firm's credit.yaml `rating:` section is what the night rates with, as `ccm customer` shows it."""
    firm.put("invoices", invoice("I0", "C1", total="100.00", due="2025-12-26", Number="INV-0000"))
    firm.put("payments", payment("P0", "I0", "100.00", "C1"))  # paid 2026-01-15: 20 days late
    rules = Path(settings.tenant_dir("acme")) / "credit.yaml"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(
        "version: 1\nrules:\n  - {when: rating, in: [E]}\n"
        "rating: {a_max_days: 3, b_max_days: 5, c_max_days: 10, d_max_days: 15}\n"
    )
    night = run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert [(d.customer_id, d.action) for d in night.holds] == [("C1", "hold")]  # 20 days is E for this firm
    assert night.holds[0].reason == (  # the measure and the invoices behind it, in words
        "payment rating E: 20 days late on average weighted by amount, 0% on time; weighing most: "
        "INV-0000 (£100.00) paid 2026-01-15, 20 days late"
    )
    rules.write_text("version: 1\nrules:\n  - {when: rating, in: [E]}\n")  # the shipped thresholds: C
    later = run_night(store, settings, "acme", now=MORNING.replace(day=25), ledger=firm)
    assert [(d.customer_id, d.action) for d in later.holds] == [("C1", "release")]
