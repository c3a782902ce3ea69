"""`ccm demo`: a whole night on local sandbox ledgers, start to finish, in under a minute.

Starts the Xero and QuickBooks sandboxes with seeded demo firms, connects to both through the real OAuth
authorization-code flow, runs each tenant's night (sync, reconcile, plan) at the tenant's next send window,
where it is the firm's first safe night: everything is planned, nothing sent or written. Then it approves the
plan as a person would (`ccm outbox approve --all`) and sends exactly that (`ccm outbox send`), delivering the
reminders to a local SMTP server that saves them as .eml files, and says where to look.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from connector import lease, nightreport, outbox
from connector import ledger as registry
from connector.config import Settings, SmtpSettings
from connector.firmprofile import BankTransfer, FirmProfile, save_profile
from connector.flow import flow, save_grant
from connector.ledger import RunningSandbox, display_name
from connector.model import Tenant
from connector.oauth import TokenVault, new_state
from connector.outbox import State
from connector.rules.calendar import SendCalendar
from connector.run.execute import Executor, Outcome
from connector.run.night import NightSummary, for_night_at, run_night
from connector.run.plan import Context
from connector.store import Store
from connector.store.engine import private_dir
from connector.store.tenants import get_tenant
from connector.wiring import ledger_for

MARKER = ".ccm-demo"  # only a folder carrying this file is ever wiped by the demo


class DemoError(RuntimeError):
    """The demo could not run; one line saying why."""


@dataclass
class MailFolder:
    """An SMTP server's mailbox: every accepted message saved as an .eml file."""

    folder: Path
    saved: list[Path] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        to = str(message.get("To", "unknown")).replace("@", "_at_").replace("/", "_")
        path = self.folder / f"{len(self.saved) + 1:03d}-{to}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # customers' names and balances
        with os.fdopen(fd, "wb") as fh:
            fh.write(envelope.original_content)
        self.saved.append(path)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mail_server(folder: Path) -> Iterator[tuple[MailFolder, int]]:
    private_dir(folder)  # 0700: the reminders name customers and what they owe
    box = MailFolder(folder)
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def prepare(workdir: Path) -> None:
    """An empty demo folder: wiped only when an earlier demo made it (it carries the marker)."""
    if workdir.exists():
        if not (workdir / MARKER).exists():
            if any(workdir.iterdir()):
                raise DemoError(f"{workdir} exists and was not made by `ccm demo`; choose another --dir")
        else:
            shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by ccm demo; removed and remade on every run\n")


def connect_on_sandbox(
    settings: Settings, store: Store, tenant: Tenant, consent: Callable[[str], Mapping[str, str]]
) -> str:
    """Connect `tenant` through its ledger's real authorization-code flow; `consent` follows the authorize URL
    as the person would (a sandbox's `RunningSandbox.consent`, which consents at once)."""
    connect = flow(tenant.ledger)
    state = new_state()
    url, verifier = connect.begin(settings, state)
    callback = consent(url)
    if callback.get("state") != state:
        raise DemoError(
            f"{display_name(tenant.ledger)} consent answered with a different state; not connecting"
        )
    grant = connect.exchange(settings, callback, verifier)
    return save_grant(
        store, TokenVault.open(store, settings), tenant, grant, grant.choose(None, "organisation")
    )


@dataclass(frozen=True)
class Approved:
    """A tenant's approval step: what a person approved after its safe night, and what then went out."""

    tenant_id: str
    approved: list[outbox.Unsettled]  # each approved action, described by customer and invoices
    sent: Outcome


@dataclass
class DemoResult:
    workdir: Path
    settings: Settings
    summaries: list[NightSummary]
    mail: list[Path]
    connected: list[tuple[str, str]]
    approvals: list[Approved] = field(default_factory=list)


def approve_and_send(store: Store, settings: Settings, tenant_id: str, at: datetime) -> Approved:
    """What `ccm outbox approve --all` then `ccm outbox send` do: approve every action awaiting approval, then
    send what is due (under the tenant's run lease, in the firm's mode)."""
    with store.begin() as conn:
        tenant = get_tenant(conn, tenant_id)
        waiting = outbox.actions(conn, tenant_id, [State.AWAITING_APPROVAL])
        outbox.approve(conn, tenant_id, [a.key for a in waiting], at)
        approved = outbox.described(conn, tenant_id, waiting)
    holder = lease.new_holder()
    with lease.kept(store, tenant_id, holder) as keeper:
        mode = for_night_at(store, settings, tenant_id, at).mode
        ledger = ledger_for(settings, store, tenant)
        executor = Executor(store, settings, Context.load(settings, tenant), ledger, holder, mode,
                            should_stop=keeper.is_lost)  # fmt: skip
        sent = executor.run(at)
    return Approved(tenant_id, approved, sent)


