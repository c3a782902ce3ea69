"""The approvals page `/t/{tenant}/approvals`: `SIZE` actions a page, each e-mail drafted as the send would.

```
GET  /t/{tenant}/approvals[?page=N]   the actions awaiting approval (snoozed ones apart), in the order they go
                                      out (send time, then key); CSV (`?format=csv`) lists them all
POST /t/{tenant}/approvals            approve | reject | snooze one (`one=approve:KEY`) or the checked `keys`;
                                      approve_all | reject_all: every action awaiting (not snoozed), only with
                                      `reviewed=yes` and `count` the number the person saw (else 400/409)
```
Guarantees: a view drafts only the page shown, through the firm's ledger as previews use it
(connector/web/preview.py `Sparing`: answers reused for some minutes, a budget per minute, none when the
firm's allowance is low), so a page view makes at most one call per pay link and contact of its `SIZE`
actions, a view again within the TTL none, and the CSV none. Every decision is audited in its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from connector import health, outbox, snooze
from connector.ledger import Ledger
from connector.model import Tenant
from connector.outbox import State, Unsettled
from connector.serve.runtime import Runtime
from connector.web import audit, preview, snoozing, views
from connector.web.paging import Paging, paging
from connector.web.users import User

if TYPE_CHECKING:
    from connector.web.pages import Pages, Visit

log = structlog.get_logger(__name__)
SIZE = 20  # actions a page: each drafted, with its ledger calls
ALL = {"approve_all": "approve", "reject_all": "reject"}
CSV_HEADER = ("key", "what", "customer", "to", "invoices", "subject", "reason", "send after (UTC)", "cc",
              "attachments", "not shown")  # fmt: skip
CSV_SPARED = "the CSV asks the ledger nothing: what the approvals page fetched in the last minutes is used"


@dataclass(frozen=True, slots=True)
class Shown:
    previews: list[preview.Preview]  # the page's
    paging: Paging  # total: every action awaiting approval and not snoozed
    low: bool  # the firm's ledger allowance is low: no pay links nor contacts fetched for previews


def waiting_of(rt: Runtime, tenant: Tenant) -> list[Unsettled]:
    """Every action awaiting approval and not snoozed now, in the order they go out."""
    with rt.store.read() as conn:
        put_aside = snooze.hidden(conn, tenant.id, rt.clock.now())
        return [d for d in views.approvals(conn, tenant) if d.action.key not in put_aside]


def allowance_low(rt: Runtime, tenant: Tenant) -> bool:
    """Whether the firm's day allowance of ledger calls is nearly spent (an open `day_limit` issue)."""
    with rt.store.read() as conn:
        return any(i.kind == "day_limit" for i in health.open_issues(conn, tenant.id))


def preview_ledger(rt: Runtime, tenant: Tenant) -> Ledger | None:
    """The firm's ledger as a single preview (a customer's next reminder, a template) may use it: within
    previews' share of the calls, and not at all when the day's allowance is low."""
    return preview.sparing(
        preview.ledger_of(rt.ledger, tenant), tenant.id, spend=not allowance_low(rt, tenant)
    )


def shown(rt: Runtime, tenant: Tenant, params: dict[str, str], size: int = SIZE) -> Shown:
    """The page of `params` (`page=N`): only its actions drafted."""
    waiting = waiting_of(rt, tenant)
    where = paging(params, len(waiting), size)
    rows = where.cut(waiting)
    low = allowance_low(rt, tenant) if rows else False
    made = preview.ledger_of(rt.ledger, tenant) if rows else None
    ledger = preview.sparing(made, tenant.id, spend=not low)
    return Shown(preview.awaiting(rt.store, rt.settings, tenant, rows, rt.clock.now(), ledger), where, low)


def listed(rt: Runtime, tenant: Tenant) -> list[preview.Preview]:
    """Every action awaiting approval, drafted without asking the ledger anything (the CSV)."""
    waiting = waiting_of(rt, tenant)
    made = preview.ledger_of(rt.ledger, tenant) if waiting else None
    ledger = preview.sparing(made, tenant.id, spend=False, why=CSV_SPARED)
    return preview.awaiting(rt.store, rt.settings, tenant, waiting, rt.clock.now(), ledger)


