"""What a customer receives around the reminder's wording (issue 13): the firm's own sender and sign-off, its
bank details, a pay link, the invoice copy, the headers, every recipient, on both sandboxes.

Each firm is built by hand on a pinned day, connected through the ledger's real OAuth flow, and its night and
morning run as `ccm serve` runs them; the e-mails are read back from a real SMTP server and parsed with the
email package.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.sandbox.records import Firm, GenCustomer, GenInvoice, GenLine
from adapters.xero import sandbox as xero_sandbox
from connector import outbox
from connector.config import Settings
from connector.firmprofile import BankTransfer, FirmProfile, save_profile
from connector.model import Tenant
from connector.run.night import run_night
from connector.store import Store
from tests.e2e.sandboxes import QuickBooksSide, Side, XeroSide, connected, settings_for
from tests.smtp import Inbox

DAY = date(2026, 11, 24)  # a Tuesday, no bank holiday in England
NIGHT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # London is on GMT in November
LATER = MORNING + timedelta(hours=2)
WHEN = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = """version: 1
default: everyone
policies:
  - name: everyone
    days: calendar
    levels:
      - {{name: first reminder, offset: 3, channel: email, template: reminder{copy}}}
"""
PROFILE = FirmProfile(
    from_name="Hand Built Accounts", from_address="accounts@handbuilt.example", reply_to="credit@handbuilt.example",
    signature="Jane Smith\nCredit Control", company_number="Registered in England and Wales no. 01234567",
    registered_office="1 High Street, Leeds, LS1 1AA",
    pay_by_transfer=BankTransfer("Hand Built Ltd", "20-00-00", "55779911", "GB29 NWBK 6016 1331 9268 19",
                                 "NWBKGB2L", "Please quote {invoice_numbers} as the payment reference."),
)  # fmt: skip


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def firm() -> Firm:
    due = DAY - timedelta(days=10)
    total = Decimal("200.00")
    stamp = datetime.combine(due - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    ashford = GenCustomer(id=uid(1), name="Ashford Florist", email="ashford@example.com", currency="GBP",
                          behaviour="never", segment="Retail", created=WHEN, updated=WHEN)  # fmt: skip
    invoice = GenInvoice(
        id=uid(2), number="INV-000104", customer_id=uid(1), issue_date=due - timedelta(days=30), due_date=due,
        currency="GBP", currency_rate=Decimal(1), lines=(GenLine("Flowers", Decimal(1), total, Decimal(0)),),
        subtotal=total, tax=Decimal(0), total=total, status="authorised", created=stamp, updated=stamp,
    )  # fmt: skip
    return Firm(name="Hand Built Ltd", base_currency="GBP", country="GB", timezone="Europe/London", today=DAY,
                customers=(ashford,), invoices=(invoice,), payments=(), credit_notes=(), plants=())  # fmt: skip


@pytest.fixture(params=["xero", "quickbooks"])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    running: Side = (
        XeroSide(xero_sandbox.start(firm(), limits=False))
        if request.param == "xero"
        else QuickBooksSide(qbo_sandbox.start(firm(), limits=False))
    )
    yield running
    running.handle.stop()


@pytest.fixture
def settings(side: Side, tmp_path, inbox: Inbox) -> Settings:
    return settings_for(side, tmp_path / "data", inbox)


def tenant_for(side: Side, settings: Settings, store: Store, copy: str = "") -> Tenant:
    found = connected(side, settings, store)
    folder = settings.tenant_dir(found.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.yaml").write_text(POLICY.format(copy=copy))
    with store.begin() as conn:
        save_profile(conn, found.id, PROFILE)
    if isinstance(side, XeroSide):  # Xero: the contact's people, one of them included in e-mails
        side.handle.set_contact_persons(uid(1), [("Pat", "Payables", "pat@example.com", True),
                                                 ("Sam", "Sales", "sam@example.com", False)])  # fmt: skip
    else:  # QuickBooks: the company takes online payments, so the invoice has an InvoiceLink
        side.handle.set_online_payments(True)
    return found


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None, "a reminder has a text and an HTML part"
    return text.get_content(), html.get_content()


def test_a_reminder_goes_out_in_the_firms_name_with_its_bank_details_pay_link_and_invoice_copy(
    side, settings, store, inbox
):
    tenant = tenant_for(side, settings, store)
    run_night(store, settings, tenant.id, now=NIGHT)
    run_night(store, settings, tenant.id, now=MORNING)

    [message] = inbox.messages
    assert message["From"] == "Hand Built Accounts <accounts@handbuilt.example>"
    assert message["Reply-To"] == "credit@handbuilt.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert str(message["Message-ID"]).endswith("@handbuilt.example>")
    sent_at = parsedate_to_datetime(str(message["Date"]))
    assert sent_at.tzinfo is not None and sent_at == MORNING
    assert str(message["Date"]).endswith(
        "+0000"
    )  # London in November: a numeric offset, not "GMT" or "-0000"
    text, html = parts(message)
    for part in (text, html):
        assert "Hand Built Ltd" in part and "20-00-00" in part and "55779911" in part
        assert "GB29 NWBK 6016 1331 9268 19" in part and "NWBKGB2L" in part
        assert "Please quote INV-000104 as the payment reference." in part
        assert "Jane Smith" in part and "Credit Control" in part and "Hand Built Accounts" in part
        assert "Registered in England and Wales no. 01234567" in part
        assert "Registered office: 1 High Street, Leeds, LS1 1AA" in part
    pay_link = (
        "https://in.xero.com/" if isinstance(side, XeroSide) else "https://connect.intuit.com/t/scs-v1-"
    )
    assert pay_link in text and f'href="{pay_link}' in html

    attached = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    if isinstance(side, QuickBooksSide):  # the invoice as QuickBooks prints it, fetched at send time
        [pdf] = attached
        assert pdf.get_filename() == "INV-000104.pdf"
        content = pdf.get_content()
        assert content.startswith(b"%PDF-") and b"Invoice INV-000104" in content and b"%%EOF" in content
        assert "A copy of invoice INV-000104 is attached." in text
        assert message["Cc"] is None
    else:  # Xero: the online invoice, and the contact's person who is included in e-mails
        assert attached == []
        assert "View invoice INV-000104</a>" in html and "Invoice INV-000104: https://in.xero.com/" in text
        assert message["To"] == "ashford@example.com"
        assert message["Cc"] == "pat@example.com"  # Sam is not included in e-mails


def test_a_level_without_invoice_copies_sends_none(side, settings, store, inbox):
    tenant = tenant_for(side, settings, store, copy=", invoice_copy: false")
    run_night(store, settings, tenant.id, now=NIGHT)
    run_night(store, settings, tenant.id, now=MORNING)

    [message] = inbox.messages
    text, html = parts(message)
    assert list(message.iter_attachments()) == []
    assert "Invoice INV-000104" not in text and "View invoice" not in html
    assert "55779911" in text  # the bank details stay


def test_a_pdf_that_cannot_be_fetched_holds_the_reminder_back_and_it_goes_once_later(
    side, settings, store, inbox
):
    if not isinstance(side, QuickBooksSide):
        pytest.skip("only QuickBooks prints invoices as PDF")
    tenant = tenant_for(side, settings, store)
    run_night(store, settings, tenant.id, now=NIGHT)
    side.handle.faults.only = r"GET .*/invoice/\d+/pdf"
    side.handle.faults.error_next = 100
    run_night(store, settings, tenant.id, now=MORNING)

    assert inbox.messages == []
    with store.read() as conn:
        [action] = [a for a in outbox.actions(conn, tenant.id) if a.kind == "reminder"]
    assert action.state is outbox.State.PLANNED
    assert "not sent yet: the PDF of invoice INV-000104 could not be fetched" in (action.reason or "")

    side.handle.faults.error_next = 0
    run_night(store, settings, tenant.id, now=LATER)
    run_night(store, settings, tenant.id, now=LATER + timedelta(minutes=30))
    [message] = inbox.messages
    assert [p.get_filename() for p in message.iter_attachments()] == ["INV-000104.pdf"]


def test_two_firms_each_send_in_their_own_name(tmp_path, store, inbox):
    sides: list[Side] = [
        XeroSide(xero_sandbox.start(firm(), limits=False)),
        QuickBooksSide(qbo_sandbox.start(firm(), limits=False)),
    ]
    try:
        for n, side in enumerate(sides):
            settings = settings_for(side, tmp_path / f"data{n}", inbox)
            tenant = Tenant(f"firm{n}", f"Firm {n} Ltd", side.name, "GBP", "Europe/London", "GB")
            side.connect(settings, store, tenant)
            folder = settings.tenant_dir(tenant.id)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "policy.yaml").write_text(POLICY.format(copy=""))
            with store.begin() as conn:
                save_profile(conn, tenant.id, FirmProfile(
                    from_name=f"Firm {n} Credit", from_address=f"credit@firm{n}.example",
                    company_number=f"Company no. 0000000{n}",
                ))  # fmt: skip
            run_night(store, settings, tenant.id, now=NIGHT)
            run_night(store, settings, tenant.id, now=MORNING)
        assert len(inbox.messages) == 2
        for n, message in enumerate(inbox.messages):
            assert message["From"] == f"Firm {n} Credit <credit@firm{n}.example>"
            assert str(message["Message-ID"]).endswith(f"@firm{n}.example>")
            assert message["Reply-To"] is None  # none set: none sent
            text, html = parts(message)
            assert f"Company no. 0000000{n}" in text and f"Company no. 0000000{n}" in html
            assert f"Company no. 0000000{1 - n}" not in text + html
            assert "To pay by bank transfer" not in text  # no bank details set: none shown
    finally:
        for side in sides:
            side.handle.stop()


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("--from-address", "accounts at firm", "--from-address: 'accounts at firm' is not an e-mail address"),
        (
            "--reply-to",
            "Ann <ann@example.com>",
            "--reply-to: 'Ann <ann@example.com>' is not an e-mail address",
        ),
        (
            "--iban",
            "GB28 NWBK 6016 1331 9268 19",
            "--iban: 'GB28 NWBK 6016 1331 9268 19' fails the IBAN checksum",
        ),
        (
            "--sort-code",
            "12-34-5",
            "--sort-code: '12-34-5' is not a UK sort code (six digits, like 12-34-56)",
        ),
        ("--pay-by-transfer", "name=Acme; sort code=12-34-56", "--sort-code and --account-number: give both"),
        ("--pay-by-transfer", "name=Acme; colour=blue", "--pay-by-transfer: 'colour=blue' is not one of"),
        ("--locale", "English please", "--locale: 'English please' is not a locale"),
    ],
)
def test_bad_profile_values_are_one_line_errors_naming_the_option(capsys, home, option, value, error):
    from tests.test_cli import ccm

    assert ccm(capsys, "tenants", "add", "acme", "--ledger", "xero", "--name", "Acme Ltd")[0] == 0
    code, out, err = ccm(capsys, "tenants", "set", "acme", option, value)
    assert code == 2
    assert error in err and len(err.strip().splitlines()) == 1
    code, out, _ = ccm(capsys, "tenants", "show", "acme")
    assert code == 0 and "none (set --pay-by-transfer)" in out  # nothing was stored


def test_tenants_set_and_show_the_firms_sender_footer_and_bank(capsys, home):
    from tests.test_cli import ccm

    assert ccm(capsys, "tenants", "add", "acme", "--ledger", "xero", "--name", "Acme Ltd")[0] == 0
    code, _, err = ccm(
        capsys, "tenants", "set", "acme", "--from-name", "Acme Accounts", "--from-address", "ar@acme.example",
        "--reply-to", "credit@acme.example", "--signature", "Jane Smith\\nCredit Control",
        "--company-number", "Company no. 01234567", "--registered-office", "1 High Street, Leeds",
        "--pay-by-transfer", "name=Acme Ltd; sort code=200000; account=55779911", "--iban", "gb29nwbk60161331926819",
        "--bic", "nwbkgb2l",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = ccm(capsys, "tenants", "show", "acme")
    assert code == 0
    assert "Acme Accounts <ar@acme.example>" in out and "credit@acme.example" in out
    assert "Jane Smith / Credit Control" in out
    assert "Company no. 01234567 / Registered office: 1 High Street, Leeds" in out
    assert (
        "Acme Ltd; sort code 20-00-00, account 55779911; IBAN GB29 NWBK 6016 1331 9268 19, BIC NWBKGB2L"
        in out
    )
    code, _, err = ccm(capsys, "tenants", "set", "acme", "--pay-by-transfer", "", "--reply-to", "")
    assert code == 0, err
    code, out, _ = ccm(capsys, "tenants", "show", "acme")
    assert "none (set --pay-by-transfer)" in out and "Acme Accounts <ar@acme.example>" in out


def test_quickbooks_serves_the_invoice_link_only_when_asked_and_only_with_online_payments(
    side, settings, store
):
    if not isinstance(side, QuickBooksSide):
        pytest.skip("QuickBooks' InvoiceLink")
    from adapters.quickbooks.ledger import QuickBooksLedger
    from connector.wiring import ledger_for

    tenant = connected(side, settings, store)
    ledger = ledger_for(settings, store, tenant)
    assert isinstance(ledger, QuickBooksLedger)
    invoice_id = str(min(side.company.tables["Invoice"].by_id))
    assert ledger.online_invoice_url(invoice_id) is None  # the company takes no online payments
    side.handle.set_online_payments(True)
    link = ledger.online_invoice_url(invoice_id)
    assert link is not None and link.startswith("https://connect.intuit.com/t/scs-v1-")
    assert "InvoiceLink" not in ledger.api.read("Invoice", invoice_id)  # not without ?include=invoiceLink
    assert ledger.invoice_pdf(invoice_id).startswith(b"%PDF-1.4")
