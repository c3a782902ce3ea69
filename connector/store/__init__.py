"""The store: SQLAlchemy tables, migrations and queries. SQLite (WAL) by default, PostgreSQL at scale."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from connector.store import engine as _engine


class Store:
    """A migrated database. Open with `Store.open(url)`; use `begin()` for one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, migrate: bool = True) -> Store:
        engine = _engine.create(url)
        if migrate:
            _engine.ensure_current(engine)
        return cls(engine)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(ccm_readonly=True) as conn:
            yield conn

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()
