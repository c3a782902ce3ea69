"""The customer pages of `ccm serve`: find a customer, read where they stand, and record what people decided.

```
GET  /t/{tenant}/customers                       search by name, id or invoice number; paginated; ?format=csv
GET  /t/{tenant}/customers/{customer}            contact, position beside the ledger's balance, rating
                                                 and why, limit, exposure, open invoices, timeline
GET  /t/{tenant}/customers/{customer}/preview    the next reminder the customer would get, rendered (no send)
POST /t/{tenant}/customers/{customer}            do = dispute | resolve | promise | plan | plan_end | pause |
                                                 resume | dnc | dnc_off | hold | release | never_hold |
                                                 never_hold_off | limit | note   (bookkeeper or admin)
```
A POST without the form's CSRF token is 403 and reads nothing; a viewer's is 403 and changes nothing; bad
input is a 400 page naming the field and changes nothing. Each action goes through the same functions as
the CLI (connector/chasing.py, connector/credit.py) and is audited with the customer's state before and
after, in the same transaction. An unknown customer is a 404 page.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from connector import chasing
from connector import creditcontrol as credit
from connector.model import Money, Tenant
from connector.web import approvals, audit
from connector.web import customer_views as cv
from connector.web.pages import HEADERS, Pages, RequestRefused, Visit, csv_response
from connector.web.users import User

log = structlog.get_logger(__name__)
NOTE_MAX = 2000
WHAT_MAX = 255  # the audit log's `what` column
DONE = {
    "dispute": "Invoice marked disputed: it is not chased until the dispute is resolved.",
    "resolve": "Dispute resolved: the invoice is chased again.",
    "promise": "Promise recorded: the invoices promised wait until its date; the others are still chased.",
    "plan": "Payment plan recorded: the customer is not chased while it runs.",
    "plan_end": "Payment plan ended: the customer is chased normally.",
    "pause": "Reminders paused.",
    "resume": "Reminders resumed.",
    "dnc": "Marked do-not-chase: no reminders go to this customer.",
    "dnc_off": "The customer is chased again.",
    "hold": "Manual hold recorded: it reaches the ledger with the next night.",
    "release": "Manual hold lifted: the next night releases it in the ledger unless a rule applies.",
    "never_hold": "The rules will never hold this customer.",
    "never_hold_off": "The rules may hold this customer again.",
    "limit": "Credit limit set.",
    "note": "Note added.",
}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _until(form: FormData, today: date, *, required: bool = True) -> date | None:
    text = _text(form, "until")
    if not text:
        if required:
            raise RequestRefused(400, "Date: give the date (YYYY-MM-DD)")
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise RequestRefused(400, f"Date: not a date (expected YYYY-MM-DD): {text[:40]!r}") from None
    problem = chasing.until_problem(day, today)
    if problem:
        raise RequestRefused(400, f"Date: {problem}")
    return day


def state_of(conn: Connection, tenant_id: str, cid: str) -> dict[str, Any]:
    """What the customer pages change, as the audit log keeps it (invoice numbers, ISO dates, money)."""
    st = chasing.states(conn, tenant_id).get(cid, chasing.ChasingState())
    numbers = {e.invoice_id: e.invoice_number for e in chasing.events(conn, tenant_id, cid) if e.invoice_id}
    limit = credit.limits(conn, tenant_id).get(cid)
    manual = cv.manual_hold(conn, tenant_id, cid)
    return {
        "do_not_chase": st.do_not_chase, "never_hold": st.never_hold,
        "paused_until": st.paused_until.isoformat() if st.paused_until else None,
        "payment_plan": st.on_plan, "manual_hold": manual,
        "disputed": sorted(numbers.get(i) or i for i in st.disputed),
        "promised": {numbers.get(i) or i: d.isoformat() for i, d in sorted(st.promised.items())},
        "credit_limit": str(limit) if limit else None,
    }  # fmt: skip


def with_summary(state: dict[str, Any]) -> dict[str, Any]:
    """The state with "state": the same in a few words, as the firm's page lists changes (before → after)."""
    words = [text for key, text in (
        ("do_not_chase", "do-not-chase"), ("never_hold", "never held"), ("payment_plan", "on a payment plan"),
    ) if state[key]]  # fmt: skip
    if state["paused_until"]:
        words.append(f"paused until {state['paused_until']}")
    if state["manual_hold"]:
        words.append(f"manual hold ({state['manual_hold']})")
    words += [f"{number} disputed" for number in state["disputed"]]
    words += [f"{number} promised by {day}" for number, day in state["promised"].items()]
    if state["credit_limit"]:
        words.append(f"limit {state['credit_limit']}")
    return state | {"state": "; ".join(words) or "chased normally"}


