"""The review pages in Chromium: holds and limits (accept and dismiss a suggestion, import limits from CSV),
discrepancies linked to Xero, and the sync log in words; a viewer's POST refused; accessibility and a phone's
width."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from sqlalchemy import select

from connector import creditcontrol as credit
from connector import ledger as registry
from connector import outbox
from connector.config import load_settings
from connector.creditcontrol.suggestions import Suggestion
from connector.model import Money, RecordError, Tenant
from connector.outbox import State
from connector.payloads import encode
from connector.reconcile import Kind, Rates, allocate, find_discrepancies, load_snapshot
from connector.store import synclog
from connector.store.records import RowChange
from connector.store.schema import invoices, web_audit
from connector.store.tenants import get_tenant, save_tenant
from connector.web import holds_views, users
from connector.web.users import Role
from tests.web.conftest import OTHER, PASSWORD, SHOTS, TENANT, Site
from tests.web.test_pages import csrf_of, shoot

MONEY = re.compile(r"£\d{1,3}(,\d{3})*\.\d{2}")  # as the firm's locale (en_GB) writes it
EXACT = re.compile(r"\d+(\.\d+)? GBP")  # a CSV's amount: every digit, no grouping
VIEWER = "wes"  # a viewer of this module's own: test_pages locks "vic" out with wrong passwords
RUN_AT = datetime(2026, 3, 10, 9, 35, tzinfo=UTC)


@pytest.fixture(scope="module")
def viewer(site: Site) -> str:
    with site.store.begin() as conn:
        if users.get(conn, VIEWER) is None:
            users.add(conn, VIEWER, Role.VIEWER, PASSWORD, datetime.now(UTC), [TENANT])
    return VIEWER


def limits(site: Site) -> dict[str, Money]:
    with site.store.read() as conn:
        return credit.limits(conn, TENANT)


def audited(site: Site, prefix: str) -> list[tuple[str, str, Any, Any]]:
    a = web_audit.c
    query = select(a.who, a.what, a.before, a.after).where(a.tenant_id == TENANT, a.what.like(prefix + "%"))
    with site.store.read() as conn:
        return [(r.who, r.what, r.before, r.after) for r in conn.execute(query.order_by(a.audit_id))]


def csv_rows(page: Any, url: str) -> list[dict[str, str]]:
    answer = page.request.get(url)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text())))


def suggestion_row(page: Any, name: str) -> Any:
    return (
        page.get_by_role("region", name="Limit suggestions")
        .get_by_role("row")
        .filter(has=page.get_by_role("rowheader", name=name, exact=True))
    )


def test_the_holds_page_shows_each_hold_with_its_reason_invoices_and_amounts(site):
    with site.store.read() as conn:
        waiting = outbox.actions(conn, TENANT, [State.AWAITING_APPROVAL])
    holds = [a for a in waiting if a.kind == "hold"]
    assert holds, "the sandbox firm's night should plan holds awaiting approval"
    hold = holds[0]
    name, reason = str(encode(hold.payload)["customer_name"]), str(encode(hold.payload)["reason"])

    page = site.signed_in("ann")
    page.goto(f"{site.url}/t/{TENANT}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Holds").click()
    page.wait_for_url(f"{site.url}/t/{TENANT}/holds")
    row = page.get_by_role("region", name="On hold").get_by_role("row").filter(has_text=name)
    text = row.inner_text()
    assert "hold awaiting approval" in text and reason in text
    assert re.search(r"INV-\d{6}", text) and MONEY.search(text), text

    rows = csv_rows(page, f"{site.url}/t/{TENANT}/holds?format=csv")
    mine = [r for r in rows if r["customer"] == name]
    assert mine and mine[0]["reason"] == reason and mine[0]["state"] == "hold awaiting approval"
    assert re.fullmatch(r"(INV-\d{6} ?)+", mine[0]["overdue invoices"])
    suggested = csv_rows(page, f"{site.url}/t/{TENANT}/holds?format=suggestions.csv")
    assert suggested and all(EXACT.fullmatch(r["suggested"]) for r in suggested)
    page.context.close()


def test_a_bookkeeper_accepts_one_suggestion_and_dismisses_another_until_its_figures_change(site):
    page = site.signed_in("ann")
    page.goto(f"{site.url}/t/{TENANT}/holds")
    suggested = csv_rows(page, f"{site.url}/t/{TENANT}/holds?format=suggestions.csv")
    raises = [r for r in suggested if r["suggestion"] == "raise" and not r["limit now"]]
    assert len(raises) >= 2, suggested
    taken, dropped = raises[0], raises[1]

    suggestion_row(page, taken["customer"]).get_by_role("button", name="Accept").click()
    page.wait_for_url("**/holds?done=accept&n=1")
    assert "Suggestion accepted" in page.get_by_role("status").inner_text()
    limit_row = (
        page.get_by_role("region", name="Credit limits").get_by_role("row").filter(has_text=taken["customer"])
    )
    accepted = Money(Decimal(taken["suggested"].removesuffix(" GBP")), "GBP")
    assert str(accepted) in limit_row.inner_text()  # "£8,000.00"
    assert suggestion_row(page, taken["customer"]).count() == 0
    who, what, before, after = audited(site, "limit.accept")[-1]
    assert (who, what) == ("ann", f"limit.accept {taken['customer']}")
    assert before["state"] == "no limit" and after["state"] == f"limit {accepted}"
    assert limits(site)[after["customer_id"]] == accepted

    suggestion_row(page, dropped["customer"]).get_by_role("button", name="Dismiss").click()
    page.wait_for_url("**/holds?done=dismiss&n=1")
    assert "stays hidden until its figures change" in page.get_by_role("status").inner_text()
    assert suggestion_row(page, dropped["customer"]).count() == 0
    assert "1 dismissed" in page.get_by_role("region", name="Limit suggestions").inner_text()
    assert audited(site, "limit.dismiss")[-1][:2] == ("ann", f"limit.dismiss {dropped['customer']}")
    page.reload()
    assert suggestion_row(page, dropped["customer"]).count() == 0  # still dismissed

    customer_id = audited(site, "limit.dismiss")[-1][3]["customer_id"]
    with site.store.begin() as conn:  # its figures change: a small limit is set from elsewhere
        credit.set_limit(conn, TENANT, customer_id, Money(Decimal(100), "GBP"), datetime.now(UTC), "set")
    page.reload()
    again = suggestion_row(page, dropped["customer"])
    assert again.count() == 1 and "£100.00" in again.inner_text()
    page.context.close()


def test_a_limits_csv_with_a_bad_line_says_which_as_the_cli_does_and_stores_nothing(site, tmp_path: Path):
    bad = b"customer,amount\nVale Design Trading,2500\nNo Such Customer Ltd,1000\nTamar Builders & Co,lots\n"
    file = tmp_path / "limits.csv"
    file.write_bytes(bad)
    cli = site.ccm("limit", "import", str(file), "-t", TENANT)
    assert cli.returncode != 0
    cli_error = (cli.stderr + cli.stdout).split(f"{file}: ", 1)[1].strip()
    assert cli_error.startswith("nothing imported: line 3:") and "line 4:" in cli_error
    before = limits(site)

    page = site.signed_in("ann")
    page.goto(f"{site.url}/t/{TENANT}/holds")
    page.get_by_label("Import limits from a CSV file").set_input_files(
        files=[{"name": "limits.csv", "mimeType": "text/csv", "buffer": bad}]
    )
    with page.expect_response(f"{site.url}/t/{TENANT}/holds/import") as answer:
        page.get_by_role("button", name="Import limits", exact=True).click()
    assert answer.value.status == 400
    assert page.get_by_role("alert").inner_text() == f"limits.csv: {cli_error}"
    assert limits(site) == before

    good = b"customer,amount,currency\nVale Design Trading,2500,GBP\nTamar Builders & Co,1000\n"
    page.get_by_label("Import limits from a CSV file").set_input_files(
        files=[{"name": "limits.csv", "mimeType": "text/csv", "buffer": good}]
    )
    page.get_by_role("button", name="Import limits", exact=True).click()
    page.wait_for_url("**/holds?done=import&n=2")
    assert page.get_by_role("status").inner_text() == "Imported 2 credit limits."
    stored = {m for cid, m in limits(site).items() if before.get(cid) != m}
    assert stored == {Money(Decimal(2500), "GBP"), Money(Decimal(1000), "GBP")}
    assert audited(site, "limit.import")[-1][:2] == ("ann", "limit.import limits.csv")
    page.context.close()


def test_a_viewer_reads_the_holds_page_but_a_post_of_theirs_is_refused_and_changes_nothing(site, viewer):
    page = site.signed_in(viewer)
    page.goto(f"{site.url}/t/{TENANT}/holds")
    assert page.get_by_role("button", name="Accept").count() == 0
    assert page.get_by_role("button", name="Import limits", exact=True).count() == 0
    suggested = csv_rows(page, f"{site.url}/t/{TENANT}/holds?format=suggestions.csv")
    before, entries = limits(site), len(audited(site, "limit."))
    token = csrf_of(page)
    with site.store.read() as conn:
        tenant = get_tenant(conn, TENANT)
    found = holds_views.suggestions(site.store, load_settings(None, site.env), tenant, RUN_AT.date())
    target = next(s for s in found if s.name == suggested[0]["customer"])  # what a bookkeeper could accept

    answer = page.request.post(f"{site.url}/t/{TENANT}/holds/suggestions",
                               form={"csrf": token, "do": "accept", "customer": target.customer_id,
                                     **holds_views.figures(target)})  # fmt: skip
    assert answer.status == 403
    answer = page.request.post(f"{site.url}/t/{TENANT}/holds/import", multipart={
        "csrf": token, "file": {"name": "l.csv", "mimeType": "text/csv", "buffer": b"customer,amount\nX,1\n"},
    })  # fmt: skip
    assert answer.status == 403
    page.context.close()
    page = site.signed_in("ann")  # and a bookkeeper's POST without the form's token
    answer = page.request.post(f"{site.url}/t/{TENANT}/holds/suggestions",
                               form={"do": "accept", "customer": target.customer_id,
                                     **holds_views.figures(target)})  # fmt: skip
    assert answer.status == 403
    assert limits(site) == before and len(audited(site, "limit.")) == entries
    page.context.close()


def test_each_discrepancy_is_explained_and_links_to_the_record_in_xero(site):
    snapshot = load_snapshot(site.store, TENANT)
    found = find_discrepancies(snapshot, allocate(snapshot), Rates.from_snapshot(snapshot))
    mismatch = next(d for d in found if d.kind is Kind.AMOUNT_DUE_MISMATCH)
    invoice_id = mismatch.records[0].removeprefix("invoice:")
    invoice = snapshot.invoices_by_id[invoice_id]
    customer = snapshot.customer_name(invoice.customer_id)

    page = site.signed_in("ann")
    page.goto(f"{site.url}/t/{TENANT}/discrepancies")
    assert f"{len(found)} places where ccm's figures and Xero's differ" in page.inner_text("main")
    card = page.locator("article").filter(has_text=mismatch.explanation)
    assert card.count() == 1 and MONEY.search(mismatch.explanation)
    link = card.get_by_role("link", name=f"{invoice.number} ({customer})")
    assert (
        link.get_attribute("href")
        == f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={invoice_id}"
    )
    contact = card.get_by_role("heading").get_by_role("link", name=customer)
    assert contact.get_attribute("href") == f"https://go.xero.com/Contacts/View/{invoice.customer_id}"
    rows = csv_rows(page, f"{site.url}/t/{TENANT}/discrepancies?format=csv")
    assert len(rows) == len(found)
    assert any(
        r["explanation"] == mismatch.explanation and f"{invoice.number} (" in r["records"] for r in rows
    )
    page.context.close()


@pytest.fixture(scope="module")
def sync_run(site: Site) -> tuple[int, str]:
    """A webhook's sync of this firm that paid one invoice and could not read another, written as the sync
    writes it; and one of another firm's."""
    with site.store.read() as conn:
        row = conn.execute(
            select(invoices.c.id, invoices.c.number).where(invoices.c.tenant_id == TENANT, invoices.c.number != None)  # noqa: E711
            .order_by(invoices.c.number).limit(1)
        ).one()  # fmt: skip
    with site.store.begin() as conn:
        run_id = synclog.start_run(conn, TENANT, "incremental", RUN_AT, trigger="webhook")
        synclog.record_page(conn, TENANT, run_id, "invoices", [
            RowChange("invoice", row.id, "update", {"amount_due": ["292.80", "0.00"], "status": ["open", "paid"]}),
        ], [RecordError("invoices", "7f1d0c1e-bad", "Total: not a number: 'twelve'")], read=2, api_calls=1)  # fmt: skip
        synclog.finish_run(conn, TENANT, run_id, synclog.SyncOutcome.PARTIAL, at=RUN_AT)
        other = synclog.start_run(conn, OTHER, "incremental", RUN_AT, trigger="cli")
        synclog.finish_run(conn, OTHER, other, synclog.SyncOutcome.OK, at=RUN_AT)
    return run_id, str(row.number)


