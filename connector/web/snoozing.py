"""Snoozing on the approvals page: one action (`one=snooze:KEY`, `until:KEY`) or the checked ones (`until`).

The time is the firm's local date and time as a `datetime-local` field sends it (YYYY-MM-DDTHH:MM). A bad or
past time is a 400 naming the field, nothing changed; each action snoozed is written to the audit log in the
same transaction, with its send time before and after (connector/snooze.py keeps it from going out sooner).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog
from starlette.datastructures import FormData

from connector import outbox, snooze
from connector.model import Tenant
from connector.web import audit
from connector.web.users import User

if TYPE_CHECKING:
    from connector.web.pages import Pages

log = structlog.get_logger(__name__)


def _refused(status: int, message: str) -> Exception:
    from connector.web.pages import RequestRefused  # pages imports this module

    return RequestRefused(status, message)


def until_of(form: FormData, key: str, tenant: Tenant) -> datetime:
    """The snooze's end as UTC: the row's own field (`until:KEY`) for one action, else the bulk one."""
    text = str(form.get(f"until:{key}", "") if key else "") or str(form.get("until", ""))
    if not text:
        raise _refused(400, "Snooze until when? Give a date and time")
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise _refused(
            400, f"Snooze until: not a date and time (like 2026-03-12T09:00): {text[:40]!r}"
        ) from None
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return local.replace(tzinfo=ZoneInfo(tenant.timezone)).astimezone(UTC)


def snooze_state(action: outbox.Action | None, until: datetime | None) -> dict[str, object] | None:
    if action is None:
        return None
    shown = f"{until:%Y-%m-%d %H:%M} UTC" if until else None
    return {"state": str(action.state), "send_after": f"{action.send_after:%Y-%m-%d %H:%M} UTC",
            "snoozed_until": shown}  # fmt: skip


def put_aside(pages: Pages, user: User, tenant: Tenant, keys: list[str], until: datetime) -> int:
    """Snooze the actions awaiting approval among `keys`, audited; returns how many."""
    now = pages.rt.clock.now()
    with pages.rt.store.begin() as conn:
        before = {a.key: a for a in outbox.by_keys(conn, tenant.id, keys)}
        try:
            done = snooze.snooze(conn, tenant.id, keys, until, user.name, now)
        except snooze.SnoozeProblem as exc:
            raise _refused(400, f"Snooze until: {exc}") from None
        for key in done:
            after = outbox.get(conn, tenant.id, key)
            audit.write(conn, user.name, tenant.id, f"outbox.snooze {key}", pages.rt.real_now(),
                        snooze_state(before.get(key), None), snooze_state(after, until))  # fmt: skip
    log.info("web.snoozed", user=user.name, tenant=tenant.id, count=len(done), until=until.isoformat())
    return len(done)
