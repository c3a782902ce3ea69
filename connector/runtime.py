"""Wiring for one tenant: its adapter from the registry, its mapping with the tenant's override, the store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector import ledger as registry
from connector.config import Settings
from connector.errors import NeedsPerson
from connector.ledger import AdapterContext, Ledger
from connector.mapping import CompiledMapping, load_mapping
from connector.model import Tenant
from connector.store import Store
from connector.store.tenants import get_connection

MAPPING_OVERRIDE = "mapping.yaml"


class NotConnected(NeedsPerson, RuntimeError):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} has no ledger connection yet (connect it first)")


def open_store(settings: Settings) -> Store:
    """The migrated store the settings point at."""
    return Store.open(settings.db_url)


def mapping_override(settings: Settings, tenant_id: str) -> Path:
    return settings.tenant_dir(tenant_id) / MAPPING_OVERRIDE


def mapping_for(settings: Settings, tenant: Tenant) -> CompiledMapping:
    """The ledger's shipped mapping with the tenant's override merged over it, validated and compiled."""
    spec = registry.get(tenant.ledger)
    override = mapping_override(settings, tenant.id)
    return load_mapping(spec.mapping, override if override.exists() else None, spec.schema)


def ledger_for(
    settings: Settings, store: Store, tenant: Tenant, services: Mapping[str, Any] | None = None
) -> Ledger:
    """A Ledger for the tenant's connection, built by its registered adapter.

    `services` go to the adapter besides the store, e.g. "clock" (a simulated clock the ledger runs on).
    """
    spec = registry.get(tenant.ledger)
    with store.read() as conn:
        link = get_connection(conn, tenant.id)
    if link is None:
        raise NotConnected(tenant.id)
    return spec.factory(
        AdapterContext(tenant.id, link.external_id, settings, {"store": store, **(services or {})})
    )
