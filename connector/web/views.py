"""What the bookkeeper's pages show, read from the store: plain data the templates and CSV turn into pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from connector import health, nightreport, outbox
from connector.config import Settings
from connector.model import ConnectionState, Tenant
from connector.nightreport import Report
from connector.outbox import State
from connector.serve.trigger import next_fire, parse_time
from connector.store.schema import outbox as outbox_table
from connector.store.schema import outbox_snoozes
from connector.store.tenants import get_connection, list_tenants
from connector.web import audit
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
    snoozed: int = 0  # awaiting approval but put aside (connector/snooze.py): not in `awaiting`
    snoozed_until: datetime | None = None  # UTC: when the first of them comes back

    @property
    def next_local(self) -> str:
        if self.next_night is None:
            return "not scheduled (not connected)"
        return f"{self.next_night.astimezone(ZoneInfo(self.tenant.timezone)):%Y-%m-%d %H:%M %Z}"

    @property
    def snoozed_text(self) -> str:
        """E.g. "1 snoozed until 5 Dec", "3 snoozed, the first until 5 Dec 14:30" (the firm's local time)."""
        if not self.snoozed or self.snoozed_until is None:
            return ""
        local = self.snoozed_until.astimezone(ZoneInfo(self.tenant.timezone))
        when = f"{local.day} {local:%b}" + (f" {local:%H:%M}" if (local.hour, local.minute) != (0, 0) else "")
        if self.snoozed == 1:
            return f"1 snoozed until {when}"
        return f"{self.snoozed} snoozed, the first until {when}"


def _counts(conn: Connection) -> dict[tuple[str, str], int]:
    o = outbox_table.c
    wanted = [str(State.AWAITING_APPROVAL), str(State.FAILED), str(State.UNKNOWN)]
    query = (
        select(o.tenant_id, o.state, func.count()).where(o.state.in_(wanted)).group_by(o.tenant_id, o.state)
    )
    return {(t, s): int(n) for t, s, n in conn.execute(query)}


def _snoozed(conn: Connection, now: datetime) -> dict[str, tuple[int, datetime]]:
    """Per tenant: how many actions awaiting approval are snoozed at `now`, and the earliest snooze's end."""
    s, o = outbox_snoozes.c, outbox_table.c
    joined = outbox_snoozes.join(outbox_table, (o.tenant_id == s.tenant_id) & (o.key == s.key))
    query = (
        select(s.tenant_id, func.count(), func.min(s.until, type_=s.until.type))
        .select_from(joined)
        .where(s.until > now, o.state == str(State.AWAITING_APPROVAL))
        .group_by(s.tenant_id)
    )
    return {t: (int(n), until) for t, n, until in conn.execute(query)}


def firms(conn: Connection, settings: Settings, user: User, now: datetime) -> list[FirmRow]:
    """The firms `user` may see, with what a bookkeeper looks at first. `now`: the server's clock. Actions
    snoozed at `now` are counted apart from those awaiting approval (they are not on the approvals page)."""
    reports = nightreport.latest_per_tenant(conn)
    counts = _counts(conn)
    snoozed = _snoozed(conn, now)
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
        put_aside, until = snoozed.get(tenant.id, (0, None))
        rows.append(FirmRow(
            tenant, state, tuple(issues.get(tenant.id, ())), reports.get(tenant.id),
            n[State.AWAITING_APPROVAL] - put_aside, n[State.FAILED], n[State.UNKNOWN], nxt, put_aside, until,
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


def approvals(conn: Connection, tenant: Tenant) -> list[outbox.Unsettled]:
    """Every action awaiting approval, with its customer's name and invoice numbers (connector/web/preview.py
    drafts each e-mail as the send would)."""
    return outbox.described(conn, tenant.id, outbox.actions(conn, tenant.id, [State.AWAITING_APPROVAL]))
