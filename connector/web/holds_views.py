"""What /t/{tenant}/holds shows and changes: holds with their reasons, limits, limit suggestions.

Read through the CLI's own functions (`ccm limit list`, `ccm limits suggest`): the same figures on both.
A suggestion dismissed by a person stays hidden while its figures (kind, limit now, suggested limit) are the
ones dismissed; the dismissal is the audit log's entry (`limit.dismiss`, the figures in `after`), so there is
no second record of it to drift. Accepting sets the suggested limit (source "suggestion") and is audited
with the limit before and after, in the same transaction. The page's figures are computed once per firm,
date, records and ccm's own state of the firm (connector/web/snapshots.py), shared by every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from connector import creditcontrol as credit
from connector import outbox
from connector.config import Settings
from connector.creditcontrol.suggestions import Suggestion
from connector.model import Money, Tenant
from connector.outbox import State
from connector.payloads import customer_name, reason_of
from connector.rules.credit import HOLD, RELEASE, Account
from connector.store import Store
from connector.store.schema import web_audit
from connector.web import audit, snapshots
from connector.web.snapshots import Books

DISMISS = "limit.dismiss "
ACCEPT = "limit.accept "
CREDIT_FILE = "credit.yaml"


@dataclass(frozen=True, slots=True)
class HoldRow:
    """A customer on hold in the ledger, or a hold or release planned and not yet made there."""

    customer_id: str
    name: str
    state: str  # on hold | hold awaiting approval | hold planned | release awaiting approval | ...
    reason: str
    since: datetime | None  # UTC, when the ledger got it (None: not yet)
    exposure: Money | None
    limit: Money | None
    overdue: tuple[str, ...]  # overdue invoice numbers


@dataclass(frozen=True, slots=True)
class LimitRow:
    customer_id: str
    name: str
    limit: Money
    exposure: Money
    rating: str | None
    on_hold: bool

    @property
    def over(self) -> bool:
        return self.exposure.currency == self.limit.currency and self.exposure.amount > self.limit.amount


@dataclass(frozen=True)
class HoldsPage:
    holds: list[HoldRow]
    limits: list[LimitRow]
    suggestions: list[Suggestion]
    dismissed: int  # suggestions hidden because a person dismissed them with these figures


def figures(s: Suggestion) -> dict[str, str]:
    """What a dismissal remembers: when any of it changes, the suggestion shows again."""
    limit = "" if s.limit is None else f"{s.limit.amount.normalize():f} {s.limit.currency}"
    return {
        "kind": s.kind,
        "limit": limit,
        "suggested": f"{s.suggested.amount.normalize():f} {s.suggested.currency}",
    }


def dismissed(conn: Connection, tenant_id: str) -> dict[str, dict[str, str]]:
    """Per customer, the figures of the suggestion last dismissed."""
    a = web_audit.c
    query = (
        select(a.after).where(a.tenant_id == tenant_id, a.what.like(DISMISS + "%")).order_by(a.at, a.audit_id)
    )
    found: dict[str, dict[str, str]] = {}
    for (after,) in conn.execute(query):
        if isinstance(after, dict) and after.get("customer_id"):
            found[str(after["customer_id"])] = {
                k: str(after.get(k, "")) for k in ("kind", "limit", "suggested")
            }
    return found


def today_of(tenant: Tenant, now: datetime) -> date:
    """The firm's own date at `now`: limits and ratings are judged on its calendar, as the CLI does."""
    return now.astimezone(ZoneInfo(tenant.timezone)).date()


def suggestions(store: Store, settings: Settings, tenant: Tenant, today: date) -> list[Suggestion]:
    """`ccm limits suggest`'s list (CreditFileError when the firm's credit.yaml is bad)."""
    books = snapshots.of(store).books(settings, tenant, today)
    with store.read() as conn:
        limits_now = credit.limits(conn, tenant.id)
    return _suggested(store, books, limits_now)


def _suggested(store: Store, books: Books, limits_now: dict[str, Money]) -> list[Suggestion]:
    """The suggestions for the books and limits, computed once for both (kept: do not modify)."""
    return snapshots.of(store).once(
        books.tenant.id, "holds.suggestions", (books.key, limits_now),
        lambda: credit.suggest(books.snapshot, books.today, limits_now, books.rating),
    )  # fmt: skip


def _pending(action: outbox.Action) -> str:
    waiting = "awaiting approval" if action.state is State.AWAITING_APPROVAL else "planned"
    return f"{action.kind} {waiting}"


