"""The backlog cutoff: old debts found at connection wait for a person before ccm chases them.

A policy's `backlog_days` (connector/rules/policy.py) keeps out of automatic chasing every invoice that was
overdue longer than that many days on the day the firm was connected to its organisation, until a person
includes it (`ccm include CUSTOMER [--invoice N]`, stored as an `include` chasing event). Invoices that fall
due, or pass the cutoff, after the connection are chased as usual. Firms connected before ccm had the cutoff
(no connection date) have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from connector.model import Money, Tenant
from connector.rules.dunning import Debtor, DueItem
from connector.rules.policy import PolicySet
from connector.store.schema import chasing_events
from connector.store.tenants import get_standing

INCLUDE = "include"  # the chasing event a person records to include kept-back invoices


@dataclass(frozen=True, slots=True)
class Cutoff:
    """What the cutoff needs besides the debtors: when the firm was connected and what a person included."""

    connected_on: date | None  # the firm's local date of connection; None: no cutoff
    invoices: frozenset[str] = frozenset()  # included one by one
    customers: frozenset[str] = frozenset()  # every kept-back invoice of theirs included

    def included(self, customer_id: str, invoice_id: str) -> bool:
        return customer_id in self.customers or invoice_id in self.invoices


@dataclass(frozen=True, slots=True)
class Kept:
    """An invoice kept back from chasing, in the bookkeeper's words."""

    customer_id: str
    customer: str
    invoice_id: str
    number: str
    due_date: date
    days_at_connection: int  # how long it had been overdue when the firm was connected
    backlog_days: int
    outstanding: Money

    def line(self) -> str:
        return (
            f"{self.customer}: {self.number} ({self.outstanding}) was {self.days_at_connection} days overdue "
            f"when ccm was connected (cutoff {self.backlog_days})"
        )


def connected_on(connected_at: datetime | None, tenant: Tenant) -> date | None:
    if connected_at is None:
        return None
    return connected_at.astimezone(ZoneInfo(tenant.timezone)).date()


def read(conn: Connection, tenant: Tenant) -> Cutoff:
    """The tenant's cutoff as stored: its connection date and the open `include` events."""
    standing = get_standing(conn, tenant.id)
    e = chasing_events.c
    query = select(e.customer_id, e.invoice_id).where(
        e.tenant_id == tenant.id, e.kind == INCLUDE, e.closed_at.is_(None)
    )
    invoices: set[str] = set()
    customers: set[str] = set()
    for customer_id, invoice_id in conn.execute(query):
        (invoices.add(invoice_id) if invoice_id else customers.add(customer_id))
    return Cutoff(connected_on(standing.connected_at, tenant), frozenset(invoices), frozenset(customers))


def included_customers(conn: Connection, tenant_id: str) -> list[str]:
    """Customers with an open `include` event (of all their invoices or of some)."""
    e = chasing_events.c
    query = select(e.customer_id).where(e.tenant_id == tenant_id, e.kind == INCLUDE, e.closed_at.is_(None))
    return sorted(set(conn.execute(query).scalars()))


def withhold(
    debtors: Sequence[Debtor], cutoff: Cutoff, policies: PolicySet, today: date
) -> tuple[list[Debtor], list[Kept]]:
    """The debtors without their kept-back invoices (a debtor left with none is dropped), and those invoices.

    The connection date is taken as at most `today`: a night run "as of" an earlier date never sees an
    invoice as older at connection than it is that night.
    """
    if cutoff.connected_on is None:
        return list(debtors), []
    on = min(cutoff.connected_on, today)
    chased: list[Debtor] = []
    kept: list[Kept] = []
    for debtor in debtors:
        limit = policies.choose(debtor.segments, debtor.risk, debtor.policy).backlog_days
        if limit is None:
            chased.append(debtor)
            continue
        stays: list[DueItem] = []
        for item in debtor.items:
            age = (on - item.due_date).days
            if age > limit and not cutoff.included(debtor.customer_id, item.invoice_id):
                kept.append(Kept(debtor.customer_id, debtor.name, item.invoice_id,
                                 item.number or item.invoice_id, item.due_date, age, limit,
                                 item.outstanding))  # fmt: skip
            else:
                stays.append(item)
        if len(stays) == len(debtor.items):
            chased.append(debtor)
        elif stays:
            chased.append(replace(debtor, items=tuple(stays)))
    return chased, kept


def summary(kept: Sequence[Kept], tenant_id: str) -> str | None:
    """The one line a night prints about what it kept back, with how to include it (None: nothing kept)."""
    if not kept:
        return None
    customers = len({k.customer_id for k in kept})
    return (
        f"{len(kept)} invoice(s) of {customers} customer(s) kept back: overdue longer than the policy's "
        f"backlog_days when ccm was connected, so not chased until a person includes them (see them with "
        f"`ccm backlog -t {tenant_id}`; include with `ccm include CUSTOMER -t {tenant_id}` or `--all`)"
    )
