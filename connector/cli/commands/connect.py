"""`ccm connect LEDGER` (xero, quickbooks or any installed ledger), `ccm connections`, `ccm disconnect`."""

from __future__ import annotations

import sys
import webbrowser
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from connector import binding, lease
from connector.callback import CallbackError, receiver_for
from connector.cli.app import Failure, UsageProblem, app, err, out, state
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
from connector.flow import Choice, ConnectFlow, Grant, NoFlow, save_grant
from connector.flow import flow as flow_of
from connector.ledger import LedgerError
from connector.model import ConnectionState, Tenant
from connector.oauth import TokenVault, new_state
from connector.store import synclog
from connector.store.tenants import UnknownTenant, get_connection, get_tenant, list_tenants, save_connection
from connector.tenantspec import TenantProblem, build, check_id
from connector.tokens.storage import expiries


def _flow(ledger: str) -> ConnectFlow:
    try:
        return flow_of(ledger)  # an unknown ledger is a usage error
    except NoFlow as exc:
        raise UsageProblem(str(exc)) from None


@app.command()
def connect(
    ctx: typer.Context,
    ledger: Annotated[str, typer.Argument(help="xero or quickbooks")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="An id for the tenant, e.g. acme.")],
    name: Annotated[str, typer.Option(help="The firm's name (default: the ledger's).")] = "",
    org: Annotated[
        list[str] | None,
        typer.Option(
            help="Which Xero organisation (name or id) if several were granted; repeat as NAME=TENANT to "
            "connect several, which then share the consent."
        ),
    ] = None,
    base_currency: CurrencyOpt = "GBP",
    timezone: TimezoneOpt = "Europe/London",
    country: CountryOpt = "GB",
    night_time: NightTimeOpt = None,
    contact_email: ContactOpt = None,
    browser: Annotated[bool, typer.Option(help="Open the authorize page in a browser.")] = True,
    timeout: Annotated[int, typer.Option(min=10, help="Seconds to wait for the consent.")] = 300,
    replace_organisation: Annotated[
        bool,
        typer.Option(
            "--replace-organisation",
            help="Move a tenant that has synced to the organisation consented to now: its records of the old "
            "one are removed and what was planned for them cancelled.",
        ),
    ] = False,
) -> None:
    """Connect a firm's ledger through OAuth: consent in the browser, the redirect comes back to ccm."""
    flow = _flow(ledger)
    try:
        firm = build(
            tenant, name, ledger, base_currency=base_currency, timezone=timezone, country=country,
            night_time=night_time, contact_email=contact_email,
        )  # fmt: skip
    except TenantProblem as exc:
        raise tenant_problem(exc) from None
    st = state(ctx)
    settings, store = st.settings, st.store
    firm = _kept(ctx, store, firm)
    redirect = flow.redirect_uri(settings)
    try:
        receiver = receiver_for(redirect).start()
    except CallbackError as exc:
        hint = ""
        if "cannot listen" in str(exc):
            hint = (f"; if `ccm serve` runs there, connect through it with a link from "
                    f"`ccm invite {tenant} --ledger {ledger}`")  # fmt: skip
        raise UsageProblem(f"{ledger}.redirect_uri: {exc}{hint}") from None
    state_value = new_state()
    try:
        url, verifier = flow.begin(settings, state_value)
    except LedgerError as exc:
        raise UsageProblem(str(exc)) from None
    out.print(
        f"Open this page to let ccm read {ledger} (waiting for the redirect to {redirect}):", markup=False
    )
    out.print(url, markup=False, soft_wrap=True)
    if browser:
        webbrowser.open(url)
    try:
        answer = receiver.wait(timeout)
    except CallbackError as exc:
        raise Failure(str(exc)) from None
    if "error" in answer:
        raise Failure(f"consent was not given ({answer['error']}); nothing was stored")
    if answer.get("state") != state_value:
        raise Failure("the redirect carried a different state (possible forgery); nothing was stored")
    if "code" not in answer:
        raise Failure("the redirect carried no authorization code; nothing was stored")
    try:
        grant = flow.exchange(settings, answer, verifier)
        picked = _choose(grant, firm, org or [])
        moving = _bindings(store, ledger, picked, replace_organisation)
        for each, choice in picked:
            if each.id in moving:
                _move(store, each.id, ledger, choice)
            what = save_grant(store, TokenVault.open(store, settings), each, grant, choice)
            out.print(f"connected tenant {each.id} to {what}; run `ccm sync -t {each.id}`", markup=False)
    except LedgerError as exc:
        raise Failure(f"connecting failed: {exc}") from None