def page(store: Store, settings: Settings, tenant: Tenant, today: date) -> HoldsPage:
    """Everything the holds page shows, as the store stands now and on the firm's `today` (kept until any
    of that changes: do not modify). CreditFileError when the firm's credit.yaml is bad."""
    kept = snapshots.of(store)
    books = kept.books(settings, tenant, today)
    key = (books.key, kept.ccm(tenant.id), settings.credit)
    return kept.once(tenant.id, "holds", key, lambda: _page(store, settings, books))


def _page(store: Store, settings: Settings, books: Books) -> HoldsPage:
    tenant, today, snapshot, basis = books.tenant, books.today, books.snapshot, books.basis
    cfg = settings.credit
    with store.read() as conn:
        _, accounts = credit.decide(
            conn, snapshot, today, (), cfg.include_drafts, cfg.segment_limits, basis=basis
        )
        held = credit.holds(conn, tenant.id)
        limits_now = credit.limits(conn, tenant.id)
        waiting = outbox.actions(conn, tenant.id, [State.AWAITING_APPROVAL, State.PLANNED])
        gone = dismissed(conn, tenant.id)
    found = _suggested(store, books, limits_now)
    by_id: Mapping[str, Account] = {a.customer_id: a for a in accounts}
    names = snapshot.customer_names
    rows = []
    for cid, h in sorted(held.items(), key=lambda kv: names.get(kv[0], kv[0]).lower()):
        if h.on_hold:
            rows.append(_row(cid, names.get(cid, cid), "on hold", h.reason, h.since, by_id.get(cid)))
    for action in waiting:
        if action.kind in (HOLD, RELEASE):
            name = customer_name(action.payload) or names.get(action.customer_id, action.customer_id)
            reason = reason_of(action.payload) or ""
            rows.append(
                _row(action.customer_id, name, _pending(action), reason, None, by_id.get(action.customer_id))
            )
    limits = [
        LimitRow(a.customer_id, a.name, a.limit, a.exposure, a.rating, a.on_hold)
        for a in sorted(accounts, key=lambda a: a.name.lower())
        if a.limit is not None
    ]
    shown = [s for s in found if gone.get(s.customer_id) != figures(s)]
    return HoldsPage(rows, limits, shown, len(found) - len(shown))


def _row(cid: str, name: str, state: str, reason: str, since: datetime | None, a: Account | None) -> HoldRow:
    exposure = a.exposure if a else None
    return HoldRow(
        cid, name, state, reason, since, exposure, a.limit if a else None, a.overdue_numbers if a else ()
    )


def _limit_state(limit: Money | None) -> dict[str, Any]:
    if limit is None:
        return {"state": "no limit", "limit": None}
    return {"state": f"limit {limit}", "limit": f"{limit.amount.normalize():f} {limit.currency}"}


def accept(conn: Connection, tenant: Tenant, s: Suggestion, who: str, now: datetime) -> None:
    """Set the suggested limit, audited with the limit before and after, in the caller's transaction."""
    before = credit.limits(conn, tenant.id).get(s.customer_id)
    credit.set_limit(conn, tenant.id, s.customer_id, s.suggested, now, "suggestion")
    after = _limit_state(s.suggested) | {"customer_id": s.customer_id, "why": s.reason}
    audit.write(conn, who, tenant.id, ACCEPT + s.name, now, _limit_state(before), after)


def dismiss(conn: Connection, tenant: Tenant, s: Suggestion, who: str, now: datetime) -> None:
    """Hide the suggestion until its figures change; the audit entry is the record of it."""
    before = {"state": f"suggested {s.suggested}", **figures(s), "customer_id": s.customer_id}
    after = {"state": "dismissed", **figures(s), "customer_id": s.customer_id}
    audit.write(conn, who, tenant.id, DISMISS + s.name, now, before, after)


def import_limits(conn: Connection, tenant: Tenant, name: str, raw: bytes, who: str, now: datetime) -> int:
    """`ccm limit import` for an upload: all or nothing (LimitFileError names each bad line); audited."""
    before = credit.limits(conn, tenant.id)
    count = credit.import_limits_upload(conn, tenant, name, raw, now)
    after = credit.limits(conn, tenant.id)
    changed = sorted(cid for cid, limit in after.items() if before.get(cid) != limit)
    audit.write(
        conn, who, tenant.id, f"limit.import {name}"[:255], now,
        {"state": f"{len(before)} limits"},
        {"state": f"{len(after)} limits", "changed": changed, "rows": count},
    )  # fmt: skip
    return count
