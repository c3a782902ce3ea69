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
