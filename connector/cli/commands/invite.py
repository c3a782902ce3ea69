"""`ccm invite T --ledger L`: a single-use, expiring link to the server's connect pages; `ccm invites`."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from connector import invites
from connector import ledger as ledgers
from connector.cli.app import UsageProblem, app, out, state
from connector.cli.options import (
    ContactOpt,
    CountryOpt,
    CurrencyOpt,
    NightTimeOpt,
    TimezoneOpt,
    given,
    tenant_problem,
)
from connector.cli.output import Format, FormatOpt, emit
from connector.flow import NoFlow, flow
from connector.store.tenants import UnknownTenant, get_tenant
from connector.tenantspec import TenantProblem, build, check_id

_DETAILS = ("name", "base_currency", "timezone", "country", "night_time", "contact_email")


@app.command()
def invite(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="The tenant the link connects (new or existing).")],
    ledger: Annotated[str | None, typer.Option(help="xero or quickbooks (an existing tenant's own).")] = None,
    expires: Annotated[str | None, typer.Option(help="How long the link stays valid: 30m, 72h, 7d.")] = None,
    name: Annotated[str, typer.Option(help="A new firm's name (default: the ledger's).")] = "",
    base_currency: CurrencyOpt = "GBP",
    timezone: TimezoneOpt = "Europe/London",
    country: CountryOpt = "GB",
    night_time: NightTimeOpt = None,
    contact_email: ContactOpt = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="End the tenant's open invites instead.")] = False,
) -> None:
    """Print a single-use, expiring link that lets a firm's owner connect its ledger through `ccm serve`.

    The server's connect pages open only with such a link. A new tenant is created with the details given
    here; an existing tenant keeps its own and may only reconnect to the organisation it is bound to.
    """
    st = state(ctx)
    store, settings = st.store, st.settings
    now = datetime.now(UTC)
    try:
        check_id(tenant)
    except TenantProblem as exc:
        raise tenant_problem(exc) from None
    if revoke:
        with store.begin() as conn:
            ended = invites.revoke(conn, tenant, now)
        out.print(f"tenant {tenant}: {ended} open invite{'s' if ended != 1 else ''} ended", markup=False)
        return
    with store.read() as conn:
        try:
            known = get_tenant(conn, tenant)
        except UnknownTenant:
            known = None
    typed = [f for f in _DETAILS if given(ctx, f)]
    if known is not None:
        if typed:
            option = "--" + typed[0].replace("_", "-")
            kept = f"tenant {tenant!r} exists and keeps its details (change them with `ccm tenants set`)"
            raise UsageProblem(f"{option}: {kept}")
        if ledger is not None and ledger != known.ledger:
            raise UsageProblem(f"--ledger: tenant {tenant!r} is on {known.ledger}, not {ledger}")
        ledger = known.ledger
    if ledger is None:
        raise UsageProblem(
            f"--ledger: say which ledger the new tenant is on ({' or '.join(ledgers.names())})"
        )
    try:
        connecting = flow(ledger)
    except (LookupError, NoFlow) as exc:
        raise UsageProblem(f"--ledger: {exc}") from None
    try:
        life = invites.parse_life(expires) if expires else _default_life(settings.serve.invite_hours)
    except ValueError as exc:
        raise UsageProblem(f"--expires: {exc}") from None
    new = None
    if known is None:
        try:
            new = build(tenant, name, ledger, base_currency=base_currency, timezone=timezone, country=country,
                        night_time=night_time, contact_email=contact_email)  # fmt: skip
        except TenantProblem as exc:
            raise tenant_problem(exc) from None
    with store.begin() as conn:
        token = invites.create(conn, tenant, ledger, new, now, life, f"cli:{_user()}")
    redirect = connecting.redirect_uri(settings)
    what = f"connect tenant {tenant} ({known.name})" if known else f"connect a new tenant {tenant}"
    until = f"{now + life:%Y-%m-%d %H:%M} UTC"
    out.print(f"A link to {what} to {ledger}, usable once until {until}:", markup=False)
    out.print(invites.link(redirect, ledger, token), markup=False, soft_wrap=True)
    out.print("Send it to the firm's owner only: whoever opens it chooses the organisation.", markup=False)


def _default_life(hours: float) -> timedelta:
    return timedelta(hours=hours)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


INVITE_COLUMNS = ("tenant", "ledger", "new tenant", "made", "expires")
INVITE_LABELS = {"tenant": "tenant", "ledger": "ledger", "new tenant": "new tenant", "made": "made (UTC)",
                 "expires": "expires (UTC)"}  # fmt: skip


@app.command("invites")
def list_invites(ctx: typer.Context, fmt: FormatOpt = Format.TABLE) -> None:
    """Connect links not used yet and not expired (their addresses are never shown again)."""
    store = state(ctx).store
    now = datetime.now(UTC)
    with store.read() as conn:
        found = invites.open_invites(conn, now)
    rows = [(each.tenant_id, each.ledger, each.tenant is not None, each.created_at, each.expires_at)
            for each in found]  # fmt: skip
    which = "|".join(ledgers.names())
    emit(fmt, "invites", INVITE_COLUMNS, rows, labels=INVITE_LABELS,
         empty=f"no open invites: make one with `ccm invite T --ledger {which}`")  # fmt: skip
