"""Reminder e-mail: templates rendered against a typed view, delivered to a real SMTP server."""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from connector.config import SmtpSettings
from connector.mail import (
    SAMPLE,
    LineView,
    LoginRefused,
    MailError,
    MessageRefused,
    Session,
    TemplateProblem,
    Transient,
    build_message,
    check_templates,
    deliver,
    environment,
    kind_of,
    render,
)
from tests.smtp import smtp_server
from tests.smtpfaults import faulty_smtp_server

VIEW = replace(
    SAMPLE,
    firm="Acme Ltd",
    customer="Ann's <Café>",
    lines=(
        LineView(
            "INV-0042", date(2026, 11, 2), 21, "1,250.00 GBP", "second reminder", "https://in.xero.com/abc"
        ),
        LineView("INV-0051", date(2026, 11, 20), 3, "80.00 EUR", "first reminder"),
    ),
    totals=("1,250.00 GBP", "80.00 EUR"),
    interest_line=None,
)


def test_every_shipped_template_renders():
    check_templates(environment(), ["courtesy", "reminder", "firm", "final", "call"])


def test_a_combined_reminder_lists_every_invoice_with_amount_days_and_link():
    rendered = render(environment(), "firm", VIEW)
    assert rendered.subject == "Acme Ltd: overdue invoices, second reminder"
    assert "INV-0042  due 2 November 2026  1,250.00 GBP outstanding  (21 days overdue)" in rendered.text
    assert "Pay online: https://in.xero.com/abc" in rendered.text
    assert "Total outstanding: 1,250.00 GBP, 80.00 EUR" in rendered.text
    assert '<a href="https://in.xero.com/abc">Pay online</a>' in rendered.html


def test_html_is_autoescaped_and_text_is_not():
    rendered = render(environment(), "reminder", VIEW)
    assert "Ann&#39;s &lt;Café&gt;" in rendered.html
    assert "Dear Ann's <Café>," in rendered.text


def test_a_tenant_template_overrides_the_shipped_one(tmp_path: Path):
    (tmp_path / "reminder.subject.txt").write_text("Invoices from {{ firm }}")
    assert render(environment(tmp_path), "reminder", VIEW).subject == "Invoices from Acme Ltd"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Dear {{ customer_nam }}", "template reminder.txt: 'customer_nam' is undefined"),
        ("{% for x in lines %}", "template reminder.txt: line 1: Unexpected end of template"),
    ],
)
def test_a_broken_tenant_template_is_a_clear_error_before_anything_is_sent(
    tmp_path: Path, text: str, message: str
):
    (tmp_path / "reminder.txt").write_text(text)
    with pytest.raises(TemplateProblem) as exc:
        check_templates(environment(tmp_path), ["courtesy", "reminder"])
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)


def test_a_missing_template_is_named():
    with pytest.raises(TemplateProblem, match=r"template letter\.subject\.txt: not found"):
        check_templates(environment(), ["letter"])


def test_delivery_to_a_real_smtp_server_with_a_message_id_from_the_action_key():
    with smtp_server() as inbox:
        smtp = SmtpSettings(host=inbox.host, port=inbox.port, from_address="accounts@acme.example",
                            from_name="Acme Accounts", reply_to="ar@acme.example")  # fmt: skip
        message = build_message(
            render(environment(), "reminder", VIEW), "ann@example.com", "dun-abc123", smtp
        )
        assert deliver(smtp, message) == "<dun-abc123@acme.example>"
    [received] = inbox.messages
    assert received["Message-ID"] == "<dun-abc123@acme.example>"
    assert received["X-CCM-Action"] == "dun-abc123"
    assert received["To"] == "ann@example.com"
    assert received["Reply-To"] == "ar@acme.example"
    body = received.get_body(("plain",))
    assert body is not None
    assert body.get_content().startswith("Dear Ann's <Café>,")


def test_an_unreachable_server_is_transient_and_a_refused_address_is_final():
    smtp = SmtpSettings(host="127.0.0.1", port=1, timeout_seconds=2)
    message = build_message(render(environment(), "reminder", VIEW), "ann@example.com", "dun-1", smtp)
    with pytest.raises(Transient, match="unreachable"):
        deliver(smtp, message)
    with smtp_server() as inbox:
        inbox.refuse.add("ann@example.com")
        smtp = SmtpSettings(host=inbox.host, port=inbox.port)
        with pytest.raises(MessageRefused, match="refused"):
            deliver(
                smtp, build_message(render(environment(), "reminder", VIEW), "ann@example.com", "dun-1", smtp)
            )
    assert inbox.messages == []


