"""Opening the database: URL resolution, SQLite pragmas (WAL), and migrations applied on first use.

Files at rest are private whatever the umask: ccm's data folder is 0700, and the SQLite file (so its -wal
and -shm, which SQLite creates with the database file's mode) and the vault key are 0600. A data folder
from before ccm cared is tightened when ccm opens it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from connector.redact import scrub

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
CONNECT_TIMEOUT_SECONDS = 10  # PostgreSQL: a host that drops packets fails in seconds, not minutes
# PostgreSQL: a pooled connection idle longer than this is pinged before it is handed out, and replaced if the
# server has dropped it (a restart, a failover, an idle timeout). One used moments ago is not: a night's
# transactions follow each other within milliseconds, and a ping for each was one round trip in ten.
PING_AFTER_IDLE_SECONDS = 5.0
_PG_LOCK = 0x63636D  # "ccm": one migrator at a time on a shared PostgreSQL
DB_FILE = "ccm.db"
KEY_FILE = "vault.key"  # the token vault's key (connector.oauth), when not given in the settings
_SIDECARS = ("-wal", "-shm", "-journal")  # SQLite's files beside the database, as private as it
_PRIVATE_FILES = (DB_FILE, *(DB_FILE + s for s in _SIDECARS), KEY_FILE)  # what ccm keeps in data_dir
_OTHERS = 0o077  # group and other permission bits
# JSON columns (outbox payloads: 10,000s a night) as json.dumps writes them, byte for byte, without its
# check for circular references (nothing ccm stores refers to itself): about half the cost.
_JSON = json.JSONEncoder(check_circular=False).encode

log = structlog.get_logger(__name__)


class DatabaseUrlError(ValueError):
    """The database URL cannot be used: not a URL, or a backend other than SQLite and PostgreSQL.

    Its message never shows a password.
    """


class DatabaseUnreachable(RuntimeError):
    """The database cannot be reached or opened.

    One line naming it (user, host, port, database), never its password:
    `cannot reach the database postgresql://ccm@db:5432/ccm (connection refused)`.
    """


def shown_url(url: str | URL) -> str:
    """The database as a person recognises it: backend, user, host, port, database.

    No password, no driver, no query (which may carry credentials too); "<unparseable>" for what is not a
    URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparseable>"
    plain = URL.create(
        parsed.get_backend_name(), parsed.username, None, parsed.host, parsed.port, parsed.database
    )
    return plain.render_as_string(hide_password=True)


_PG_PREFIX = re.compile(r'^(connection failed: )?(connection to server at "[^"]*"(, port \d+)? failed: )?')


def _reason(exc: OperationalError) -> str:
    """The driver's first line, without what the URL already says.

    For example `connection refused`, `database "x" does not exist`, `password authentication failed for
    user "ccm"`.
    """
    lines = [line.strip() for line in str(exc.orig or exc).splitlines() if line.strip()]
    text = _PG_PREFIX.sub("", lines[0] if lines else type(exc.orig).__name__).removeprefix("FATAL:").strip()
    return scrub(text[:1].lower() + text[1:]) if text else "no reason given"


def unreachable(url: str | URL, exc: OperationalError) -> DatabaseUnreachable:
    """The error to raise for a failure to connect to `url`: the database named, and the driver's reason."""
    verb = "open" if make_url(url).get_backend_name() == "sqlite" else "reach"
    return DatabaseUnreachable(f"cannot {verb} the database {shown_url(url)} ({_reason(exc)})")


@contextmanager
def reaching(engine: Engine) -> Iterator[None]:
    """Turn a failure to connect inside the block into DatabaseUnreachable naming the database."""
    try:
        yield
    except OperationalError as exc:
        if _connects(exc):
            raise unreachable(engine.url, exc) from None
        raise


def _connects(exc: OperationalError) -> bool:
    """Whether the error is about reaching or opening the database, not one statement failing."""
    return exc.statement is None or "unable to open database file" in str(exc.orig)


def default_url(data_dir: Path) -> str:
    """The SQLite file in `data_dir` as a URL that opens exactly it (`?`, `%`, `#` in the path escaped)."""
    return URL.create("sqlite", database=str(data_dir / DB_FILE)).render_as_string(hide_password=False)


