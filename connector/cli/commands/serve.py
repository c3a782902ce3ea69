"""`ccm serve`: the nightly automation in one process (HTTP app, scheduler, workers) until SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from connector.cli.app import Failure, UsageProblem, app, err, out, state
from connector.cli.commands.worker import _name_store_connections


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: serve.host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default: serve.port, 8765; 0: a free one).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Tenants run at once (default: serve.workers).")
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            help="PostgreSQL: also run a job worker in this process (--no-worker: `ccm worker` does)."
        ),
    ] = True,
) -> None:
    """Run nightly syncs and reminders per tenant time zone, webhooks, OAuth callbacks, health and metrics."""
    from pydantic import ValidationError

    from connector.serve.process import ServeError, Server

    st = state(ctx)
    base = st.settings
    wanted = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    try:
        settings = base.model_copy(
            update={"serve": base.serve.model_validate(base.serve.model_dump() | wanted)}
        )
    except ValidationError as exc:
        raise UsageProblem(f"--{exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    _name_store_connections()
    server = Server(settings, st.store, report=lambda line: out.print(line, markup=False), worker=worker)
    try:
        url = server.start()
    except ServeError as exc:
        raise Failure(f"{exc} (is another `ccm serve` running? set serve.port or --port)") from None
    jobs = server.scheduled
    clock = server.rt.clock
    if server.dispatcher is not None:
        running = f"{settings.serve.workers} worker(s)"
    elif server.worker is not None:
        running = f"an embedded job worker ({settings.serve.workers} at once)"
    else:
        running = "no job worker (run `ccm worker`)"
    out.print(f"ccm serve: listening on {url}; {jobs} tenant(s) scheduled; {running}", markup=False)
    out.print(
        f"  webhooks: {url}/webhooks/xero, {url}/webhooks/quickbooks; health: {url}/healthz; "
        f"metrics: {url}/metrics; connect a firm: {url}/connect/xero?tenant=ID",
        markup=False,
    )
    if clock.simulated:
        err.print(
            f"ccm serve: on a simulated clock ({clock.spec()}), now {clock.now():%Y-%m-%d %H:%M} UTC",
            markup=False,
        )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    out.print("ccm serve: stopping; running work finishes its current page or message ...", markup=False)
    finished = server.stop(settings.serve.shutdown_seconds)
    out.print(
        "ccm serve: stopped"
        if finished
        else "ccm serve: stopped; some work did not finish in time (its leases run out by themselves)",
        markup=False,
    )
