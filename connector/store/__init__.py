"""The store: SQLAlchemy tables, migrations and queries. SQLite (WAL) by default, PostgreSQL at scale."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from connector.store import engine as _engine


class Store:
    """A migrated database. Open with `Store.open(url)`; use `begin()` for one transaction.

    One Store serves every thread: each `begin()`/`read()` takes its own pooled connection (an in-memory
    SQLite database is one per thread). The query modules
    (`records`, `synclog`, `tenants`, `connector.outbox`, ...) take such a connection and never commit:
    the caller's `begin()` block is the transaction.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, migrate: bool = True) -> Store:
        """Open the database at `url` (sqlite:/// or postgresql://), migrated to the current schema.

        Args:
            url: A SQLAlchemy URL; plain postgresql:// uses the psycopg 3 driver. A SQLite file missing
                is created private (0600).
            migrate: Apply pending migrations first (cheap when the database is current). Without it
                the database is not touched until first use.

        Raises:
            DatabaseUrlError: `url` is not a database URL, or names a backend ccm does not support.
            DatabaseUnreachable: The database cannot be reached or opened (one line naming it, never its
                password).
        """
        engine = _engine.create(url)
        if migrate:
            _engine.ensure_current(engine)
        return cls(engine)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One read-write transaction: committed when the block ends, rolled back if it raises.

        On SQLite it takes the write lock at its start (BEGIN IMMEDIATE), so a transaction that reads and
        then writes never fails to upgrade its lock; writers wait for one another (up to 30 s).
        """
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading: nothing done through it is committed.

        On SQLite its transaction begins deferred and never blocks a writer (WAL); use `begin()` to write.
        """
        with self.engine.connect().execution_options(ccm_readonly=True) as conn:
            yield conn

    @property
    def backend(self) -> str:
        """The database's kind: "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection (at shutdown, or before a test removes the database)."""
        self.engine.dispose()
