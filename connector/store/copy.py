"""Copying a SQLite store into an empty PostgreSQL database (`ccm db migrate-to-postgres`).

Invariants:
- The source is only read, in one read transaction: one consistent snapshot (WAL lets a running server go
  on), and the SQLite file is left exactly as it was.
- The target is written in one transaction: either every table is copied and its row count checked against
  the source's, or nothing is (a failure, or a count that differs, rolls back: the target stays empty).
- Tables go in foreign-key order (`schema.metadata.sorted_tables`); rows are streamed in batches of
  `BATCH`, so memory stays bounded whatever a table's size.
- Values pass through the schema's column types both ways (exact amounts, UTC instants, JSON), so each
  backend holds them in its own form and they read back equal.
- A target that already holds a row in any of ccm's tables is refused, never overwritten or merged into.
- Source and target are at the same migration revisions (the target is upgraded first); a table of the
  schema that neither holds (one a newer migration dropped) is skipped and reported as absent.
- PostgreSQL's sequences behind integer keys (sync_requests.request_id, ...) continue after the largest
  copied key, so new rows never collide with copied ones.
- Tokens and connect-flow states are copied as they are, encrypted: the target needs the same vault key.
- Tables that describe processes working on the SQLite store (`TRANSIENT`) are not copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Column, Connection, Engine, Select, String, Table, func, inspect, literal, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from connector.redact import scrub
from connector.store import engine as db
from connector.store.schema import metadata

Row = tuple[Any, ...]
BATCH = 2_000  # rows read from SQLite and written to PostgreSQL at a time

# Not copied, and why: each row describes a process working on the SQLite store, not the firm's data.
TRANSIENT: Mapping[str, str] = {
    # A lease names a run on the SQLite store; copied, it would hold the tenant's first PostgreSQL run back
    # until it expired. The nights table (which nights ran) and the outbox (what was sent) are copied.
    "run_leases": "not copied: a run's lease on the SQLite store",
    # Heartbeats of servers running on the SQLite store; servers on PostgreSQL register themselves.
    "servers": "not copied: servers alive on the SQLite store",
}


class CopyRefused(ValueError):
    """The copy cannot start: nothing was written anywhere.

    Wrong source or target, a target unreachable or not empty, revisions that differ. One line naming what
    was wrong.
    """


class CopyFailed(RuntimeError):
    """The copy started and failed; the target's transaction was rolled back, so it holds nothing of it."""


@dataclass(frozen=True)
class TableCopy:
    """One table of the schema: its rows in SQLite and in PostgreSQL after the copy (None: not there)."""

    table: str
    sqlite_rows: int | None
    postgresql_rows: int | None
    note: str = ""


class Progress(Protocol):
    """What the copy tells as it goes (the command line draws a bar per table)."""

    def start(self, table: str, rows: int) -> None:
        """The copy of `table` begins; it has `rows` rows in SQLite."""

    def advance(self, table: str, rows: int) -> None:
        """`rows` more rows of `table` were written."""


class _Quiet:
    def start(self, table: str, rows: int) -> None:
        return None

    def advance(self, table: str, rows: int) -> None:
        return None


@dataclass(frozen=True)
class Endpoints:
    """The checked source and target: engines ready to copy, and the revisions both are at."""

    source: Engine
    target: Engine
    revisions: frozenset[str]

    def dispose(self) -> None:
        """Close both engines' connections."""
        self.source.dispose()
        self.target.dispose()


def sqlite_source(url: str) -> Engine:
    """An engine on the SQLite store at `url`, which must exist (it is never created here).

    Raises:
        CopyRefused: `url` is not SQLite, or its file does not exist.
    """
    try:
        parsed = make_url(db.normalise_url(url))
    except db.DatabaseUrlError as exc:
        raise CopyRefused(f"database_url: {exc}") from None
    if parsed.get_backend_name() != "sqlite":
        raise CopyRefused(
            f"the configured store is already {db.shown_url(parsed)} (database_url), not SQLite: "
            "nothing to migrate"
        )
    if not parsed.database or parsed.database == ":memory:" or not Path(parsed.database).is_file():
        raise CopyRefused(f"no SQLite store at {parsed.database or ':memory:'} (data_dir or database_url)")
    return db.create(parsed.render_as_string(hide_password=False))


def postgresql_target(url: str) -> Engine:
    """An engine on the PostgreSQL database at `url`, not yet connected.

    Raises:
        CopyRefused: `url` is not a PostgreSQL URL.
    """
    try:
        normal = db.normalise_url(url)
    except db.DatabaseUrlError as exc:
        raise CopyRefused(f"TARGET_URL: {exc}") from None
    parsed = make_url(normal)
    if parsed.get_backend_name() != "postgresql":
        raise CopyRefused(
            f"TARGET_URL: {db.shown_url(parsed)} is not PostgreSQL (postgresql://USER@HOST:5432/DATABASE)"
        )
    return db.create(normal)


