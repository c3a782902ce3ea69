"""Several organisations on one sandbox: one consent connects them all; each tenant's data is its own."""

from __future__ import annotations

import requests

from adapters.sandbox import SandboxClock
from adapters.sandbox.generator import generate
from adapters.xero.sandbox import start
from tests.xero_sandbox.conftest import NOON, TODAY, connect


def test_two_organisations_are_listed_and_kept_apart(firm):
    other = generate(7, "demo", today=TODAY, name="Second Org Ltd")
    sb = start(firm, extra_firms=[other], clock=SandboxClock(NOON, speed=0))
    try:
        conn = connect(sb)
        auth = {"Authorization": f"Bearer {conn.tokens['access_token']}"}
        rows = requests.get(
            f"{sb.base_url}/connections", headers=auth, verify=str(sb.ca_path), timeout=10
        ).json()
        assert sorted(r["tenantName"] for r in rows) == sorted([firm.name, "Second Org Ltd"])
        second = next(r["tenantId"] for r in rows if r["tenantName"] == "Second Org Ltd")
        assert set(sb.books) == {sb.tenant_id, second}
        mine = conn.get("Invoices", params={"pageSize": 5}).json()["Invoices"]
        theirs = conn.get("Invoices", params={"pageSize": 5}, headers={"xero-tenant-id": second}).json()[
            "Invoices"
        ]
        assert {i["InvoiceID"] for i in mine}.isdisjoint({i["InvoiceID"] for i in theirs})
        assert {i["InvoiceID"] for i in theirs} <= {i.id for i in other.invoices}
        sb.disconnect(second)  # the other organisation goes on
        assert conn.get("Invoices", headers={"xero-tenant-id": second}).status_code == 403
        assert conn.get("Invoices").status_code == 200
    finally:
        sb.stop()
