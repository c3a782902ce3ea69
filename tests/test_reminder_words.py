"""What people read (issue 13): reminders worded true to the facts, in the firm's locale, their variables
documented, `ccm preview` showing what is then sent, and monthly statements once per customer and month.

Real parts: the scripted ledger, a real store, a real SMTP server (aiosmtpd); the delivered e-mails are parsed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from jinja2 import meta

from connector import creditcontrol as credit
from connector import mail, outbox
from connector.config import Settings, load_settings
from connector.firmprofile import FirmProfile, save_profile
from connector.model import Connection, Tenant
from connector.outbox import Mode, NewAction
from connector.payloads import Kind, decode
from connector.run.night import NightSummary, run_night
from connector.store import Store
from connector.store.schema import reminder_history
from connector.store.tenants import save_connection, save_tenant
from connector.words import context, statements, variables
from connector.words.locale import LocaleProblem, firm_locale, money
from tests.scripted import ScriptedLedger, contact, invoice, payment
from tests.smtp import Inbox
from tests.test_cli import ccm

MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # Tuesday, inside London's send window
TEMPLATES = Path(mail.__file__).with_name("templates")


@pytest.fixture
def settings(tmp_path: Path, inbox: Inbox) -> Settings:
    return load_settings(None, {
        "CCM_HOME": str(tmp_path / "home"), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example", "CCM_SYNC__OVERLAP_SECONDS": "0",
        "CCM_SERVE__SAFE_NIGHTS": "0",
    })  # fmt: skip


def add_firm(
    store: Store, ledger: ScriptedLedger, currency: str = "GBP", country: str = "GB"
) -> ScriptedLedger:
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", currency, "Europe/London", country))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    ledger.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    return ledger


def night(store: Store, settings: Settings, ledger: ScriptedLedger, now: datetime) -> NightSummary:
    return run_night(store, settings, "acme", now=now, ledger=ledger)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")  # as written, before SMTP's line endings


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def wrote_before(store: Store, invoice_id: str, level: int, on: date, channel: str = "email") -> None:
    """ccm sent `level` on `invoice_id` on day `on`, by `channel` (its outbox action and its history row)."""
    key = f"earlier-{invoice_id}-{level}"
    sent = datetime.combine(on, datetime.min.time(), tzinfo=UTC)
    with store.begin() as conn:
        kind = Kind.CALL_TASK if channel == "call_task" else Kind.REMINDER
        outbox.plan(conn, "acme", [NewAction(key, kind, channel, "C1", decode(kind, {"lines": []}), sent)], Mode.AUTO,
                    sent)  # fmt: skip
        outbox.cancel(conn, "acme", key, "sent long ago (test)", sent)
        conn.execute(reminder_history.insert().values(
            tenant_id="acme", invoice_id=invoice_id, level=level, customer_id="C1", sent_on=on, action_key=key,
        ))  # fmt: skip


# ---- wording true to the facts


def test_each_invoice_is_described_by_its_own_level_and_we_wrote_only_about_those_we_wrote_about(
    store, settings, registered, inbox
):
    firm = add_firm(store, registered)
    firm.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    firm.put("invoices", invoice("I2", "C1", total="80.00", due="2026-11-18", Number="INV-0002"))
    wrote_before(store, "I1", 2, date(2026, 11, 13))  # INV-0001 had its first reminder; INV-0002 nothing

    night(store, settings, firm, MORNING)

    [message] = inbox.messages
    text = " ".join(text_of(message).split())
    assert message["Subject"] == "Acme Ltd: overdue invoices, second reminder"  # the top level's tone
    assert "We wrote to you about INV-0001, which remains unpaid; INV-0002 is now overdue too:" in text
    assert ("INV-0001 due 10 November 2026 £120.00 outstanding (14 days overdue) "
            "Second reminder (we wrote to you about it on 13 November 2026)") in text  # fmt: skip
    assert "INV-0002 due 18 November 2026 £80.00 outstanding (6 days overdue) First reminder Pay" in text
    assert text.count("we wrote to you about it") == 1
    html = html_of(message)
    assert "Second reminder<br><small>we wrote to you about it on 13 November 2026</small>" in html
    assert html.count("we wrote to you about it") == 1


def test_a_call_is_not_writing_so_the_final_notice_does_not_claim_earlier_reminders(
    store, settings, registered, inbox, tmp_path
):
    firm = add_firm(store, registered)
    firm.put("invoices", invoice("I1", "C1", total="120.00", due="2026-10-01", Number="INV-0001"))
    own_policy(settings, chase_on_hold=False)
    wrote_before(store, "I1", 2, date(2026, 10, 20), channel="call_task")  # a phone call, no letter

    night(store, settings, firm, MORNING)

    [message] = inbox.messages
    text = " ".join(text_of(message).split())
    assert "The following invoice is long overdue and still unpaid:" in text
    assert "Despite our earlier reminders" not in text and "we wrote to you" not in text.lower()


def own_policy(settings: Settings, chase_on_hold: bool) -> None:
    """A firm whose final notice (level 3, 30 days) is an e-mail, also to customers on credit hold."""
    folder = settings.tenant_dir("acme")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.yaml").write_text(
        "version: 1\ndefault: own\npolicies:\n  - name: own\n"
        f"    chase_on_hold: {'true' if chase_on_hold else 'false'}\n    levels:\n"
        "      - {name: first reminder, offset: 3, channel: email, template: reminder}\n"
        "      - {name: second reminder, offset: 14, channel: email, template: firm, min_days_since_last: 7}\n"
        "      - {name: final notice, offset: 30, channel: email, template: final, min_days_since_last: 7}\n"
    )


def test_a_customer_already_on_hold_gets_the_hold_wording_not_a_final_notice_threatening_one(
    store, settings, registered, inbox
):
    firm = add_firm(store, registered)
    firm.put("invoices", invoice("I1", "C1", total="120.00", due="2026-10-01", Number="INV-0001"))
    own_policy(settings, chase_on_hold=True)
    wrote_before(store, "I1", 2, date(2026, 10, 20))
    with store.begin() as conn:
        credit.record_hold(conn, "acme", "C1", True, "person", "held by the bookkeeper", "hold-1",
                           MORNING - timedelta(days=3))  # fmt: skip

    night(store, settings, firm, MORNING)

    [message] = inbox.messages
    text = " ".join(text_of(message).split())
    assert message["Subject"] == "Acme Ltd: your account is on credit hold"
    assert "Your account with us is on credit hold" in text
    assert "we may have to place your account on hold" not in text
    assert "we may have to place your account on hold" not in html_of(message)


# ---- dates and money in the firm's locale


@pytest.mark.parametrize(
    ("currency", "country", "total", "due", "shown", "day"),
    [
        ("GBP", "GB", "1317.00", "2026-11-15", "£1,317.00", "15 November 2026"),
        ("EUR", "DE", "1317.00", "2026-11-15", "1.317,00\xa0€", "15. November 2026"),
        ("EUR", "IE", "1317.00", "2026-11-15", "€1,317.00", "15 November 2026"),
        ("JPY", "GB", "1317", "2026-11-15", "JP¥1,317", "15 November 2026"),
        ("BHD", "GB", "1317.000", "2026-11-15", "BHD1,317.000", "15 November 2026"),
        ("KWD", "US", "1317.5", "2026-11-15", "KWD1,317.500", "November 15, 2026"),
    ],
    ids=["GBP-en_GB", "EUR-de_DE", "EUR-en_IE", "JPY-en_GB", "BHD-en_GB", "KWD-en_US"],
)
def test_amounts_and_dates_are_written_in_the_firm_s_locale_in_both_parts(
    store, settings, registered, inbox, currency, country, total, due, shown, day
):
    firm = add_firm(store, registered, currency, country)
    firm.put("invoices", invoice("I1", "C1", total=total, due=due, Number="INV-0001", Currency=currency))
    night(store, settings, firm, MORNING)  # 9 days overdue
    [message] = inbox.messages
    text, html = text_of(message), html_of(message)
    assert f"INV-0001  due {day}  {shown} outstanding  (9 days overdue)" in text
    assert f"Total outstanding: {shown}" in text
    assert f'<td>{day}</td><td align="right">{shown}</td>' in html
    assert f"Total outstanding: {shown}" in html


def test_a_part_paid_invoice_shows_what_is_outstanding_and_its_total(store, settings, registered, inbox):
    firm = add_firm(store, registered)
    firm.put("invoices", invoice("I1", "C1", total="2000.00", due="2026-11-10", Number="INV-0001",
                                 AmountDue="1317.00"))  # fmt: skip
    firm.put("payments", payment("P1", "I1", "683.00", "C1"))
    night(store, settings, firm, MORNING)
    [message] = inbox.messages
    assert "INV-0001  due 10 November 2026  £1,317.00 outstanding of £2,000.00  (14 days overdue)" in text_of(
        message
    )
    assert "£1,317.00<br><small>of £2,000.00</small>" in html_of(message)


def test_the_locale_is_the_firm_s_own_else_its_country_s_and_an_unknown_one_is_a_one_line_error():
    assert firm_locale("GB") == "en_GB" and firm_locale("US") == "en_US" and firm_locale("FR") == "fr_FR"
    assert firm_locale("GB", "de-DE") == "de_DE"
    with pytest.raises(LocaleProblem) as exc:
        firm_locale("GB", "xx_QQ", "tenant acme: locale")
    assert str(exc.value) == "tenant acme: locale: unknown locale 'xx_QQ' (like en_GB, en_US, de_DE or fr_FR)"
    assert money(context.Decimal("1317"), "JPY", "en_US") == "¥1,317"


def test_the_money_and_date_filters_work_in_a_firm_s_own_template(tmp_path: Path):
    (tmp_path / "reminder.subject.txt").write_text(
        "{{ lines[0].outstanding | money(lines[0].currency) }} due {{ lines[0].due_date | date }}"
    )
    line = context.line_view("INV-1", date(2025, 7, 20), 3, context.Decimal("1317"), None, "EUR", 2,
                             "first reminder", "fr_FR")  # fmt: skip
    view = mail.ReminderView(
        firm="Acme", customer="Ann", level=2, level_name="first reminder", lines=(line,), totals=(line.amount,),
        today=date(2025, 7, 23), reference="dun-1", locale="fr_FR",
    )  # fmt: skip
    assert (
        mail.render(mail.environment(tmp_path), "reminder", view).subject == "1 317,00 € due 20 juillet 2025"
    )


# ---- template variables documented


def shipped() -> list[Path]:
    return sorted(p for p in TEMPLATES.iterdir() if p.suffix in (".txt", ".html"))


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.name)
def test_every_variable_a_shipped_template_uses_is_documented(path: Path):
    env = mail.environment(None)
    source = path.read_text()
    used = meta.find_undeclared_variables(env.parse(source))
    assert used <= variables.names(), f"{path.name}: undocumented {sorted(used - variables.names())}"
    fields = set(re.findall(r"\bline\.(\w+)", source))
    assert {f"line.{f}" for f in fields} <= variables.names("line")


@pytest.mark.parametrize(
    ("view", "scope", "prefix"),
    [(mail.ReminderView, "reminder", ""), (mail.LineView, "line", "line."), (mail.NoticeView, "notice", "")],
)
def test_every_field_of_the_views_is_documented_with_its_declared_type(view: Any, scope: str, prefix: str):
    documented = {v.name: v.type for v in variables.ALL if v.scope == scope}
    declared = {prefix + f.name: str(f.type) for f in view.__dataclass_fields__.values()}
    assert documented == declared


def test_ccm_templates_vars_lists_every_variable_and_filter(capsys, home):
    code, out, err = ccm(capsys, "templates", "vars", "--format", "csv")
    assert code == 0, err
    listed = {line.split(",")[1] for line in out.splitlines()[1:]}
    assert variables.names() | {"money", "date", "and_list"} <= listed
    assert "written_about" in listed and "line.written_on" in listed
    code, out, err = ccm(capsys, "templates", "vars", "--format", "json")
    assert code == 0, err
    schema = json.loads((Path(__file__).parent.parent / "schemas" / "template-vars.json").read_text())
    jsonschema.validate(json.loads(out), schema)


# ---- ccm preview shows what is then sent


@pytest.fixture
def cli_firm(
    home: Path, registered: ScriptedLedger, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> ScriptedLedger:
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    add_firm(store, registered)
    store.close()
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    registered.put("contacts", contact("C2", "Bob's Bikes", EmailAddress="bob@example.com"))
    for name, value in {"CCM_SMTP__FROM_ADDRESS": "accounts@acme.example", "CCM_SMTP__HOST": inbox.host,
                        "CCM_SMTP__PORT": str(inbox.port)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    return registered


def test_ccm_preview_shows_exactly_the_e_mail_that_is_then_sent(capsys, cli_firm, inbox, tmp_path):
    at = "2026-11-24T09:30:00Z"
    code, _, err = ccm(capsys, "sync", "-t", "acme")
    assert code == 0, err
    code, shown, err = ccm(capsys, "preview", "ann", "--at", at, "--html", str(tmp_path / "ann.html"))
    assert code == 0, err
    assert inbox.messages == []  # nothing sent
    code, _, err = ccm(capsys, "run", "--at", at)
    assert code == 0, err
    [message] = inbox.messages
    assert shown.startswith(f"To: ann@example.com\nSubject: {message['Subject']}\n")
    assert text_of(message) in shown
    assert (tmp_path / "ann.html").read_text() == html_of(message)


def test_ccm_preview_of_a_level_and_of_unknown_or_unchased_customers(capsys, cli_firm):
    code, _, err = ccm(capsys, "sync", "-t", "acme")
    assert code == 0, err
    code, shown, err = ccm(capsys, "preview", "Ann's Café", "--level", "4", "--at", "2026-11-24T09:30:00Z")
    assert code == 0, err
    assert "Subject: Acme Ltd: final notice before further action" in shown
    code, _, err = ccm(capsys, "preview", "Zed", "--at", "2026-11-24T09:30:00Z")
    assert (code, err) == (2, "ccm: error: no customer 'Zed' in tenant 'acme'\n")
    code, _, err = ccm(capsys, "preview", "bob", "--at", "2026-11-24T09:30:00Z")
    assert code == 2 and err.startswith("ccm: error: nothing is due to Bob's Bikes today")


# ---- monthly statements


def statements_sent(inbox: Inbox) -> list[EmailMessage]:
    return [m for m in inbox.messages if "statement of account" in str(m["Subject"])]


def test_a_monthly_statement_goes_once_per_customer_and_month_on_the_first_business_day(
    store, settings, registered, inbox
):
    firm = add_firm(store, registered)
    firm.put("invoices", invoice("I1", "C1", total="120.00", due="2026-12-20", Number="INV-0001"))
    with store.begin() as conn:
        save_profile(conn, "acme", FirmProfile(statements=True))

    night(store, settings, firm, datetime(2026, 11, 30, 9, 30, tzinfo=UTC))  # not yet December
    assert statements_sent(inbox) == []
    for hour in (9, 14):  # the first business day of December, twice
        night(store, settings, firm, datetime(2026, 12, 1, hour, 30, tzinfo=UTC))
    night(store, settings, firm, datetime(2026, 12, 2, 9, 30, tzinfo=UTC))
    [december] = statements_sent(inbox)
    assert december["Subject"] == "Acme Ltd: statement of account for December 2026, £120.00 outstanding"
    assert "INV-0001  due 20 December 2026  £120.00 outstanding" in text_of(december)
    assert "the invoice open on 1 December 2026" in text_of(december)

    night(store, settings, firm, datetime(2027, 1, 4, 9, 30, tzinfo=UTC))  # 1 Jan a holiday, then a weekend
    assert [m["Subject"] for m in statements_sent(inbox)][1:] == [
        "Acme Ltd: statement of account for January 2027, £120.00 outstanding"
    ]
    with store.read() as conn:
        keys = sorted(a.key for a in outbox.actions(conn, "acme") if a.kind == statements.KIND)
    assert keys == ["stmt:acme:C1:2026-12", "stmt:acme:C1:2027-01"]


def test_a_firm_that_has_not_opted_in_gets_no_statements(store, settings, registered, inbox):
    firm = add_firm(store, registered)
    firm.put("invoices", invoice("I1", "C1", total="120.00", due="2026-12-20", Number="INV-0001"))
    night(store, settings, firm, datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    assert statements_sent(inbox) == []


def test_the_statement_day_is_the_first_business_day_unless_the_firm_chose_one():
    from connector.rules.calendar import SendCalendar

    london = SendCalendar("Europe/London", "GB", "ENG")
    assert statements.statement_day(london, 2027, 1) == date(2027, 1, 4)
    assert statements.statement_day(london, 2026, 12) == date(2026, 12, 1)
    assert statements.statement_day(london, 2027, 2, chosen=31) == date(2027, 2, 28)


def test_a_broken_statement_template_plans_no_statement_and_says_why_while_reminders_go_on(
    store, settings, registered, inbox
):
    firm = add_firm(store, registered)
    firm.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-20", Number="INV-0001"))
    with store.begin() as conn:
        save_profile(conn, "acme", FirmProfile(statements=True))
    own = settings.tenant_dir("acme") / "templates"
    own.mkdir(parents=True)
    (own / "statement.txt").write_text("Dear {{ nope }}")

    summary = night(store, settings, firm, datetime(2026, 12, 1, 9, 30, tzinfo=UTC))

    assert "monthly statements not planned: template statement.txt: 'nope' is undefined" in summary.notes
    assert statements_sent(inbox) == [] and len(inbox.messages) == 1  # the reminder went
