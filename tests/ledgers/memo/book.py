"""The memo ledger's books and "API": one JSON file, read and written whole under a lock.

It plays what a hosted ledger does for ccm, small enough to read in one sitting: an OAuth authorization-code
grant (codes, access tokens that expire, refresh tokens that rotate on every use, die unused and stay good
for a grace period after rotation, so a lost answer can be retried), a per-organisation minute window that
answers "throttled" with a retry-after, injected 5xx answers, incremental reads by change time, and
write-backs made once per idempotency key. Every instant is the caller's clock (`now`), so a test runs a
month in a second.

Raw records (what the adapter hands the mapping, mappings: tests/ledgers/memo/memo.yaml):
customers {Id, Name, Email, Currency, Active, UpdatedAt}; invoices {Id, Number, CustomerId, Currency, Total,
AmountDue, Status, IssueDate, DueDate, UpdatedAt}; credit_notes {..., Remaining, Allocations[]}; payments
{Id, CustomerId, Currency, Amount, Date, Status, Reference, UpdatedAt, Allocations[{InvoiceId, Amount,
Date}]}. Amounts are decimal strings, instants ISO 8601 UTC.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

STREAMS = ("customers", "invoices", "credit_notes", "payments")
ACCESS_LIFE = timedelta(minutes=30)
REFRESH_IDLE = timedelta(days=30)  # a refresh token unused this long dies
GRACE = timedelta(minutes=30)  # a rotated refresh token still works this long (a lost answer is retried)
SIZES = {"demo": 12, "small": 60, "large": 600}  # customers; about three invoices each

Data = dict[str, Any]
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class Refused(Exception):
    """The token endpoint refused: an unknown, used-up or dead code or refresh token, or a wrong client."""


class Unauthorized(Exception):
    """An API call with an access token the books do not know or that expired."""


class Throttled(Exception):
    """The organisation's minute window is spent: try again in `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"throttled; retry after {retry_after:.0f}s")
        self.retry_after = retry_after


