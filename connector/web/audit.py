"""The audit log: who changed what through the bookkeeper's pages (or `ccm users`), when, before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, desc, select

from connector.store.schema import web_audit


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    who: str
    tenant_id: str | None
    what: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def change(self) -> str:
        """What changed, in words: "failed → planned" for an outbox action, else "limit: 500.00 → 800.00"
        for each value that differs."""
        before, after = self.before or {}, self.after or {}
        if "state" in before and "state" in after:  # an outbox action: its state says it all
            return f"{_shown(before['state'])} → {_shown(after['state'])}"
        parts = [
            f"{key}: {_shown(before.get(key))} → {_shown(after.get(key))}"
            for key in dict.fromkeys([*before, *after])
            if before.get(key) != after.get(key)
        ]
        return "; ".join(parts)


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_shown(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or "none"
    return str(value)


def write(
    conn: Connection,
    who: str,
    tenant_id: str | None,
    what: str,
    now: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """One entry, in the caller's transaction: the change and its record commit or roll back together."""
    conn.execute(web_audit.insert().values(
        at=now, who=who, tenant_id=tenant_id, what=what[:255], before=before, after=after
    ))  # fmt: skip


def recent(conn: Connection, tenant_id: str | None = None, limit: int = 50) -> list[Entry]:
    """The newest entries first, of one firm or all."""
    a = web_audit.c
    query = select(web_audit).order_by(desc(a.at), desc(a.audit_id)).limit(limit)
    if tenant_id is not None:
        query = query.where(a.tenant_id == tenant_id)
    return [Entry(r.at, r.who, r.tenant_id, r.what, r.before, r.after) for r in conn.execute(query)]