def test_a_session_sends_many_on_one_connection_and_reconnects_when_dropped():
    with smtp_server() as inbox:
        smtp = SmtpSettings(host=inbox.host, port=inbox.port, from_address="accounts@acme.example")
        session = Session(smtp)
        rendered = render(environment(), "reminder", VIEW)
        session.send(build_message(rendered, "a@example.com", "dun-1", smtp))
        first = session._client
        session.send(build_message(rendered, "b@example.com", "dun-2", smtp))
        assert session._client is first  # one connection for both
        assert first is not None
        assert first.sock is not None
        first.sock.shutdown(socket.SHUT_RDWR)  # the connection drops while idle
        session.send(build_message(rendered, "c@example.com", "dun-3", smtp))
        assert session._client is not first  # replaced before sending, nothing lost
        session.close()
    assert [str(m["X-CCM-Action"]) for m in inbox.messages] == ["dun-1", "dun-2", "dun-3"]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("421 4.7.0 too busy, closing", Transient),
        ("450 4.2.0 mailbox busy", Transient),
        ("451 4.7.1 greylisted: please try again later", Transient),
        ("550 5.1.1 mailbox unavailable", MessageRefused),
    ],
    ids=["421", "450", "451", "550"],
)
def test_a_recipient_reply_says_what_happens_next_and_the_session_goes_on(reply: str, kind: type[MailError]):
    with faulty_smtp_server() as inbox:
        inbox.script["ann@example.com"] = [reply]
        smtp = SmtpSettings(host=inbox.host, port=inbox.port, from_address="accounts@acme.example")
        rendered = render(environment(), "reminder", VIEW)
        with Session.open(smtp) as session:
            with pytest.raises(MailError) as refused:
                session.send(build_message(rendered, "ann@example.com", "dun-1", smtp))
            assert type(refused.value) is kind
            assert reply[:3] in str(refused.value)
            session.send(build_message(rendered, "bob@example.com", "dun-2", smtp))  # reconnects after a 421
        assert session._client is None  # closed on leaving the block
    assert [str(m["X-CCM-Action"]) for m in inbox.messages] == ["dun-2"]


def test_a_refused_login_is_the_sessions_problem_and_nothing_is_sent():
    with faulty_smtp_server(password="right") as inbox:
        smtp = SmtpSettings(host=inbox.host, port=inbox.port, username="acme", password="wrong",
                            allow_plaintext_auth=True)  # fmt: skip
        with pytest.raises(LoginRefused, match=r"SMTP login refused \(535\)"):
            Session.open(smtp)
        right = smtp.model_copy(update={"password": "right"})
        with Session.open(right) as session:
            assert session.ready() is False  # open and logged in already: checked, not re-opened
    assert inbox.logins == 2 and inbox.messages == []


def test_reply_codes_map_to_kinds():
    assert [kind_of(code) for code in (421, 450, 451, 452, 550, 552, 554)] == [Transient] * 4 + [
        MessageRefused
    ] * 3
    assert [kind_of(code, login=True) for code in (454, 535, 534)] == [Transient, LoginRefused, LoginRefused]


def test_a_connection_is_taken_as_alive_only_while_the_server_has_said_nothing() -> None:
    """No NOOP round trip before each message: a server speaks unasked only to go away (a 421, then EOF)."""
    import smtplib
    import socket

    from connector.mail import _quiet

    ours, server = socket.socketpair()
    client = smtplib.SMTP()
    client.sock = ours
    try:
        assert _quiet(client)  # nothing to read: as alive as after its last reply
        server.sendall(b"421 4.3.2 shutting down\r\n")
        assert not _quiet(client)  # it spoke unasked: ask it (NOOP) or open anew
        client.sock.recv(100)
        assert _quiet(client)
        server.close()
        assert not _quiet(client)  # EOF: it hung up
        client.sock = None
        assert not _quiet(client)
    finally:
        ours.close()
