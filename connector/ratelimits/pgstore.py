"""Shared limits in ccm's PostgreSQL database: one log table of call starts, one table of leases.

pyrate-limiter's own PostgresBucket keeps a table per bucket (thousands of tables for thousands of firms) and
locks the whole table with NOWAIT; so the storage here is ours and the arithmetic the library's: each
check's counts go through its SlidingWindowLog or FixedWindow `decide`. A call's checks are decided in one
short transaction holding a transaction advisory lock per key (taken in key order: no deadlock), so
processes never both take the last place, and a refused call is counted nowhere. An in-flight place is a
row per place and key, taken by one UPDATE with SKIP LOCKED and given back by another (a lease that
expires: `expires_at`).

The tables are UNLOGGED (a crash empties them: limits restart counting, which costs at most one window of
pacing) and created on first use, under an advisory lock, in the schema the database URL points at.
"""

from __future__ import annotations

import os
import threading
import uuid
import zlib
from collections.abc import Sequence
from functools import partial
from typing import Any

from pyrate_limiter.abstracts.algorithm import Decision
from sqlalchemy import Connection, create_engine, text

from connector.ratelimits import LEASE_SECONDS, Check, Verdict
from connector.store.engine import normalise_url

LEAK_EVERY = 200  # admits in this process between two clean-ups of the starts no window needs
_SETUP = (
    "CREATE UNLOGGED TABLE IF NOT EXISTS ccm_limit_starts (key text NOT NULL, at double precision NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ccm_limit_starts_key_at ON ccm_limit_starts (key, at)",
    "CREATE UNLOGGED TABLE IF NOT EXISTS ccm_limit_slots "
    "(key text NOT NULL, slot integer NOT NULL, token text, expires_at timestamptz, PRIMARY KEY (key, slot))",
)
_LOCK = text(
    "SELECT pg_advisory_xact_lock(h) FROM (SELECT hashtextextended(k, 7) AS h "
    "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS s"
)
_PEEK = text("SELECT at FROM ccm_limit_starts WHERE key = :key ORDER BY at DESC OFFSET :offset LIMIT 1")
_PUT = text("INSERT INTO ccm_limit_starts (key, at) SELECT unnest(CAST(:keys AS text[])), :at")
_LEAK = text("DELETE FROM ccm_limit_starts WHERE key = :key AND at < :bound")
_SLOTS = text(
    "INSERT INTO ccm_limit_slots (key, slot) SELECT :key, generate_series(0, :cap - 1) ON CONFLICT DO NOTHING"
)
# One statement: a free (or expired) place, locked with SKIP LOCKED so two takers never get the same one.
_LEASE = text(
    "UPDATE ccm_limit_slots SET token = :token, expires_at = clock_timestamp() + make_interval(secs => :ttl) "
    "WHERE (key, slot) = (SELECT key, slot FROM ccm_limit_slots WHERE key = :key AND slot < :cap "
    "AND (token IS NULL OR expires_at < clock_timestamp()) ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "RETURNING slot"
)
_RELEASE = text(
    "UPDATE ccm_limit_slots SET token = NULL, expires_at = NULL WHERE key = :key AND token = :token"
)


def _lock_id(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class PostgresBackend:
    """Windows and leases in the PostgreSQL database at `url`, every key under `prefix:`."""

    name = "postgresql"

    def __init__(self, url: str, prefix: str = "ccm") -> None:
        # One short transaction per admitted call, serialised anyway by the per-app key's advisory lock: two
        # connections serve any concurrency (a third taker waits a few milliseconds for one).
        name = f"ccm limits {os.getpid()}"  # in pg_stat_activity (connector/jobs/engine.py names the others)
        self.engine = create_engine(normalise_url(url), pool_size=1, max_overflow=1,
                                    connect_args={"application_name": name})  # fmt: skip
        self.prefix = prefix
        self._admits = 0
        self._count_lock = threading.Lock()
        self._auto = self.engine.execution_options(isolation_level="AUTOCOMMIT")  # one statement, one trip
        self._slotted: set[tuple[str, int]] = set()
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id("ccm_limit_tables")})
            for statement in _SETUP:
                conn.execute(text(statement))

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def admit(self, checks: Sequence[Check], now: float) -> Verdict:
        stamp = int(now * 1000)
        keys = [self._key(c.key) for c in checks]
        with self.engine.begin() as conn:
            conn.execute(_LOCK, {"keys": keys})
            counts = self._counts(conn, checks, keys, stamp)
            for check, key, counted in zip(checks, keys, counts, strict=True):
                decision = check.algorithm().decide(
                    check.rates(), counted, 1, stamp, partial(_peek, conn, key)
                )
                if not decision.allowed:
                    return Verdict(_wait_ms(decision) / 1000, check.key)
            conn.execute(_PUT, {"keys": keys, "at": stamp / 1000})
            if self._leak_due():
                for check, key in zip(checks, keys, strict=True):
                    bound = check.algorithm().leak_bound(check.rates(), stamp)
                    conn.execute(_LEAK, {"key": key, "bound": bound / 1000})
        return Verdict()

    def _counts(
        self, conn: Connection, checks: Sequence[Check], keys: list[str], stamp: int
    ) -> list[list[int]]:
        """Per check, per rate (in the check's rate order): starts within the rate's window."""
        columns: list[str] = []
        params: dict[str, Any] = {"keys": keys}
        for i, (check, key) in enumerate(zip(checks, keys, strict=True)):
            params[f"k{i}"] = key
            for j, rate in enumerate(check.rates()):
                params[f"s{i}_{j}"] = check.algorithm().window_start(rate, stamp) / 1000
                columns.append(f"count(*) FILTER (WHERE key = :k{i} AND at >= :s{i}_{j})")
        row = conn.execute(
            text(f"SELECT {', '.join(columns)} FROM ccm_limit_starts WHERE key = ANY(CAST(:keys AS text[]))"),  # noqa: S608 - placeholders only
            params,
        ).one()
        out: list[list[int]] = []
        at = 0
        for check in checks:
            width = len(check.rates())
            out.append([int(v) for v in row[at : at + width]])
            at += width
        return out

    def _leak_due(self) -> bool:
        with self._count_lock:
            self._admits += 1
            return self._admits % LEAK_EVERY == 1

    def lease(self, key: str, capacity: int) -> str | None:
        token, key = uuid.uuid4().hex, self._key(key)
        with self._auto.connect() as conn:
            if (key, capacity) not in self._slotted:
                conn.execute(_SLOTS, {"key": key, "cap": capacity})
                self._slotted.add((key, capacity))
            taken = conn.execute(_LEASE, {"key": key, "token": token, "ttl": LEASE_SECONDS, "cap": capacity})
            return token if taken.first() is not None else None

    def release(self, key: str, token: str) -> None:
        with self._auto.connect() as conn:
            conn.execute(_RELEASE, {"key": self._key(key), "token": token})

    def close(self) -> None:
        self.engine.dispose()


def _peek(conn: Connection, key: str, offset: int) -> int | None:
    at = conn.execute(_PEEK, {"key": key, "offset": offset}).scalar()
    return None if at is None else round(float(at) * 1000)


def _wait_ms(decision: Decision) -> int:
    return max(decision.retry_after_ms or 1, 1)
