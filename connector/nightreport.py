"""Night reports: what each run of a tenant's night did, stored in the bookkeeper's words.

A report is written after every night, whether `ccm serve` ran it on schedule or a person ran `ccm run`, and
also when the night stopped or crashed before doing anything (then it says why). It names customers and
invoice numbers, never ids, and groups what happened into sections a bookkeeper reads top to bottom:

    sync · sent · waiting for approval · would send (dry run) · call tasks · holds placed · holds released ·
    failed · outcome unknown · will try again · cancelled · not chased · for the bookkeeper ·
    connection health · notes · stopped

`ccm nights` lists them and shows one night in full; `ccm schedule` shows the latest one's headline. What a
report lists as failed or unknown stays listed by `ccm nights` (from the outbox, not the report) until a
person settles it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, desc, func, select

from connector import digest, outbox
from connector.outbox import Mode, State
from connector.payloads import CallTaskPayload, Kind, ReminderPayload, customer_name
from connector.run.night import NightSummary
from connector.store import Store
from connector.store.schema import night_reports
from connector.store.tenants import get_tenant


class RanFrom(StrEnum):
    """What ran the night (`night_reports.ran_from`)."""

    SERVE = "serve"  # `ccm serve`, on schedule
    CLI = "cli"  # a person, with `ccm run`


class ReportOutcome(StrEnum):
    """How the reported night ended (`night_reports.outcome`; the values are what the column stores)."""

    DONE = "done"
    STOPPED = "stopped"  # the night ended early: a person should read why
    FAILED = "failed"  # the night could not run (reconnect needed, a bad settings file, ...)
    CRASHED = "crashed"  # a bug or the database: see the log


_HOLD_TITLES = {
    Mode.AUTO: ("holds placed", "holds released"),
    Mode.APPROVE: ("holds to place once approved", "holds to release once approved"),
    Mode.DRY_RUN: ("holds that would be placed (dry run)", "holds that would be released (dry run)"),
}
SECTION_LINES = 500  # a section stores at most this many lines, then says how many more there were


@dataclass(frozen=True, slots=True)
class Report:
    tenant_id: str
    night: date
    ran_from: RanFrom
    mode: Mode
    outcome: ReportOutcome
    started_at: datetime
    finished_at: datetime
    headline: str
    sections: tuple[tuple[str, tuple[str, ...]], ...]
    report_id: int | None = None

    def section(self, title: str) -> tuple[str, ...]:
        return next((lines for t, lines in self.sections if t == title), ())


def _capped(lines: Sequence[str]) -> tuple[str, ...]:
    if len(lines) <= SECTION_LINES:
        return tuple(lines)
    return (*lines[:SECTION_LINES], f"... and {len(lines) - SECTION_LINES} more")


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _on(d: outbox.Unsettled) -> str:
    return f" ({', '.join(d.invoices)})" if d.invoices else ""


def _to(d: outbox.Unsettled) -> str:
    return "to" if d.action.kind in ("reminder", "notice") else "for"


def _plain(d: outbox.Unsettled) -> str:
    """'reminder (Second notice) by e-mail to Acme Joinery (INV-000275, INV-000280)'"""
    return f"{d.what} {_to(d)} {d.customer}{_on(d)}"


def _why(d: outbox.Unsettled, reason: str | None = None) -> str:
    return f"{_plain(d)}: {reason or d.action.reason or 'no reason recorded'}"


def _sync_lines(summary: NightSummary) -> list[str]:
    result = summary.sync
    if result is None:
        return ["not synced: the night used what the store held"]
    counts = result.counts.values()
    read = sum(c.get("read", 0) for c in counts)
    changed = sum(c.get("inserted", 0) + c.get("updated", 0) + c.get("deleted", 0) for c in counts)
    line = (
        f"{result.outcome}: read {read} records, {changed} changed, {_plural(result.api_calls, 'API call')}"
    )
    line += f" (`ccm log {result.run_id}`)" if result.run_id else ""
    lines = [line]
    if result.error:
        lines.append(f"the sync's problem: {result.error}")
    if summary.discrepancies:
        lines.append(f"{_plural(summary.discrepancies, 'discrepancy', 'discrepancies')} between ccm and the "
                     "ledger (`ccm discrepancies`)")  # fmt: skip
    return lines


def build(
    conn: Connection,
    summary: NightSummary,
    *,
    night: date,
    ran_from: RanFrom,
    mode: Mode,
    started_at: datetime,
    finished_at: datetime,
    crashed: bool = False,
) -> Report:
    """The report of a night that ran (it may have stopped early): read from the summary and the outbox."""
    tid = summary.tenant_id
    o = summary.outcome
    sections: list[tuple[str, list[str]]] = [("sync", _sync_lines(summary))]

    def described(keys: Iterable[str]) -> list[outbox.Unsettled]:
        return outbox.described(conn, tid, outbox.by_keys(conn, tid, list(keys)))

    sent_by_level: Counter[str] = Counter()
    if o is not None:
        sent = described(o.sent)
        for d in sent:
            p = d.action.payload
            if d.action.kind == Kind.REMINDER and isinstance(p, ReminderPayload):
                sent_by_level[p.level_name or f"level {p.level}"] += 1
        sections.append(("sent", [_plain(d) for d in sent if d.action.kind != "note"]))
        sections.append(("call tasks", [_call(d) for d in described(o.tasks)]))
    planned_keys = [a.key for a in summary.plan.actions] if summary.plan else []
    if mode is Mode.APPROVE and planned_keys:
        waiting = [d for d in described(planned_keys) if d.action.state is State.AWAITING_APPROVAL]
        lines = [_plain(d) for d in waiting]
        if lines:
            lines.append(
                "nothing of this goes out until a person approves it: "
                f"`ccm outbox approve --all -t {tid}` (or by key)"
            )
        sections.append(("waiting for approval", lines))
    if mode is Mode.DRY_RUN and summary.plan:
        sections.append(("would send (dry run)", [_planned(a) for a in summary.plan.actions]))
    placed = [h for h in summary.holds if h.action == "hold"]
    released = [h for h in summary.holds if h.action == "release"]
    placing, releasing = _HOLD_TITLES[mode]
    sections.append((placing, [f"{h.name or h.customer_id}: {h.reason}" for h in placed]))
    sections.append((releasing, [f"{h.name or h.customer_id}: {h.reason}" for h in released]))
    if o is not None:
        failed = dict(o.failed)
        sections.append(
            ("failed", [_why(d, failed.get(d.action.key)) + f"; {d.todo}" for d in described(failed)])
        )
        sections.append(("outcome unknown", [_why(d) + f"; {d.todo}" for d in described(o.unknown)]))
        deferred = dict(o.deferred)
        sections.append(("will try again", [
            f"{_why(d, deferred.get(d.action.key))}; next try {d.action.send_after:%Y-%m-%d %H:%M} UTC"
            for d in described(deferred) if d.action.state is State.PLANNED
        ]))  # fmt: skip
        cancelled = dict(o.cancelled)
        sections.append(("cancelled", [_why(d, cancelled.get(d.action.key)) for d in described(cancelled)]))
    sections.append(("not chased", [
        f"{_plural(n, 'invoice')}: {reason}" for reason, n in summary.skipped.most_common()
    ]))  # fmt: skip
    flags = list(summary.plan.evaluation.flags) if summary.plan else []
    sections.append(("for the bookkeeper", flags))
    sections.append(("connection health", [f"{i.kind}: {i.message}" for i in summary.health]))
    sections.append(("notes", list(summary.notes)))
    if summary.stopped:
        sections.append(("stopped", [summary.stopped]))
    outcome = ReportOutcome.STOPPED if summary.stopped else ReportOutcome.DONE
    if crashed:
        outcome = ReportOutcome.CRASHED
    headline = _headline(summary, mode, sent_by_level, len(placed), len(released))
    return Report(
        tid, night, ran_from, mode, outcome, started_at, finished_at, headline,
        tuple((title, _capped(lines)) for title, lines in sections if lines),
    )  # fmt: skip


def _call(d: outbox.Unsettled) -> str:
    phone = d.action.payload.phone if isinstance(d.action.payload, CallTaskPayload) else None
    return f"call {d.customer}{_on(d)}" + (f" on {phone}" if phone else "")


def _planned(a: outbox.NewAction) -> str:
    p = a.payload
    who = customer_name(p) or a.customer_id
    if a.kind == Kind.REMINDER and isinstance(p, ReminderPayload):
        level = p.level_name or f"level {p.level or '?'}"
        numbers = p.invoice_numbers()
        on = f" ({', '.join(numbers)})" if numbers else ""
        return f"reminder ({level}) to {who}{on}"
    return f"{a.kind.replace('_', ' ')} for {who}"


def _headline(
    summary: NightSummary, mode: Mode, sent_by_level: Counter[str], placed: int, released: int
) -> str:
    parts: list[str] = []
    o = summary.outcome
    if sent_by_level:
        levels = ", ".join(f"{n} {level}" for level, n in sent_by_level.most_common())
        parts.append(f"{_plural(sum(sent_by_level.values()), 'reminder')} sent ({levels})")
    elif o is not None:
        parts.append("no reminder sent")
    planned = len(summary.plan.actions) if summary.plan else 0
    if mode is Mode.APPROVE and planned:
        parts.append(f"{_plural(planned, 'action')} waiting for approval")
    if mode is Mode.DRY_RUN:
        parts.append(f"dry run: {_plural(planned, 'action')} would be planned")
    changes = [f"{_plural(placed, 'hold')} placed"] if placed else []
    changes += [f"{_plural(released, 'hold')} released"] if released else []
    if changes:
        after = {Mode.AUTO: "", Mode.APPROVE: " once approved", Mode.DRY_RUN: " (dry run: would be)"}[mode]
        parts.append(" and ".join(changes) + after)
    if o is not None:
        for n, label in ((len(o.tasks), "call task"), (len(o.failed), "failed"), (len(o.unknown), "unknown"),
                         (len(o.deferred), "to try again")):  # fmt: skip
            if n:
                parts.append(_plural(n, label, label if label != "call task" else None))
    if summary.health:
        parts.append(f"health: {', '.join(i.kind for i in summary.health)}")
    if summary.stopped:
        parts.append(f"stopped: {summary.stopped}")
    return "; ".join(parts) or "nothing to do"


def not_run(
    tenant_id: str, *, night: date, ran_from: RanFrom, mode: Mode, started_at: datetime,
    finished_at: datetime, outcome: ReportOutcome, reason: str,
) -> Report:  # fmt: skip
    """The report of a night that could not run at all (a bad settings file, reconnect needed, a crash)."""
    headline = f"{'crashed' if outcome == ReportOutcome.CRASHED else 'did not run'}: {reason}"
    return Report(tenant_id, night, ran_from, mode, outcome, started_at, finished_at, headline,
                  (("stopped", (reason,)),))  # fmt: skip


def save(conn: Connection, report: Report) -> int:
    result = conn.execute(night_reports.insert().values(
        tenant_id=report.tenant_id, night=report.night, ran_from=report.ran_from, mode=report.mode,
        outcome=report.outcome, started_at=report.started_at, finished_at=report.finished_at,
        headline=report.headline, body=[[title, list(lines)] for title, lines in report.sections],
    ))  # fmt: skip
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


def _report(row: Any) -> Report:
    sections = tuple((str(title), tuple(str(line) for line in lines)) for title, lines in row.body)
    return Report(row.tenant_id, row.night, RanFrom(row.ran_from), Mode(row.mode), ReportOutcome(row.outcome),
                  row.started_at, row.finished_at, row.headline, sections, row.report_id)  # fmt: skip


def recent(conn: Connection, tenant_id: str | None = None, limit: int = 30) -> list[Report]:
    """The newest reports first, of one tenant or all."""
    r = night_reports.c
    query = select(night_reports).order_by(desc(r.started_at), desc(r.report_id)).limit(limit)
    if tenant_id is not None:
        query = query.where(r.tenant_id == tenant_id)
    return [_report(row) for row in conn.execute(query)]


def of_night(conn: Connection, night: date, tenant_id: str | None = None) -> list[Report]:
    """Every report of that local night (a tenant may have run more than once), oldest first."""
    r = night_reports.c
    query = select(night_reports).where(r.night == night).order_by(r.tenant_id, r.started_at, r.report_id)
    if tenant_id is not None:
        query = query.where(r.tenant_id == tenant_id)
    return [_report(row) for row in conn.execute(query)]


def one(conn: Connection, report_id: int) -> Report | None:
    row = conn.execute(select(night_reports).where(night_reports.c.report_id == report_id)).first()
    return _report(row) if row is not None else None


def latest_per_tenant(conn: Connection) -> dict[str, Report]:
    r = night_reports.c
    newest = select(r.tenant_id, func.max(r.report_id).label("report_id")).group_by(r.tenant_id).subquery()
    query = select(night_reports).join(newest, night_reports.c.report_id == newest.c.report_id)
    return {row.tenant_id: _report(row) for row in conn.execute(query)}


def record(
    store: Store,
    tenant_id: str,
    summary: NightSummary | None,
    *,
    ran_from: RanFrom,
    mode: Mode,
    started_at: datetime,
    finished_at: datetime,
    problem: str | None = None,
    crashed: bool = False,
) -> Report:
    """Build and store the report of one run of a tenant's night: from its summary, or from the problem
    that kept it from running (`summary` None). Its night is the tenant's local date when it began."""
    with store.begin() as conn:
        tenant = get_tenant(conn, tenant_id)
        night = started_at.astimezone(ZoneInfo(tenant.timezone)).date()
        if summary is None:
            outcome = ReportOutcome.CRASHED if crashed else ReportOutcome.FAILED
            reason = problem or "no reason recorded"
            report = not_run(tenant_id, night=night, ran_from=ran_from, mode=mode, started_at=started_at,
                             finished_at=finished_at, outcome=outcome, reason=reason)  # fmt: skip
        else:
            report = build(conn, summary, night=night, ran_from=ran_from, mode=mode, started_at=started_at,
                           finished_at=finished_at, crashed=crashed)  # fmt: skip
        report_id = save(conn, report)
        digest.plan(conn, tenant, report, finished_at)  # the firm's morning digest, once per night (opt-in)
    return replace(report, report_id=report_id)
