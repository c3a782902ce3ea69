"""`ccm preview CUSTOMER [-t T] [--level N] [--html FILE]`: the exact e-mail a customer would get now,
rendered by the code that sends it (connector/words/preview.py); nothing is sent or recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connector.cli.app import UsageProblem, app, out, state
from connector.cli.commands.run import parse_at
from connector.cli.options import TenantOpt, pick_customer
from connector.mail import TemplateProblem
from connector.run.plan import Context
from connector.store.tenants import get_tenant
from connector.words.locale import LocaleProblem
from connector.words.preview import NothingToShow, preview


@app.command("preview")
def preview_(
    ctx: typer.Context,
    who: Annotated[str, typer.Argument(metavar="CUSTOMER", help="The customer's id, name or a unique part.")],
    tenant: TenantOpt = None,
    level: Annotated[
        int | None, typer.Option("--level", min=1, help="Show the e-mail of this level of the policy.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Save the HTML part to this file instead of printing it.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="As if it were this instant (ISO 8601).")] = None,
) -> None:
    """The e-mail a customer would get now: subject, text and HTML, exactly as sent; nothing is sent."""
    st = state(ctx)
    now = parse_at(at)
    tenant_id, customer_id, _ = pick_customer(st.store, tenant, who)
    with st.store.read() as conn:
        firm = get_tenant(conn, tenant_id)
    context = Context.load(st.settings, firm)
    try:
        shown = preview(st.store, st.settings, context, customer_id, context.calendar.local_date(now), level)
    except (NothingToShow, TemplateProblem, LocaleProblem) as exc:
        raise UsageProblem(str(exc)) from None
    out.print(f"To: {shown.to}", markup=False)
    out.print(f"Subject: {shown.rendered.subject}", markup=False)
    out.print(f"Template: {shown.template} ({shown.level_name})", markup=False)
    out.print("", markup=False)
    out.print(shown.rendered.text, markup=False, end="")
    if html is not None:
        html.write_text(shown.rendered.html, encoding="utf-8")
        out.print(f"\n(HTML part saved to {html})", markup=False)
    else:
        out.print("\n--- HTML ---", markup=False)
        out.print(shown.rendered.html, markup=False, end="")
