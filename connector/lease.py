"""A per-tenant run lease in the database: never two runs of one tenant at once, even across processes.

`acquire` succeeds when no lease exists, the lease has expired (its holder died and stopped renewing), its
holder was a process on this host that no longer exists, or the caller already holds it. The holder renews
it while working; `release` ends it early.

Whatever runs a firm (`ccm serve`, `ccm run`, `ccm sync`, `ccm outbox send`) holds the lease with `kept`, on
the real clock whatever instant it runs "as if", and passes `Keeper.is_lost` as its `should_stop`: a holder
that was frozen (laptop sleep, SIGSTOP, a database blip) past its lease stops at its next safe point instead
of working beside, and settling the sends of, the holder that took over.
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
_ATTEMPTS = 5
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
    """Take the tenant's lease or raise Busy.

    A holder that releases between our attempt and our look at who holds it leaves no row to name: the
    lease is free again, so the attempt is repeated (a few times, then Busy says it is contended).
    """
    for _ in range(_ATTEMPTS):
        try:
            with store.begin() as conn:
                if _try(conn, tenant_id, holder, now, ttl):
                    return Lease(tenant_id, holder, now + ttl)
                row = conn.execute(select(run_leases).where(run_leases.c.tenant_id == tenant_id)).first()
        except IntegrityError:  # another process inserted the first lease between our check and insert
            with store.read() as conn:
                row = conn.execute(select(run_leases).where(run_leases.c.tenant_id == tenant_id)).first()
        if row is not None:
            until = f"{row.expires_at:%H:%M:%S} UTC"
            raise Busy(f"tenant {tenant_id!r} is being run by {row.holder} (lease until {until})")
    raise Busy(f"tenant {tenant_id!r} is contended: its lease was taken and released {_ATTEMPTS} times")


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
    """A lease renewed in the background while its holder works; `lost` is set once it could not be."""

    lease: Lease
    lost: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)
    _store: Store | None = None
    _ttl: timedelta = DEFAULT_TTL
    _log_loss: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def is_lost(self) -> bool:
        """Whether the lease is gone, as of now on the real clock: the holder's `should_stop`.

        While the last renewal has more than a third of the TTL to run, nobody else can have taken it. Past
        that (the process was frozen, or the keeper fell behind) it is renewed here and now, because the
        background keeper may not have woken yet; a lease that ran out and cannot be renewed is lost.
        """
        if self.lost.is_set():
            return True
        if self._store is None or self.lease.expires_at - datetime.now(UTC) > self._ttl / 3:
            return False
        self._renew()
        return self.lost.is_set()

    def _renew(self) -> None:
        assert self._store is not None
        with self._lock:
            if self.lost.is_set():
                return
            now = datetime.now(UTC)
            try:
                self.lease = renew(self._store, self.lease, now, self._ttl)
            except Busy:
                self._lose()
            except Exception as exc:  # a database hiccup: tried again at the next beat, before it runs out
                log.warning("lease.renew_failed", tenant=self.lease.tenant_id, error=type(exc).__name__)
                if self.lease.expires_at <= now:  # ran out unconfirmed: another holder may have it by now
                    self._lose()

    def _lose(self) -> None:
        self.lost.set()
        if self._log_loss:
            log.error("lease.lost", tenant=self.lease.tenant_id, holder=self.lease.holder)


def _keep(keeper: Keeper, ttl: timedelta) -> None:
    while not keeper._done.wait(ttl.total_seconds() / 3) and not keeper.lost.is_set():
        keeper._renew()


@contextmanager
def kept(
    store: Store, tenant_id: str, holder: str, ttl: timedelta = DEFAULT_TTL, *, log_loss: bool = True
) -> Iterator[Keeper]:
    """Hold the tenant's lease for the block on the real clock, renewed every third of `ttl`.

    A holder that dies stops renewing, so its lease runs out within `ttl` (at once for a process on this
    host). Work under it asks `Keeper.is_lost` at its safe points and stops there once the lease is gone.
    `log_loss=False` leaves telling of a loss to the caller (a command that prints it as its one line).
    Raises Busy if another live holder has it.
    """
    keeper = Keeper(
        acquire(store, tenant_id, holder, datetime.now(UTC), ttl), _store=store, _ttl=ttl, _log_loss=log_loss
    )
    thread = threading.Thread(target=_keep, args=(keeper, ttl), name=f"lease-{tenant_id}", daemon=True)
    thread.start()
    try:
        yield keeper
    finally:
        keeper._done.set()
        thread.join(timeout=5)
        release(store, keeper.lease)
