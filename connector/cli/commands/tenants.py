"""`ccm tenants list|show|add|set`: the firms ccm looks after, and the mode each runs in.

A firm's mode: auto (send and write), approve (plan; a person approves with `ccm outbox approve`) or dry-run
(show only). A newly connected firm runs its first serve.safe_nights nights in approve mode, then its own
(connector/firmmode.py); `list` and `show` say which mode applies now and why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from connector import digest, firmmode
from connector import ledger as registry
from connector.cli import profile_opts as po
from connector.cli.app import UsageProblem, app, out, state
from connector.cli.options import (
    ContactOpt,
    CountryOpt,
    CurrencyOpt,
    NightTimeOpt,
    TimezoneOpt,
    tenant_problem,
)
from connector.cli.output import Format, FormatOpt, emit
from connector.firmprofile import ProfileProblem, load_profile, save_profile
from connector.store import synclog
from connector.store.tenants import end_safe_nights as end_safe_nights_
from connector.store.tenants import (
    get_connection,
    get_standing,
    get_tenant,
    list_tenants,
    save_tenant,
    set_mode,
)
from connector.tenantspec import TenantProblem, build, changed, check_mode

tenants_app = typer.Typer(
    help="Tenants: the firms' ledger organisations ccm looks after.", no_args_is_help=True
)
app.add_typer(tenants_app, name="tenants")


TENANT_COLUMNS = ("tenant", "name", "ledger", "currency", "time zone", "connection", "last sync",
                  "last sync outcome", "mode now", "why")  # fmt: skip


@tenants_app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = Format.TABLE) -> None:
    """Every tenant with its connection state and last sync."""
    store = state(ctx).store
    settings = state(ctx).settings
    rows = []
    with store.read() as conn:
        for t in list_tenants(conn):
            link = get_connection(conn, t.id)
            last = synclog.runs(conn, t.id, limit=1)
            state_text = str(link.state) if link else "not connected"
            now = firmmode.effective(conn, settings, t.id)
            rows.append((t.id, t.name, t.ledger, t.base_currency, t.timezone, state_text,
                         last[0].started_at if last else None, last[0].outcome if last else "never",
                         now.mode.value, now.why))  # fmt: skip
    emit(fmt, "tenants", TENANT_COLUMNS, rows,
         empty="no tenants yet: connect one, or add one with `ccm tenants add`")  # fmt: skip


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
    mode: Annotated[
        str | None,
        typer.Option(help="auto | approve | dry-run, after its safe first nights; '' for serve.mode."),
    ] = None,
    end_safe_nights: Annotated[
        bool, typer.Option("--end-safe-nights", help="Count the firm's remaining safe first nights as run.")
    ] = False,
    morning_digest: Annotated[
        bool | None,
        typer.Option("--digest/--no-digest", help="E-mail last night's digest to the contact each morning."),
    ] = None,
    from_name: po.FromNameOpt = None,
    from_address: po.FromAddressOpt = None,
    reply_to: po.ReplyToOpt = None,
    signature: po.SignatureOpt = None,
    company_number: po.CompanyNumberOpt = None,
    registered_office: po.OfficeOpt = None,
    locale: po.LocaleOpt = None,
    pay_by_transfer: po.TransferOpt = None,
    account_name: po.AccountNameOpt = None,
    sort_code: po.SortCodeOpt = None,
    account_number: po.AccountNumberOpt = None,
    iban: po.IbanOpt = None,
    bic: po.BicOpt = None,
    pay_reference: po.PayReferenceOpt = None,
    statements: po.StatementsOpt = None,
) -> None:
    """Change a tenant's settings; a running `ccm serve` re-times its nightly run within seconds."""
    st = state(ctx)
    store = st.store
    with store.read() as conn:
        found = get_tenant(conn, tenant_id)
    try:
        tenant = changed(
            found, name=name, timezone=timezone, country=country, night_time=night_time,
            contact_email=contact_email,
        )  # fmt: skip
        chosen = check_mode(mode) if mode else None  # '' clears it
        with store.read() as conn:
            profile = po.changed(
                load_profile(conn, tenant_id), pay_by_transfer, statements, from_name=from_name,
                from_address=from_address, reply_to=reply_to, signature=signature,
                company_number=company_number, registered_office=registered_office, locale=locale,
                account_name=account_name, sort_code=sort_code, account_number=account_number, iban=iban,
                bic=bic, pay_reference=pay_reference,
            )  # fmt: skip
    except TenantProblem as exc:
        raise tenant_problem(exc) from None
    except ProfileProblem as exc:
        raise UsageProblem(str(exc)) from None
    with store.begin() as conn:
        save_tenant(conn, tenant)
        save_profile(conn, tenant.id, profile)
        if mode is not None:
            set_mode(conn, tenant.id, chosen)
        if end_safe_nights:
            end_safe_nights_(conn, tenant.id, st.settings.serve.safe_nights)
        if morning_digest is not None:
            digest.set_enabled(conn, tenant.id, morning_digest, datetime.now(UTC))
        digest_on = digest.enabled(conn, tenant.id)
        now = firmmode.effective(conn, st.settings, tenant.id)
        standing = get_standing(conn, tenant.id)
    at = tenant.night_time or f"{state(ctx).settings.serve.night_time} (the server's default)"
    notices = tenant.contact_email or "nobody (set --contact-email)"
    out.print(
        f"tenant {tenant.id}: {tenant.name}; {tenant.timezone}, {tenant.country}; nightly at {at}; "
        f"notices to {notices}; mode now {now.mode.value} ({now.why})",
        markup=False,
    )
    if morning_digest is not None:
        to = tenant.contact_email or "nobody yet: set --contact-email"
        out.print(f"morning digest: {'on, to ' + to if digest_on else 'off'}", markup=False)
    if now.safe and standing.chosen:
        out.print(f"its own mode, {standing.chosen}, applies after its safe nights (end them early with "
                  f"`ccm tenants set {tenant.id} --end-safe-nights`)", markup=False)  # fmt: skip