DEMO_TENANTS = (  # ledger, tenant id, firm: one demo firm on each of these ledgers' sandboxes
    ("xero", "demo-xero", "Demo Trading Ltd"),
    ("quickbooks", "demo-qbo", "Demo Supplies Ltd"),
)
DEMO_FIRMS = (  # from address, sort code, account number, company number: fictional
    ("accounts@demo-trading.example", "20-00-00", "55779911", "01234567"),
    ("accounts@demo-supplies.example", "40-11-62", "21436587", "07654321"),
)


def run(workdir: Path, seed: int = 1, now: datetime | None = None, prepared: bool = False) -> DemoResult:
    """Run the demo night in `workdir` (made afresh unless the caller already `prepare`d it)."""
    if not prepared:
        prepare(workdir)
    with ExitStack() as stack:
        london = ("GBP", "Europe/London", "GB")
        tenants = [
            Tenant(tid, f"{firm} ({display_name(ledger)})", ledger, *london)
            for ledger, tid, firm in DEMO_TENANTS
        ]
        sandboxes: dict[str, RunningSandbox] = {}
        for offset, tenant in enumerate(tenants):
            found = registry.get(tenant.ledger).sandbox
            if found is None:
                raise DemoError(f"the {tenant.ledger} adapter has no sandbox")
            # Rate limits off, so the demo night takes seconds; `make bench` shows pacing under real limits.
            sandboxes[tenant.ledger] = found.start(seed=seed + offset, size="demo", limits=False, demo=True)
            stack.callback(sandboxes[tenant.ledger].stop)
        box, smtp_port = stack.enter_context(mail_server(workdir / "mail"))
        settings = Settings(
            data_dir=workdir / "data",
            ledgers={ledger: running.settings for ledger, running in sandboxes.items()},
            smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, from_address="accounts@demo.example",
                              from_name="Accounts (ccm demo)"),
        )  # fmt: skip
        store = Store.open(settings.db_url)
        stack.callback(store.close)
        connected = [
            (t.id, connect_on_sandbox(settings, store, t, sandboxes[t.ledger].consent)) for t in tenants
        ]
        with store.begin() as conn:  # each firm's own sender, footer and bank details (`ccm tenants set`)
            for tenant, (address, sort_code, account, number) in zip(tenants, DEMO_FIRMS, strict=True):
                save_profile(conn, tenant.id, FirmProfile(
                    from_name=f"{tenant.name.split(' (')[0]} Accounts", from_address=address,
                    reply_to=address.replace("accounts@", "credit@"), signature="Jane Smith\nCredit Control",
                    company_number=f"Registered in England and Wales no. {number}",
                    registered_office="1 High Street, Leeds LS1 1AA",
                    pay_by_transfer=BankTransfer(tenant.name.split(" (")[0], sort_code, account),
                ))  # fmt: skip
        summaries = []
        approvals = []
        instant = now or datetime.now(UTC)
        for tenant in tenants:  # the first night after connecting: a safe one, planned and shown only
            at = SendCalendar(tenant.timezone, tenant.country).next_send_time(instant)
            began = time.perf_counter()
            summary = run_night(store, settings, tenant.id, now=at, mode=None)
            summaries.append(summary)
            took = timedelta(seconds=time.perf_counter() - began)  # on record (`ccm nights`)
            nightreport.record(store, tenant.id, summary, ran_from=nightreport.RanFrom.CLI, mode=summary.mode,
                               started_at=at, finished_at=at + took)  # fmt: skip
        for tenant in tenants:  # a person approves the plan, and exactly that is sent
            at = SendCalendar(tenant.timezone, tenant.country).next_send_time(instant)
            approvals.append(approve_and_send(store, settings, tenant.id, at))
        (workdir / "ccm.toml").write_text(f'data_dir = "{settings.data_dir}"\n')
        return DemoResult(workdir, settings, summaries, list(box.saved), connected, approvals)