def test_the_sync_log_lists_runs_and_a_run_shows_its_changes_in_words_and_its_errors(site, sync_run):
    run_id, number = sync_run
    page = site.signed_in("ann")
    page.goto(f"{site.url}/t/{TENANT}/log")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Run {run_id}", exact=True))
    assert "2026-03-10 09:35" in row.inner_text() and "partial" in row.inner_text()
    assert "webhook" in row.inner_text()
    row.get_by_role("link", name=f"Run {run_id}").click()
    page.wait_for_url(f"{site.url}/t/{TENANT}/log/{run_id}")
    changes = page.get_by_role("region", name="Changes").inner_text()
    customer = re.search(rf"{number} \(([^)]+)\)", changes)
    assert customer, changes
    assert f"{number} ({customer.group(1)})\tamount due 292.80 → 0.00, status open → paid" in changes
    errors = page.get_by_role("region", name="Errors").inner_text()
    assert "invoices record with ledger id 7f1d0c1e-bad (not in the store)" in errors
    assert "Total: not a number: 'twelve'" in errors
    rows = csv_rows(page, f"{site.url}/t/{TENANT}/log/{run_id}?format=csv")
    assert rows == [
        {
            "record": f"{number} ({customer.group(1)})",
            "what changed": "amount due 292.80 → 0.00, status open → paid",
        }
    ]
    listed = csv_rows(page, f"{site.url}/t/{TENANT}/log?format=csv")
    assert {"run": str(run_id), "outcome": "partial", "errors": "1"}.items() <= next(
        r for r in listed if r["run"] == str(run_id)
    ).items()
    with site.store.read() as conn:
        other = synclog.runs(conn, OTHER, limit=1)[0].run_id
    for missing in (str(other), "999999999", "not-a-run", "0"):
        assert page.goto(f"{site.url}/t/{TENANT}/log/{missing}").status == 404, missing
    page.context.close()


