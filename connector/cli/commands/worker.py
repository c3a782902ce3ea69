"""`ccm worker`: a procrastinate worker running ccm's background jobs (PostgreSQL only) until SIGTERM."""

from __future__ import annotations

import os
import signal
from typing import Annotated

import typer

from connector.cli.app import UsageProblem, app, err, out, state

QUEUES = ("nights", "syncs", "sends", "housekeeping")


def _name_store_connections() -> None:
    """ccm's store connections are `ccm store <pid>` in pg_stat_activity (unless PGAPPNAME says otherwise);
    the job and limits pools name themselves (connector/jobs/engine.py)."""
    from connector.jobs.engine import app_name

    os.environ.setdefault("PGAPPNAME", app_name("store"))


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Jobs run at once (default: serve.workers).")
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated queues to take jobs from (default: all: {','.join(QUEUES)})."),
    ] = None,
) -> None:
    """Run firms' nights, requested syncs and due sends from the PostgreSQL job queue (beside `ccm serve`)."""
    from connector.clock import Clock
    from connector.jobs.worker import Worker
    from connector.serve.runtime import Runtime

    st = state(ctx)
    settings = st.settings
    wanted = [q.strip() for q in (queues or "").split(",") if q.strip()]
    unknown = [q for q in wanted if q not in QUEUES]
    if unknown:
        raise UsageProblem(f"--queues: no queue {unknown[0]!r} (queues: {', '.join(QUEUES)})")
    _name_store_connections()
    store = st.store
    if store.backend != "postgresql":
        raise UsageProblem(
            "ccm worker needs PostgreSQL (database_url); on SQLite `ccm serve` runs the work itself"
        )
    from connector import lease

    rt = Runtime(settings, store, Clock.parse(settings.serve.clock), lease.new_holder())
    rt.report = lambda line: out.print(line, markup=False)
    rt.pages = False  # no web pages here: nothing in this process would read what a warm-up computes
    jobs = concurrency or settings.serve.workers
    runner = Worker(rt, settings.db_url, jobs, wanted or None)

    def stop(*_: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already: a second SIGTERM changes nothing
        out.print("ccm worker: stopping; running work finishes its current page or message ...", markup=False)
        runner.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    out.print(f"ccm worker: {rt.server_id} running {jobs} job(s) at once on {', '.join(wanted or QUEUES)}",
              markup=False)  # fmt: skip
    if rt.clock.simulated:
        now = f"{rt.clock.now():%Y-%m-%d %H:%M} UTC"
        err.print(f"ccm worker: on a simulated clock ({rt.clock.spec()}), now {now}", markup=False)
    runner.run()
    out.print("ccm worker: stopped", markup=False)
