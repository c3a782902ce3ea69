"""One full sync of a tenant in its own process, as a worker runs it: `python -m tests.limits_sync TENANT`.

Settings come from the CCM_* environment (the store, the ledger's URLs, `limits.*`); CCM_SERVE__CLOCK, when
set, is the simulated clock the ledger and its sandbox run on. No run lease is taken: two of these on one
tenant stand for two workers on one ledger company. Prints the outcome and the calls made; exits 1 if the
sync did not end "ok".
"""

from __future__ import annotations

import sys

from connector.clock import Clock
from connector.config import load_settings
from connector.store.tenants import get_tenant
from connector.sync import run_sync
from connector.wiring import ledger_for, mapping_for, open_store


def main(tenant_id: str, repeat: int = 1) -> int:
    settings = load_settings()
    clock = Clock.parse(settings.serve.clock)
    store = open_store(settings)
    try:
        with store.read() as conn:
            tenant = get_tenant(conn, tenant_id)
        ledger = ledger_for(settings, store, tenant, clock if clock.simulated else None)
        mapping = mapping_for(settings, tenant)
        for _ in range(repeat):
            result = run_sync(store, tenant.id, ledger, mapping, full=True, clock=clock.now)
            print(
                f"{tenant.id}: {result.outcome}; API calls: {result.api_calls}; {result.error or ''}",
                flush=True,
            )
            if result.outcome != "ok":
                return 1
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1))