def test_the_review_pages_meet_accessibility_basics_and_fit_a_phone(site, sync_run):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = site.signed_in("ann")
    axe = Axe()
    for name, path in (
        ("holds", f"/t/{TENANT}/holds"),
        ("discrepancies", f"/t/{TENANT}/discrepancies"),
        ("sync-log", f"/t/{TENANT}/log"),
        ("sync-run", f"/t/{TENANT}/log/{sync_run[0]}"),
    ):
        page.goto(site.url + path)
        violations = axe.run(page).response["violations"]
        bad = [
            (v["id"], v["impact"], len(v["nodes"]))
            for v in violations
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], f"{path}: {bad}"
        shoot(page, name)
    page.context.close()


def test_records_link_to_their_pages_in_the_ledgers_own_web_apps():
    xero, quickbooks = registry.get("xero").record_url, registry.get("quickbooks").record_url
    assert xero is not None and quickbooks is not None
    assert xero("customer", "9b8e-1") == "https://go.xero.com/Contacts/View/9b8e-1"
    assert (
        xero("credit_note", "c1")
        == "https://go.xero.com/AccountsReceivable/ViewCreditNote.aspx?creditNoteID=c1"
    )
    assert xero("payment", "p1") is None  # Xero has no page of a payment's own
    assert quickbooks("customer", "58") == "https://app.qbo.intuit.com/app/customerdetail?nameId=58"
    assert quickbooks("invoice", "130") == "https://app.qbo.intuit.com/app/invoice?txnId=130"
    assert quickbooks("credit_note", "73") == "https://app.qbo.intuit.com/app/creditmemo?txnId=73"
    assert quickbooks("payment", "95") == "https://app.qbo.intuit.com/app/recvpayment?txnId=95"
    assert quickbooks("invoice", "1&x=2") == "https://app.qbo.intuit.com/app/invoice?txnId=1%26x%3D2"


