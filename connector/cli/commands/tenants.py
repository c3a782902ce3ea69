"""`ccm tenants list|add|set`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from adapters import base as registry
from connector.cli.app import UsageProblem, app, out, state
from connector.cli.options import (
    ContactOpt,
    CountryOpt,
    CurrencyOpt,
    NightTimeOpt,
    TimezoneOpt,
    tenant_problem,
)
from connector.store import synclog
from connector.store.tenants import get_connection, get_tenant, list_tenants, save_tenant
from connector.tenantspec import TenantProblem, build, changed

tenants_app = typer.Typer(
    help="Tenants: the firms' ledger organisations ccm looks after.", no_args_is_help=True
)
app.add_typer(tenants_app, name="tenants")


@tenants_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every tenant with its connection state and last sync."""
    store = state(ctx).store
    table = Table("tenant", "name", "ledger", "currency", "time zone", "connection", "last sync")
    with store.read() as conn:
        for t in list_tenants(conn):
            link = get_connection(conn, t.id)
            last = synclog.runs(conn, t.id, limit=1)
            last_text = f"{last[0].started_at:%Y-%m-%d %H:%M} {last[0].outcome}" if last else "never"
            state_text = str(link.state) if link else "not connected"
            table.add_row(t.id, t.name, t.ledger, t.base_currency, t.timezone, state_text, last_text)
    if table.row_count == 0:
        out.print("no tenants yet: connect one, or add one with `ccm tenants add`")
        return
    out.print(table)


@tenants_app.command("add")
def add(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="A short id for the tenant, e.g. acme.")],
    ledger: Annotated[str, typer.Option(help="The ledger adapter: xero, quickbooks, ...")],
    name: Annotated[str, typer.Option(help="The firm's name.")],
    base_currency: CurrencyOpt = "GBP",
    timezone: TimezoneOpt = "Europe/London",
    country: CountryOpt = "GB",
    night_time: NightTimeOpt = None,
    contact_email: ContactOpt = None,
) -> None:
    """Add a tenant (or update its name, currency, time zone, country, night time and contact)."""
    registry.get(ledger)  # an unknown ledger is a usage error, before anything is stored
    try:
        tenant = build(
            tenant_id, name, ledger, base_currency=base_currency, timezone=timezone, country=country,
            night_time=night_time, contact_email=contact_email,
        )  # fmt: skip
    except TenantProblem as exc:
        raise tenant_problem(exc) from None
    store = state(ctx).store
    try:
        with store.begin() as conn:
            save_tenant(conn, tenant)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    with store.read() as conn:
        saved = get_tenant(conn, tenant_id)
    out.print(f"tenant {saved.id}: {saved.name} on {saved.ledger} ({saved.base_currency}, {saved.timezone})")


@tenants_app.command("set")
def set_(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant.")],
    name: Annotated[str | None, typer.Option(help="The firm's name.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone, e.g. Europe/London.")] = None,
    country: Annotated[str | None, typer.Option(help="ISO country code (for public holidays).")] = None,
    night_time: Annotated[
        str | None, typer.Option(help="Local HH:MM of its nightly run; '' for the server's default.")
    ] = None,
    contact_email: Annotated[
        str | None, typer.Option(help="The firm's address for connection-health notices; '' for none.")
    ] = None,
) -> None:
    """Change a tenant's settings; a running `ccm serve` re-times its nightly run within seconds."""
    store = state(ctx).store
    with store.read() as conn:
        found = get_tenant(conn, tenant_id)
    try:
        tenant = changed(
            found, name=name, timezone=timezone, country=country, night_time=night_time,
            contact_email=contact_email,
        )  # fmt: skip
    except TenantProblem as exc:
        raise tenant_problem(exc) from None
    with store.begin() as conn:
        save_tenant(conn, tenant)
    at = tenant.night_time or f"{state(ctx).settings.serve.night_time} (the server's default)"
    notices = tenant.contact_email or "nobody (set --contact-email)"
    out.print(
        f"tenant {tenant.id}: {tenant.name}; {tenant.timezone}, {tenant.country}; nightly at {at}; "
        f"notices to {notices}",
        markup=False,
    )
