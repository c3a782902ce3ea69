"""Opening the database: URL resolution, SQLite pragmas (WAL), and migrations applied on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK = 0x63636D  # "ccm": one migrator at a time on a shared PostgreSQL


class DatabaseUrlError(ValueError):
    pass


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'ccm.db'}"


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs; refuse what we cannot open."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(f"not a database URL: {_redact(url)}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseUrlError(
            f"unsupported database {parsed.get_backend_name()!r} (use sqlite or postgresql)"
        )
    return parsed.render_as_string(hide_password=False)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front, so a transaction that reads then writes never fails to upgrade
    # its lock under WAL; readers (Store.read) begin deferred and never block anyone.
    readonly = conn.get_execution_options().get("ccm_readonly", False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def create(url: str) -> Engine:
    """An Engine for `url` with ccm's settings. SQLite files get WAL and their folder is created."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revisions() -> frozenset[str]:
    """Every head of the migration graph (areas may add their own branch off the schema)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK})
            conn.commit()
        try:
            yield conn
        finally:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK})
                conn.commit()


def upgrade(engine: Engine) -> tuple[frozenset[str], frozenset[str]]:
    """Apply every pending migration; returns (revisions before, revisions after)."""
    with _migration_lock(engine) as conn:
        before = frozenset(MigrationContext.configure(conn).get_current_heads())
        command.upgrade(_alembic_config(conn), "heads")
        conn.commit()
        after = frozenset(MigrationContext.configure(conn).get_current_heads())
    return before, after


def ensure_current(engine: Engine) -> None:
    """Migrate on first use: cheap when the database is already at head."""
    if current_revisions(engine) != head_revisions():
        upgrade(engine)
