"""The SMTP password never crosses the wire unencrypted, against a real SMTP server that would take it.

The server here offers AUTH without TLS (aiosmtpd, auth_require_tls=False) and records every AUTH command it
receives, so a client that logs in over plain text is caught in the act: ccm must refuse before connecting
unless `smtp.allow_plaintext_auth = true`, and must never fall back to plain text when STARTTLS is missing.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax

from connector import outbox
from connector.config import Settings, SmtpSettings, load_settings
from connector.ledger import Fatal
from connector.mail import PLAINTEXT_AUTH, SAMPLE, Session, build_message, deliver, environment, render
from connector.model import Connection, Tenant
from connector.outbox import State
from connector.run.execute import Executor
from connector.run.night import run_night
from connector.run.plan import Context
from connector.store import Store
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice
from tests.smtp import Inbox, _free_port
from tests.test_cli import ccm

USER, PASSWORD = "acme-mailer", "s3cret-smtp-pa55"
ACME = Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB")
NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # Monday night in London: planned, not yet sent
MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # Tuesday, inside the send window


@dataclass
class AuthInbox(Inbox):
    """An inbox whose server takes AUTH; `auth` lists (mechanism, over TLS?) for every AUTH command seen."""

    auth: list[tuple[str, bool]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)  # who logged in successfully

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok)


class _RecordingSMTP(SMTP):
    def __init__(self, handler: AuthInbox, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._inbox = handler

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802 (aiosmtpd's naming)
        self._inbox.auth.append(((arg or "").split(" ")[0], self._tls_protocol is not None))
        await super().smtp_AUTH(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _RecordingSMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def auth_server(tls: ssl.SSLContext | None = None) -> Iterator[AuthInbox]:
    """A real SMTP server offering AUTH in plain text, or, given a TLS context, only after STARTTLS."""
    inbox = AuthInbox("127.0.0.1", _free_port())
    controller = _Controller(
        inbox, hostname=inbox.host, port=inbox.port, authenticator=inbox.authenticate,
        auth_require_tls=tls is not None, tls_context=tls, require_starttls=tls is not None,
    )  # fmt: skip
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def message(smtp: SmtpSettings) -> Any:
    return build_message(render(environment(), "reminder", SAMPLE), "ann@example.com", "dun-1", smtp)


def test_a_password_over_plain_smtp_is_refused_before_the_server_sees_it():
    with auth_server() as inbox:
        smtp = SmtpSettings(host=inbox.host, port=inbox.port, username=USER, password=PASSWORD)
        with pytest.raises(Fatal) as by_deliver:
            deliver(smtp, message(smtp))
        with pytest.raises(Fatal) as by_session:
            Session(smtp).send(message(smtp))
    for refused in (by_deliver.value, by_session.value):
        assert str(refused) == PLAINTEXT_AUTH
        assert "\n" not in str(refused)
        assert PASSWORD not in str(refused)
    assert 'smtp.security = "none"' in PLAINTEXT_AUTH and "smtp.allow_plaintext_auth = true" in PLAINTEXT_AUTH
    assert inbox.auth == []
    assert inbox.messages == []


def test_allow_plaintext_auth_logs_in_and_sends():
    with auth_server() as inbox:
        smtp = SmtpSettings(
            host=inbox.host, port=inbox.port, username=USER, password=PASSWORD, allow_plaintext_auth=True
        )
        assert deliver(smtp, message(smtp)) == "<dun-1@localhost>"
    assert [mechanism for mechanism, _ in inbox.auth] == ["PLAIN"]
    assert inbox.logins == [USER]
    assert len(inbox.messages) == 1


def test_without_credentials_plain_smtp_sends_as_before():
    with auth_server() as inbox:
        smtp = SmtpSettings(host=inbox.host, port=inbox.port)
        deliver(smtp, message(smtp))
    assert inbox.auth == []
    assert len(inbox.messages) == 1


def test_starttls_missing_is_refused_never_a_fall_back_to_plain_text():
    with auth_server() as inbox:  # offers AUTH, not STARTTLS: what a man in the middle stripping it shows
        smtp = SmtpSettings(
            host=inbox.host, port=inbox.port, security="starttls", username=USER, password=PASSWORD
        )
        with pytest.raises(Fatal) as exc:
            deliver(smtp, message(smtp))
    assert str(exc.value) == (
        f'SMTP server {inbox.host}:{inbox.port} does not offer STARTTLS (smtp.security = "starttls"); '
        "nothing was sent"
    )
    assert inbox.auth == []
    assert inbox.messages == []


def test_starttls_logs_in_only_once_the_connection_is_encrypted(tmp_path, monkeypatch):
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # ssl.create_default_context() trusts it
    with auth_server(tls=server_tls) as inbox:
        smtp = SmtpSettings(
            host=inbox.host, port=inbox.port, security="starttls", username=USER, password=PASSWORD
        )
        deliver(smtp, message(smtp))
    assert inbox.auth == [("PLAIN", True)]
    assert len(inbox.messages) == 1


# ---- a firm's run: the refusal is a firm-level stop, not a failed reminder


@pytest.fixture
def firm(store: Store, registered: ScriptedLedger) -> ScriptedLedger:
    with store.begin() as conn:
        save_tenant(conn, ACME)
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    return registered


def settings_for(tmp_path: Path, inbox: AuthInbox, **smtp: str) -> Settings:
    return load_settings(None, {
        "CCM_HOME": str(tmp_path / "home"), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example",
        "CCM_SERVE__SAFE_NIGHTS": "0",  # an established firm: past its safe first nights
        **{f"CCM_SMTP__{k.upper()}": v for k, v in smtp.items()},
    })  # fmt: skip


def test_a_night_with_plaintext_auth_stops_before_it_plans_or_sends(store, firm, tmp_path):
    with auth_server() as inbox:
        unsafe = settings_for(tmp_path, inbox, username=USER, password=PASSWORD)
        with pytest.raises(Fatal, match="would send the SMTP password unencrypted"):
            run_night(store, unsafe, "acme", now=MORNING, ledger=firm)
    with store.read() as conn:
        assert outbox.actions(conn, "acme") == []
    assert inbox.auth == []
    assert inbox.messages == []


def test_settings_changed_under_a_planned_night_stop_the_send_and_fail_no_reminder(store, firm, tmp_path):
    with auth_server() as inbox:
        safe = settings_for(tmp_path, inbox)
        run_night(store, safe, "acme", now=NIGHT, ledger=firm)  # planned for the morning
        ctx = Context.load(safe, ACME)
        unsafe = settings_for(tmp_path, inbox, username=USER, password=PASSWORD)
        outcome = Executor(store, unsafe, ctx, firm, "morning").run(MORNING)
    assert outcome.stopped == PLAINTEXT_AUTH
    assert outcome.sent == [] and outcome.failed == []
    with store.read() as conn:
        assert [a.state for a in outbox.actions(conn, "acme") if a.kind == "reminder"] == [State.PLANNED]
    assert inbox.auth == []
    assert inbox.messages == []


# ---- the same from the command line


def test_ccm_run_refuses_plaintext_auth_in_one_line_and_sends_with_it_allowed(
    capsys, home, connected, monkeypatch
):
    with auth_server() as inbox:
        for name, value in (("HOST", inbox.host), ("PORT", str(inbox.port)), ("USERNAME", USER),
                            ("PASSWORD", PASSWORD), ("FROM_ADDRESS", "accounts@acme.example")):  # fmt: skip
            monkeypatch.setenv(f"CCM_SMTP__{name}", value)
        code, out, err = ccm(capsys, "run", "--at", "2026-11-24T10:00:00Z")
        assert code == 1
        [line] = err.strip().splitlines()
        assert line == f"ccm: 1 of 1 tenant(s) stopped: acme: {PLAINTEXT_AUTH}"
        assert PASSWORD not in out + err
        assert inbox.auth == [] and inbox.messages == []
        assert ccm(capsys, "outbox", "list")[1] == "the outbox is empty\n"

        monkeypatch.setenv("CCM_SMTP__ALLOW_PLAINTEXT_AUTH", "true")
        code, out, err = ccm(capsys, "run", "--at", "2026-11-24T10:00:00Z")
        assert code == 0, err
    assert inbox.logins == [USER]
    assert len(inbox.messages) == 1
