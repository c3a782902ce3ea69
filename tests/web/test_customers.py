"""The customer pages in Chromium: search, open a customer, record a promise on one invoice and see the next
night skip that invoice while it still chases the other; dispute by invoice number; a viewer's POST is refused
and changes nothing; accessibility and a phone-width screenshot.

The firm's night ran in approve mode (conftest.py); the approvals tests use the first three and the last of
the waiting reminders, so these tests pick customers among the others and never write to the outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from sqlalchemy import select

from connector import chasing, outbox
from connector.config import load_settings
from connector.payloads import encode
from connector.run.plan import Context, evaluate_tenant
from connector.store.schema import customers, web_audit
from connector.store.tenants import get_tenant
from tests.web.conftest import DAY, SHOTS, TENANT, Site
from tests.web.test_pages import csrf_of, shoot, waiting_reminders

NEXT_NIGHT = DAY + timedelta(days=1)


def spare_reminders(site: Site) -> list[outbox.Action]:
    """Waiting reminders the approvals tests leave alone, the customers with most invoices first."""
    found = waiting_reminders(site)[3:-1]
    return sorted(found, key=lambda a: -len(encode(a.payload)["lines"]))


def customer_url(site: Site, customer_id: str) -> str:
    return f"{site.url}/t/{TENANT}/customers/{quote(customer_id, safe='')}"


def numbers(action: outbox.Action) -> list[str]:
    return [str(line["number"]) for line in encode(action.payload)["lines"]]


def chasing_state(site: Site, customer_id: str) -> chasing.ChasingState:
    with site.store.read() as conn:
        return chasing.states(conn, TENANT).get(customer_id, chasing.ChasingState())


def night(site: Site, day: date) -> tuple[set[str], dict[str, str]]:
    """What the night of `day` would chase (invoice numbers) and skip (number -> reason), planned as the
    night plans (nothing written)."""
    settings = load_settings(None, site.env)
    with site.store.read() as conn:
        tenant = get_tenant(conn, TENANT)
    evaluation, snapshot = evaluate_tenant(site.store, Context.load(settings, tenant), day)
    number = {i.id: i.number or i.id for i in snapshot.invoices}
    chased = {number[line.item.invoice_id] for r in evaluation.reminders for line in r.lines}
    return chased, {number[s.invoice_id]: s.reason.value for s in evaluation.skipped}


def test_search_by_name_and_by_invoice_number_and_open_a_customer(site):
    target = spare_reminders(site)[0]
    name = str(encode(target.payload)["customer_name"])
    page = site.signed_in("ann")
    page.goto(f"{site.url}/t/{TENANT}/")
    page.get_by_role("link", name="Customers").click()
    page.wait_for_url(f"{site.url}/t/{TENANT}/customers")
    page.get_by_label("Name, id or invoice number").fill(name.split(maxsplit=1)[0].lower())
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/customers?q=*")
    assert page.get_by_role("link", name=name).is_visible()
    page.get_by_label("Name, id or invoice number").fill(numbers(target)[0])
    page.get_by_role("button", name="Search").click()
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and name in rows.inner_text()
    csv = page.request.get(f"{site.url}/t/{TENANT}/customers?q={quote(name)}&format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text().splitlines()[0] == "customer,e-mail,open invoices,due (ledger),ledger balance"
    assert name in csv.text()

    page.get_by_role("link", name=name).click()
    page.wait_for_url(customer_url(site, target.customer_id))
    assert page.get_by_role("heading", name=name, level=1).is_visible()
    contact = page.get_by_role("region", name="Contact").inner_text()
    assert str(encode(target.payload)["email"]) in contact
    with site.store.read() as conn:  # the number as the last sync stored it; None: said to be missing
        phone = conn.execute(
            select(customers.c.phone).where(
                customers.c.tenant_id == TENANT, customers.c.id == target.customer_id
            )
        ).scalar()
    assert (phone or "not recorded in the ledger") in contact
    position = page.get_by_role("region", name="Position").inner_text()
    assert "The ledger's own balance" in position and "Net exposure (ccm)" in position
    assert page.get_by_role("heading", name="Rating:").count() == 1
    table = page.get_by_role("region", name="Open invoices").inner_text()
    for number in numbers(target):
        assert number in table
    assert "due now (by e-mail)" in table  # the next step of each invoice the night chases
    timeline = page.get_by_role("region", name="Timeline").inner_text()
    assert (
        f"reminder ({encode(target.payload)['level_name']}) on {', '.join(numbers(target))}: awaiting_approval"
        in (timeline)
    )
    assert page.goto(customer_url(site, "no-such-customer")).status == 404
    assert "No such customer" in page.content()
    page.context.close()


def test_the_contact_section_gives_the_number_to_call(site):
    c = customers.c
    with site.store.read() as conn:  # a customer whose ledger keeps a number, as the last sync stored it
        cid, name, phone = conn.execute(
            select(c.id, c.name, c.phone).where(c.tenant_id == TENANT, c.phone.is_not(None)).order_by(c.name)
        ).first()
    page = site.signed_in("ann")
    page.goto(customer_url(site, cid))
    contact = page.get_by_role("region", name="Contact")
    assert name in page.get_by_role("heading", level=1).inner_text()
    assert phone.startswith("+") and phone in contact.inner_text()
    assert contact.locator(f'a[href="tel:{phone.replace(" ", "")}"]').count() == 1
    page.context.close()


def test_a_promise_on_one_invoice_is_skipped_next_night_while_the_other_is_still_chased(site):
    target = next(a for a in spare_reminders(site) if len(encode(a.payload)["lines"]) >= 2)
    promised, other = numbers(target)[0], numbers(target)[1]
    chased, _ = night(site, NEXT_NIGHT)
    assert {promised, other} <= chased  # before: both are due
    page = site.signed_in("ann")
    page.goto(customer_url(site, target.customer_id))
    page.get_by_text("Record a promise to pay").click()
    page.get_by_role("checkbox", name=promised).check()
    page.get_by_label("Promised by").fill(str(DAY + timedelta(days=10)))
    page.get_by_label("Note").first.fill("said they pay on the 20th")
    page.get_by_role("button", name="Record the promise").click()
    page.wait_for_url("**?done=promise")
    assert "Promise recorded" in page.get_by_role("status").inner_text()
    table = page.get_by_role("region", name="Open invoices")
    promised_row = table.get_by_role("row").filter(has_text=promised)
    assert "promised" in promised_row.inner_text()
    assert f"not sent: customer promised to pay (by {DAY + timedelta(days=10)})" in promised_row.inner_text()
    assert "due now" in table.get_by_role("row").filter(has_text=other).inner_text()
    assert f"promised to pay on {promised} by {DAY + timedelta(days=10)}" in (
        page.get_by_role("region", name="Timeline").inner_text()
    )
    assert chasing_state(site, target.customer_id).promise_until is None  # not the whole customer

    chased, skipped = night(site, NEXT_NIGHT)
    assert other in chased and promised not in chased
    assert skipped[promised] == "customer promised to pay"
    done = site.ccm("run", "--dry-run", "-t", TENANT, "--at", f"{NEXT_NIGHT}T09:30:00Z")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "customer promised to pay" in done.stdout  # the night's own account of it
    chased, _ = night(site, DAY + timedelta(days=11))  # the promise has passed: chased again
    assert promised in chased
    with site.store.read() as conn:
        audited = conn.execute(
            select(web_audit.c.who, web_audit.c.what, web_audit.c.after).where(
                web_audit.c.what.startswith(f"customer.promise {target.customer_id} ")
            )
        ).all()
    name = encode(target.payload)["customer_name"]
    assert [(w, t, a["promised"]) for w, t, a in audited] == [
        ("ann", f"customer.promise {target.customer_id} · {name}", {promised: str(DAY + timedelta(days=10))})
    ]
    page.goto(f"{site.url}/t/{TENANT}/")  # the firm's page lists the change, before and after
    changes = page.get_by_role("region", name="Recent changes").inner_text()
    assert f"{name}: chased normally → {promised} promised by {DAY + timedelta(days=10)}" in changes
    with site.store.begin() as conn:  # the other pages' tests share this firm: leave it as found
        chasing.close_events(
            conn, TENANT, target.customer_id, chasing.PROMISE, "withdrawn", datetime.now(UTC)
        )
    page.context.close()


def test_a_dispute_by_invoice_shows_the_invoice_number(site):
    target = spare_reminders(site)[-1]
    number = numbers(target)[-1]
    page = site.signed_in("ann")
    page.goto(customer_url(site, target.customer_id))
    page.get_by_text("Dispute an invoice").click()
    page.get_by_label("Invoice", exact=True).select_option(number)
    page.get_by_role("button", name="Mark disputed").click()  # no reason: refused, nothing recorded
    assert page.get_by_label("Reason").evaluate("e => e.validity.valueMissing")
    answer = page.request.post(customer_url(site, target.customer_id),
                               form={"csrf": csrf_of(page), "do": "dispute", "invoice": number})  # fmt: skip
    assert answer.status == 400 and "Reason: say why" in answer.text()
    assert chasing_state(site, target.customer_id).disputed == frozenset()
    page.get_by_label("Reason").fill("goods arrived damaged")
    page.get_by_role("button", name="Mark disputed").click()
    page.wait_for_url("**?done=dispute")
    row = page.get_by_role("region", name="Open invoices").get_by_role("row").filter(has_text=number)
    assert "disputed" in row.inner_text() and "invoice is disputed" in row.inner_text()
    timeline = page.get_by_role("region", name="Timeline").inner_text()
    assert f"invoice {number} disputed: goods arrived damaged" in timeline
    done = site.ccm("customer", target.customer_id, "-t", TENANT, "--as-of", str(DAY))
    assert f"disputed: {number}" in done.stdout, done.stdout + done.stderr
    page.get_by_text("Dispute an invoice").click()  # settled: chased again (and the firm left as found)
    page.get_by_label("Disputed invoice").select_option(number)
    page.get_by_role("button", name="Resolve the dispute").click()
    page.wait_for_url("**?done=resolve")
    assert chasing_state(site, target.customer_id).disputed == frozenset()
    assert f"invoice {number} disputed: goods arrived damaged; resolved" in (
        page.get_by_role("region", name="Timeline").inner_text()
    )
    page.context.close()


def test_a_viewer_reads_but_a_post_of_theirs_is_refused_and_changes_nothing(site):
    target = spare_reminders(site)[0]
    before = chasing_state(site, target.customer_id)
    page = site.signed_in("vic")
    page.goto(customer_url(site, target.customer_id))
    assert page.get_by_role(
        "heading", name=str(encode(target.payload)["customer_name"]), level=1
    ).is_visible()
    assert page.get_by_role("button", name="Record the promise").count() == 0  # no forms to fill
    for form in ({"do": "dnc"}, {"do": "note", "note": "a viewer's note"}):
        answer = page.request.post(
            customer_url(site, target.customer_id), form={"csrf": csrf_of(page), **form}
        )
        assert answer.status == 403
    answer = page.request.post(customer_url(site, target.customer_id), form={"do": "dnc"})  # and no token
    assert answer.status == 403
    assert chasing_state(site, target.customer_id) == before
    with site.store.read() as conn:
        history = chasing.events(conn, TENANT, target.customer_id)
    assert all(e.note != "a viewer's note" for e in history)
    page.context.close()


def test_a_note_and_the_reminder_preview(site):
    target = spare_reminders(site)[1]
    page = site.signed_in("ann")
    page.goto(customer_url(site, target.customer_id))
    page.get_by_text("Add a note").click()
    page.locator("#n-note").fill("Rang Tuesday: the owner is away until the 20th")
    page.get_by_role("button", name="Add the note").click()
    page.wait_for_url("**?done=note")
    assert "note: Rang Tuesday: the owner is away until the 20th" in (
        page.get_by_role("region", name="Timeline").inner_text()
    )
    page.get_by_role("link", name="Preview the next reminder").click()
    page.wait_for_url("**/preview")
    assert page.get_by_text("nothing is sent from this page").is_visible()
    frame = page.locator("iframe.mail")
    assert frame.get_attribute("sandbox") == ""
    body = frame.content_frame.locator("body").inner_text()
    assert str(encode(target.payload)["customer_name"]) in body
    assert numbers(target)[0] in body
    page.context.close()


def test_the_customer_pages_meet_accessibility_basics_and_are_photographed(site):
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = spare_reminders(site)[0]
    page = site.signed_in("ann")
    axe = Axe()
    for name, url in (
        ("customers", f"{site.url}/t/{TENANT}/customers"),
        ("customer", customer_url(site, target.customer_id)),
        ("customer-preview", customer_url(site, target.customer_id) + "/preview"),
    ):
        page.goto(url)
        shoot(page, name)
        if name == "customer":
            for summary in page.locator("summary").all():  # the forms open, so axe checks them too
                summary.click()
            page.set_viewport_size({"width": 390, "height": 844})
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the forms fit a phone
            page.set_viewport_size({"width": 1280, "height": 900})
        violations = axe.run(page).response["violations"]
        bad = [
            (v["id"], v["impact"], len(v["nodes"]))
            for v in violations
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], f"{url}: {bad}"
    page.context.close()
