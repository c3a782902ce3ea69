"""`ccm schedule`: each tenant's nightly run, the last night's outcome, what waits, and the servers alive."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Connection

from connector.cli.app import app, out, state
from connector.cli.output import Cell, Format, FormatOpt, emit

COLUMNS = ("tenant", "name", "time zone", "night at", "next night", "next night utc", "last night", "outcome",
           "syncs asked")  # fmt: skip
LABELS = {c: c for c in COLUMNS if c != "name"} | {
    "next night": "next night (local)",
    "next night utc": "next (UTC)",
}


@app.command()
def schedule(ctx: typer.Context, fmt: FormatOpt = Format.TABLE) -> None:
    """When each tenant's next night runs (its local time), how the last one went, and who serves."""
    from connector import nightreport
    from connector.clock import Clock
    from connector.model import ConnectionState
    from connector.serve import nights, servers, syncqueue
    from connector.serve.trigger import next_fire, parse_time
    from connector.store.tenants import get_connection, list_tenants

    st = state(ctx)
    store, settings = st.store, st.settings
    now_real = datetime.now(UTC)
    with store.read() as conn:
        alive = servers.alive(conn, now_real)
        latest = nights.latest_per_tenant(conn)
        reported = nightreport.latest_per_tenant(conn)
        waiting = {p.tenant_id: p.count for p in syncqueue.pending(conn)}
        found = [(t, get_connection(conn, t.id)) for t in list_tenants(conn)]
        jobs = _jobs(conn)
    clock = Clock.parse(alive[0].clock) if alive else Clock.parse(settings.serve.clock)
    now = clock.now()
    rows: list[tuple[Cell, ...]] = []
    for tenant, link in found:
        if link is None or link.state is ConnectionState.DISCONNECTED:
            continue
        at = tenant.night_time or settings.serve.night_time
        nxt = next_fire(now, parse_time(at), ZoneInfo(tenant.timezone))
        last, report = latest.get(tenant.id), reported.get(tenant.id)
        if last is not None and last.state not in (nights.NightState.DONE, nights.NightState.SUPERSEDED):
            when, outcome = f"{last.night} {last.state}", (last.summary or "")[:80]  # waiting: what and why
        elif report is not None:  # the newest night on record, from the server or from `ccm run`
            ran_from = "serve" if report.ran_from == nightreport.RanFrom.SERVE else "ccm run"
            when, outcome = f"{report.night} {report.outcome} ({ran_from})", report.headline[:80]
        else:
            when, outcome = "never", ""
        rows.append((tenant.id, tenant.name, tenant.timezone, at, nxt.astimezone(ZoneInfo(tenant.timezone)),
                     nxt.astimezone(UTC), when, outcome, waiting.get(tenant.id, 0)))  # fmt: skip
    serving = [{"url": s.url, "server": s.server_id, "since": s.started_at, "clock": s.clock or None}
               for s in alive]  # fmt: skip
    if fmt is not Format.TABLE:
        emit(fmt, "schedule", COLUMNS, rows, meta={"servers": serving} | ({"jobs": jobs} if jobs else {}))
        return
    emit(fmt, "schedule", COLUMNS, rows, labels=LABELS, title="ccm schedule",
         empty="no connected tenants to schedule")  # fmt: skip
    if alive:
        for server in alive:
            clock_note = f", clock {server.clock}" if server.clock else ""
            since = f"{server.started_at:%Y-%m-%d %H:%M} UTC"
            out.print(f"serving: {server.url} ({server.server_id}, since {since}{clock_note})", markup=False)
    else:
        out.print("no `ccm serve` is running: nights run only while one is", markup=False)
    if jobs:
        queued = ", ".join(f"{k.removeprefix('jobs_')} {v}" for k, v in jobs.items() if k.startswith("jobs_"))
        out.print(f"job workers alive: {jobs['workers']}; running: {jobs['running']}; waiting: {queued}",
                  markup=False)  # fmt: skip


def _jobs(conn: Connection) -> dict[str, int]:
    """PostgreSQL: procrastinate's workers and jobs (connector/jobs/engine.py); empty on SQLite."""
    if conn.dialect.name != "postgresql":
        return {}
    from connector.jobs.engine import jobs_summary

    return jobs_summary(conn)
