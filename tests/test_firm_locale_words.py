"""Amounts in the firm's locale wherever a person reads them: a night's decisions, the commands, the kept pages.

A German firm's hold reason says "1.234,50 €", not "1,234.50 EUR"; a British one's "£1,234.50". The locale is
the firm's profile's, else its country's (connector/words/locale.py), and it never leaks from one firm's
work into another's.
"""

from __future__ import annotations

import contextvars
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connector.cli.app import main
from connector.config import Settings, load_settings
from connector.firmprofile import FirmProfile, save_profile
from connector.model import Connection, Money, Tenant
from connector.outbox import Mode
from connector.run.night import run_night
from connector.store import Store
from connector.store.tenants import save_connection, save_tenant
from connector.web import snapshots
from connector.words import locale as words
from connector.words.locale import LocaleProblem
from tests.scripted import ScriptedLedger, contact, invoice

NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)


def test_amounts_are_written_in_the_locale_in_hand_and_en_gb_outside_any() -> None:
    eur = Money(Decimal("1234.5"), "EUR")
    assert str(eur) == "€1,234.50"
    with words.writing_in("de_DE"):
        assert str(eur) == "1.234,50\u00a0€"  # babel's (CLDR's) no-break space
        assert words.number(Decimal("1234.5")) == "1.234,50"
        with words.writing_in("en-US"):
            assert str(Money(Decimal("-20"), "USD")) == "-$20.00"
        assert words.current() == "de_DE"
    assert words.current() == "en_GB"
    with pytest.raises(LocaleProblem, match="unknown locale 'xx_YY'"), words.writing_in("xx_YY"):
        pass


def test_a_locale_set_in_one_thread_or_context_stays_there() -> None:
    seen: list[str] = []
    with words.writing_in("fr_FR"):
        other = threading.Thread(target=lambda: seen.append(words.current()))  # a new thread: its own
        other.start()
        other.join()
    contextvars.copy_context().run(words.use, "de_DE")  # as a `ccm` command does, in its own context
    assert seen == ["en_GB"]
    assert words.current() == "en_GB"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, {"CCM_HOME": str(tmp_path / "home"), "CCM_SYNC__OVERLAP_SECONDS": "0"})


def _firm(store: Store, ledger: ScriptedLedger, tenant: Tenant, locale: str | None = None) -> None:
    with store.begin() as conn:
        save_tenant(conn, tenant)
        save_connection(conn, Connection(tenant.id, "scripted", "org-1"))
        if locale:
            save_profile(conn, tenant.id, FirmProfile(locale=locale))
    ledger.put("contacts", contact("C1", "Müller Bau GmbH"))
    ledger.put("invoices", invoice("I1", "C1", total="1234.50", due="2026-08-01", Number="RE-0001",
                                   Currency=tenant.base_currency))  # fmt: skip


@pytest.mark.parametrize(
    ("country", "currency", "locale", "shown"),
    [
        ("DE", "EUR", None, "1.234,50\u00a0€"),  # the country's locale
        ("GB", "EUR", "de_AT", "€\u00a01.234,50"),  # the profile's, over the country's
        ("GB", "GBP", None, "£1,234.50"),
    ],
)
def test_a_nights_hold_reason_names_the_amount_as_the_firm_writes_it(
    store: Store, settings: Settings, registered: ScriptedLedger, country: str, currency: str,
    locale: str | None, shown: str,
) -> None:  # fmt: skip
    _firm(store, registered, Tenant("acme", "Acme", "scripted", currency, "Europe/Berlin", country), locale)
    summary = run_night(store, settings, "acme", now=NIGHT, ledger=registered, mode=Mode.DRY_RUN)
    assert [d.reason.split("; payment rating")[0] for d in summary.holds] == [
        f"RE-0001 is 114 days overdue ({shown} outstanding; the rule is 60 days)"
    ]
    assert words.current() == "en_GB"  # the firm's locale ended with its night


def test_a_command_writes_in_the_firms_locale_and_leaves_none_behind(
    home: Path, registered: ScriptedLedger, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    _firm(store, registered, Tenant("acme", "Acme", "scripted", "EUR", "Europe/Berlin", "DE"))
    store.close()
    with pytest.raises(SystemExit) as done:
        main(["sync", "-t", "acme"])
    assert done.value.code == 0, capsys.readouterr().err
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["customer", "Müller Bau GmbH", "-t", "acme", "--as-of", "2026-11-23"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "RE-0001 (1.234,50\u00a0€) unpaid 114 days past due" in out  # the rating's reasons
    assert "│ 1.234,50 │" in out and "1,234.50" not in out  # the tables' amounts
    assert words.current() == "en_GB"


def test_kept_pages_are_kept_per_locale(store: Store) -> None:
    kept = snapshots.Snapshots(store)
    amount = Money(Decimal("1234.5"), "EUR")
    first = kept.once("acme", "part", ("k",), lambda: str(amount))
    with words.writing_in("de_DE"):
        assert kept.once("acme", "part", ("k",), lambda: str(amount)) == "1.234,50\u00a0€"
    assert (first, kept.computed["part"]) == ("€1,234.50", 2)