def prepare(source_url: str, target_url: str) -> Endpoints:
    """Check both ends and upgrade the target to this ccm's migrations.

    Raises:
        CopyRefused: The copy cannot go ahead (see the class); nothing was copied, the SQLite file is
            untouched, and the target was at most upgraded (still without a row).
    """
    target = postgresql_target(target_url)
    source = sqlite_source(source_url)
    try:
        revisions = _source_revisions(source)
        _reach(target)
        where = db.shown_url(target.url)
        try:
            _refuse_data(target, where)
            _upgrade(target, where)
            at = db.current_revisions(target)
            if at != revisions:
                raise CopyRefused(
                    f"{where} is at migration {_shown(at)} after upgrading, "
                    f"the SQLite store at {_shown(revisions)}"
                )
            _refuse_data(target, where)
        except SQLAlchemyError as exc:  # no rights to read it, say
            raise CopyRefused(f"{where}: {_first_line(exc)}") from None
    except BaseException:
        source.dispose()
        target.dispose()
        raise
    return Endpoints(source, target, revisions)


def _upgrade(target: Engine, where: str) -> None:
    try:
        db.upgrade(target)
    except db.DatabaseUnreachable as exc:
        raise CopyRefused(str(exc)) from None
    except (SQLAlchemyError, CommandError) as exc:  # another application's table, no rights, a newer ccm
        raise CopyRefused(f"cannot upgrade {where} to ccm's schema ({_first_line(exc)})") from None


def _source_revisions(source: Engine) -> frozenset[str]:
    try:
        with db.reaching(source):
            at = db.current_revisions(source)
    except db.DatabaseUnreachable as exc:
        raise CopyRefused(str(exc)) from None
    heads = db.head_revisions()
    if at == heads:
        return at
    where = db.shown_url(source.url)
    if at <= _known_revisions():
        raise CopyRefused(
            f"{where} is at migration {_shown(at)}, this ccm at {_shown(heads)}: run `ccm db upgrade` first"
        )
    raise CopyRefused(
        f"{where} is at migration {_shown(at)}, made by a newer ccm than this one ({_shown(heads)})"
    )


def _known_revisions() -> frozenset[str]:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    return frozenset(s.revision for s in ScriptDirectory.from_config(config).walk_revisions())


def _reach(target: Engine) -> None:
    try:
        with db.reaching(target), target.connect() as conn:
            conn.execute(text("SELECT 1"))
    except db.DatabaseUnreachable as exc:
        raise CopyRefused(str(exc)) from None


def _refuse_data(target: Engine, where: str) -> None:
    """CopyRefused if any of ccm's tables in the target holds a row."""
    with target.connect() as conn:
        present = set(inspect(conn).get_table_names())
        for table in metadata.sorted_tables:
            if table.name in present and conn.execute(_any_row(table)).first() is not None:
                raise CopyRefused(
                    f"{where} already holds ccm data (table {table.name}): migrate into an empty database"
                )


def _any_row(table: Table) -> Select[Any]:
    return select(literal(1)).select_from(table).limit(1)


def _shown(revisions: Iterable[str]) -> str:
    return ", ".join(sorted(revisions)) or "none"


def _first_line(exc: BaseException) -> str:
    """The driver's words: its first line, and PostgreSQL's detail when it names the row.

    For example `duplicate key value violates unique constraint "pk_web_users": Key (name)=(x) already
    exists.`
    """
    inner = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    said = lines[0] if lines else type(inner).__name__
    detail = inner.diag.message_detail if isinstance(inner, psycopg.Error) else None
    return scrub(f"{said}: {detail}" if detail else said)


def copy(ends: Endpoints, progress: Progress | None = None, batch: int = BATCH) -> list[TableCopy]:
    """Copy every table of ccm's schema from the SQLite store into the empty, upgraded target.

    One transaction on the target; one read transaction (a snapshot) on the source.

    Args:
        ends: From `prepare`.
        progress: Told each table's start and each batch written.
        batch: Rows read and written at a time.

    Returns:
        Each table's rows in SQLite and in PostgreSQL (counted again after the commit), in foreign-key
        order, with a note for the tables not copied.

    Raises:
        CopyFailed: A row could not be written or a count differs; the target rolled back, empty.
    """
    shown = progress or _Quiet()
    copied: list[TableCopy] = []
    with _snapshot(ends.source) as src:
        source_tables = set(inspect(src).get_table_names())
        try:
            with ends.target.begin() as dst:
                target_tables = set(inspect(dst).get_table_names())
                for table in metadata.sorted_tables:
                    if table.name not in source_tables or table.name not in target_tables:
                        copied.append(TableCopy(table.name, None, None, "absent at this migration"))
                        continue
                    rows = _count(src, table)
                    if table.name in TRANSIENT:
                        copied.append(TableCopy(table.name, rows, None, TRANSIENT[table.name]))
                        continue
                    columns = _shared_columns(table, src, dst)
                    shown.start(table.name, rows)
                    for part in _batches(src, table, columns, batch):
                        _fits(table, columns, part)
                        _write(dst, table, columns, part)
                        shown.advance(table.name, len(part))
                    written = _count(dst, table)
                    if written != rows:
                        raise CopyFailed(f"{table.name}: {rows} rows in SQLite but {written} written")
                    copied.append(TableCopy(table.name, rows, None))
                _continue_sequences(dst, [t for t in metadata.sorted_tables if t.name in target_tables])
        except CopyFailed as exc:
            raise CopyFailed(f"{exc}; nothing was written to {db.shown_url(ends.target.url)}") from None
        except (SQLAlchemyError, psycopg.Error) as exc:
            raise CopyFailed(
                f"copying {_current(copied)} failed ({_first_line(exc)}); nothing was written to "
                f"{db.shown_url(ends.target.url)}"
            ) from None
    return _verified(ends.target, copied)