class Customers:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.rt = pages.rt

    def _today(self, tenant: Tenant) -> date:
        return self.rt.clock.now().astimezone(ZoneInfo(tenant.timezone)).date()

    # -- the list
    async def listing(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        query = request.query_params.get("q", "")[:200]
        number = request.query_params.get("page", "1")
        csv = request.query_params.get("format") == "csv"
        size = 100_000 if csv else cv.PAGE_SIZE
        found = await run_in_threadpool(
            self._search, tenant.id, query, int(number) if number.isdigit() else 1, size
        )
        if csv:
            header = ("customer", "e-mail", "open invoices", "due (ledger)", "ledger balance")
            rows = [(r.name, r.email, r.open_invoices, r.outstanding, r.ledger_balance) for r in found.rows]
            return csv_response(f"{tenant.id}-customers", header, rows)
        base = f"/t/{quote(tenant.id)}/customers"
        link = {
            n: f"{base}?{urlencode({'q': query, 'page': n} if query else {'page': n})}"
            for n in (found.page - 1, found.page + 1)
        }
        return self.pages.render(request, visit, "customers.html", title=f"{tenant.name}: customers",
                                 tenant=tenant, found=found, link=link, base=base)  # fmt: skip

    def _search(self, tenant_id: str, query: str, page: int, size: int) -> cv.ListPage:
        with self.rt.store.read() as conn:
            return cv.search(conn, tenant_id, query, page, size)

    # -- one customer
    def _customer(self, tenant: Tenant, cid: str) -> cv.CustomerPage:
        try:
            return cv.customer_page(self.rt.store, self.rt.settings, tenant, cid, self._today(tenant))
        except cv.NoSuchCustomer:
            raise RequestRefused(404, "No such customer") from None

    async def one(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        page = await run_in_threadpool(self._customer, tenant, request.path_params["customer"])
        if request.query_params.get("format") == "csv":
            return csv_response(f"{tenant.id}-{page.name}-invoices", (
                "invoice", "due", "days overdue", "outstanding", "last reminder", "next step"
            ), [(r.number, r.due_date, r.days_overdue, r.outstanding, r.level, r.next_step)
                for r in page.invoices])  # fmt: skip
        done = DONE.get(request.query_params.get("done", ""), "")
        title, base = f"{page.name} · {tenant.name}", _base(tenant, page.customer_id)
        return self.pages.render(
            request, visit, "customer.html", title=title, tenant=tenant, c=page, done=done, base=base
        )

    async def preview(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        page = await run_in_threadpool(self._customer, tenant, request.path_params["customer"])
        ledger = await run_in_threadpool(approvals.preview_ledger, self.rt, tenant)  # within previews' share
        found = await run_in_threadpool(
            cv.next_reminder, self.rt.store, self.rt.settings, tenant, page, self.rt.clock.now(), ledger
        )
        title, base = f"Next reminder to {page.name}", _base(tenant, page.customer_id)
        return self.pages.render(
            request,
            visit,
            "customer_preview.html",
            title=title,
            tenant=tenant,
            c=page,
            found=found,
            base=base,
        )

    # -- actions
    async def act(self, request: Request, visit: Visit, user: User) -> Response:
        form = await self.pages.form_of(request, visit)
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        if not user.may_act:
            raise RequestRefused(403, "A viewer can read but not change anything")
        cid, what = request.path_params["customer"], _text(form, "do")
        if what not in DONE:
            raise RequestRefused(400, "Choose an action")
        await run_in_threadpool(self._act, user, tenant, cid, what, form)
        target = f"{_base(tenant, cid)}?{urlencode({'done': what})}"
        return RedirectResponse(target, status_code=303, headers=HEADERS)

    def _act(self, user: User, tenant: Tenant, cid: str, what: str, form: FormData) -> None:
        now, today = self.rt.clock.now(), self._today(tenant)
        with self.rt.store.begin() as conn:
            try:
                name = cv.customer_id_of(conn, tenant.id, cid)[1]
            except cv.NoSuchCustomer:
                raise RequestRefused(404, "No such customer") from None
            before = with_summary(state_of(conn, tenant.id, cid))
            detail = self._apply(conn, tenant, cid, what, form, now, today)
            after = with_summary(state_of(conn, tenant.id, cid)) | {"detail": detail}
            what_done = f"customer.{what} {cid} · {name}"[:WHAT_MAX]  # the name, for the firm's page
            audit.write(conn, user.name, tenant.id, what_done, self.rt.real_now(), before, after)
        log.info("web.customer", user=user.name, tenant=tenant.id, customer=cid, action=what)

    def _apply(
        self,
        conn: Connection,
        tenant: Tenant,
        cid: str,
        what: str,
        form: FormData,
        now: datetime,
        today: date,
    ) -> str:
        """Carry out one action; returns what the person gave, in words, for the audit log."""
        if what in ("dispute", "resolve"):
            return _dispute(conn, tenant.id, cid, what, form, now)
        if what == "promise":
            return self._promise(conn, tenant, cid, form, now, today)
        if what in ("hold", "release", "limit"):
            return _credit(conn, tenant, cid, what, form, now)
        if what == "note":
            text = _text(form, "note")
            if not text:
                raise RequestRefused(400, "Note: write the note first")
            chasing.add_note(conn, tenant.id, cid, text[:NOTE_MAX], now)
            return text[:200]
        return _chasing(conn, tenant.id, cid, what, form, now, today)

    def _promise(
        self, conn: Connection, tenant: Tenant, cid: str, form: FormData, now: datetime, today: date
    ) -> str:
        until = _until(form, today)
        assert until is not None
        amount: Money | None = None
        if _text(form, "amount"):
            try:
                amount = chasing.parse_amount(_text(form, "amount"), tenant.base_currency)
            except ValueError as exc:
                raise RequestRefused(400, f"Amount: {exc}") from None
        named = [str(v).strip() for v in form.getlist("invoice") if str(v).strip()]
        try:
            covered = chasing.promised_invoices(conn, tenant.id, cid, named, amount)
        except chasing.CustomerOrInvoiceNotFound as exc:
            raise RequestRefused(400, f"Invoices: {exc}") from None
        chasing.record_promise(conn, tenant.id, cid, covered, until, amount, _text(form, "note")[:NOTE_MAX],
                               now)  # fmt: skip
        return f"{amount or 'payment'} by {until} on {', '.join(c.number for c in covered)}"


def _dispute(conn: Connection, tid: str, cid: str, what: str, form: FormData, now: datetime) -> str:
    invoice, reason = _text(form, "invoice"), _text(form, "reason")
    if not invoice:
        raise RequestRefused(400, "Invoice: choose the invoice")
    if what == "dispute" and not reason:
        raise RequestRefused(400, "Reason: say why the invoice is disputed, in a few words")
    try:
        owner, number = chasing.record_dispute(
            conn, tid, invoice, reason[:NOTE_MAX], now, resolve=what == "resolve"
        )
    except chasing.CustomerOrInvoiceNotFound as exc:
        raise RequestRefused(400, f"Invoice: {exc}") from None
    if owner != cid:
        raise RequestRefused(400, f"Invoice: {number} is another customer's")
    return f"{number}: {reason}" if reason else number


def _chasing(
    conn: Connection, tid: str, cid: str, what: str, form: FormData, now: datetime, today: date
) -> str:
    """Plans, pauses, do-not-chase and never-hold: chasing.py's settings and events, as the CLI sets them."""
    if what == "plan":
        until = _until(form, today, required=False)
        chasing.open_event(
            conn, tid, cid, chasing.PLAN, now, note=_text(form, "note")[:NOTE_MAX], until=until
        )
        return str(until or "")
    if what == "plan_end":
        if not chasing.close_events(conn, tid, cid, chasing.PLAN, "ended", now):
            raise RequestRefused(400, "The customer is not on a payment plan")
        return ""
    if what in ("pause", "resume"):
        paused = _until(form, today) if what == "pause" else None
        chasing.update_settings(conn, tid, cid, now, paused_until=paused)
        return str(paused or "")
    flag = "do_not_chase" if what.startswith("dnc") else "never_hold"
    chasing.update_settings(conn, tid, cid, now, **{flag: not what.endswith("_off")})
    return ""


def _credit(conn: Connection, tenant: Tenant, cid: str, what: str, form: FormData, now: datetime) -> str:
    """A manual hold, its release, or a credit limit: what `ccm hold|release|limit set` record."""
    tid = tenant.id
    if what == "hold":
        reason = _text(form, "reason")[:NOTE_MAX]
        if not reason:
            raise RequestRefused(400, "Reason: say why, in a few words (it is written to the ledger)")
        chasing.update_settings(conn, tid, cid, now, manual_hold=True, manual_hold_reason=reason)
        return reason
    if what == "release":
        chasing.update_settings(conn, tid, cid, now, manual_hold=False, manual_hold_reason=None)
        held = credit.holds(conn, tid).get(cid)
        if held is not None and held.on_hold and held.source == "manual":
            credit.record_hold(conn, tid, cid, True, "rule", held.reason, "manual-release", now)
        return ""
    try:
        limit = credit.parse_limit(_text(form, "amount"), tenant.base_currency)
    except ValueError as exc:
        raise RequestRefused(400, f"Credit limit: {exc}") from None
    credit.set_limit(conn, tid, cid, limit, now, "set")
    return str(limit)


def _base(tenant: Tenant, cid: str) -> str:
    return f"/t/{quote(tenant.id)}/customers/{quote(cid, safe='')}"


def routes(pages: Pages) -> list[Route]:
    c = Customers(pages)
    return [
        Route("/t/{tenant}/customers", pages.page(c.listing), methods=["GET"]),
        Route("/t/{tenant}/customers/{customer}", pages.page(c.one), methods=["GET"]),
        Route("/t/{tenant}/customers/{customer}", pages.page(c.act, post=True), methods=["POST"]),
        Route("/t/{tenant}/customers/{customer}/preview", pages.page(c.preview), methods=["GET"]),
    ]