def _kept(ctx: typer.Context, store: Any, firm: Tenant) -> Tenant:
    """A tenant being reconnected keeps its details, but for the options given on this command line."""
    with store.read() as conn:
        try:
            known = get_tenant(conn, firm.id)
        except UnknownTenant:
            return firm
    if known.ledger != firm.ledger:
        raise UsageProblem(f"tenant {firm.id!r} is on {known.ledger}, not {firm.ledger}")
    fields = ("name", "base_currency", "timezone", "country", "night_time", "contact_email")
    return replace(known, **{f: getattr(firm, f) for f in fields if given(ctx, f)})


def _bindings(store: Any, ledger: str, picked: list[tuple[Tenant, Choice]], replace: bool) -> set[str]:
    """Tenants that would move to another organisation: refused (nothing stored) unless `replace`."""
    moving: set[str] = set()
    with store.read() as conn:
        for each, choice in picked:
            bound = binding.check(conn, each.id, ledger, choice)
            if bound is None:
                continue
            if not replace:
                how = f"To move it, run `ccm connect {ledger} -t {each.id} --replace-organisation`."
                raise Failure(str(binding.refusal(bound, choice, how)))
            moving.add(each.id)
    return moving


def _move(store: Any, tenant_id: str, ledger: str, choice: Choice) -> None:
    """Clear the tenant's records of its old organisation under its run lease, before saving the new one."""
    now = datetime.now(UTC)
    reason = f"the tenant was moved to {ledger} organisation {choice.name} ({choice.id})"
    try:
        with lease.held(store, tenant_id, lease.new_holder(), now), store.begin() as conn:
            counts = binding.clear(conn, tenant_id, reason, now)
    except lease.Busy as exc:
        raise Failure(f"{exc}: try again when it ends; nothing was stored") from None
    out.print(f"tenant {tenant_id}: {binding.said(counts)} of the old organisation", markup=False)


def _choose(grant: Grant, firm: Tenant, wanted: list[str]) -> list[tuple[Tenant, Choice]]:
    """The organisations named by --org (NAME or NAME=TENANT), the only one granted, or the one the person
    picks at the prompt; each with the tenant it becomes."""
    if len(wanted) > 1 or any("=" in w for w in wanted):
        picked = []
        for number, entry in enumerate(wanted):
            name, _, tenant_id = entry.partition("=")
            if not tenant_id and number:
                raise UsageProblem(f"--org {entry!r}: name the tenant it becomes, as NAME=TENANT")
            try:
                choice = grant.choose(name, "organisation")
                each = replace(
                    firm, id=check_id(tenant_id or firm.id), name="" if len(wanted) > 1 else firm.name
                )
            except LedgerError as exc:
                raise Failure(f"{exc}; nothing was stored") from None
            except TenantProblem as exc:
                raise UsageProblem(f"--org {entry!r}: {exc}") from None
            picked.append((each, choice))
        return picked
    one = wanted[0] if wanted else None
    if one is not None or len(grant.choices) == 1 or not sys.stdin.isatty():
        try:
            return [(firm, grant.choose(one, "organisation"))]
        except LedgerError as exc:
            raise Failure(f"{exc}; nothing was stored (connect again with --org NAME)") from None
    for number, choice in enumerate(grant.choices, start=1):
        out.print(f"  {number}. {choice.name} ({choice.id})", markup=False)
    number = typer.prompt("Which organisation is this tenant?", type=int, default=1)
    if not 1 <= number <= len(grant.choices):
        raise UsageProblem(f"choose a number from 1 to {len(grant.choices)}; nothing was stored")
    return [(firm, grant.choices[number - 1])]


