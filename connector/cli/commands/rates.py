"""`ccm rates [--refresh]`: the central-bank rates statutory interest uses, and how current they are."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

from connector.cli.app import Failure, app, state
from connector.cli.output import Cell, Format, FormatOpt, emit

COLUMNS = (
    "source", "rate", "in force", "newest observation", "fetched", "confirmed to", "half-years covered",
    "needed now", "status",
)  # fmt: skip


@app.command()
def rates(
    ctx: typer.Context,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Fetch both rates from the central banks now, then show them.")
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Per source: the rate in force, the newest observation, when it was fetched and the half-years covered.

    Statutory interest (credit.statutory_interest) uses the Bank of England Bank Rate (uk) or the ECB main
    refinancing rate (eu). ccm fetches them from the banks' own data services (daily in `ccm serve`); the
    table shipped with ccm stands in for what was never fetched. `stale`: the rate today's half-year needs is
    not known yet, so interest is stated at the last rate known and the firms are told (`ccm connections`).
    """
    from connector.clock import Clock
    from connector.reference_rates import refresh as refreshing
    from connector.reference_rates import sources, stored
    from connector.rules import interest

    st = state(ctx)
    store, settings = st.store, st.settings
    now = Clock.parse(settings.serve.clock).now()
    if refresh:
        done = refreshing.refresh(store, now, sources.every(settings.rates.boe_url, settings.rates.ecb_url))
        refreshing.check(store, settings, now)
        failed = [r.error for r in done if r.error]
        if failed:
            raise Failure("; ".join(failed) + "; the rates stored before stay in use")
    with store.read() as conn:
        fetched = stored.load(conn)
        table = stored.rates_for(conn)
    today = now.date()
    regimes = {series: interest.Regime(regime) for regime, series in interest.SERIES.items()}
    rows: list[tuple[Cell, ...]] = []
    for source in sources.every(settings.rates.boe_url, settings.rates.ecb_url):
        name, regime, got = source.series, regimes[source.series], fetched.get(source.series)
        changes, span, needed = (
            table.series.get(name, ()),
            interest.covered(table, regime),
            interest.needed(regime, today),
        )
        rows.append((
            source.key, source.label, table.in_force(name, today) if changes else None,
            got.newest if got else (changes[-1][0] if changes else None),
            _when(got.fetched_at) if got else "never (shipped table)", table.through(name),
            f"{_half(span[0])} to {_half(span[1])}" if span else "none", needed,
            "ok" if table.confirmed(name, needed) else "stale",
        ))  # fmt: skip
    regime_now = settings.credit.statutory_interest
    emit(
        fmt, "rates", COLUMNS, rows, title=f"reference rates · {today}",
        meta={"today": today, "statutory_interest": regime_now},
        caption=f"statutory interest: {regime_now} (credit.statutory_interest); a tenant's own "
        "reference_rates.yaml is merged over these for its reminders",
    )  # fmt: skip


def _half(start: date) -> str:
    return f"{start.year} H{1 if start.month == 1 else 2}"


def _when(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M} UTC"
