"""Tenants and their connections.

Every function runs in the caller's transaction and never commits. A tenant's id and ledger never change
once saved; its connection is one row, replaced on reconnecting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, select

from connector.errors import NeedsPerson
from connector.model import Connection as LedgerConnection
from connector.model import ConnectionState, Tenant
from connector.store.schema import connections, tenants


class UnknownTenant(NeedsPerson, LookupError):
    """No tenant has this id: the message says so and points at `ccm tenants list`."""

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
    """Create the tenant or update its settings (its id and ledger never change).

    Raises:
        ValueError: The tenant exists on another ledger.
    """
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
    """The tenant with this id.

    Raises:
        UnknownTenant: There is none.
    """
    row = conn.execute(select(tenants).where(tenants.c.tenant_id == tenant_id)).mappings().first()
    if row is None:
        raise UnknownTenant(tenant_id)
    return _tenant(dict(row))


def list_tenants(conn: Connection) -> list[Tenant]:
    """Every tenant, by id."""
    return [_tenant(dict(r)) for r in conn.execute(select(tenants).order_by(tenants.c.tenant_id)).mappings()]


def save_connection(conn: Connection, link: LedgerConnection) -> None:
    """Store the tenant's link to its ledger organisation.

    Connecting it to an organisation it was not connected to before starts its safe first nights (and dates
    the backlog cutoff): connected_at is now, no nights run yet. Reconnecting the same organisation does not.
    """
    c = connections.c
    exists = conn.execute(select(c.external_id).where(c.tenant_id == link.tenant_id)).first()
    now = datetime.now(UTC)
    values = {
        "ledger": link.ledger, "external_id": link.external_id, "state": str(link.state),
        "message": link.message, "updated_at": now,
    }  # fmt: skip
    new_organisation = exists is None or exists.external_id != link.external_id
    if new_organisation and link.state is ConnectionState.CONNECTED:
        conn.execute(
            tenants.update()
            .where(tenants.c.tenant_id == link.tenant_id)
            .values(connected_at=now, nights_run=0, last_night=None)
        )
    if exists:
        conn.execute(connections.update().where(c.tenant_id == link.tenant_id).values(**values))
    else:
        conn.execute(connections.insert().values(tenant_id=link.tenant_id, **values))


def get_connection(conn: Connection, tenant_id: str) -> LedgerConnection | None:
    """The tenant's link to its ledger organisation and its state; None if it was never connected."""
    c = connections.c
    row = conn.execute(select(connections).where(c.tenant_id == tenant_id)).mappings().first()
    if row is None:
        return None
    return LedgerConnection(
        tenant_id=row["tenant_id"], ledger=row["ledger"], external_id=row["external_id"],
        state=ConnectionState(row["state"]), message=row["message"],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Standing:
    """What decides a firm's mode for a night (connector/firmmode.py), as stored."""

    chosen: str | None  # the mode a person chose: auto | approve | dry-run; None: none chosen
    connected_at: datetime | None  # None: connected before ccm had safe first nights
    nights_run: int  # nights that planned since connected_at, one per local date
    last_night: date | None  # the local date of the last one counted


def get_standing(conn: Connection, tenant_id: str) -> Standing:
    """What decides the firm's mode tonight: the mode chosen and its safe first nights so far.

    Raises:
        UnknownTenant: There is no tenant with this id.
    """
    t = tenants.c
    query = select(t.mode, t.connected_at, t.nights_run, t.last_night).where(t.tenant_id == tenant_id)
    row = conn.execute(query).first()
    if row is None:
        raise UnknownTenant(tenant_id)
    return Standing(row.mode, row.connected_at, int(row.nights_run or 0), row.last_night)


def set_mode(conn: Connection, tenant_id: str, mode: str | None) -> None:
    """Store the mode a person chose for the firm (None: back to the default).

    Raises:
        UnknownTenant: There is no tenant with this id.
    """
    get_standing(conn, tenant_id)
    conn.execute(tenants.update().where(tenants.c.tenant_id == tenant_id).values(mode=mode))


def end_safe_nights(conn: Connection, tenant_id: str, safe_nights: int) -> None:
    """A person ends the firm's safe first nights early: they count as run, tonight's included.

    Raises:
        UnknownTenant: There is no tenant with this id.
    """
    standing = get_standing(conn, tenant_id)
    conn.execute(
        tenants.update()
        .where(tenants.c.tenant_id == tenant_id)
        .values(nights_run=max(standing.nights_run, safe_nights), last_night=None)
    )


def count_night(conn: Connection, tenant_id: str, night: date) -> int:
    """Count the firm's night of local date `night` as run; the nights run so far.

    Idempotent per date: counting a date again, or one before the last counted, changes nothing.

    Raises:
        UnknownTenant: There is no tenant with this id.
    """
    t = tenants.c
    conn.execute(
        tenants.update()
        .where(t.tenant_id == tenant_id, (t.last_night.is_(None)) | (t.last_night < night))
        .values(nights_run=t.nights_run + 1, last_night=night)
    )
    return get_standing(conn, tenant_id).nights_run
