"""Tenants and their connections."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from connector.model import Connection as LedgerConnection
from connector.model import ConnectionState, Tenant
from connector.store.schema import connections, tenants


class UnknownTenant(LookupError):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"unknown tenant {tenant_id!r} (see `ccm tenants list`)")
        self.tenant_id = tenant_id


def _tenant(row: dict[str, Any]) -> Tenant:
    return Tenant(
        id=row["tenant_id"], name=row["name"], ledger=row["ledger"], base_currency=row["base_currency"],
        timezone=row["timezone"], country=row["country"], night_time=row.get("night_time"),
        contact_email=row.get("contact_email"),
    )  # fmt: skip


def save_tenant(conn: Connection, tenant: Tenant) -> None:
    """Create the tenant or update its settings (its id and ledger never change)."""
    existing = conn.execute(select(tenants.c.ledger).where(tenants.c.tenant_id == tenant.id)).scalar()
    values = {
        "name": tenant.name, "base_currency": tenant.base_currency, "timezone": tenant.timezone,
        "country": tenant.country, "night_time": tenant.night_time, "contact_email": tenant.contact_email,
    }  # fmt: skip
    if existing is None:
        conn.execute(
            tenants.insert().values(
                tenant_id=tenant.id, ledger=tenant.ledger, created_at=datetime.now(UTC), **values
            )
        )
    elif existing != tenant.ledger:
        raise ValueError(f"tenant {tenant.id!r} is on {existing}, not {tenant.ledger}")
    else:
        conn.execute(tenants.update().where(tenants.c.tenant_id == tenant.id).values(**values))


def get_tenant(conn: Connection, tenant_id: str) -> Tenant:
    row = conn.execute(select(tenants).where(tenants.c.tenant_id == tenant_id)).mappings().first()
    if row is None:
        raise UnknownTenant(tenant_id)
    return _tenant(dict(row))


def list_tenants(conn: Connection) -> list[Tenant]:
    return [_tenant(dict(r)) for r in conn.execute(select(tenants).order_by(tenants.c.tenant_id)).mappings()]


def save_connection(conn: Connection, link: LedgerConnection) -> None:
    c = connections.c
    exists = conn.execute(select(c.tenant_id).where(c.tenant_id == link.tenant_id)).first()
    values = {
        "ledger": link.ledger, "external_id": link.external_id, "state": str(link.state),
        "message": link.message, "updated_at": datetime.now(UTC),
    }  # fmt: skip
    if exists:
        conn.execute(connections.update().where(c.tenant_id == link.tenant_id).values(**values))
    else:
        conn.execute(connections.insert().values(tenant_id=link.tenant_id, **values))


def get_connection(conn: Connection, tenant_id: str) -> LedgerConnection | None:
    c = connections.c
    row = conn.execute(select(connections).where(c.tenant_id == tenant_id)).mappings().first()
    if row is None:
        return None
    return LedgerConnection(
        tenant_id=row["tenant_id"], ledger=row["ledger"], external_id=row["external_id"],
        state=ConnectionState(row["state"]), message=row["message"],
    )  # fmt: skip
