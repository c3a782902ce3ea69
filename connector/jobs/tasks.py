"""The task functions: the same bodies whichever executor runs them (connector/serve/work.py does the work).

- `night(tenant, date)`: the firm's night; a transient failure leaves it `retry` (or `crashed`) with a
  `not_before`, and the night is asked for again at that time (the sweep asks too, should that be lost).
- `sync(tenant)`: the firm's requested syncs, every request up to the newest id when it starts (requests
  that arrive while it runs get a job of their own); requests a failure left are asked for again later.
- `send(tenant)`: the firm's outbox actions that have come due.
- `sweep()`: what nobody asked for but is owed: claimable nights (retry or crashed whose time came, due
  ones whose job was lost, `running` ones of a dead holder), sync requests without a job, due sends.
- `health(tenant)`: the firm's connection health from the store (work.health_check), daily whether its
  nights run or not; notices it planned go out with the firm's send job. `health_firms()` are the firms
  checked: every one not disconnected.
- `poll()`, `rates()` and the health round: the scheduler's periodic asks (connector/serve/scheduler.py).

None raises for a firm's own problems; each returns the job's `Done` (or a count) for the log.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime

import structlog
from sqlalchemy import select

from connector import outbox
from connector.jobs.executor import TaskRunner
from connector.model import ConnectionState
from connector.serve import nights, syncqueue, work
from connector.serve.runtime import Runtime
from connector.store.schema import connections

log = structlog.get_logger(__name__)
AGAIN_S = 30.0  # real seconds before requests a failed or busy sync left are asked for again


def disconnected(rt: Runtime) -> set[str]:
    """Firms whose work waits (they may connect again) and is never looped on."""
    c = connections.c
    with rt.store.read() as conn:
        query = select(c.tenant_id).where(c.state == str(ConnectionState.DISCONNECTED))
        return set(conn.execute(query).scalars())


def night(rt: Runtime, ex: TaskRunner, tenant_id: str, on: date) -> work.Done:
    done = work.night(rt, tenant_id, on)
    with rt.store.read() as conn:
        row = next((n for n in nights.recent(conn, tenant_id, limit=5) if n.night == on), None)
    if row is not None and row.state in nights.WAITING and row.not_before is not None:
        ex.defer_night(tenant_id, on, at=row.not_before)  # a transient failure: run again at its time
    return done


def sync(rt: Runtime, ex: TaskRunner, tenant_id: str) -> work.Done:
    with rt.store.read() as conn:
        up_to = syncqueue.newest(conn, tenant_id)
    if up_to is None:
        skipped = work.JobOutcome.SKIPPED
        return work.Done("sync", tenant_id, skipped, "no sync asked (an earlier one covered it)")
    done = work.sync(rt, tenant_id, up_to)
    with rt.store.read() as conn:
        left = syncqueue.newest(conn, tenant_id, up_to=up_to)
    if left is not None and not rt.should_stop():  # a transient failure, or the firm was busy: later
        ex.request_sync([tenant_id], delay=AGAIN_S)
    return done


def send(rt: Runtime, ex: TaskRunner, tenant_id: str) -> work.Done:
    return work.send(rt, tenant_id)


def health(rt: Runtime, ex: TaskRunner, tenant_id: str) -> work.Done:
    done = work.health_check(rt, tenant_id)
    if done.sends:
        ex.defer_send(tenant_id)
    return done


def report_round(rt: Runtime, key: int, what: str) -> str:
    """Report the day's health round (`key`: its UTC day's midnight, POSIX s on the server's clock)."""
    line = f"health round of {datetime.fromtimestamp(key, UTC):%Y-%m-%d}: {what}"
    rt.report(f"{rt.clock.now():%Y-%m-%d %H:%M} UTC {line}")
    return line


def health_firms(rt: Runtime) -> list[str]:
    """The firms whose health is checked: all but the disconnected (a firm never connected has no row)."""
    c = connections.c
    with rt.store.read() as conn:
        query = select(c.tenant_id).where(c.state != str(ConnectionState.DISCONNECTED)).order_by(c.tenant_id)
        return list(conn.execute(query).scalars())


def sweep(rt: Runtime, ex: TaskRunner, running: Collection[str] = ()) -> dict[str, int]:
    """Ask for what is owed and has no job; `running` are firms with a job running now (left alone)."""
    now, real = rt.clock.now(), rt.real_now()
    gone = disconnected(rt) | set(running)
    with rt.store.read() as conn:
        due = [n for n in nights.claimable(conn, now, real) if n.tenant_id not in gone]
        waiting = [p.tenant_id for p in syncqueue.pending(conn) if p.tenant_id not in gone]
        sends = [t for t in outbox.due_tenants(conn, now) if t not in gone]
    asked = sum(ex.defer_night(n.tenant_id, n.night) for n in due)
    if waiting:
        ex.request_sync(waiting, delay=0)
    for tenant_id in sends:
        ex.defer_send(tenant_id)
    return {"nights": asked, "syncs": len(waiting), "sends": len(sends)}
