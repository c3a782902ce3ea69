"""One `ccm serve` process: the HTTP app (uvicorn), the scheduler, and what runs the work.

On SQLite the work runs here, on the in-process dispatcher and its workers (connector/serve/dispatch.py). On
PostgreSQL it runs on procrastinate (connector/jobs): the scheduler and the webhooks defer jobs, and an
embedded worker with `serve.workers` jobs at once runs them, unless `--no-worker` (then `ccm worker`
processes do).

`Server.start()` binds the port, registers the server, starts APScheduler and the dispatcher (or the
embedded worker); `Server.stop()` is the graceful shutdown SIGTERM asks for: health turns 503, no new work is
taken, running work stops at its next safe point (a sync after its current page, a send between messages)
within `serve.shutdown_seconds`, leases are released, and the server's row goes.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
import uvicorn

from connector import lease
from connector.clock import Clock
from connector.config import Settings
from connector.jobs.executor import InProcess, TaskRunner
from connector.jobs.worker import Worker
from connector.serve import app, servers
from connector.serve.dispatch import Dispatcher
from connector.serve.metrics import Metrics
from connector.serve.runtime import Report, Runtime
from connector.serve.scheduler import Scheduler
from connector.store import Store
from connector.store.schema import connections, tenants

log = structlog.get_logger(__name__)
_START_TIMEOUT_S = 15.0
HOUSEKEEPING_S = 5.0  # PostgreSQL: heartbeat and job alignment (the dispatcher does it on SQLite)


def _nothing() -> None:
    return None


class ServeError(RuntimeError):
    """The server could not start; one line saying why."""


class Server:
    def __init__(
        self, settings: Settings, store: Store, report: Report | None = None, worker: bool = True
    ) -> None:
        clock = Clock.parse(settings.serve.clock)
        self.rt = Runtime(settings, store, clock, lease.new_holder())
        if report is not None:
            self.rt.report = report
        self.dispatcher: Dispatcher | None = None
        self.worker: Worker | None = None
        self.executor: TaskRunner
        if store.backend == "postgresql":
            from connector.jobs.engine import Procrastinate

            self.executor = Procrastinate(self.rt, settings.db_url)
            if worker:
                self.worker = Worker(self.rt, settings.db_url, settings.serve.workers)
            wake: Callable[[], None] = _nothing
        else:
            self.dispatcher = Dispatcher(self.rt, housekeeping=self.housekeeping)
            self.executor = InProcess(self.dispatcher.wake, self.dispatcher.depths)
            wake = self.dispatcher.wake
        self.rt.metrics = Metrics(queue=self.executor.depths)
        executor = None if self.dispatcher is not None else self.executor
        self.scheduler = Scheduler(self.rt, wake=wake, executor=executor)
        self.app = app.build(self.rt, self.executor.request_sync, self.status, self.tenants_changed)
        self._housekeeper: threading.Thread | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._tenants_digest = ""
        self.url = ""
        self.scheduled = 0  # tenants with a nightly job

    # -- lifecycle
    def start(self) -> str:
        """Serve, schedule, dispatch; returns the base URL. Raises ServeError if the port is taken."""
        serve = self.rt.settings.serve
        sock = socket.socket(socket.AF_INET6 if ":" in serve.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((serve.host, serve.port))
        except OSError as exc:
            sock.close()
            raise ServeError(f"cannot listen on {serve.host}:{serve.port}: {exc.strerror}") from None
        port = sock.getsockname()[1]
        if self.worker is not None:  # ready before /healthz says so
            self.worker.start()
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=2,
        )
        self._uvicorn = uvicorn.Server(config)
        server = self._uvicorn
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="ccm-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServeError(f"the HTTP server on {serve.host}:{port} did not start")
            time.sleep(0.01)
        shown = f"[{serve.host}]" if ":" in serve.host else serve.host
        self.url = f"http://{shown}:{port}"
        with self.rt.store.begin() as conn:
            servers.register(conn, self.rt.server_id, self.url, self.rt.clock.spec(), self.rt.real_now())
        self._tenants_digest = self._digest()
        self.scheduled = self.scheduler.start()
        if self.dispatcher is not None:
            self.dispatcher.start()
        else:
            self._housekeeper = threading.Thread(target=self._housekeep, name="ccm-housekeeping", daemon=True)
            self._housekeeper.start()
        log.info(
            "serve.started", url=self.url, server=self.rt.server_id, clock=self.rt.clock.spec() or "real"
        )
        return self.url

    def stop(self, timeout: float) -> bool:
        """Stop gracefully; True when all running work finished (or checkpointed) within `timeout`."""
        self.rt.stopping.set()
        self.scheduler.shutdown()
        finished = True
        if self.dispatcher is not None:
            finished = self.dispatcher.stop(timeout)
        if self.worker is not None:
            self.worker.stop()
            finished = self.worker.join(timeout + 5)
        self.executor.close()
        try:
            with self.rt.store.begin() as conn:
                servers.remove(conn, self.rt.server_id)
        except Exception:  # the row goes stale and is forgotten anyway
            log.warning("serve.unregister_failed", server=self.rt.server_id)
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("serve.stopped", server=self.rt.server_id, finished=finished)
        return finished

    # -- what the dispatcher (on PostgreSQL, a thread of its own) runs every few seconds
    def _housekeep(self) -> None:
        while not self.rt.stopping.wait(HOUSEKEEPING_S):
            try:
                self.housekeeping()
            except Exception:  # the database blinked: the next round tries again
                log.exception("serve.housekeeping_failed")

    def housekeeping(self) -> None:
        rt = self.rt
        with rt.store.begin() as conn:
            if not servers.beat(conn, rt.server_id, rt.real_now()):
                servers.register(conn, rt.server_id, self.url, rt.clock.spec(), rt.real_now())
            servers.forget_dead(conn, rt.real_now())
        digest = self._digest()
        if digest != self._tenants_digest:  # a tenant was connected, re-timed or disconnected
            self._tenants_digest = digest
            self.scheduled = self.scheduler.align()
        if self.dispatcher is not None:
            self.scheduler.poke()

    def tenants_changed(self) -> None:
        """A tenant was connected through the server: schedule it now rather than at the next look."""
        self._tenants_digest = self._digest()
        self.scheduled = self.scheduler.align()

    def _digest(self) -> str:
        """What the nightly jobs depend on: tenants' zones and night times, and their connections' states."""
        from sqlalchemy import select

        t, c = tenants.c, connections.c
        with self.rt.store.read() as conn:
            rows = conn.execute(
                select(t.tenant_id, t.timezone, t.night_time, c.state)
                .outerjoin(connections, c.tenant_id == t.tenant_id)
                .order_by(t.tenant_id)
            ).all()
        return hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()

    def status(self) -> dict[str, Any]:
        """The scheduler's and workers' state, for /healthz."""
        queue: dict[str, Any]
        try:
            queue = dict(self.executor.depths())
        except Exception as exc:
            queue = {"error": type(exc).__name__}
        scheduler = "running" if self.scheduler.scheduler.running else "stopped"
        if self.dispatcher is None:  # procrastinate: this process's embedded worker, if any
            worker = self.worker
            embedded = worker is not None and worker.error is None
            return {
                "scheduler": scheduler,
                "scheduled": self.scheduled,
                "executor": self.executor.name,
                "workers": {"busy": worker.busy() if embedded else 0,  # type: ignore[union-attr]
                            "of": self.rt.settings.serve.workers if embedded else 0, "tenants": {}},
                "queue": queue,
                "last": [],
            }  # fmt: skip
        busy = self.dispatcher.busy()
        return {
            "scheduler": scheduler,
            "scheduled": self.scheduled,
            "executor": self.executor.name,
            "workers": {"busy": len(busy), "of": self.dispatcher.workers, "tenants": busy},
            "queue": queue,
            "last": [
                {"kind": d.kind, "tenant": d.tenant_id, "outcome": d.outcome, "line": d.line}
                for d in self.dispatcher.done[-5:]
            ],
        }
