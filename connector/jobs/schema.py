"""procrastinate's tables, types and functions in ccm's PostgreSQL database, applied with ccm's migrations.

They go in the schema the connection's search_path names first (each test has a schema of its own; a deploy
usually uses `public`). Applying is idempotent: a schema that has `procrastinate_jobs` is left as it is.
A later procrastinate version that changes its schema comes with a ccm migration applying its migration
files (procrastinate.schema.SchemaManager.get_migrations_path()).
"""

from __future__ import annotations

from procrastinate.schema import SchemaManager
from sqlalchemy import Connection, text

TABLES = ("procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers",
          "procrastinate_workers")  # fmt: skip


def present(conn: Connection) -> bool:
    return conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None


def apply(conn: Connection) -> bool:
    """Create procrastinate's schema unless it is there; True when it was created. PostgreSQL only."""
    if conn.dialect.name != "postgresql" or present(conn):
        return False
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:  # no parameters: psycopg sends the script as it is, `%` and all
        cursor.execute(SchemaManager.get_schema())
    finally:
        cursor.close()
    return True


def drop(conn: Connection) -> None:
    """Remove procrastinate's schema (a downgrade past 0017)."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text(f"DROP TABLE IF EXISTS {', '.join(TABLES)} CASCADE"))
    conn.execute(
        text("""
        DO $$ DECLARE f record; BEGIN
          FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                   WHERE p.proname LIKE 'procrastinate%' AND p.pronamespace = current_schema()::regnamespace
          LOOP EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE'; END LOOP;
        END $$""")
    )
    for name in ("procrastinate_job_status", "procrastinate_job_event_type"):
        conn.execute(text(f"DROP TYPE IF EXISTS {name} CASCADE"))
