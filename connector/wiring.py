"""Wiring for one tenant: its adapter from the registry, its mapping with the tenant's override, the store.

(Not `connector/serve/runtime.py`, what one `ccm serve` process shares.) The adapter is found by the
tenant's ledger name in the registry and gets typed `Services`; nothing here names a ledger.
"""

from __future__ import annotations

from pathlib import Path

from connector import ledger as registry
from connector.config import Settings
from connector.errors import NeedsPerson
from connector.ledger import AdapterContext, Ledger, Services, SourceClock
from connector.mapping import CompiledMapping, load_mapping
from connector.model import Tenant
from connector.store import Store
from connector.store.tenants import get_connection

MAPPING_OVERRIDE = "mapping.yaml"


class NotConnected(NeedsPerson, RuntimeError):
    """The tenant has no ledger connection yet: a person must connect it."""

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


def ledger_for(settings: Settings, store: Store, tenant: Tenant, clock: SourceClock | None = None) -> Ledger:
    """A Ledger for the tenant's connection, built by its registered adapter.

    `clock` is lent to the adapter with the store (`Services`): a simulated clock the ledger runs on.
    """
    spec = registry.get(tenant.ledger)
    with store.read() as conn:
        link = get_connection(conn, tenant.id)
    if link is None:
        raise NotConnected(tenant.id)
    return spec.factory(AdapterContext(tenant.id, link.external_id, settings, Services(store, clock)))