def private_dir(path: Path) -> Path:
    """`path` made if missing (its parents as usual) and closed to other users: 0700, whatever the umask.

    A folder that already exists keeps its owner's bits and loses any group's and others'.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        tighten(path)
    else:
        os.chmod(path, 0o700)  # mkdir's mode passes through the umask, which could take owner bits too
    return path


def create_private_file(path: Path) -> None:
    """Make `path` empty with mode 0600 unless it exists (then it is left as it is).

    The mode is set as the file is created, so no other user can open it in between; a process-wide umask
    change would not be safe in a server's threads.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)  # the umask could have taken owner bits away
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    """Take group and other permissions off `path` if it has any (one from before ccm made files private).

    Logs (info) which path and modes, never what is in it. A path ccm may not chmod (another user's) is
    left with a warning: ccm still works, and the warning says what to fix.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & _OTHERS:
        return
    try:
        os.chmod(path, mode & ~_OTHERS)
    except PermissionError:
        log.warning("files.open_to_others", path=str(path), mode=f"{mode:04o}", fix="chmod go-rwx")
        return
    log.info("files.tightened", path=str(path), was=f"{mode:04o}", now=f"{mode & ~_OTHERS:04o}")


def secure_data_dir(data_dir: Path) -> Path:
    """Make ccm's data folder (0700) or tighten it, and the database and vault key files in it (0600).

    The folders in it (tenants/) need nothing of their own: no other user gets past a 0700 parent.
    """
    private_dir(data_dir)
    for name in _PRIVATE_FILES:
        tighten(data_dir / name)
    return data_dir


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


def _sidecars_like(database: Path) -> None:
    """-wal/-shm/-journal no more open than the database file.

    SQLite gives the ones it creates the database file's mode (umask or not); ones left from before the
    database was made private keep their old mode until this takes it down to the database's.
    """
    try:
        allowed = stat.S_IMODE(database.stat().st_mode)
    except FileNotFoundError:
        return
    for suffix in _SIDECARS:
        sidecar = database.with_name(database.name + suffix)
        try:
            mode = stat.S_IMODE(sidecar.stat().st_mode)
        except FileNotFoundError:
            continue
        if not mode & ~allowed:
            continue
        try:
            os.chmod(sidecar, mode & allowed)
        except PermissionError:  # another user's file beside a shared database: theirs to mind
            log.warning("files.open_to_others", path=str(sidecar), mode=f"{mode:04o}", fix="chmod go-rwx")


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front, so a transaction that reads then writes never fails to upgrade
    # its lock under WAL; readers (Store.read) begin deferred and never block anyone.
    readonly = conn.get_execution_options().get("ccm_readonly", False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def create(url: str) -> Engine:
    """An Engine for `url` with ccm's settings, not yet connected.

    SQLite files get WAL; a missing one is made 0600 (its folder too, if missing, as any folder: ccm's own
    data folder is made private by Settings.db_url). PostgreSQL connections time out after
    CONNECT_TIMEOUT_SECONDS unless the URL says otherwise.

    Raises:
        DatabaseUrlError: As `normalise_url`.
        DatabaseUnreachable: The SQLite file's folder cannot be made.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_JSON)
        event.listen(engine, "connect", _sqlite_pragmas)
        if (database := _sqlite_file(parsed)) is not None:
            try:
                database.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file where the folder should be, no permission
                why = (exc.strerror or str(exc)).lower()
                raise DatabaseUnreachable(f"cannot open the database {shown_url(parsed)} ({why})") from None
            with suppress(OSError):  # a folder, or no write access: SQLite says so in its own words
                create_private_file(database)  # before SQLite makes it 0644; its -wal/-shm copy its mode
            event.listen(engine, "connect", _SidecarModes(database))  # after the pragmas made -wal/-shm
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    engine = create_engine(url, connect_args=connect_args, json_serializer=_JSON)
    PingWhenIdle(engine, PING_AFTER_IDLE_SECONDS).listen()
    return engine


class PingWhenIdle:
    """Pool events: a connection idle in the pool longer than `after` seconds is pinged when checked out.

    SQLAlchemy's `pool_pre_ping` pings at every checkout, that is before every transaction. Here a dead
    connection is found the same way (the dialect's own ping and disconnect test) but only where one can have
    died unseen; raising DisconnectionError makes the pool drop it and hand out a new one (SQLAlchemy's
    documented checkout-event contract). A connection that dies within `after` seconds of its last use fails
    its next statement, as one dying in the middle of a transaction does, with or without a ping.
    """

    _SINCE = "ccm_idle_since"

    def __init__(self, engine: Engine, after: float) -> None:
        self.engine = engine
        self.after = after

    def listen(self) -> None:
        """Attach to the engine's pool."""
        event.listen(self.engine, "checkin", self.checkin)
        event.listen(self.engine, "checkout", self.checkout)

    def checkin(self, _dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        """Note when the connection went back to the pool."""
        record.info[self._SINCE] = time.monotonic()

    def checkout(
        self, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        """Ping a connection idle longer than `after`; DisconnectionError (the pool replaces it) if dead."""
        since = record.info.get(self._SINCE)
        if since is None or time.monotonic() - since <= self.after:
            return  # new, or back in the pool moments ago
        dialect = self.engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc
            raise


class _SidecarModes:
    """A connect listener: the database's -wal/-shm no more open than it (see _sidecars_like)."""

    def __init__(self, database: Path) -> None:
        self.database = database

    def __call__(self, _dbapi_connection: Any, _record: Any) -> None:
        _sidecars_like(self.database)


def _sqlite_file(parsed: URL) -> Path | None:
    """The file a SQLite URL opens; None for memory and for `uri=true` URLs (SQLite parses those)."""
    if not parsed.database or parsed.database == ":memory:":
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1", "yes", "on"):
        return None
    return Path(parsed.database)


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
    """The migration revisions the database is at (empty for a database never migrated)."""
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
    """Apply every pending migration; returns (revisions before, revisions after).

    A database that cannot be reached is DatabaseUnreachable, one line naming it.
    """
    with reaching(engine), _migration_lock(engine) as conn:
        before = frozenset(MigrationContext.configure(conn).get_current_heads())
        command.upgrade(_alembic_config(conn), "heads")
        conn.commit()
        after = frozenset(MigrationContext.configure(conn).get_current_heads())
    return before, after


def ensure_current(engine: Engine) -> None:
    """Migrate on first use: cheap when the database is already at head.

    Raises:
        DatabaseUnreachable: The database cannot be reached (the first connection is made here).
    """
    with reaching(engine):
        current = current_revisions(engine)
    if current != head_revisions():
        upgrade(engine)
