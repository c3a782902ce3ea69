"""`ccm db upgrade`."""

from __future__ import annotations

import typer

from connector.cli.app import app, out, state
from connector.store import engine

db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations (ccm also does this on first use)."""
    settings = state(ctx).settings
    eng = engine.create(settings.db_url)
    try:
        before, after = engine.upgrade(eng)
    finally:
        eng.dispose()
    where = eng.url.render_as_string(hide_password=True)
    shown = ", ".join(sorted(after))
    if before == after:
        out.print(f"{where}: already at revision {shown}")
    else:
        out.print(f"{where}: upgraded from {', '.join(sorted(before)) or 'empty'} to {shown}")
