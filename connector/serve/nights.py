"""Scheduled nights in the database: the claim that makes each tenant's local night run exactly once.

The scheduler marks a night `due` when its time comes (an insert keyed by tenant and local date: a second
server, or the same server restarted, marking it again changes nothing). A worker holding the tenant's run
lease claims it (`due`, `retry` whose time has come, or `running` left by a holder that died) with a
compare-and-set, runs it, and finishes it `done`, `failed` (a person must act), `retry` (a transient failure:
again after `not_before`), `crashed` (a bug or the database: logged with its traceback, run again once
`not_before` has come, the next tick; left with none once its attempts are spent) or back to `due` (stopped by
a shutdown). A night that a later night overtook before it ran is `superseded`: catching up runs only the
latest.

```
due ──claim──▶ running ──▶ done | failed
 ▲                │ └────▶ retry | crashed ──claim (after not_before)──▶ running
 └──shutdown──────┘
due | retry | crashed | running(dead holder) ──a later night claimed──▶ superseded
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connector.lease import holder_is_dead
from connector.store.schema import nights, run_leases


class NightState(StrEnum):
    """Where a scheduled night is (its `nights.state`; the values are what the column stores)."""

    DUE = "due"
    RUNNING = "running"
    RETRY = "retry"  # a transient failure: again after not_before
    CRASHED = "crashed"  # a bug or the database: again after not_before, or never without one
    DONE = "done"
    FAILED = "failed"  # a person must act
    SUPERSEDED = "superseded"  # a later night ran instead


OPEN = (NightState.DUE, NightState.RUNNING, NightState.RETRY, NightState.CRASHED)
WAITING = (NightState.RETRY, NightState.CRASHED)  # claimable once not_before has come (never, without one)


@dataclass(frozen=True, slots=True)
class Night:
    tenant_id: str
    night: date
    state: NightState
    due_at: datetime
    not_before: datetime | None
    holder: str | None
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    summary: str | None


def _night(row: Any) -> Night:
    return Night(
        row.tenant_id,
        row.night,
        NightState(row.state),
        row.due_at,
        row.not_before,
        row.holder,
        row.attempts,
        row.started_at,
        row.finished_at,
        row.summary,
    )


def mark_due(conn: Connection, tenant_id: str, night: date, due_at: datetime) -> bool:
    """Record that the tenant's night has come; False when it was already recorded (by anyone)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    insert = (
        dialect.insert(nights)
        .values(tenant_id=tenant_id, night=night, state=NightState.DUE, due_at=due_at, attempts=0)
        .on_conflict_do_nothing(index_elements=["tenant_id", "night"])
        .returning(nights.c.tenant_id)  # rowcount is not reliable for this statement on every driver
    )
    return conn.execute(insert).first() is not None


@dataclass(frozen=True, slots=True)
class Claimable:
    """A night some worker may take now; `lease_holder` is who holds the tenant's lease (None: nobody)."""

    tenant_id: str
    night: date
    state: NightState
    holder: str | None
    lease_holder: str | None
    lease_expires: datetime | None


def claimable(conn: Connection, now: datetime, real_now: datetime, limit: int = 500) -> list[Claimable]:
    """The latest open night of each tenant that may run now, oldest due first.

    `now` is the schedule's clock (for retry times); `real_now` the leases' clock. Nights whose tenant lease
    is held, unexpired, by a holder that is alive are left out: someone is running that tenant.
    """
    n, lease = nights.c, run_leases.c
    latest = (
        select(n.tenant_id, func.max(n.night).label("night"))
        .where(n.state.in_(OPEN))
        .group_by(n.tenant_id)
        .subquery()
    )
    query = (
        select(
            n.tenant_id,
            n.night,
            n.state,
            n.holder,
            lease.holder.label("lease_holder"),
            lease.expires_at.label("lease_expires"),
        )
        .join(latest, and_(latest.c.tenant_id == n.tenant_id, latest.c.night == n.night))
        .outerjoin(run_leases, lease.tenant_id == n.tenant_id)
        .where(or_(n.state.not_in(WAITING), n.not_before <= now))
        .order_by(n.due_at)
        .limit(limit)
    )
    found = [
        Claimable(r.tenant_id, r.night, NightState(r.state), r.holder, r.lease_holder, r.lease_expires)
        for r in conn.execute(query)
    ]
    return [c for c in found if c.lease_holder is None or not _alive(c, real_now)]


def _alive(c: Claimable, real_now: datetime) -> bool:
    assert c.lease_holder is not None
    return c.lease_expires is not None and c.lease_expires > real_now and not holder_is_dead(c.lease_holder)


def claim(conn: Connection, tenant_id: str, night: date, holder: str, now: datetime) -> int | None:
    """Take the night to run it (the caller holds the tenant's run lease); its attempt number, else None."""
    n = nights.c
    done = conn.execute(
        update(nights)
        .where(n.tenant_id == tenant_id, n.night == night, n.state.in_(OPEN))
        .where(or_(n.state.not_in(WAITING), n.not_before <= now))
        .values(
            state=NightState.RUNNING, holder=holder, attempts=n.attempts + 1, started_at=now, not_before=None
        )
    )
    if done.rowcount != 1:
        return None
    conn.execute(
        update(nights)
        .where(n.tenant_id == tenant_id, n.night < night, n.state.in_(OPEN))
        .values(
            state=NightState.SUPERSEDED, finished_at=now, summary=f"not run: the night of {night} ran instead"
        )
    )
    attempts = conn.execute(select(n.attempts).where(n.tenant_id == tenant_id, n.night == night)).scalar()
    return int(attempts or 1)


def finish(
    conn: Connection,
    tenant_id: str,
    night: date,
    holder: str,
    state: NightState,
    summary: str,
    now: datetime,
    not_before: datetime | None = None,
) -> bool:
    """Close a claimed night as `state` (done, failed, retry, or due again after a shutdown)."""
    n = nights.c
    ended = state in (NightState.DONE, NightState.FAILED) or (
        state == NightState.CRASHED and not_before is None
    )
    finished = now if ended else None
    done = conn.execute(
        update(nights)
        .where(n.tenant_id == tenant_id, n.night == night, n.state == NightState.RUNNING, n.holder == holder)
        .values(state=state, summary=summary, finished_at=finished, not_before=not_before)
    )
    return done.rowcount == 1


def recent(conn: Connection, tenant_id: str | None = None, limit: int = 50) -> list[Night]:
    """Nights newest first (one tenant's, or everyone's)."""
    query = select(nights).order_by(nights.c.night.desc(), nights.c.tenant_id).limit(limit)
    if tenant_id is not None:
        query = query.where(nights.c.tenant_id == tenant_id)
    return [_night(r) for r in conn.execute(query)]


def latest_per_tenant(conn: Connection) -> dict[str, Night]:
    """Each tenant's newest night."""
    n = nights.c
    newest = select(n.tenant_id, func.max(n.night).label("night")).group_by(n.tenant_id).subquery()
    query = select(nights).join(newest, and_(newest.c.tenant_id == n.tenant_id, newest.c.night == n.night))
    return {r.tenant_id: _night(r) for r in conn.execute(query)}


def open_count(conn: Connection) -> int:
    """Nights due, running or waiting to be retried."""
    return int(conn.execute(select(func.count()).where(nights.c.state.in_(OPEN))).scalar_one())