class Unavailable(Exception):
    """A 5xx answer (injected): the books are there but failing."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class NotFound(Exception):
    """No such record."""


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


class Book:
    """One memo ledger file: an organisation's books, its app's grants, its limits and injected faults."""

    def __init__(self, path: Path, now: Callable[[], datetime]) -> None:
        self.path = path
        self.now = now

    @contextmanager
    def _open(self, write: bool = True) -> Iterator[Data]:
        with _guard:
            lock = _locks.setdefault(str(self.path.resolve()), threading.Lock())
        with lock:
            data: Data = json.loads(self.path.read_text())
            try:
                yield data
            finally:  # a refused call changes the books too (a fault spent, a throttle counted)
                if write:
                    temp = self.path.with_suffix(".tmp")
                    temp.write_text(json.dumps(data, sort_keys=True))
                    os.replace(temp, self.path)

    # ---- making the books

    @classmethod
    def create(
        cls, path: Path, now: Callable[[], datetime], *, seed: int, today: date, size: str = "demo",
        client_id: str = "memo-app", client_secret: str = "memo-secret", minute_limit: int | None = None,
    ) -> Book:  # fmt: skip
        """A seeded organisation of `size` as of `today`: customers, invoices (open, overdue, paid, part paid,
        one voided, one draft), payments and a credit note; every record last changed before `today`."""
        rng = random.Random(seed)
        data: Data = {
            "org": {"id": f"memo-org-{seed}", "name": f"Memo Trading {seed} Ltd"},
            "app": {"client_id": client_id, "client_secret": client_secret},
            "minute_limit": minute_limit, "window": [], "fail_next": [], "stats": {"calls": 0, "throttled": 0},
            "codes": {}, "access": {}, "refresh": {}, "keys": [], "notes": {}, "holds": {}, "emails": {},
            **{stream: {} for stream in STREAMS},
        }  # fmt: skip
        for n in range(1, SIZES[size] + 1):
            cid = f"C{n:04d}"
            changed = datetime(today.year, today.month, today.day, 8, tzinfo=UTC) - timedelta(
                days=rng.randint(40, 200)
            )
            data["customers"][cid] = {
                "Id": cid, "Name": f"Customer {n} Ltd", "Email": f"accounts{n}@customer.example" if n % 6 else "",
                "Currency": "GBP", "Active": True, "UpdatedAt": _iso(changed),
            }  # fmt: skip
        customers = sorted(data["customers"])
        for n in range(1, 3 * len(customers) + 1):
            iid, customer = f"I{n:05d}", rng.choice(customers)
            issued = today - timedelta(days=rng.randint(3, 90))
            total = Decimal(rng.randint(50, 3000))
            invoice = {
                "Id": iid, "Number": f"MEMO-{n:05d}", "CustomerId": customer, "Currency": "GBP", "Total": _money(total),
                "AmountDue": _money(total), "Status": "open", "IssueDate": issued.isoformat(),
                "DueDate": (issued + timedelta(days=30)).isoformat(),
                "UpdatedAt": _iso(datetime(issued.year, issued.month, issued.day, 10, tzinfo=UTC)),
            }  # fmt: skip
            data["invoices"][iid] = invoice
            roll = rng.random()
            if n == 1:
                invoice["Status"] = "voided"
                invoice["AmountDue"] = "0.00"
            elif n == 2:
                invoice["Status"] = "draft"
            elif roll < 0.3:
                _settle(
                    data,
                    invoice,
                    total,
                    min(issued + timedelta(days=rng.randint(1, 20)), today - timedelta(days=1)),
                )
            elif roll < 0.4:
                _settle(
                    data,
                    invoice,
                    (total / 2).quantize(Decimal("0.01")),
                    min(issued + timedelta(days=10), today - timedelta(days=1)),
                )
        open_ids = [i for i, inv in sorted(data["invoices"].items()) if inv["Status"] == "open"]
        credited = data["invoices"][open_ids[0]]
        amount = (Decimal(credited["AmountDue"]) / 4).quantize(Decimal("0.01"))
        credited["AmountDue"] = _money(Decimal(credited["AmountDue"]) - amount)
        data["credit_notes"]["CN0001"] = {
            "Id": "CN0001", "Number": "CN-0001", "CustomerId": credited["CustomerId"], "Currency": "GBP",
            "Total": _money(amount), "Remaining": "0.00", "Status": "paid", "IssueDate": credited["IssueDate"],
            "UpdatedAt": credited["UpdatedAt"],
            "Allocations": [{"InvoiceId": credited["Id"], "Amount": _money(amount), "Date": credited["IssueDate"]}],
        }  # fmt: skip
        path.write_text(json.dumps(data, sort_keys=True))
        return cls(path, now)

    # ---- the OAuth grant

    def authorize(self, client_id: str, redirect_uri: str, state: str) -> str:
        """The person consents at once: a single-use code for `exchange`."""
        with self._open() as data:
            if client_id != data["app"]["client_id"]:
                raise Refused("unknown client")
            code = secrets.token_urlsafe(16)
            data["codes"][code] = {
                "redirect_uri": redirect_uri,
                "expires": _iso(self.now() + timedelta(minutes=5)),
            }
            return code

    def token(self, client_id: str, secret: str | None, *, code: str = "", refresh_token: str = "") -> Data:
        """The token endpoint: a code or a refresh token for new tokens (the refresh token rotates)."""
        now = self.now()
        with self._open() as data:
            if (client_id, secret) != (data["app"]["client_id"], data["app"]["client_secret"]):
                raise Refused("invalid client")
            if code:
                found = data["codes"].pop(code, None)
                if found is None or _at(found["expires"]) < now:
                    raise Refused("invalid or used code")
            else:
                found = data["refresh"].get(refresh_token)
                if found is None:
                    raise Refused("unknown refresh token")
                if now - _at(found["last_used"]) > REFRESH_IDLE:
                    raise Refused("the refresh token died unused")
                if found.get("replaced_at") and now - _at(found["replaced_at"]) > GRACE:
                    raise Refused("the refresh token was replaced")
                found.setdefault("replaced_at", _iso(now))
            access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            data["access"] = {k: v for k, v in data["access"].items() if _at(v) > now}
            data["access"][access] = _iso(now + ACCESS_LIFE)
            data["refresh"][refresh] = {"last_used": _iso(now)}
            org = data["org"]
            return {"access_token": access, "refresh_token": refresh, "expires_in": int(ACCESS_LIFE.total_seconds()),
                    "token_type": "Bearer", "org": org["id"], "org_name": org["name"]}  # fmt: skip

    def revoke(self, refresh_token: str) -> None:
        """End the grant: its refresh tokens and every access token stop working."""
        with self._open() as data:
            data["refresh"].pop(refresh_token, None)
            data["access"] = {}

    # ---- the API: each call passes the faults, the window and the token check, in that order

    def _call(self, data: Data, access: str) -> None:
        now = self.now()
        if data["fail_next"]:
            raise Unavailable(data["fail_next"].pop(0))
        window = [t for t in data["window"] if now.timestamp() - t < 60]
        limit = data["minute_limit"]
        if limit is not None and len(window) >= limit:
            data["stats"]["throttled"] += 1
            data["window"] = window
            raise Throttled(max(60 - (now.timestamp() - min(window)), 1))
        expires = data["access"].get(access)
        if expires is None or _at(expires) <= now:
            raise Unauthorized("access token unknown or expired")
        data["window"] = [*window, now.timestamp()]
        data["stats"]["calls"] += 1

    def read(
        self, access: str, stream: str, since: datetime | None, offset: int, size: int
    ) -> tuple[list[Data], int]:
        """Records of `stream` changed at or after `since`, oldest change first, `size` from `offset`."""
        with self._open() as data:
            self._call(data, access)
            rows = [r for r in data[stream].values() if since is None or _at(r["UpdatedAt"]) >= since]
            rows.sort(key=lambda r: (r["UpdatedAt"], r["Id"]))
            return rows[offset : offset + size], len(rows)

    def note(self, access: str, kind: str, record_id: str, text: str, key: str) -> bool:
        """Add a note to a customer or invoice; False when a note with `key` was already added."""
        with self._open() as data:
            self._call(data, access)
            if f"note:{key}" in data["keys"]:
                return False
            if record_id not in data["customers" if kind == "customer" else "invoices"]:
                raise NotFound(f"no {kind} {record_id}")
            data["notes"].setdefault(f"{kind}:{record_id}", []).append(text)
            data["keys"].append(f"note:{key}")
            return True

    def hold(self, access: str, customer_id: str, on: bool, reason: str, key: str) -> bool:
        """Put a customer on hold or release it, noting why; False when `key` was already used."""
        with self._open() as data:
            self._call(data, access)
            if f"hold:{key}" in data["keys"]:
                return False
            if customer_id not in data["customers"]:
                raise NotFound(f"no customer {customer_id}")
            data["holds"][customer_id] = on
            data["notes"].setdefault(f"customer:{customer_id}", []).append(
                f"{'On' if on else 'Off'} hold: {reason}"
            )
            data["keys"].append(f"hold:{key}")
            return True

    def send(self, access: str, invoice_id: str, key: str) -> bool:
        """E-mail the invoice to its customer; False when `key` was already used."""
        with self._open() as data:
            self._call(data, access)
            if f"send:{key}" in data["keys"]:
                return False
            if invoice_id not in data["invoices"]:
                raise NotFound(f"no invoice {invoice_id}")
            data["emails"][invoice_id] = data["emails"].get(invoice_id, 0) + 1
            data["notes"].setdefault(f"invoice:{invoice_id}", []).append("Sent to the customer by the ledger")
            data["keys"].append(f"send:{key}")
            return True

    # ---- what a person does in the ledger (each moves the record's change time)

    def pay(self) -> str:
        """Pay the first open invoice in full; returns its id."""
        with self._open() as data:
            invoice = next(i for _, i in sorted(data["invoices"].items()) if i["Status"] == "open")
            _settle(data, invoice, Decimal(invoice["AmountDue"]), self.now().date(), self.now())
            return str(invoice["Id"])

    def void(self) -> str:
        """Void the last open invoice; returns its id."""
        with self._open() as data:
            invoice = next(
                i for _, i in sorted(data["invoices"].items(), reverse=True) if i["Status"] == "open"
            )
            invoice.update(Status="voided", AmountDue="0.00", UpdatedAt=_iso(self.now()))
            return str(invoice["Id"])

    def delete_payment(self) -> str:
        """Delete the first live payment (its invoice owes the amount again); returns its id."""
        with self._open() as data:
            payment = next(p for _, p in sorted(data["payments"].items()) if p["Status"] == "live")
            payment.update(Status="deleted", UpdatedAt=_iso(self.now()))
            for line in payment["Allocations"]:
                invoice = data["invoices"][line["InvoiceId"]]
                due = Decimal(invoice["AmountDue"]) + Decimal(line["Amount"])
                invoice.update(AmountDue=_money(due), Status="open", UpdatedAt=_iso(self.now()))
            return str(payment["Id"])

    # ---- controls and what the books hold

    def fail_next(self, count: int, status: int) -> None:
        with self._open() as data:
            data["fail_next"] += [status] * count

    def spend_window(self) -> None:
        """Use up the current minute window from outside ccm."""
        with self._open() as data:
            limit = data["minute_limit"] or 0
            data["window"] = [self.now().timestamp()] * limit

    def snapshot(self) -> Data:
        """The whole file as it is now."""
        with self._open(write=False) as data:
            return data


def _settle(data: Data, invoice: Data, amount: Decimal, on: date, at: datetime | None = None) -> None:
    """A payment of `amount` on `invoice`, received `on`."""
    pid = f"P{len(data['payments']) + 1:05d}"
    changed = at or datetime(on.year, on.month, on.day, 11, tzinfo=UTC)
    data["payments"][pid] = {
        "Id": pid, "CustomerId": invoice["CustomerId"], "Currency": invoice["Currency"], "Amount": _money(amount),
        "Date": on.isoformat(), "Status": "live", "Reference": f"BACS {pid}", "UpdatedAt": _iso(changed),
        "Allocations": [{"InvoiceId": invoice["Id"], "Amount": _money(amount), "Date": on.isoformat()}],
    }  # fmt: skip
    due = Decimal(invoice["AmountDue"]) - amount
    invoice.update(AmountDue=_money(due), Status="paid" if due <= 0 else "open", UpdatedAt=_iso(changed))
