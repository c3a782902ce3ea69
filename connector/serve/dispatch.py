"""The dispatcher: what a server runs next, on a pool of workers, one job per tenant at a time.

Work waits in the database (nights due, sync requests, outbox actions come due), so it survives restarts
and any server sharing the database may take it; the tenant's run lease decides who does. Every tick (and
whenever a worker frees up or a webhook arrives) the dispatcher reads what is waiting, in this order: sends
that have come due (people are waiting for those, in a send window), requested syncs that have been quiet
for the debounce time, then nights. It keeps at most `serve.workers` jobs running and never two for one
tenant; a job that finds the tenant leased by another server gives it up at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import structlog
from sqlalchemy import Connection, select

from connector import outbox
from connector.model import ConnectionState
from connector.serve import nights, servers, syncqueue, work
from connector.serve.runtime import Runtime
from connector.store.schema import connections

log = structlog.get_logger(__name__)
SEND_COOLDOWN_S = 30.0  # a tenant whose send job left actions due is looked at again after this (real)
BUSY_COOLDOWN_S = 2.0  # a tenant another server holds is looked at again after this
HOUSEKEEPING_S = 5.0  # heartbeat, job alignment, a poke at the scheduler


@dataclass(frozen=True, slots=True)
class Task:
    kind: str  # send | sync | night
    tenant_id: str
    run: Callable[[], work.Done]


def _disconnected(conn: Connection) -> set[str]:
    c = connections.c
    query = select(c.tenant_id).where(c.state == str(ConnectionState.DISCONNECTED))
    return set(conn.execute(query).scalars())


class Dispatcher:
    """Runs tenants' jobs on `workers` threads; `tick()` looks for work, `wake()` asks for a look soon."""

    def __init__(self, rt: Runtime, housekeeping: Callable[[], None] | None = None) -> None:
        self.rt = rt
        self.workers = rt.settings.serve.workers
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ccm-tenant")
        self.housekeeping = housekeeping
        self._busy: dict[str, str] = {}  # tenant -> kind, running in this process
        self._cool: dict[tuple[str, str], float] = {}  # (kind, tenant) -> monotonic time to wait for
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0
        self.done: list[work.Done] = []  # the last few jobs, for /healthz
        self.started = time.time()

    # -- the loop
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ccm-dispatch", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        tick = self.rt.settings.serve.tick_seconds
        while not self.rt.should_stop():
            try:
                if time.monotonic() - self._last_housekeeping >= HOUSEKEEPING_S:
                    self._last_housekeeping = time.monotonic()
                    if self.housekeeping is not None:
                        self.housekeeping()
                self.tick()
            except Exception:  # the database blinked: log it, wait a tick, go on
                log.exception("dispatch.tick_failed")
            self._wake.wait(tick)
            self._wake.clear()

    def stop(self, timeout: float) -> bool:
        """Stop taking work and wait up to `timeout` seconds for running jobs; True if they all finished."""
        self.rt.stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._busy:
                    break
            time.sleep(0.05)
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            return not self._busy

    # -- what to run
    def free(self) -> int:
        with self._lock:
            return self.workers - len(self._busy)

    def busy(self) -> dict[str, str]:
        with self._lock:
            return dict(self._busy)

    def tick(self) -> int:
        """Start what is waiting, as far as there are free workers; returns how many jobs were started."""
        if self.rt.should_stop() or self.free() <= 0:
            return 0
        started = 0
        for task in self._waiting():
            if self.free() <= 0:
                break
            started += self._submit(task)
        return started

    def _waiting(self) -> list[Task]:
        rt = self.rt
        now, real = rt.clock.now(), rt.real_now()
        serve = rt.settings.serve
        with rt.store.read() as conn:
            gone = _disconnected(conn)  # their work waits (they may be connected again), never loops
            sends = [t for t in outbox.due_tenants(conn, now) if t not in gone]
            requests = [
                p
                for p in syncqueue.pending(conn)
                if p.tenant_id not in gone and p.ready(real, serve.debounce_seconds, serve.max_delay_seconds)
            ]
            due = [n for n in nights.claimable(conn, now, real) if n.tenant_id not in gone]
        tasks = [Task("send", t, lambda t=t: work.send(rt, t)) for t in sends]  # type: ignore[misc]
        tasks += [
            Task("sync", p.tenant_id, lambda p=p: work.sync(rt, p.tenant_id, p.up_to))  # type: ignore[misc]
            for p in requests
        ]
        tasks += [
            Task("night", n.tenant_id, lambda n=n: work.night(rt, n.tenant_id, n.night))  # type: ignore[misc]
            for n in due
        ]
        return tasks

    def _submit(self, task: Task) -> int:
        key = (task.kind, task.tenant_id)
        with self._lock:
            if task.tenant_id in self._busy or self._cool.get(key, 0.0) > time.monotonic():
                return 0
            self._busy[task.tenant_id] = task.kind
            self.rt.metrics.busy.set(len(self._busy))
        try:
            future = self.pool.submit(task.run)
        except RuntimeError:  # the pool is shutting down
            with self._lock:
                self._busy.pop(task.tenant_id, None)
            return 0
        future.add_done_callback(lambda f: self._finished(task, f))
        return 1

    def _finished(self, task: Task, future: Future[work.Done]) -> None:
        cool = 0.0
        try:
            done = future.result()
        except BaseException:  # work.* catch tenants' own problems; this is a bug: logged, tenant cooled off
            log.exception("dispatch.job_crashed", kind=task.kind, tenant=task.tenant_id)
            cool = SEND_COOLDOWN_S
        else:
            self.done = [*self.done[-49:], done]
            if done.outcome == work.JobOutcome.BUSY:
                cool = BUSY_COOLDOWN_S
            elif task.kind == "send" or (task.kind == "sync" and done.outcome == work.JobOutcome.FAILED):
                cool = SEND_COOLDOWN_S
        with self._lock:
            self._busy.pop(task.tenant_id, None)
            if cool:
                self._cool[(task.kind, task.tenant_id)] = time.monotonic() + cool
            self.rt.metrics.busy.set(len(self._busy))
        self._wake.set()  # a worker is free: look for more at once

    # -- numbers for /metrics and /healthz
    def depths(self) -> dict[str, int]:
        rt = self.rt
        with rt.store.read() as conn:
            return {
                "nights": nights.open_count(conn),
                "sync_requests": syncqueue.depth(conn),
                "sends_due": outbox.due_count(conn, rt.clock.now()),
                "running": len(self.busy()),
                "servers": len(servers.alive(conn, rt.real_now())),
            }
