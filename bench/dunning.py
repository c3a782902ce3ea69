"""Dunning at scale: planning 100,000 open invoices across 10,000 customers, and sending 10,000 reminders.

Every measurement runs in a fresh interpreter, so its peak RSS is its own:

    python -m bench.dunning --write DIR      seed DIR/ccm.db (SQLite) through connector.store.records.upsert
    python -m bench.dunning --plan DIR       time the planning steps, then plan_tenant (it writes) twice
    python -m bench.dunning --send DIR PORT  time the Executor sending every planned reminder over SMTP
    python -m bench.dunning --mail PORT      time render + build + deliver alone, for 10,000 reminders
    python -m bench.dunning --smtp           a local SMTP server (aiosmtpd) counting what it accepts

`python -m bench dunning` runs them all and prints the tables. The SMTP server runs in a process of its own,
as a mail relay would, so the sender's figures are the sender's.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from connector.config import Settings, SmtpSettings
from connector.logs import configure
from connector.model import Allocation, Customer, Invoice, Money, Payment, Record, SourceKind, Status, Tenant
from connector.store import Store, records
from connector.store.tenants import save_tenant

TENANT = Tenant("bench", "Bench Trading Ltd", "synthetic", "GBP", "Europe/London", "GB")
TODAY = date(2026, 6, 30)  # a Tuesday, no UK holiday
NOW = datetime(2026, 6, 30, 9, 0, tzinfo=UTC)  # 10:00 in London: inside the send window
CUSTOMERS = 10_000
OPEN = 100_000
PART_PAID = 20_000  # open invoices with a part payment allocated to them
BATCH = 5_000
REMINDERS = 10_000
# Every level e-mails (the shipped policies also hand some levels to the ledger or the bookkeeper).
POLICY = """version: 1
default: standard
policies:
  - name: standard
    days: calendar
    levels:
      - {name: courtesy, offset: -3, channel: email, template: courtesy}
      - {name: first reminder, offset: 3, channel: email, template: reminder}
      - {name: second reminder, offset: 14, channel: email, template: firm}
      - {name: final notice, offset: 30, channel: email, template: final}
