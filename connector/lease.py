"""A per-tenant run lease in the database: never two runs of one tenant at once, even across processes.

`acquire` succeeds when no lease exists, the lease has expired (its holder died and stopped renewing), its
holder was a process on this host that no longer exists, or the caller already holds it. The holder renews
it while working; `release` ends it early.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from connector.store import Store
from connector.store.schema import run_leases

DEFAULT_TTL = timedelta(minutes=5)
log = structlog.get_logger(__name__)


class Busy(RuntimeError):
    """Another live holder runs this tenant now; the message says who and until when."""


def new_holder() -> str:
    """A holder name that says which process holds it, unique per call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Lease:
    tenant_id: str
    holder: str
    expires_at: datetime


def holder_is_dead(holder: str) -> bool:
    """True when the holder ran on this host and its process is gone (its lease need not be waited out)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _try(conn: Connection, tenant_id: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    lease = run_leases.c
    row = conn.execute(select(lease.holder).where(lease.tenant_id == tenant_id)).first()
    current: str | None = row.holder if row is not None else None
    condition = (lease.expires_at <= now) | (lease.holder == holder)
    if current is not None and current != holder and holder_is_dead(current):
        condition = condition | (lease.holder == current)
    taken = conn.execute(
        update(run_leases)
        .where(lease.tenant_id == tenant_id, condition)
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
    )
    if taken.rowcount == 1:
        return True
    if current is not None:
        return False
    conn.execute(
        run_leases.insert().values(tenant_id=tenant_id, holder=holder, acquired_at=now, expires_at=now + ttl)
    )
    return True


def acquire(store: Store, tenant_id: str, holder: str, now: datetime, ttl: timedelta = DEFAULT_TTL) -> Lease:
    """Take the tenant's lease or raise Busy."""
    try:
        with store.begin() as conn:
            if _try(conn, tenant_id, holder, now, ttl):
                return Lease(tenant_id, holder, now + ttl)
            row = conn.execute(select(run_leases).where(run_leases.c.tenant_id == tenant_id)).one()
    except IntegrityError:  # another process inserted the first lease between our check and insert
        with store.read() as conn:
            row = conn.execute(select(run_leases).where(run_leases.c.tenant_id == tenant_id)).one()
    raise Busy(
        f"tenant {tenant_id!r} is being run by {row.holder} (lease until {row.expires_at:%H:%M:%S} UTC)"
    )


def renew(store: Store, lease: Lease, now: datetime, ttl: timedelta = DEFAULT_TTL) -> Lease:
    """Extend a held lease; raise Busy if it was lost (expired and taken by another holder)."""
    with store.begin() as conn:
        done = conn.execute(
            update(run_leases)
            .where(run_leases.c.tenant_id == lease.tenant_id, run_leases.c.holder == lease.holder)
            .values(expires_at=now + ttl)
        )
    if done.rowcount != 1:
        raise Busy(f"the lease on tenant {lease.tenant_id!r} was lost")
    return Lease(lease.tenant_id, lease.holder, now + ttl)


def release(store: Store, lease: Lease) -> None:
    with store.begin() as conn:
        conn.execute(
            delete(run_leases).where(
                run_leases.c.tenant_id == lease.tenant_id, run_leases.c.holder == lease.holder
            )
        )


@contextmanager
def held(
    store: Store, tenant_id: str, holder: str, now: datetime, ttl: timedelta = DEFAULT_TTL
) -> Iterator[Lease]:
    """Hold the tenant's lease for the block; released at the end (a crash leaves it to expire)."""
    lease = acquire(store, tenant_id, holder, now, ttl)
    try:
        yield lease
    finally:
        release(store, lease)


@dataclass
class Keeper:
    """A lease renewed in the background while its holder works; `lost` is set if it could not be."""

    lease: Lease
    lost: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)


def _keep(store: Store, keeper: Keeper, ttl: timedelta) -> None:
    while not keeper._done.wait(ttl.total_seconds() / 3):
        try:
            keeper.lease = renew(store, keeper.lease, datetime.now(UTC), ttl)
        except Busy:
            keeper.lost.set()
            log.error("lease.lost", tenant=keeper.lease.tenant_id, holder=keeper.lease.holder)
            return
        except Exception as exc:  # a database hiccup: try again at the next beat, before the lease runs out
            log.warning("lease.renew_failed", tenant=keeper.lease.tenant_id, error=type(exc).__name__)


@contextmanager
def kept(store: Store, tenant_id: str, holder: str, ttl: timedelta = DEFAULT_TTL) -> Iterator[Keeper]:
    """Hold the tenant's lease for the block on the real clock, renewed every third of `ttl`.

    A holder that dies stops renewing, so its lease runs out within `ttl` (at once for a process on this
    host). Raises Busy if another live holder has it.
    """
    keeper = Keeper(acquire(store, tenant_id, holder, datetime.now(UTC), ttl))
    thread = threading.Thread(target=_keep, args=(store, keeper, ttl), name=f"lease-{tenant_id}", daemon=True)
    thread.start()
    try:
        yield keeper
    finally:
        keeper._done.set()
        thread.join(timeout=5)
        release(store, keeper.lease)
