"""What the approvals page and the customer page show is the e-mail that goes out: a QuickBooks firm with its
own sign-off, bank details and invoice copies (PDFs attached), one reminder read on the approvals page in
Chromium, approved, sent to the real SMTP server, and compared: subject, text, HTML, To and attachments."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from urllib.parse import urlencode

import pytest

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import generate
from connector import outbox
from connector.clock import Clock
from connector.config import load_settings
from connector.firmprofile import BankTransfer, FirmProfile, save_profile
from connector.model import Tenant
from connector.outbox import Action, State
from connector.payloads import encode
from connector.store import Store
from tests.e2e.sandboxes import LONDON, QuickBooksSide
from tests.serve.harness import Serve, clean_env, free_port, qbo_env
from tests.smtp import smtp_server
from tests.web.conftest import DAY, PASSWORD, PLANNED_AT, SEND_AT, Site

TENANT = "firm-qbo-preview"
SIGNATURE = "Jane Smith\nCredit Control"
PROFILE = FirmProfile(
    signature=SIGNATURE, company_number="Registered in England and Wales no. 01234567",
    pay_by_transfer=BankTransfer("Harbour Joinery Ltd", sort_code="12-34-56", account_number="12345678"),
)  # fmt: skip


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[Site]:
    """A QuickBooks firm with its own profile, its night planned in approve mode, served like conftest's."""
    home = tmp_path_factory.mktemp("web-preview") / "home"
    ledger_firm = generate(3, "demo", today=DAY, name="Harbour Joinery Ltd")
    handle = qbo_sandbox.start(ledger_firm, clock=SandboxClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC), 0),
                               limits=False)  # fmt: skip
    port = free_port()
    with smtp_server() as inbox:
        serve_clock = Clock(datetime(2026, 3, 10, 3, 0, tzinfo=UTC), time.time(), 1.0).spec()
        env = clean_env() | qbo_env(handle, port) | {
            "CCM_HOME": str(home), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
            "CCM_SMTP__FROM_ADDRESS": "accounts@harbour.example", "CCM_SERVE__CLOCK": serve_clock,
            "CCM_SERVE__MODE": "approve",
        }  # fmt: skip
        settings = load_settings(None, env)
        store = Store.open(settings.db_url)
        QuickBooksSide(handle).connect(
            settings, store, Tenant(TENANT, ledger_firm.name, "quickbooks", *LONDON)
        )
        with store.begin() as conn:
            save_profile(conn, TENANT, PROFILE)
        here = Site(Serve(env, port), env, inbox, store, site.browser)
        done = here.ccm("run", "--approve", "-t", TENANT, "--at", PLANNED_AT)
        assert done.returncode == 0, done.stdout + done.stderr
        done = here.ccm("users", "add", "cy", "--role", "bookkeeper", "--tenants", TENANT, "--password-stdin",
                        stdin=PASSWORD + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr
        here.server.start()
        try:
            yield here
        finally:
            here.server.stop()
            store.close()
            handle.stop()


def _awaiting(site: Site) -> list[Action]:
    with site.store.read() as conn:
        waiting = outbox.actions(conn, TENANT, [State.AWAITING_APPROVAL])
    found = [
        a for a in waiting if a.kind == "reminder" and a.channel == "email" and encode(a.payload).get("email")
    ]
    assert found, "the QuickBooks firm's night should plan e-mail reminders awaiting approval"
    return sorted(found, key=lambda a: -len(encode(a.payload)["lines"]))  # the one with most invoices first


def _parts(message: EmailMessage) -> tuple[str, str, list[str]]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    names = [str(part.get_filename()) for part in message.iter_attachments()]

    def lines(part: MIMEPart) -> str:  # SMTP carries CRLF line ends: compare the lines
        return str(part.get_content()).replace("\r\n", "\n")

    return lines(text), lines(html), names


def test_the_approvals_page_shows_exactly_the_email_that_is_sent(firm):
    site = firm
    target = _awaiting(site)[0]
    numbers = [str(line["number"]) for line in encode(target.payload)["lines"]]
    page = site.signed_in("cy")
    page.goto(f"{site.url}/t/{TENANT}/approvals")
    card = page.locator("article").filter(has=page.locator(f'input[value="{target.key}"]'))
    subject = card.locator(".subject").inner_text()
    text = card.locator("details pre").text_content() or ""
    html = card.locator("iframe.mail").get_attribute("srcdoc") or ""
    shown_to = card.locator("dl.envelope dt:has-text('To') + dd").inner_text()
    attached = card.locator(".attachments").inner_text().split(", ")
    # the firm's profile is in the preview, as in the send: sign-off, bank details, invoice copies
    assert "Jane Smith" in text and "12-34-56" in text and "12345678" in text
    assert "Jane Smith" in html and "12-34-56" in html
    assert attached == [f"{n}.pdf" for n in numbers]

    page.locator(f'button[value="approve:{target.key}"]').click()
    page.wait_for_url("**/approvals?done=approve&n=1")
    page.context.close()
    done = site.ccm("outbox", "send", "-t", TENANT, "--at", SEND_AT)
    assert done.returncode == 0, done.stdout + done.stderr
    sent = [m for m in site.inbox.messages if m["X-CCM-Action"] == target.key]
    assert len(sent) == 1, [m["X-CCM-Action"] for m in site.inbox.messages]
    message = sent[0]
    sent_text, sent_html, sent_names = _parts(message)
    assert str(message["Subject"]) == subject
    assert sent_text.rstrip("\n") == text.rstrip("\n")
    assert sent_html.rstrip("\n") == html.rstrip("\n")
    assert sent_names == attached
    assert str(message["To"]) == shown_to == encode(target.payload)["email"]


def test_the_customer_page_previews_the_next_reminder_as_it_would_be_sent(firm):
    site = firm
    target = _awaiting(site)[-1]
    page = site.signed_in("cy")
    page.goto(f"{site.url}/t/{TENANT}/customers/{target.customer_id}/preview")
    card = page.locator("article")
    text = card.locator("details pre").text_content() or ""
    assert str(encode(target.payload)["customer_name"]) in text
    assert "Jane Smith" in text and "Registered in England and Wales no. 01234567" in text
    assert "12-34-56" in text and "12345678" in text  # the bank details, as the send words them
    numbers = [str(line["number"]) for line in encode(target.payload)["lines"]]
    assert card.locator(".attachments").inner_text().split(", ") == [f"{n}.pdf" for n in numbers]
    assert "nothing is sent from this page" in card.inner_text()

    # the settings page's template preview is drafted by the same code: the firm's sign-off and bank details
    name = str(encode(target.payload)["customer_name"])
    page.goto(f"{site.url}/t/{TENANT}/settings?" + urlencode({"template": "reminder", "customer": name}))
    card = page.locator("article")
    text = card.locator("details pre").text_content() or ""
    assert name in text and numbers[0] in text
    assert "Jane Smith" in text and "12-34-56" in text and "Registered in England and Wales" in text
    page.context.close()
