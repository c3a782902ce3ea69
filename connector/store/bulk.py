"""Bulk writes without SQLAlchemy's per-row parameter machinery (SQLite).

A page writes a thousand rows at once; on SQLite, building each row's parameters through Core costs more
than the database work. Here the statement is compiled once, each column's own bind processor (our
exact-money and UTC types included) converts the values, and the driver's executemany does the rest: same
SQL, same conversions, a fraction of the Python. PostgreSQL keeps Core's path (psycopg's own adapters, and
SQLAlchemy's batched "insertmanyvalues"), which is already efficient there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.sql import Insert

_compiled: dict[str, tuple[str, list[tuple[str, Any]]]] = {}  # key -> (SQL, [(column, bind processor)])


def executemany(
    conn: Connection,
    key: str,
    build: Callable[[], Insert],
    table: Table,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
) -> None:
    """Execute the INSERT that `build` makes for `rows` (each a dict of `columns`) in one driver call.

    `key` names the statement's shape in the compiled-statement cache (one constant per call site and table).
    Runs in the caller's transaction; on SQLite, a row missing one of `columns` gets NULL there (not the
    column's default).
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(build(), list(rows))
        return
    if key not in _compiled:
        names = list(columns) if columns is not None else [c.name for c in table.columns]
        compiled = build().compile(dialect=conn.dialect, column_keys=names)
        order = list(compiled.positiontup or [])
        processors = [(n, table.c[n].type.bind_processor(conn.dialect)) for n in order]
        _compiled[key] = (compiled.string, processors)
    sql, pairs = _compiled[key]
    params = list(zip(*(_column(rows, n, p) for n, p in pairs), strict=True))
    conn.exec_driver_sql(sql, params)


def _column(rows: Sequence[dict[str, Any]], name: str, process: Any) -> list[Any]:
    """One column's values for the driver, converted by its bind processor.

    A value that is the very object of the row before (a planning time, say, shared by 10,000 rows) is
    converted once.
    """
    values = [row.get(name) for row in rows]
    if not process:
        return values
    out: list[Any] = []
    add = out.append
    last: Any = out  # no row's value
    converted: Any = None
    for value in values:
        if value is not last:
            last, converted = value, process(value)
        add(converted)
    return out
