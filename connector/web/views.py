"""What the bookkeeper's pages show, read from the store: plain data the templates and CSV turn into pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from connector import health, nightreport, outbox
from connector.config import Settings
from connector.model import ConnectionState, Tenant
from connector.nightreport import Report
from connector.outbox import State
from connector.serve.trigger import next_fire, parse_time
from connector.store.schema import outbox as outbox_table
from connector.store.tenants import get_connection, list_tenants
from connector.web import audit, preview
from connector.web.users import User


@dataclass(frozen=True, slots=True)
class FirmRow:
    tenant: Tenant
    connection: str  # connected | reconnect_needed | disconnected | not connected
    issues: tuple[str, ...]  # open connection-health issues, in words
    last_night: Report | None
    awaiting: int
    failed: int
    unknown: int
    next_night: datetime | None  # UTC; None when not connected

    @property
    def next_local(self) -> str:
        if self.next_night is None:
            return "not scheduled (not connected)"
        return f"{self.next_night.astimezone(ZoneInfo(self.tenant.timezone)):%Y-%m-%d %H:%M %Z}"


def _counts(conn: Connection) -> dict[tuple[str, str], int]:
    o = outbox_table.c
    wanted = [str(State.AWAITING_APPROVAL), str(State.FAILED), str(State.UNKNOWN)]
    query = (
        select(o.tenant_id, o.state, func.count()).where(o.state.in_(wanted)).group_by(o.tenant_id, o.state)
    )
    return {(t, s): int(n) for t, s, n in conn.execute(query)}


def firms(conn: Connection, settings: Settings, user: User, now: datetime) -> list[FirmRow]:
    """The firms `user` may see, with what a bookkeeper looks at first. `now`: the server's clock."""
    reports = nightreport.latest_per_tenant(conn)
    counts = _counts(conn)
    issues: dict[str, list[str]] = {}
    for issue in health.open_issues(conn):
        issues.setdefault(issue.tenant_id, []).append(f"{issue.kind}: {issue.message}")
    rows = []
    for tenant in list_tenants(conn):
        if not user.may_see(tenant.id):
            continue
        link = get_connection(conn, tenant.id)
        state = "not connected" if link is None else str(link.state)
        nxt = None
        if link is not None and link.state is not ConnectionState.DISCONNECTED:
            at = tenant.night_time or settings.serve.night_time
            nxt = next_fire(now, parse_time(at), ZoneInfo(tenant.timezone))
        n = {
            s: counts.get((tenant.id, str(s)), 0)
            for s in (State.AWAITING_APPROVAL, State.FAILED, State.UNKNOWN)
        }
        rows.append(FirmRow(
            tenant, state, tuple(issues.get(tenant.id, ())), reports.get(tenant.id),
            n[State.AWAITING_APPROVAL], n[State.FAILED], n[State.UNKNOWN], nxt,
        ))  # fmt: skip
    return rows


@dataclass(frozen=True, slots=True)
class NightPage:
    report: Report | None
    unsettled: list[outbox.Unsettled]
    changes: list[audit.Entry]


def night(conn: Connection, tenant: Tenant) -> NightPage:
    reports = nightreport.recent(conn, tenant.id, limit=1)
    return NightPage(
        reports[0] if reports else None, outbox.unsettled(conn, tenant.id), audit.recent(conn, tenant.id, 20)
    )


def approvals(conn: Connection, settings: Settings, tenant: Tenant, today: date) -> list[preview.Preview]:
    """Every action awaiting approval, its e-mail rendered (or, for a hold, its reason)."""
    waiting = outbox.described(conn, tenant.id, outbox.actions(conn, tenant.id, [State.AWAITING_APPROVAL]))
    templates = preview.templates_for(settings, tenant)
    return [
        preview.preview(templates, tenant, d.action, d.customer, d.what, d.invoices, today) for d in waiting
    ]
