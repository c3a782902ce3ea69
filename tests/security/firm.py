"""A connected, synced firm for attacks to aim at: a Xero sandbox holding the firm's organisation and another
(the attacker's), `ccm serve` in front of it, and a snapshot of everything an attack could change."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import FirmSize, generate
from adapters.xero import sandbox as xero_sandbox
from connector.store import Store
from connector.store.schema import (
    connections,
    customers,
    invites,
    invoices,
    oauth_grants,
    oauth_states,
    oauth_tokens,
    outbox,
    tenants,
)
from tests.serve.harness import CCM, clean_env, free_port, xero_env

SIZE = FirmSize(6, 100, 50)
FIRM = "Acme Trading Ltd"
OTHER = "Mallory Holdings Ltd"


@dataclass
class Target:
    """The firm `acme`, bound to FIRM's organisation, and the attacker's organisation in the same sandbox."""

    sandbox: Any
    env: dict[str, str]
    port: int
    home: Path
    store: Store
    org: dict[str, str]  # organisation name -> Xero tenantId
    ids: dict[str, set[str]]  # organisation name -> its customers' ids

    def ccm(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CCM, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        """Everything about the firm that an attack on connecting could change."""
        with self.store.read() as conn:
            return {
                "tenant": conn.execute(select(tenants).where(tenants.c.tenant_id == "acme")).all(),
                "tenants": conn.execute(select(func.count()).select_from(tenants)).scalar_one(),
                "connection": conn.execute(select(connections.c.external_id, connections.c.state)).all(),
                "tokens": conn.execute(select(oauth_tokens.c.tenant_id, oauth_tokens.c.grant_id)).all(),
                "grants": conn.execute(select(oauth_grants.c.grant_id, oauth_grants.c.ciphertext)).all(),
                "states": conn.execute(select(func.count()).select_from(oauth_states)).scalar_one(),
                "customers": conn.execute(select(customers.c.id).order_by(customers.c.id)).scalars().all(),
                "invoices": conn.execute(select(func.count()).select_from(invoices)).scalar_one(),
                "outbox": conn.execute(select(outbox.c.key, outbox.c.state).order_by(outbox.c.key)).all(),
            }

    def open_invites(self) -> int:
        with self.store.read() as conn:
            query = select(func.count()).select_from(invites).where(invites.c.used_at.is_(None))
            return int(conn.execute(query).scalar_one())

    def stored_customers(self) -> set[str]:
        with self.store.read() as conn:
            return set(conn.execute(select(customers.c.id).where(customers.c.tenant_id == "acme")).scalars())


@contextmanager
def target(tmp_path: Path) -> Iterator[Target]:
    """The sandbox with both organisations, the firm's settings and store; nothing connected yet."""
    real = (
        SandboxClock()
    )  # `ccm serve` runs on the machine's clock here: the firms end the day before its date
    today = real.now().date()
    firms = {
        FIRM: generate(41, SIZE, today=today, name=FIRM),
        OTHER: generate(42, SIZE, today=today, name=OTHER),
    }
    sandbox = xero_sandbox.start(firms[FIRM], extra_firms=[firms[OTHER]], clock=real, limits=False)
    port = free_port()
    home = tmp_path / "home"
    env = clean_env() | xero_env(sandbox, port) | {"CCM_HOME": str(home)}
    org = {book.firm_name: tid for tid, book in sandbox.books.items()}
    store = None
    try:
        ids = {name: {c.id for c in firm.customers} for name, firm in firms.items()}
        made = Target(sandbox, env, port, home, Store.open(f"sqlite:///{home / 'ccm.db'}"), org, ids)
        store = made.store
        yield made
    finally:
        if store is not None:
            store.close()
        sandbox.stop()