@tenants_app.command("show")
def show(ctx: typer.Context, tenant_id: Annotated[str, typer.Argument(help="The tenant.")]) -> None:
    """One tenant: its settings, its connection, and the mode its next night runs in, with why."""
    st = state(ctx)
    with st.store.read() as conn:
        t = get_tenant(conn, tenant_id)
        link = get_connection(conn, t.id)
        standing = get_standing(conn, t.id)
        now = firmmode.effective(conn, st.settings, t.id)
        profile = load_profile(conn, t.id)
        digest_on = digest.enabled(conn, t.id)
    lines = [
        ("tenant", t.id), ("name", t.name), ("ledger", t.ledger), ("currency", t.base_currency),
        ("time zone", f"{t.timezone} ({t.country})"),
        ("nightly at", t.night_time or f"{st.settings.serve.night_time} (the server's default)"),
        ("notices to", t.contact_email or "nobody (set --contact-email)"),
        ("digest", "each morning to the notices address" if digest_on else "off (--digest turns it on)"),
        ("connection", str(link.state) if link else "not connected"),
        ("connected on", f"{standing.connected_at:%Y-%m-%d %H:%M} UTC" if standing.connected_at
         else "before ccm had safe first nights" if link else "-"),
        ("nights run", f"{standing.nights_run} since connecting (last {standing.last_night or 'never'})"),
        ("chosen mode", standing.chosen or f"none (serve.mode: {st.settings.serve.mode})"),
        ("mode now", f"{now.mode.value}: {now.why}"),
        *po.lines(profile, st.settings.smtp.from_address),
    ]  # fmt: skip
    for label, value in lines:
        out.print(f"{label + ':':<14}{value}", markup=False)
    if now.mode.value == "approve":
        hint = firmmode.approve_hint(t.id)
        out.print(f"{'':<14}nothing is sent or written until a person approves: {hint}", markup=False)
