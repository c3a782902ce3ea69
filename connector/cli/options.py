"""Options and lookups shared by commands."""

from __future__ import annotations

from typing import Annotated

import typer

from connector.cli.app import UsageProblem
from connector.store import Store
from connector.store.tenants import list_tenants

# A firm's details, as `ccm tenants add` and `ccm connect` take them.
CurrencyOpt = Annotated[str, typer.Option(help="ISO currency of the firm's books.")]
TimezoneOpt = Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/London.")]
CountryOpt = Annotated[str, typer.Option(help="ISO country code (for public holidays).")]
NightTimeOpt = Annotated[
    str | None, typer.Option(help="Local HH:MM of its nightly run (default: serve.night_time).")
]
ContactOpt = Annotated[str | None, typer.Option(help="The firm's address for connection-health notices.")]

TenantOpt = Annotated[
    str | None, typer.Option("--tenant", "-t", help="The tenant (optional when there is only one).")
]


def pick_tenant(store: Store, tenant_id: str | None) -> str:
    """The tenant named, else the only one in the store (several or none: a one-line usage error).

    What the command then writes names amounts in that firm's locale (connector/words).
    """
    if tenant_id is None:
        with store.read() as conn:
            known = [t.id for t in list_tenants(conn)]
        if not known:
            raise UsageProblem("no tenants yet: add one with `ccm tenants add`")
        if len(known) > 1:
            raise UsageProblem(f"{len(known)} tenants: choose one with --tenant ({', '.join(known)})")
        tenant_id = known[0]
    _write_as(store, tenant_id)
    return tenant_id


def _write_as(store: Store, tenant_id: str) -> None:
    from connector.store.tenants import UnknownTenant, get_tenant
    from connector.words import locale as words
    from connector.words.context import reading_locale

    with store.read() as conn:
        try:
            words.use(reading_locale(conn, get_tenant(conn, tenant_id)))
        except UnknownTenant:  # the command says so in its own words
            return


def pick_customer(store: Store, tenant: str | None, text: str) -> tuple[str, str, str]:
    """(tenant id, customer id, name) for what the person typed (an id, a name or a unique part of one)."""
    from connector.chasing import CustomerOrInvoiceNotFound, find_customer
    from connector.store.tenants import get_tenant

    tenant_id = pick_tenant(store, tenant)
    with store.read() as conn:
        get_tenant(conn, tenant_id)
        try:
            customer_id, name = find_customer(conn, tenant_id, text)
        except CustomerOrInvoiceNotFound as exc:
            raise UsageProblem(str(exc)) from None
    return tenant_id, customer_id, name


def tenant_problem(exc: Exception) -> UsageProblem:
    """A bad tenant field as the option the person typed: `--night-time: must be a time of day HH:MM`."""
    from connector.tenantspec import TenantProblem

    if isinstance(exc, TenantProblem):
        reason = str(exc).split(": ", 1)[1]
        return UsageProblem(f"--{exc.field.replace('_', '-')}: {reason}")
    return UsageProblem(str(exc))


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option `name` was typed (or came from the environment) rather than left at its default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"