def _current(copied: Sequence[TableCopy]) -> str:
    done = {c.table for c in copied}
    return next((t.name for t in metadata.sorted_tables if t.name not in done), "the sequences")


@contextmanager
def _snapshot(source: Engine) -> Iterator[Connection]:
    """One read transaction on SQLite (BEGIN, deferred: a snapshot under WAL that blocks no writer)."""
    with source.connect().execution_options(ccm_readonly=True) as conn, conn.begin():
        yield conn


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _shared_columns(table: Table, src: Connection, dst: Connection) -> list[Column[Any]]:
    """The schema's columns that both databases have (all of them when both are at the same revision)."""
    have = {c["name"] for c in inspect(src).get_columns(table.name)}
    have &= {c["name"] for c in inspect(dst).get_columns(table.name)}
    return [c for c in table.columns if c.name in have]


def _batches(src: Connection, table: Table, columns: Sequence[Column[Any]], size: int) -> Iterator[list[Row]]:
    """The table's rows in primary-key order, `size` at a time, never the whole table in memory.

    Values come through the schema's column types: Decimal, aware datetimes, JSON as Python.
    """
    query = select(*columns).order_by(*table.primary_key.columns)
    result = src.execution_options(yield_per=size).execute(query)
    for part in result.partitions(size):
        yield [tuple(row) for row in part]


def _write(dst: Connection, table: Table, columns: Sequence[Column[Any]], rows: Iterable[Row]) -> None:
    """Rows into PostgreSQL with COPY (psycopg's): several times faster than INSERTs.

    Each value goes first through its column type's bind processing for PostgreSQL, exactly as an INSERT
    by ccm would store it.
    """
    dialect = dst.dialect
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    quote = dialect.identifier_preparer
    names = ", ".join(quote.quote(c.name) for c in columns)
    driver = dst.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {quote.format_table(table)} ({names}) FROM STDIN") as pipe,
    ):
        for row in rows:
            pipe.write_row([v if p is None else p(v) for p, v in zip(processors, row, strict=True)])


def _fits(table: Table, columns: Sequence[Column[Any]], rows: Sequence[Row]) -> None:
    """CopyFailed naming the row if a text value does not fit PostgreSQL.

    SQLite keeps text of any length and NUL characters; PostgreSQL refuses both.
    """
    limited = [(n, c.name, c.type.length) for n, c in enumerate(columns) if isinstance(c.type, String)]
    for row in rows:
        for n, name, length in limited:
            value = row[n]
            if not isinstance(value, str):
                continue
            if length is not None and len(value) > length:
                raise CopyFailed(
                    f"{table.name} {_key(table, columns, row)}: {name} is {len(value)} characters, "
                    f"PostgreSQL's column holds {length}"
                )
            if "\x00" in value:
                raise CopyFailed(f"{table.name} {_key(table, columns, row)}: {name} holds a NUL character")


def _key(table: Table, columns: Sequence[Column[Any]], row: Row) -> str:
    named = dict(zip((c.name for c in columns), row, strict=True))
    return " ".join(f"{c.name}={named.get(c.name)!r}" for c in table.primary_key.columns)


def _continue_sequences(dst: Connection, tables: Iterable[Table]) -> None:
    """Each serial key's sequence set to continue after the largest key copied (1 for an empty table)."""
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = dst.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
        ).scalar_one()
        if sequence is None:
            continue
        largest = dst.execute(select(func.max(column))).scalar_one()
        dst.execute(
            text("SELECT setval(:s, :v, :called)"),
            {"s": sequence, "v": largest or 1, "called": largest is not None},
        )


def _verified(target: Engine, copied: Sequence[TableCopy]) -> list[TableCopy]:
    """The copy with PostgreSQL's rows counted again after the commit, by a new connection."""
    done: list[TableCopy] = []
    with target.connect() as conn:
        for c in copied:
            if c.sqlite_rows is None:
                done.append(c)
                continue
            done.append(TableCopy(c.table, c.sqlite_rows, _count(conn, metadata.tables[c.table]), c.note))
    return done


def rows_equal(copied: Sequence[TableCopy]) -> bool:
    """Whether every copied table holds as many rows in PostgreSQL as in SQLite."""
    return all(c.sqlite_rows == c.postgresql_rows for c in copied if c.note == "")