CONNECTION_COLUMNS = ("tenant", "ledger", "ledger id", "state", "refresh token dies", "last sync",
                      "last sync outcome", "health", "problems")  # fmt: skip


@app.command("connections")
def list_connections(ctx: typer.Context, fmt: FormatOpt = Format.TABLE) -> None:
    """Every connection with its state, refresh-token expiry, last sync and health problems."""
    from connector import health
    from connector import ledger as registry

    st = state(ctx)
    store, settings = st.store, st.settings
    rows = []
    problems: list[tuple[str, health.Issue]] = []
    now = datetime.now(UTC)
    with store.read() as conn:
        expiry = expiries(conn)  # each tenant's grant's refresh-token dates
        for t in list_tenants(conn):
            link = get_connection(conn, t.id)
            if link is None:
                continue
            last = synclog.runs(conn, t.id, limit=1)
            issues = (
                health.current(conn, t, link, registry.get(t.ledger).refresh_idle_days, now, settings.health)
                if link.state is not ConnectionState.DISCONNECTED
                else []
            )
            problems += [(t.id, i) for i in issues]
            fine = "ok" if link.state is ConnectionState.CONNECTED else "-"
            rows.append((
                t.id, t.ledger, link.external_id, str(link.state), _dies(expiry.get(t.id), t.ledger),
                last[0].started_at if last else None, last[0].outcome if last else "never",
                ", ".join(i.kind for i in issues) or fine,
                "; ".join(f"{i.kind}: {i.message}" for i in issues),
            ))  # fmt: skip
    labels = {c: c for c in CONNECTION_COLUMNS if c != "problems"}
    emit(fmt, "connections", CONNECTION_COLUMNS, rows, labels=labels,
         empty=f"no connections yet: `ccm connect {'|'.join(registry.names())} -t ID`")  # fmt: skip
    if fmt is Format.TABLE:
        for tenant_id, issue in problems:
            out.print(f"{tenant_id}: {issue.kind}: {issue.message}", markup=False)


def _dies(row: Any, ledger: str) -> str:
    """When the refresh token dies: the ledger's word, else its idle life from the last refresh."""
    from connector import ledger as registry

    if row is None:
        return "-"
    if row.refresh_expires_at is not None:
        return f"{row.refresh_expires_at:%Y-%m-%d}"
    idle = registry.get(ledger).refresh_idle_days
    return f"{row.updated_at + timedelta(days=idle):%Y-%m-%d} unless used" if idle else "-"


@app.command()
def disconnect(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="The tenant to disconnect.")],
) -> None:
    """Revoke ccm's access at the ledger and forget the tokens (the tenant's records stay)."""
    st = state(ctx)
    store, settings = st.store, st.settings
    with store.read() as conn:
        found = get_tenant(conn, tenant)
        link = get_connection(conn, tenant)
    if link is None:
        raise UsageProblem(f"tenant {tenant!r} has no connection")
    flow = _flow(found.ledger)
    done = "the ledger did not confirm it"
    try:
        done = flow.revoke(settings, store, tenant)
    except LedgerError as exc:
        err.print(f"ccm: the ledger did not confirm the revocation ({exc}); forgetting the tokens anyway")
    TokenVault.open(store, settings).delete(tenant)
    with store.begin() as conn:
        note = f"disconnected {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"  # the row stays, as history
        save_connection(conn, replace(link, state=ConnectionState.DISCONNECTED, message=note))
    out.print(f"tenant {tenant}: disconnected ({done}); its records stay in ccm", markup=False)