"""
console = Console(highlight=False, width=140)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(seed: int = 7) -> Iterator[tuple[str, list[Record]]]:
    """Batches of (entity, records): customers, then open invoices (ten each) and part payments."""
    rng = random.Random(seed)
    yield (
        "customer",
        [Customer(f"c{n:05d}", f"Customer {n} Ltd", email=f"ap@c{n:05d}.example") for n in range(CUSTOMERS)],
    )
    for start in range(0, OPEN, BATCH):
        invoices: list[Record] = []
        payments: list[Record] = []
        for i in range(start, start + BATCH):
            customer = f"c{i % CUSTOMERS:05d}"
            total = Money(Decimal(rng.randrange(5_000, 500_000)).scaleb(-2), "GBP")
            due = TODAY + timedelta(days=rng.randint(-60, 40))
            paid = Money.zero("GBP")
            if i < PART_PAID:
                paid = Money((total.amount / 3).quantize(Decimal("0.01")), "GBP")
                on = due - timedelta(days=5)
                alloc = Allocation(SourceKind.PAYMENT, f"p{i:06d}", f"i{i:06d}", paid, on)
                payments.append(
                    Payment(f"p{i:06d}", customer, paid, Money.zero("GBP"), on, allocations=(alloc,))
                )
            invoices.append(Invoice(f"i{i:06d}", customer, total, total - paid, Status.OPEN,
                                    due - timedelta(days=30), due, f"INV-{i:06d}"))  # fmt: skip
        yield "invoice", invoices
        if payments:
            yield "payment", payments


def seed(folder: Path, with_policy: bool = True) -> Store:
    """A fresh SQLite store in `folder` holding the bench tenant's records (and its own policy file)."""
    store = Store.open(f"sqlite:///{folder / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, TENANT)
    for entity, batch in generate():
        with store.begin() as conn:
            records.upsert(conn, TENANT.id, entity, batch)
    if with_policy:
        tenant_dir = settings_for(folder).tenant_dir(TENANT.id)
        tenant_dir.mkdir(parents=True, exist_ok=True)
        (tenant_dir / "policy.yaml").write_text(POLICY)
    return store


def settings_for(folder: Path, port: int = 25) -> Settings:
    smtp = SmtpSettings(host="127.0.0.1", port=port, from_address="accounts@bench.example")
    return Settings(data_dir=folder, smtp=smtp)


def write(folder: Path) -> dict[str, float]:
    began = time.perf_counter()
    seed(folder).close()
    return {"write_s": time.perf_counter() - began}


def plan(folder: Path) -> dict[str, float]:
    """Each step of planning as plan_tenant composes them, then plan_tenant itself (writing), twice."""
    from connector import chasing, outbox
    from connector.outbox import Mode
    from connector.reconcile import Basis, load_snapshot
    from connector.rules.dunning import evaluate
    from connector.run.plan import Context, actions_for, debtors, plan_tenant

    store = Store.open(f"sqlite:///{folder / 'ccm.db'}")
    ctx = Context.load(settings_for(folder), TENANT)
    steps: dict[str, float] = {}
    began = time.perf_counter()
    snapshot = load_snapshot(store, TENANT.id)
    with store.read() as conn:
        states = chasing.states(conn, TENANT.id)
        levels, contacts = outbox.last_levels(conn, TENANT.id), outbox.last_contacts(conn, TENANT.id)
    steps["load_s"] = time.perf_counter() - began
    began = time.perf_counter()
    found = debtors(Basis.of(snapshot, TODAY), states, levels, contacts)
    steps["debtors_s"] = time.perf_counter() - began
    began = time.perf_counter()
    evaluation = evaluate(TENANT.id, found, ctx.policies, ctx.calendar, TODAY)
    steps["rules_s"] = time.perf_counter() - began
    began = time.perf_counter()
    actions_for(evaluation, snapshot, ctx, NOW)
    steps["actions_s"] = time.perf_counter() - began
    open_invoices = sum(1 for inv in snapshot.invoices if inv.status is Status.OPEN)
    del snapshot, found
    began, cpu = time.perf_counter(), time.process_time()
    first = plan_tenant(store, ctx, TODAY, NOW, Mode.AUTO)
    steps["plan_s"], steps["plan_cpu_s"] = time.perf_counter() - began, time.process_time() - cpu
    began, cpu = time.perf_counter(), time.process_time()
    second = plan_tenant(store, ctx, TODAY, NOW, Mode.AUTO)
    steps["replan_s"], steps["replan_cpu_s"] = time.perf_counter() - began, time.process_time() - cpu
    store.close()
    return {
        **steps, "open_invoices": float(open_invoices), "customers": float(CUSTOMERS),
        "reminders": float(len(evaluation.reminders)),
        "lines": float(sum(len(r.lines) for r in evaluation.reminders)),
        "created": float(len(first.created)), "replan_created": float(len(second.created)),
        "peak_rss_mb": _rss_mb(),
    }  # fmt: skip


def send(folder: Path, port: int) -> dict[str, float]:
    """The Executor over every planned reminder: re-evaluate, then claim, render, deliver, record each."""
    from connector.run.execute import Executor
    from connector.run.plan import Context

    store = Store.open(f"sqlite:///{folder / 'ccm.db'}")
    settings = settings_for(folder, port)
    ctx = Context.load(settings, TENANT)
    executor = Executor(store, settings, ctx, None, "bench")
    began = time.perf_counter()
    outcome = executor.run(NOW)
    seconds = time.perf_counter() - began
    store.close()
    failed = len(outcome.failed) + len(outcome.unknown)
    deferred = len(outcome.deferred)
    return {"sent": float(len(outcome.sent)), "failed": float(failed), "deferred": float(deferred),
            "send_s": seconds, "peak_rss_mb": _rss_mb()}  # fmt: skip


def mail_only(port: int, count: int = REMINDERS) -> dict[str, float]:
    """connector.mail alone: render (text and HTML), build and deliver `count` three-line reminders."""
    from connector import mail

    settings = settings_for(Path(tempfile.gettempdir()), port)
    env = mail.environment(None)
    began = time.perf_counter()
    for n in range(count):
        lines = tuple(
            mail.LineView(f"INV-{n:05d}{k}", TODAY - timedelta(days=10 * k), 10 * k, f"{100 + k:,.2f} GBP",
                          "first reminder", f"https://pay.example/{n}/{k}")
            for k in range(3)
        )  # fmt: skip
        shown = mail.ReminderView(
            firm=TENANT.name, customer=f"Customer {n} Ltd", level=2, level_name="first reminder", lines=lines,
            totals=("303.00 GBP",), today=TODAY, reference=f"dun-{n}", contact_email=f"ap@c{n:05d}.example",
        )  # fmt: skip
        rendered = mail.render(env, "reminder", shown)
        message = mail.build_message(rendered, f"ap@c{n:05d}.example", f"dun-bench-{n}", settings.smtp)
        mail.deliver(settings.smtp, message)
    return {"mailed": float(count), "mail_s": time.perf_counter() - began, "peak_rss_mb": _rss_mb()}


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.count += 1
        return "250 Message accepted for delivery"


def smtp_server() -> None:
    """Serve SMTP on a free loopback port; print the port, then (on SIGTERM) how many messages came."""
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    counter = _Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(json.dumps({"port": port}), flush=True)
    done.wait()
    controller.stop()
    print(json.dumps({"received": counter.count}), flush=True)


def _child(*args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "bench.dunning", *args], capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "bench child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _with_smtp(*args: str) -> dict[str, float]:
    """Run a sending child against a fresh SMTP server process; add how many messages it received."""
    server = subprocess.Popen([sys.executable, "-m", "bench.dunning", "--smtp"], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert server.stdout is not None
    try:
        port = str(json.loads(server.stdout.readline())["port"])
        result = _child(*args, port)
    finally:
        server.send_signal(signal.SIGTERM)
        tail, _ = server.communicate(timeout=30)
    return {**result, "received": float(json.loads(tail.strip().splitlines()[-1])["received"])}


def run() -> None:
    """Every measurement, then the tables."""
    with tempfile.TemporaryDirectory() as tmp:
        written = _child("--write", tmp)
        planned = _child("--plan", tmp)
        sent = _with_smtp("--send", tmp)
    mailed = _with_smtp("--mail")
    invoices = planned["open_invoices"]
    table = Table(
        "step", "records", "seconds", "records/s", "peak RSS (MB)",
        title=f"dunning plan, SQLite: {invoices:,.0f} open invoices, {planned['customers']:,.0f} customers "
        f"(seeded in {written['write_s']:.1f} s; target < 3 s)",
    )  # fmt: skip
    rss = f"{planned['peak_rss_mb']:.0f}"
    steps = (
        ("load: snapshot, chasing state, reminder history", "load_s"),
        ("debtors: reconcile, payment behaviour, due items", "debtors_s"),
        ("rules: levels, conditions, one reminder per customer", "rules_s"),
        (
            f"actions: {planned['reminders']:,.0f} payloads, {planned['lines']:,.0f} invoice lines",
            "actions_s",
        ),
        # CPU seconds beside: on a busy machine the wall clock also counts other processes' turns
        (f"plan_tenant (all of it): {planned['created']:,.0f} actions written, "
         f"{planned['plan_cpu_s']:.2f} s CPU", "plan_s"),
        (f"plan_tenant again: {planned['replan_created']:,.0f} new, {planned['replan_cpu_s']:.2f} s CPU",
         "replan_s"),
    )  # fmt: skip
    for name, key in steps:
        table.add_row(name, f"{invoices:,.0f}", f"{planned[key]:.2f}", f"{invoices / planned[key]:,.0f}", rss)
    console.print(table)
    table = Table(
        "path", "reminders", "received by SMTP", "seconds", "reminders/s", "peak RSS (MB)",
        title="reminders rendered and delivered to a local SMTP server in its own process (target ≥ 200/s)",
    )  # fmt: skip
    table.add_row("Executor (re-evaluate, claim, render, deliver, record)", f"{sent['sent']:,.0f}",
                  f"{sent['received']:,.0f}", f"{sent['send_s']:.1f}",
                  f"{sent['sent'] / sent['send_s']:,.0f}", f"{sent['peak_rss_mb']:.0f}")  # fmt: skip
    table.add_row("connector.mail render + build + deliver", f"{mailed['mailed']:,.0f}",
                  f"{mailed['received']:,.0f}", f"{mailed['mail_s']:.1f}",
                  f"{mailed['mailed'] / mailed['mail_s']:,.0f}", f"{mailed['peak_rss_mb']:.0f}")  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dunning")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--plan", type=Path)
    parser.add_argument("--send", nargs=2, metavar=("DIR", "PORT"))
    parser.add_argument("--mail", type=int, metavar="PORT")
    parser.add_argument("--smtp", action="store_true")
    args = parser.parse_args()
    configure("warning")
    if args.smtp:
        smtp_server()
        return
    if args.write:
        result = write(args.write)
    elif args.plan:
        result = plan(args.plan)
    elif args.send:
        result = send(Path(args.send[0]), int(args.send[1]))
    elif args.mail:
        result = mail_only(args.mail)
    else:
        run()
        return
    print(json.dumps(result))


if __name__ == "__main__":
    main()
