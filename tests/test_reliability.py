"""Killed anywhere, restarted: no reminder and no note delivered twice, none lost silently.

`ccm run` runs in a subprocess against a real sandbox (Xero or QuickBooks) and a real SMTP server, and is
SIGKILLed at the Nth side effect, just before or just after it (tests/killpoint.py). Then it is run again,
twice, as the next night's scheduler would. The proof is read off the SMTP server, the sandbox's ledger
and the outbox.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.sandbox.generator import FirmSize, generate
from connector import outbox
from connector.config import load_settings
from connector.demo import connect_on_sandbox
from connector.flow import follow_consent
from connector.model import Tenant
from connector.outbox import State
from connector.payloads import encode
from connector.rules.calendar import SendCalendar
from connector.store import Store
from tests import clock
from tests.smtp import Inbox

CCM = str(Path(sys.executable).parent / "ccm")
SIZE = FirmSize(8, 100, 60)
MARKER = re.compile(r"\[ccm:([^\]]+)\]")
KILLS = [
    (1, "before"),
    (1, "after"),
    (2, "after"),
    (4, "before"),
    (7, "after"),
    (11, "before"),
    (16, "after"),
]


def _xero(tmp_path: Path) -> tuple[Any, dict[str, str]]:
    from adapters.xero import sandbox

    handle = sandbox.start(generate(5, SIZE, today=clock.TODAY), clock=clock.sandbox_clock(), limits=False)
    return handle, handle.env()


def _quickbooks(tmp_path: Path) -> tuple[Any, dict[str, str]]:
    from adapters.quickbooks import sandbox

    handle = sandbox.start(generate(6, SIZE, today=clock.TODAY), clock=clock.sandbox_clock(), limits=False)
    return handle, handle.env()


def _ledger_notes(ledger: str, handle: Any) -> list[str]:
    if ledger == "xero":
        return [note.details for notes in handle.book.history.values() for note in notes]
    company = handle.company
    rows = [row for row in company.tables["Attachable"].by_id.values() if not row.deleted]
    return [str(company.doc("Attachable", row).get("Note", "")) for row in rows]


def _connected(ledger: str, tmp_path: Path, inbox: Inbox) -> tuple[Any, dict[str, str], Store, datetime]:
    """A sandbox with tenant 'acme' connected to it: (sandbox, the env `ccm` runs with, store, send time)."""
    handle, ledger_env = (_xero if ledger == "xero" else _quickbooks)(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")} | ledger_env | {
        "CCM_HOME": str(tmp_path / "home"), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example",
        "CCM_SERVE__SAFE_NIGHTS": "0",  # an established firm: past its safe first nights
    }  # fmt: skip
    settings = load_settings(None, env)
    tenant = Tenant("acme", "Acme Ltd", ledger, "GBP", "Europe/London", "GB")
    store = Store.open(settings.db_url)
    try:
        connect_on_sandbox(settings, store, tenant, lambda url: follow_consent(url, str(handle.ca_path)))
    except BaseException:
        store.close()
        handle.stop()
        raise
    return handle, env, store, SendCalendar(tenant.timezone, tenant.country).next_send_time(clock.NOW)


def _run(
    env: dict[str, str], at: datetime, kill: tuple[int, str] | None = None, *options: str
) -> subprocess.CompletedProcess[str]:
    args = ["run", "--at", at.isoformat()]
    command = (
        [sys.executable, "-m", "tests.killpoint", str(kill[0]), kill[1], *options, "--", *args]
        if kill
        else [CCM, *args]
    )
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False,
                          cwd=Path(__file__).parents[1])  # fmt: skip


# Every kill point on Xero; every other one on QuickBooks, to keep the suite quick.
CASES = [("xero", k) for k in KILLS] + [("quickbooks", k) for k in KILLS[1::2]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ledger", "kill"), CASES, ids=[f"{ledger}-{n}-{when}" for ledger, (n, when) in CASES]
)
def test_a_run_killed_at_any_side_effect_then_restarted(ledger: str, kill: tuple[int, str], tmp_path: Path,
                                                        inbox: Inbox) -> None:  # fmt: skip
    handle, env, store, at = _connected(ledger, tmp_path, inbox)
    try:
        killed = _run(env, at, kill)
        assert killed.returncode in (-signal.SIGKILL, 0), killed.stderr[-3000:]
        if kill[0] == 1:
            assert killed.returncode == -signal.SIGKILL  # there is always a first side effect
        for hours in (1, 2):  # the restart, and one more run the same day
            again = _run(env, at + timedelta(hours=hours))
            assert again.returncode == 0, again.stderr[-3000:]

        # No reminder twice: every Message-ID (derived from the action key) arrived at most once.
        delivered = Counter(str(m["X-CCM-Action"]) for m in inbox.messages)
        assert max(delivered.values(), default=1) == 1, delivered
        # No note twice: each idempotency key appears on at most one note in the ledger.
        keys = Counter(k for text in _ledger_notes(ledger, handle) for k in MARKER.findall(text))
        assert max(keys.values(), default=1) == 1, [k for k, n in keys.items() if n > 1]
        with store.read() as conn:
            actions = outbox.actions(conn, "acme")
        # Nothing left hanging: every action settled, and every unsettled outcome is shown, never hidden.
        assert not [a.key for a in actions if a.state is State.SENDING]
        sent = {a.key for a in actions if a.kind == "reminder" and a.state is State.SENT}
        unknown = {a.key for a in actions if a.state is State.UNKNOWN}
        assert set(delivered) <= sent | unknown  # whatever went out is on record
        assert sent <= set(delivered)  # whatever is recorded as sent did go out
        assert all(a.reason for a in actions if a.state is State.UNKNOWN)
        assert delivered or unknown, "the night sent nothing at all"
        # None lost: every reminder recorded as sent has its note on each invoice it lists.
        noted = set(keys)
        for action in actions:
            if action.key in sent:
                for line in encode(action.payload)["lines"]:
                    note_key = f"note:{action.key}:{line['invoice_id']}"[:128]
                    assert any(note_key in k or k in note_key for k in noted), (
                        action.key,
                        line["invoice_id"],
                    )
        store.close()
    finally:
        handle.stop()


@pytest.mark.parametrize("n", [1, 3])
def test_a_kill_before_email_n_delivers_exactly_n_minus_1_emails(
    n: int, tmp_path: Path, inbox: Inbox
) -> None:
    handle, env, store, at = _connected("xero", tmp_path, inbox)
    try:
        killed = _run(env, at, (n, "before"), "--only", "email")
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]  # the night had an e-mail number n
        assert len(inbox.messages) == n - 1  # and the kill came before it, after every one before it
        with store.read() as conn:
            sending = [a.key for a in outbox.actions(conn, "acme") if a.state is State.SENDING]
        assert len(sending) == 1  # e-mail n was claimed, then killed before it went: the restart settles it
    finally:
        store.close()
        handle.stop()
