"""Reference rates that stay current: fetched from the central banks (a local stand-in of each, in its real
format, over real HTTP), stored, merged over the shipped table, and a stale rate told to the firm."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import event, select

from connector import health
from connector.config import CreditSettings, HealthSettings, RatesSettings, Settings
from connector.model import Connection, ConnectionState, Money, Tenant
from connector.payloads import encode
from connector.reference_rates import fetch as fetching
from connector.reference_rates import refresh, sources, stored
from connector.reference_rates.fetch import Unreachable, fetch
from connector.reference_rates.sources import BadAnswer, parse_boe, parse_ecb
from connector.rules.interest import Observed, RateTable, Regime, claim, covered, load_rates
from connector.store import Store
from connector.store.schema import reference_rates
from connector.store.tenants import get_connection, save_connection, save_tenant
from tests.ratesstandin import BOE_PATH, BOE_QUERY, ECB_COLUMNS, ECB_PATH, HTML, Services, stand_in
from tests.test_cli import ccm

NOW = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)  # a Tuesday, in the first half-year the shipped table misses
BANK_DAY = date(2027, 1, 4)  # the Bank's newest daily row that morning
ACME = Tenant("acme", "Acme Ltd", "scripted", contact_email="owner@acme.example")


def no_sleep(_: float) -> None:
    return None


@pytest.fixture
def services() -> Iterator[Services]:
    with stand_in(BANK_DAY) as running:
        yield running


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def uk(regime: str, tmp_path: Path) -> Settings:
    """Settings with statutory interest `regime` (uk, eu or off)."""
    return Settings(data_dir=tmp_path, credit=CreditSettings.model_validate({"statutory_interest": regime}))


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


# ---- fetching, in each service's real format


def test_the_bank_of_englands_csv_is_read_with_its_own_dates(services: Services):
    changes = fetch(sources.boe(services.boe_url))
    assert changes[0] == (date(2020, 1, 1), Decimal("0.75"))
    assert (date(2020, 3, 19), Decimal("0.10")) in changes
    assert changes[-1] == (date(2027, 1, 4), Decimal("3.50"))
    assert date(2027, 1, 2) not in dict(changes)  # a Saturday: no row
    [(path, query, agent)] = services.seen
    assert (path, query) == (BOE_PATH, BOE_QUERY)  # exactly the IADB's CSV download parameters
    assert not agent.startswith("python-requests")  # the Bank's site refuses requests' own User-Agent


def test_the_ecbs_sdmx_csv_is_read_by_column_with_its_quoted_titles(services: Services):
    changes = fetch(sources.ecb(services.ecb_url))
    assert changes[0] == (date(2022, 7, 27), Decimal("0.50"))  # rows only where the rate changed
    assert changes[-1] == (date(2026, 6, 10), Decimal("2.00"))
    assert len(changes) == 19
    [(path, query, _)] = services.seen
    assert (path, query) == (ECB_PATH, {"format": "csvdata", "startPeriod": "2020-01-01"})


def test_a_busy_service_is_asked_again_honouring_retry_after(services: Services):
    services.fail[ECB_PATH] = [(503, {}), (429, {"Retry-After": "2"})]
    waited: list[float] = []
    changes = fetch(sources.ecb(services.ecb_url), sleep=waited.append)
    assert changes[-1] == (date(2026, 6, 10), Decimal("2.00"))
    assert waited == [1.0, 2.0]
    assert len(services.seen) == 3


def test_a_refusal_is_final_and_one_line(services: Services):
    services.ecb_changes = []  # nothing in the period: the Data Portal answers 404 "No results found."
    with pytest.raises(Unreachable) as refused:
        fetch(sources.ecb(services.ecb_url), sleep=no_sleep)
    assert str(refused.value) == f"ECB main refinancing rate: {services.url[7:]} answered HTTP 404"
    assert len(services.seen) == 1


def test_a_service_that_cannot_be_reached_is_one_line():
    url = closed_port()
    with pytest.raises(Unreachable) as unreachable:
        fetch(sources.boe(url + BOE_PATH), attempts=2, sleep=no_sleep)
    assert str(unreachable.value) == f"Bank of England Bank Rate: cannot connect to {url[7:]} (after 2 tries)"


# ---- strict parsing: one line naming the source, the line and what was wrong

BOE_OK = "DATE,IUDBEDR\n02 Nov 2023,5.25\n03 Nov 2023,5.25\n"
ECB_ROW = 'FM.D.U2.EUR.4F.KR.MRR_FR.LEV,D,U2,EUR,4F,KR,MRR_FR,LEV,{day},{value},A,F,,,P1D,,E,,,,,,,,,,4,,4F0,,"MRO","Euro area (changing composition), MRO",PCPA,0'


def ecb_csv(*rows: str, header: str = ECB_COLUMNS) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def test_well_formed_answers_parse_whatever_their_line_ends():
    assert parse_boe("\ufeff" + BOE_OK.replace("\n", "\r\n")) == (
        (date(2023, 11, 2), Decimal("5.25")), (date(2023, 11, 3), Decimal("5.25")),
    )  # fmt: skip
    ecb = parse_ecb(ecb_csv(ECB_ROW.format(day="2023-09-20", value="4.5")))
    assert ecb == ((date(2023, 9, 20), Decimal("4.50")),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HTML, "Bank of England: expected a CSV with the header DATE,IUDBEDR, got '<!DOCTYPE html>'"),
        ("", "Bank of England: the answer was empty"),
        ("DATE,IUDBEDR\n", "Bank of England: the answer held no observations"),
        ("DATE,IUDBEDR\n2023-11-02,5.25\n", "Bank of England: line 2: not a date like 02 Nov 2023: '2023-11-02'"),
        ("DATE,IUDBEDR\n31 Feb 2023,5.25\n", "Bank of England: line 2: no such day: '31 Feb 2023'"),
        ("DATE,IUDBEDR\n02 Nov 2023,..\n", "Bank of England: line 2: not a rate: '..'"),
        ("DATE,IUDBEDR\n02 Nov 2023,525\n", "Bank of England: line 2: not a rate: '525'"),
        ("DATE,IUDBEDR\n02 Nov 2023,5.25,x\n", "Bank of England: line 2: expected 2 fields, got 3"),
        (BOE_OK + "02 Nov 2023,5.00\n", "Bank of England: two observations for 2023-11-02"),
    ],
)  # fmt: skip
def test_a_bank_of_england_answer_out_of_shape_is_one_line(text: str, message: str):
    with pytest.raises(BadAnswer) as bad:
        parse_boe(text)
    assert str(bad.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("No results found.", "ECB: expected SDMX-CSV with a KEY and TIME_PERIOD and OBS_VALUE column, got 'No results found.'"),
        (ecb_csv(header="KEY,FREQ,TIME_PERIOD"), "ECB: expected SDMX-CSV with a OBS_VALUE column, got 'KEY,FREQ,TIME_PERIOD'"),
        (ecb_csv(ECB_ROW.format(day="2023-09", value="4.5")), "ECB: line 2: TIME_PERIOD is not a day YYYY-MM-DD: '2023-09'"),
        (ecb_csv(ECB_ROW.format(day="2023-09-20", value="")), "ECB: line 2: not a rate: ''"),
        (ecb_csv(ECB_ROW.format(day="2023-09-20", value="4.5").replace("MRR_FR.LEV", "DFR.LEV", 1)),
         "ECB: line 2: series 'FM.D.U2.EUR.4F.KR.DFR.LEV', not FM.D.U2.EUR.4F.KR.MRR_FR.LEV"),
        (ecb_csv("FM.D.U2.EUR.4F.KR.MRR_FR.LEV,D,2023-09-20,4.5"), "ECB: line 2: expected 34 fields, got 4"),
    ],
)  # fmt: skip
def test_an_ecb_answer_out_of_shape_is_one_line(text: str, message: str):
    with pytest.raises(BadAnswer) as bad:
        parse_ecb(text)
    assert str(bad.value) == message


# ---- storing, and merging over the shipped table


def test_a_refresh_stores_both_sources_and_they_win_over_the_shipped_table(store: Store, services: Services):
    done = refresh.refresh(store, NOW, sources.every(services.boe_url, services.ecb_url))
    assert [(r.source.key, r.error) for r in done] == [("boe", None), ("ecb", None)]
    with store.read() as conn:
        kept = stored.load(conn)
        table = stored.rates_for(conn)
    assert kept["boe_base_rate"].newest == BANK_DAY and kept["boe_base_rate"].fetched_at == NOW
    assert kept["ecb_mro_rate"].changes[-1] == (date(2026, 6, 10), Decimal("2.00"))
    # The shipped table says 4.00 (it ends in 2025); older history than the fetch still comes from it.
    assert table.in_force("boe_base_rate", date(2026, 12, 31)) == Decimal("3.50")
    assert table.in_force("ecb_mro_rate", date(2019, 6, 1)) == Decimal("0.00")
    assert table.through("boe_base_rate") == table.through("ecb_mro_rate") == NOW.date()
    assert covered(table, Regime.UK) == (date(2009, 7, 1), date(2027, 1, 1))


def test_a_tenants_own_entries_give_way_to_fetched_ones_but_not_to_later_ones(tmp_path: Path):
    own = tmp_path / "reference_rates.yaml"
    own.write_text('boe_base_rate:\n  2026-02-01: "9.99"\n  2027-03-01: "3.25"\n')
    fetched = Observed("boe_base_rate", ((date(2020, 1, 1), Decimal("0.75")), (date(2026, 5, 7), Decimal("3.50"))),
                       NOW.date())  # fmt: skip
    table = load_rates(own, {"boe_base_rate": fetched})
    # Inside the fetched span the fetch wins over the 9.99 typed in; after it, what was typed in stands.
    assert table.in_force("boe_base_rate", date(2026, 3, 1)) == Decimal("0.75")
    assert table.in_force("boe_base_rate", date(2027, 3, 1)) == Decimal("3.25")
    assert table.through("boe_base_rate") == date(2027, 3, 1)


def test_each_refresh_replaces_what_its_source_answered_before(store: Store, services: Services):
    wanted = [sources.boe(services.boe_url)]
    refresh.refresh(store, NOW, wanted)
    services.boe_changes.remove((date(2026, 5, 7), "3.50"))  # the Bank's figures, revised
    services.boe_until = date(2027, 1, 5)
    refresh.refresh(store, NOW + timedelta(hours=1), wanted)
    with store.read() as conn:
        kept = stored.load(conn)["boe_base_rate"]
        rows = conn.execute(select(reference_rates.c.fetched_at).distinct()).scalars().all()
    assert kept.changes[-1] == (date(2027, 1, 5), Decimal("3.75"))
    assert rows == [NOW + timedelta(hours=1)]


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda s: s.body.update({BOE_PATH: HTML}),
         "Bank of England: expected a CSV with the header DATE,IUDBEDR, got '<!DOCTYPE html>'"),
        (lambda s: setattr(s, "boe_until", date(2026, 11, 1)),
         "Bank of England Bank Rate: the newest observation is 2026-10-30: a stale answer"),
        (lambda s: setattr(s, "boe_until", date(2026, 12, 31)),
         "Bank of England Bank Rate: the answer ends 2026-12-31, before the 2027-01-04 stored"),
    ],
)  # fmt: skip
def test_a_bad_answer_changes_nothing_stored(store: Store, services: Services, spoil, message: str):
    wanted = [sources.boe(services.boe_url)]
    refresh.refresh(store, NOW, wanted)
    with store.read() as conn:
        before = stored.load(conn)
    spoil(services)
    [done] = refresh.refresh(store, NOW + timedelta(days=1), wanted)
    assert done.error == message
    with store.read() as conn:
        assert stored.load(conn) == before


# ---- the half-year's reference rate


def test_the_reference_day_decides_across_the_half_year_boundary():
    # UK: January-June uses the rate in force on 31 December (a change that day counts; one on 1 January not).
    boe = Observed("boe_base_rate", ((date(2020, 1, 1), Decimal("1.00")), (date(2026, 12, 31), Decimal("2.00")),
                                     (date(2027, 1, 1), Decimal("3.00"))), NOW.date())  # fmt: skip
    # EU: July-December uses the rate on 1 July (a change that day counts; one on 2 July not).
    ecb = Observed("ecb_mro_rate", ((date(2020, 1, 1), Decimal("0.00")), (date(2027, 7, 1), Decimal("1.00")),
                                    (date(2027, 7, 2), Decimal("2.00"))), date(2027, 7, 10))  # fmt: skip
    table = load_rates(None, {"boe_base_rate": boe, "ecb_mro_rate": ecb})
    # £1,000 due 20 December 2026, assessed 10 January 2027:
    # 21-31 Dec (11 days) at 1.00% + 8 (30 June 2026): 2.7123; 1-10 Jan (10 days) at 2.00% + 8: 2.7397.
    uk_claim = claim(gbp("1000.00"), date(2026, 12, 20), date(2027, 1, 10), Regime.UK, table)
    assert [(p.start, p.rate, p.confirmed) for p in uk_claim.periods] == [
        (date(2026, 12, 21), Decimal("9.00"), True), (date(2027, 1, 1), Decimal("10.00"), True),
    ]  # fmt: skip
    assert uk_claim.interest == gbp("5.45")
    # €1,000 due 25 June 2027, assessed 5 July 2027: 26-30 June at 0.00% + 8 (1 January), 1-5 July at 1.00% + 8.
    eu_claim = claim(Money(Decimal("1000.00"), "EUR"), date(2027, 6, 25), date(2027, 7, 5), Regime.EU, table)
    assert [p.rate for p in eu_claim.periods] == [Decimal("8.00"), Decimal("9.00")]
    assert eu_claim.unconfirmed == ()


def test_a_stale_table_reckons_at_the_last_rate_known_and_says_which_periods():
    changes = ((date(2025, 5, 8), Decimal("4.25")), (date(2025, 8, 7), Decimal("4.00")))
    table = RateTable({"boe_base_rate": changes}, {"boe_base_rate": date(2025, 11, 30)})
    # Three years past the table: no longer refused (the 400-day cut-off is gone); every period is flagged.
    result = claim(gbp("100.00"), date(2029, 6, 30), date(2030, 7, 10), Regime.UK, table)
    assert {p.rate for p in result.periods} == {Decimal("12.00")}
    assert result.unconfirmed == result.periods and len(result.periods) == 3
    assert result.describe().startswith("Under the Late Payment of Commercial Debts (Interest) Act 1998")
    confirmed = claim(gbp("100.00"), date(2025, 8, 31), date(2025, 12, 31), Regime.UK, table)
    assert confirmed.unconfirmed == ()  # July-December 2025: the rate on 30 June 2025 is known


def test_half_years_covered_end_where_their_reference_day_is_confirmed():
    changes = ((date(2020, 3, 19), Decimal("0.10")),)
    assert covered(RateTable({"boe_base_rate": changes}, {"boe_base_rate": date(2026, 6, 29)}), Regime.UK) == (
        date(2020, 7, 1), date(2026, 1, 1),
    )  # fmt: skip
    assert covered(RateTable({"boe_base_rate": changes}, {"boe_base_rate": date(2026, 6, 30)}), Regime.UK) == (
        date(2020, 7, 1), date(2026, 7, 1),
    )  # fmt: skip


# ---- a stale rate is a health issue told to the firm


def test_the_stale_rate_issue_says_what_is_needed_and_what_is_done_meanwhile():
    changes = ((date(2025, 8, 7), Decimal("4.00")),)
    table = RateTable({"boe_base_rate": changes}, {"boe_base_rate": date(2025, 11, 30)})
    issue = health.reference_rate_issue(Regime.UK, table, date(2027, 1, 5))
    assert issue == health.Issue(
        "reference_rate_stale",
        "statutory interest for January-June 2027 uses the Bank of England Bank Rate on 31 December 2026, but "
        "ccm's rates are confirmed only up to 2025-11-30: reminders state interest at the last rate known "
        "(4.00% + 8%) until ccm fetches it (`ccm rates --refresh`; `ccm serve` tries daily) or it is added to "
        "reference_rates.yaml",
    )
    fresh = RateTable(table.series, {"boe_base_rate": date(2026, 12, 31)})
    assert health.reference_rate_issue(Regime.UK, fresh, date(2027, 1, 5)) is None
    assert health.reference_rate_issue(Regime.UK, fresh, date(2027, 7, 1)) is not None  # the next half-year


def firm(store: Store) -> None:
    with store.begin() as conn:
        save_tenant(conn, ACME)
        save_connection(conn, Connection("acme", "scripted", "org-1"))


def open_kinds(store: Store) -> list[str]:
    with store.read() as conn:
        return [i.kind for i in health.open_issues(conn, "acme")]


def test_a_stale_rate_is_told_once_and_clears_when_fetched(store: Store, services: Services, tmp_path: Path):
    firm(store)
    settings = uk("uk", tmp_path)
    found = refresh.check(store, settings, NOW)  # nothing fetched: the shipped table ends in 2025
    assert found["acme"] is not None and found["acme"].kind == "reference_rate_stale"
    with store.begin() as conn:
        [notice] = health.notices(conn, ACME, NOW)
        link = get_connection(conn, "acme")
        shown = health.current(conn, ACME, link, 60, NOW, HealthSettings())  # what `ccm connections` shows
    assert (encode(notice.payload)["kind"], encode(notice.payload)["email"]) == (
        "reference_rate_stale",
        "owner@acme.example",
    )
    assert [i.kind for i in shown] == ["reference_rate_stale"]
    with store.begin() as conn:  # a night's own health check leaves it alone (it is not a night's kind)
        health.record(conn, "acme", [], NOW + timedelta(hours=17), health.KINDS)
    refresh.check(store, settings, NOW + timedelta(days=1))
    with store.begin() as conn:
        assert health.notices(conn, ACME, NOW + timedelta(days=1)) == []  # told once
    refresh.refresh(store, NOW + timedelta(days=1), sources.every(services.boe_url, services.ecb_url))
    assert refresh.check(store, settings, NOW + timedelta(days=1)) == {"acme": None}
    assert open_kinds(store) == []


def test_with_statutory_interest_off_nothing_is_stale(store: Store, tmp_path: Path):
    firm(store)
    refresh.check(store, uk("eu", tmp_path), NOW)
    assert open_kinds(store) == ["reference_rate_stale"]
    assert refresh.check(store, uk("off", tmp_path), NOW) == {"acme": None}
    assert open_kinds(store) == []


def test_one_firm_can_be_checked_alone(store: Store, tmp_path: Path):
    firm(store)
    with store.begin() as conn:
        save_tenant(conn, Tenant("beta", "Beta Ltd", "scripted"))
        save_connection(conn, Connection("beta", "scripted", "org-2"))
    read: list[str] = []
    listen = partial(_tenants_read, read)
    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        assert list(refresh.check(store, uk("uk", tmp_path), NOW, "beta")) == ["beta"]
        assert refresh.check(store, uk("uk", tmp_path), NOW, "gone") == {}  # no such firm: nothing to check
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    assert open_kinds(store) == []  # acme's issue is not opened by beta's check
    # each firm's night checks its own: reading every tenant there made a night cost more with every firm
    assert read and all("WHERE tenants.tenant_id" in statement for statement in read), read


def _tenants_read(read: list[str], conn: object, cursor: object, statement: str, *_: object) -> None:
    if "FROM tenants" in statement:
        read.append(" ".join(statement.split()))


def test_a_disconnected_firm_is_not_checked(store: Store, tmp_path: Path):
    firm(store)
    with store.begin() as conn:
        save_connection(conn, Connection("acme", "scripted", "org-1", ConnectionState.DISCONNECTED))
    assert refresh.check(store, uk("uk", tmp_path), NOW) == {}


# ---- `ccm rates`


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch, services: Services) -> Services:
    monkeypatch.setenv("CCM_RATES__BOE_URL", services.boe_url)
    monkeypatch.setenv("CCM_RATES__ECB_URL", services.ecb_url)
    monkeypatch.setenv("CCM_SERVE__CLOCK", f"{NOW.isoformat()}x1")
    monkeypatch.setenv("CCM_CREDIT__STATUTORY_INTEREST", "uk")
    return services


def test_ccm_rates_shows_the_shipped_table_as_stale_until_refreshed(capsys, cli: Services):
    code, out, _ = ccm(capsys, "rates", "--format", "json")
    assert code == 0
    shown = json.loads(out)
    assert shown["today"] == "2027-01-05" and shown["statutory_interest"] == "uk"
    assert [(r["source"], r["fetched"], r["status"]) for r in shown["rows"]] == [
        ("boe", "never (shipped table)", "stale"), ("ecb", "never (shipped table)", "stale"),
    ]  # fmt: skip
    assert cli.seen == []  # showing asks nobody


def test_ccm_rates_refresh_fetches_both_and_shows_them_covered(capsys, cli: Services):
    code, out, err = ccm(capsys, "rates", "--refresh")
    assert code == 0, err
    assert "2027-01-05 09:00 UTC" in out and "stale" not in out
    code, out, _ = ccm(capsys, "rates", "-f", "csv")
    assert out.splitlines()[1:] == [
        "boe,Bank of England Bank Rate,3.50,2027-01-04,2027-01-05 09:00 UTC,2027-01-05,2009 H2 to 2027 H1,2026-12-31,ok",
        "ecb,ECB main refinancing rate,2.00,2026-06-10,2027-01-05 09:00 UTC,2027-01-05,2015 H1 to 2027 H1,2027-01-01,ok",
    ]


def test_ccm_rates_refresh_unreachable_is_one_line_and_exit_1(capsys, cli: Services, monkeypatch):
    url = closed_port()
    monkeypatch.setenv("CCM_RATES__BOE_URL", url + BOE_PATH)
    monkeypatch.setattr(fetching, "ATTEMPTS", 1)
    code, out, err = ccm(capsys, "rates", "--refresh")
    assert (code, out) == (1, "")
    assert err == (
        f"ccm: Bank of England Bank Rate: cannot connect to {url[7:]} (after 1 try); the rates stored before "
        "stay in use\n"
    )
    code, out, _ = ccm(capsys, "rates", "-f", "json")  # the ECB answered: stored
    fetched = [r["fetched"] for r in json.loads(out)["rows"]]
    assert fetched == ["never (shipped table)", "2027-01-05 09:00 UTC"]


# ---- `ccm serve`: a daily refresh while statutory interest is on


def test_serve_refreshes_what_statutory_interest_needs_daily(store: Store, services: Services, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    from connector.clock import Clock
    from connector.serve import scheduler
    from connector.serve.runtime import Runtime

    monkeypatch.setattr(scheduler, "_runtime", None)  # the server's global, put back after
    monkeypatch.setattr(scheduler, "_wake", None)
    firm(store)
    lines: list[str] = []
    clock = Clock(NOW, datetime.now(UTC).timestamp(), 1.0)
    off = scheduler.Scheduler(Runtime(uk("off", tmp_path), store, clock, "s1"), lambda: None)
    off.align()
    assert "rates" not in {job.id for job in off.scheduler.get_jobs()}
    settings = uk("uk", tmp_path).model_copy(update={"rates": RatesSettings(boe_url=services.boe_url)})
    serving = Runtime(settings, store, clock, "s2", report=lines.append)
    on = scheduler.Scheduler(serving, lambda: None)
    on.align()
    [job] = [job for job in on.scheduler.get_jobs() if job.id == "rates"]
    assert job.trigger.interval == timedelta(days=1) and job.misfire_grace_time is None

    line = scheduler.rates_job()
    assert line.startswith("Bank of England Bank Rate: ") and line.endswith(" observations")
    assert [path for path, _, _ in services.seen] == [BOE_PATH]  # the ECB's rate is not needed
    assert lines == [f"2027-01-05 09:00 UTC reference rates: {line}"]
    assert open_kinds(store) == []  # January-June 2027 is covered now
