"""A procrastinate worker running ccm's tasks: `ccm worker`, or embedded in `ccm serve` (a thread of its own).

`stop()` is the graceful shutdown SIGTERM asks for: the worker takes no new job, `rt.stopping` makes running
work stop at its next safe point (a sync after its current page, a send between messages; a night stopped
so is `due` again and the sweep asks for it), and procrastinate waits up to `serve.shutdown_seconds` for it.
A worker killed outright stops beating; after `engine.STALLED_S` the next sweep retries its jobs elsewhere.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import structlog
from procrastinate import App, PsycopgConnector
from procrastinate import worker as pworker

from connector.jobs import engine
from connector.serve.runtime import Runtime

log = structlog.get_logger(__name__)


class Worker:
    """One procrastinate worker for `rt`'s database, with `concurrency` jobs at once on `queues`."""

    def __init__(
        self, rt: Runtime, db_url: str, concurrency: int, queues: Sequence[str] | None = None
    ) -> None:
        self.rt = rt
        self.concurrency = concurrency
        self.queues = list(queues) if queues else None
        # procrastinate's own connections: its listener holds one; fetching, heartbeats, finishing jobs and
        # the jobs' defers are one short statement each and share the rest, whatever the concurrency. The
        # jobs' work uses ccm's store (SQLAlchemy's pool: one connection per running job).
        self.app = App(
            connector=PsycopgConnector(
                conninfo=engine.conninfo(db_url, "jobs"), min_size=1, max_size=engine.JOBS_POOL
            )
        )
        engine.register(self.app)
        self.executor = engine.Procrastinate(rt, db_url, app=self.app)
        self._worker: pworker.Worker | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    async def run_async(self) -> None:
        """Run until stopped."""
        async with self.app.open_async():
            self._worker = pworker.Worker(
                self.app,
                queues=self.queues,
                name=self.rt.server_id,
                concurrency=self.concurrency,
                shutdown_graceful_timeout=self.rt.settings.serve.shutdown_seconds,
                additional_context={"rt": self.rt, "executor": self.executor},
                install_signal_handlers=False,
                update_heartbeat_interval=engine.HEARTBEAT_S,
                stalled_worker_timeout=engine.STALLED_S,
                delete_jobs="successful",
            )
            self._ready.set()
            if self.rt.should_stop():  # stopped before it began
                self.executor.close()
                return
            try:
                await self._worker.run()
            finally:
                self.executor.close()

    def run(self) -> None:
        """Run in this thread until stopped (`ccm worker`)."""
        asyncio.run(self.run_async())

    def start(self) -> None:
        """Run in a thread of its own (embedded in `ccm serve`)."""

        def target() -> None:
            try:
                self.run()
            except BaseException as exc:  # shown by /healthz and the log; serve goes on serving pages
                self.error = exc
                log.exception("worker.crashed")
            finally:
                self._ready.set()

        self._thread = threading.Thread(target=target, name="ccm-worker", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def stop(self) -> None:
        self.rt.stopping.set()
        if self._worker is not None:
            self._worker.stop()

    def join(self, timeout: float) -> bool:
        """Wait for an embedded worker to stop; True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def busy(self) -> int:
        worker = self._worker
        return len(getattr(worker, "_running_jobs", {})) if worker is not None else 0
