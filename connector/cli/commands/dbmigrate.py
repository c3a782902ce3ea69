"""`ccm db migrate-to-postgres TARGET_URL`: the configured SQLite store copied into an empty PostgreSQL.

The SQLite file is only read; the target is written in one transaction (see connector/store/copy.py). The
report (`--format table|csv|json`, kind `migrate-to-postgres`) has one row per table of ccm's schema: its
rows in SQLite and in PostgreSQL, counted again after the commit. Refusals (not SQLite, not PostgreSQL,
unreachable, not empty, revisions differ) exit 2 with one line; a copy that failed exits 1 and left the
target empty. The target's password is never printed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from connector.cli.app import Failure, UsageProblem, err, out, state
from connector.cli.commands.db import db_app
from connector.cli.output import Cell, Format, FormatOpt, emit
from connector.config import Settings
from connector.store import copy
from connector.store.engine import KEY_FILE, shown_url

KIND = "migrate-to-postgres"
COLUMNS = ("table", "rows in sqlite", "rows in postgresql", "note")


class _Bars:
    """copy.Progress as Rich bars on stderr, one per table: rows copied of the table's rows."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def start(self, table: str, rows: int) -> None:
        self.tasks[table] = self.progress.add_task(table, total=rows)

    def advance(self, table: str, rows: int) -> None:
        self.progress.advance(self.tasks[table], rows)


@db_app.command("migrate-to-postgres")
def migrate_to_postgres(
    ctx: typer.Context,
    target_url: Annotated[
        str, typer.Argument(help="The empty PostgreSQL database: postgresql://USER:PASSWORD@HOST:5432/DB.")
    ],
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Copy the SQLite store into an empty PostgreSQL database (the SQLite file is left untouched)."""
    settings = state(ctx).settings
    try:
        ends = copy.prepare(settings.db_url, target_url)
    except copy.CopyRefused as exc:
        raise UsageProblem(str(exc)) from None
    try:
        with Progress(
            TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, disable=not err.is_terminal,
        ) as progress:  # fmt: skip
            tables = copy.copy(ends, _Bars(progress))
    except copy.CopyFailed as exc:
        raise Failure(str(exc)) from None
    finally:
        ends.dispose()
    source, target = shown_url(ends.source.url), shown_url(ends.target.url)
    rows: list[list[Cell]] = [[t.table, t.sqlite_rows, t.postgresql_rows, t.note or None] for t in tables]
    setting = setting_value(target_url)
    vault = vault_words(settings)
    meta: dict[str, Any] = {
        "source": source,
        "target": target,
        "revisions": sorted(ends.revisions),
        "database_url": setting,
        "vault_key": vault,
    }
    emit(fmt, KIND, COLUMNS, rows, title=f"{source} -> {target}", meta=meta)
    said = out if fmt is Format.TABLE else err
    moved = sum(t.postgresql_rows or 0 for t in tables if not t.note)
    revisions = ", ".join(sorted(ends.revisions))
    password = " (with its password)" if make_url(target_url).password else ""
    for line in (
        f"copied {moved} rows into {target} (migration {revisions})",
        f'change one setting: database_url = "{setting}"{password} in ccm.toml, or CCM_DATABASE_URL',
        f"tokens were copied encrypted: ccm on PostgreSQL needs the same vault key ({vault})",
        f"the SQLite store {make_url(settings.db_url).database} is left untouched",
    ):
        said.print(line, markup=False)
    if not copy.rows_equal(tables):
        raise Failure(f"{target} holds different row counts than SQLite after the copy (see the table)")


def setting_value(target_url: str) -> str:
    """The target as database_url should hold it, its password masked (the person typed it; we never show
    it): the URL as given, query (search_path, sslmode) kept."""
    return make_url(target_url).render_as_string(hide_password=True)


def vault_words(settings: Settings) -> str:
    if settings.vault_key:
        return "keep the vault_key setting as it is"
    return f"keep {settings.data_dir / KEY_FILE}, or set vault_key to what it holds"
