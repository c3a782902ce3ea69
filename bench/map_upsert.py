"""Map + upsert through the real sync engine: synthetic Xero-shaped invoices into SQLite.

Run one size per process so peak RSS is that size's own: `python -m bench.map_upsert --records 200000`.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.ledger import Change, Cursor, OAuthEndpoints, Page, Rejected, WriteResult
from connector.logs import configure
from connector.mapping import load_mapping
from connector.model import Tenant
from connector.store import Store
from connector.store.tenants import save_tenant
from connector.sync import run_sync

PAGE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUSES = ("AUTHORISED", "AUTHORISED", "AUTHORISED", "PAID", "PAID", "DRAFT", "VOIDED")


def _ms(at: datetime) -> str:
    return f"/Date({int((at - _EPOCH).total_seconds() * 1000)}+0000)/"


class SyntheticLedger:
    """Generates `count` raw invoices page by page; nothing is held in memory beyond one page."""

    def __init__(self, count: int, seed: int = 7) -> None:
        self.count = count
        self.seed = seed
        self.start = datetime(2025, 1, 1, tzinfo=UTC)

    def raw(self, i: int, rng: random.Random) -> dict[str, Any]:
        issued = self.start + timedelta(days=i % 365)
        total = rng.randrange(1_000, 5_000_000) / 100
        status = STATUSES[i % len(STATUSES)]
        return {
            "Type": "ACCREC", "InvoiceID": f"00000000-0000-4000-8000-{i:012d}",
            "InvoiceNumber": f"INV-{i:07d}",
            "Contact": {"ContactID": f"c-{i % 10_000:05d}", "Name": f"Customer {i % 10_000}"},
            "Date": _ms(issued), "DueDate": _ms(issued + timedelta(days=30)), "Status": status,
            "LineAmountTypes": "Exclusive", "SubTotal": total, "TotalTax": 0.0, "Total": total,
            "AmountDue": 0.0 if status == "PAID" else total, "AmountPaid": total if status == "PAID" else 0.0,
            "CurrencyCode": "GBP", "CurrencyRate": 1.0, "UpdatedDateUTC": _ms(issued + timedelta(seconds=i)),
            "HasAttachments": False, "Reference": f"PO {i}",
        }  # fmt: skip

    def oauth_endpoints(self) -> OAuthEndpoints:
        return OAuthEndpoints("https://synthetic.invalid/a", "https://synthetic.invalid/t")

    def scopes(self) -> Sequence[str]:
        return ()

    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        rng = random.Random(self.seed)
        for start in range(0, self.count, PAGE):
            records = [self.raw(i, rng) for i in range(start, min(start + PAGE, self.count))]
            at = self.start + timedelta(days=365, seconds=start)
            yield Page(records, Cursor(since=at, token=str(start // PAGE + 1)), total_hint=self.count)

    def add_note(self, ref: str, text: str, key: str) -> WriteResult:
        raise NotImplementedError

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        raise NotImplementedError

    def send_via_ledger(self, invoice_ref: str, key: str) -> WriteResult:
        raise NotImplementedError

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
        return Rejected("no webhooks", 404)


def generation_seconds(count: int) -> float:
    """What producing the raw pages costs on its own (the ledger's share, not ours)."""
    began = time.perf_counter()
    for _ in SyntheticLedger(count).pull("invoices", None):
        pass
    return time.perf_counter() - began


def measure(count: int, url: str | None = None) -> dict[str, float]:
    configure("warning")
    mapping = load_mapping(Path(__file__).with_name("invoices.yaml"))
    ledger = SyntheticLedger(count)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        with store.begin() as conn:
            save_tenant(conn, Tenant("bench", "Bench", "synthetic"))
        began = time.perf_counter()
        first = run_sync(store, "bench", ledger, mapping, full=True)
        insert_s = time.perf_counter() - began
        began = time.perf_counter()
        again = run_sync(store, "bench", ledger, mapping, full=True)
        unchanged_s = time.perf_counter() - began
        store.close()
    generate_s = generation_seconds(count)
    assert first.counts["invoices"]["inserted"] == count, first.counts
    assert again.counts["invoices"]["updated"] == 0, again.counts
    return {
        "records": count,
        "insert_s": insert_s,
        "insert_rps": count / insert_s,
        "insert_ours_rps": count / (insert_s - generate_s),
        "unchanged_s": unchanged_s,
        "unchanged_rps": count / unchanged_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    print(json.dumps(measure(args.records, args.url)))


if __name__ == "__main__":
    main()