def test_a_dismissed_suggestion_stays_dismissed_while_its_figures_hold_on_both_backends(store):
    tenant = Tenant("t1", "Firm Ltd", "xero", "GBP", "Europe/London")
    with store.begin() as conn:
        save_tenant(conn, tenant)
    s = Suggestion(
        "c1", "Acme Joinery Trading", "A", None, Money(Decimal(8000), "GBP"), "rating A, pays reliably"
    )
    with store.begin() as conn:
        holds_views.dismiss(conn, tenant, s, "ann", RUN_AT)
    with store.read() as conn:
        assert holds_views.dismissed(conn, tenant.id) == {"c1": holds_views.figures(s)}
    assert holds_views.figures(s) == {"kind": "raise", "limit": "", "suggested": "8000 GBP"}
    later = Suggestion("c1", s.name, "A", Money(Decimal(100), "GBP"), s.suggested, s.reason)
    assert holds_views.figures(later) != holds_views.figures(s)  # a limit set since: it shows again
    with store.begin() as conn:
        holds_views.accept(conn, tenant, later, "ann", RUN_AT)
        assert credit.limits(conn, tenant.id) == {"c1": Money(Decimal(8000), "GBP")}
    assert audited_in(store, tenant.id) == [
        ("limit.dismiss Acme Joinery Trading", "suggested £8,000.00", "dismissed"),
        ("limit.accept Acme Joinery Trading", "no limit", "limit £8,000.00"),
    ]


def audited_in(store: Any, tenant_id: str) -> list[tuple[str, str, str]]:
    a = web_audit.c
    query = select(a.what, a.before, a.after).where(a.tenant_id == tenant_id).order_by(a.audit_id)
    with store.read() as conn:
        return [(r.what, r.before["state"], r.after["state"]) for r in conn.execute(query)]
