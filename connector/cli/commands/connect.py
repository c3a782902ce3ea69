"""`ccm connect xero|quickbooks`, `ccm connections`, `ccm disconnect`."""

from __future__ import annotations

import importlib
import webbrowser
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table
from sqlalchemy import select

from adapters import base as registry
from adapters.base import LedgerError
from connector.callback import CallbackError, receiver_for
from connector.cli.app import Failure, UsageProblem, app, err, out, state
from connector.model import ConnectionState, ModelError, Tenant
from connector.oauth import TokenVault, new_state
from connector.store import synclog
from connector.store.schema import oauth_tokens
from connector.store.tenants import get_connection, get_tenant, list_tenants, save_connection


def _flow(ledger: str) -> Any:
    registry.get(ledger)  # an unknown ledger is a usage error
    try:
        return importlib.import_module(f"adapters.{ledger}.flow")
    except ModuleNotFoundError:
        raise UsageProblem(f"ledger {ledger!r} has no connect flow") from None


@app.command()
def connect(
    ctx: typer.Context,
    ledger: Annotated[str, typer.Argument(help="xero or quickbooks")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="An id for the tenant, e.g. acme.")],
    name: Annotated[str, typer.Option(help="The firm's name (default: the ledger's).")] = "",
    org: Annotated[
        str | None, typer.Option(help="Which Xero organisation, by name or id, if several.")
    ] = None,
    base_currency: Annotated[str, typer.Option(help="ISO currency of the firm's books.")] = "GBP",
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/London.")] = "Europe/London",
    country: Annotated[str, typer.Option(help="ISO country code (public holidays).")] = "GB",
    browser: Annotated[bool, typer.Option(help="Open the authorize page in a browser.")] = True,
    timeout: Annotated[int, typer.Option(min=10, help="Seconds to wait for the consent.")] = 300,
) -> None:
    """Connect a firm's ledger through OAuth: consent in the browser, the redirect comes back to ccm."""
    flow = _flow(ledger)
    try:
        ZoneInfo(timezone)
        firm = Tenant(tenant, name, ledger, base_currency.upper(), timezone, country.upper())
    except (ZoneInfoNotFoundError, ValueError, ModelError) as exc:
        raise UsageProblem(f"--timezone/--base-currency: {exc}") from None
    st = state(ctx)
    settings, store = st.settings, st.store
    redirect = getattr(settings, ledger).redirect_uri
    try:
        receiver = receiver_for(redirect).start()
    except CallbackError as exc:
        raise UsageProblem(f"{ledger}.redirect_uri: {exc}") from None
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
        what = flow.finish(settings, store, firm, answer, verifier, org)
    except LedgerError as exc:
        raise Failure(f"connecting failed: {exc}") from None
    out.print(f"connected tenant {tenant} to {what}; run `ccm sync -t {tenant}`", markup=False)


@app.command("connections")
def list_connections(ctx: typer.Context) -> None:
    """Every connection with its state, token expiry and last sync."""
    store = state(ctx).store
    table = Table("tenant", "ledger", "ledger id", "state", "refresh token dies", "last sync", "message")
    with store.read() as conn:
        expiry = dict(conn.execute(select(oauth_tokens.c.tenant_id, oauth_tokens.c.refresh_expires_at)).all())
        for t in list_tenants(conn):
            link = get_connection(conn, t.id)
            if link is None:
                continue
            last = synclog.runs(conn, t.id, limit=1)
            dies = expiry.get(t.id)
            table.add_row(
                t.id, t.ledger, link.external_id, str(link.state), f"{dies:%Y-%m-%d}" if dies else "-",
                f"{last[0].started_at:%Y-%m-%d %H:%M} {last[0].outcome}" if last else "never", link.message,
            )  # fmt: skip
    out.print(table if table.row_count else "no connections yet: `ccm connect xero|quickbooks -t ID`")


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
    try:
        flow.revoke(settings, store, tenant)
    except LedgerError as exc:
        err.print(f"ccm: the ledger did not confirm the revocation ({exc}); forgetting the tokens anyway")
    TokenVault.open(store, settings).delete(tenant)
    with store.begin() as conn:
        note = f"disconnected {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"  # the row stays, as history
        save_connection(conn, replace(link, state=ConnectionState.DISCONNECTED, message=note))
    out.print(f"tenant {tenant}: disconnected; its records stay in ccm")