class ApprovalsPage:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.rt = pages.rt

    async def approvals(self, request: Request, visit: Visit, user: User) -> Response:
        from connector.web.pages import csv_response, done_message

        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        if request.query_params.get("format") == "csv":
            every = await run_in_threadpool(listed, self.rt, tenant)
            return csv_response(f"{tenant.id}-approvals", CSV_HEADER, [(
                p.action.key, p.what, p.customer, p.to, " ".join(p.invoices),
                p.rendered.subject if p.rendered else "", p.detail, f"{p.action.send_after:%Y-%m-%d %H:%M}",
                ", ".join(p.cc), ", ".join(p.attachments), p.spared,
            ) for p in every])  # fmt: skip
        page = await run_in_threadpool(shown, self.rt, tenant, dict(request.query_params))
        return self.pages.render(request, visit, "approvals.html", title=f"{tenant.name}: approvals",
                                 tenant=tenant, waiting=page.previews, paging=page.paging, low=page.low,
                                 done=done_message(request))  # fmt: skip

    async def decide(self, request: Request, visit: Visit, user: User) -> Response:
        from connector.web.pages import RequestRefused

        form = await self.pages.form_of(request, visit)
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        if not user.may_act:
            raise RequestRefused(403, "A viewer can read but not change anything")
        number = str(form.get("page", ""))
        back_to = number if number.isdigit() and number != "1" and len(number) < 10 else ""
        one = str(form.get("one", ""))
        if one:
            what, _, key = one.partition(":")
            keys = [key]
        else:
            what, keys = str(form.get("do", "")), [str(k) for k in form.getlist("keys") if k]
        if what in ALL:
            count_seen = str(form.get("count", ""))
            keys = await run_in_threadpool(self._all, tenant, form.get("reviewed"), count_seen)
            what = ALL[what]
        if what == "snooze" and keys:  # connector/web/snoozing.py
            until = snoozing.until_of(form, keys[0] if one else "", tenant)
            count = await run_in_threadpool(snoozing.put_aside, self.pages, user, tenant, keys, until)
            return back(tenant, what, count, back_to)
        if what not in ("approve", "reject") or not keys:
            raise RequestRefused(400, "Choose approve, reject or snooze, and at least one action")
        count = await run_in_threadpool(self._decide, user, tenant, what, keys)
        return back(tenant, what, count, back_to)

    def _all(self, tenant: Tenant, reviewed: object, count: str) -> list[str]:
        """Every action awaiting approval (not snoozed), when the person said they reviewed that many."""
        from connector.web.pages import RequestRefused

        if reviewed != "yes":
            raise RequestRefused(
                400, "Tick “I have reviewed them” to decide on every action awaiting approval"
            )
        keys = [d.action.key for d in waiting_of(self.rt, tenant)]
        if count != str(len(keys)):
            shown = count or "the number shown"
            raise RequestRefused(
                409, f"{len(keys)} actions await approval now, not {shown}: reload the page and review them"
            )
        return keys

    def _decide(self, user: User, tenant: Tenant, what: str, keys: list[str]) -> int:
        from connector.web.pages import action_state

        now = self.rt.real_now()
        with self.rt.store.begin() as conn:
            waiting = {
                a.key: a for a in outbox.by_keys(conn, tenant.id, keys) if a.state is State.AWAITING_APPROVAL
            }
            if what == "approve":
                count = outbox.approve(conn, tenant.id, list(waiting), now) if waiting else 0
            else:
                reason = f"rejected by {user.name} on the approvals page"
                count = sum(outbox.cancel(conn, tenant.id, key, reason, now) for key in waiting)
            for key, before in waiting.items():
                after = outbox.get(conn, tenant.id, key)
                audit.write(conn, user.name, tenant.id, f"outbox.{what} {key}", now, action_state(before),
                            action_state(after))  # fmt: skip
        log.info("web.decided", user=user.name, tenant=tenant.id, decision=what, count=count)
        return count

    def routes(self) -> list[Route]:
        return [
            Route("/t/{tenant}/approvals", self.pages.page(self.approvals), methods=["GET"]),
            Route("/t/{tenant}/approvals", self.pages.page(self.decide, post=True), methods=["POST"]),
        ]


def back(tenant: Tenant, what: str, count: int, page: str) -> Response:
    """To the approvals page (the same page number) saying what was done."""
    from connector.web.pages import HEADERS

    query = {"done": what, "n": str(count)} | ({"page": page} if page else {})
    return RedirectResponse(f"/t/{quote(tenant.id)}/approvals?{urlencode(query)}", status_code=303,
                            headers=HEADERS)  # fmt: skip


def routes(pages: Pages) -> list[Route]:
    return ApprovalsPage(pages).routes()
