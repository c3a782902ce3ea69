"""Incremental syncs asked for and not yet done: webhooks, `ccm sync --now`, polling.

Requests are rows, so they survive a restart and any server sharing the database may serve them. A server
waits until a tenant's requests have been quiet for the debounce time (or the oldest has waited the longest
delay allowed), syncs the streams they name, and deletes the requests it covered, never ones that arrived
while it was syncing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from connector.store.schema import sync_requests

WEBHOOK = "webhook"
NOW = "now"
POLL = "poll"


@dataclass(frozen=True, slots=True)
class Pending:
    """One tenant's waiting requests."""

    tenant_id: str
    count: int
    first_at: datetime
    last_at: datetime
    up_to: int  # the newest request id: syncing now covers every request up to it

    def ready(self, now: datetime, debounce: float, max_delay: float) -> bool:
        """Quiet for `debounce` seconds, or the oldest has waited `max_delay`."""
        return (now - self.last_at).total_seconds() >= debounce or (
            now - self.first_at
        ).total_seconds() >= max_delay


def add(conn: Connection, tenant_id: str, streams: Iterable[str | None], reason: str, now: datetime) -> int:
    """Ask for an incremental sync of `streams` (None: all of them); returns how many rows were added."""
    rows = [
        {"tenant_id": tenant_id, "stream": stream, "reason": reason, "requested_at": now}
        for stream in dict.fromkeys(streams)
    ]
    if rows:
        conn.execute(sync_requests.insert(), rows)
    return len(rows)


def pending(conn: Connection) -> list[Pending]:
    """Every tenant with waiting requests."""
    r = sync_requests.c
    query = select(
        r.tenant_id, func.count(), func.min(r.requested_at), func.max(r.requested_at), func.max(r.request_id)
    ).group_by(r.tenant_id)
    return [Pending(t, int(n), first, last, int(up_to)) for t, n, first, last, up_to in conn.execute(query)]


def streams(conn: Connection, tenant_id: str, up_to: int) -> tuple[list[str] | None, list[str]]:
    """What requests up to `up_to` ask for: the streams (None: all) and why (webhook, now, poll)."""
    r = sync_requests.c
    rows = conn.execute(
        select(r.stream, r.reason).where(r.tenant_id == tenant_id, r.request_id <= up_to)
    ).all()
    reasons = sorted({reason for _, reason in rows})
    if any(stream is None for stream, _ in rows):
        return None, reasons
    return sorted({str(stream) for stream, _ in rows}), reasons


def newest(conn: Connection, tenant_id: str, up_to: int | None = None) -> int | None:
    """The newest request id of the tenant (at most `up_to`); None when it has none waiting."""
    r = sync_requests.c
    query = select(func.max(r.request_id)).where(r.tenant_id == tenant_id)
    if up_to is not None:
        query = query.where(r.request_id <= up_to)
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def done(conn: Connection, tenant_id: str, up_to: int) -> int:
    """Forget the requests a finished sync covered."""
    r = sync_requests.c
    return conn.execute(
        sync_requests.delete().where(r.tenant_id == tenant_id, r.request_id <= up_to)
    ).rowcount


def covered_by(conn: Connection, tenant_id: str, started: datetime) -> int:
    """Forget requests made before a whole-tenant sync started (it read what they asked for)."""
    r = sync_requests.c
    return conn.execute(
        sync_requests.delete().where(r.tenant_id == tenant_id, r.requested_at < started)
    ).rowcount


def depth(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(sync_requests)).scalar_one())
