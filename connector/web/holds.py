"""/t/{tenant}/holds: current holds with their reasons, limits, limit suggestions, and CSV import of limits.

```
GET  /t/{tenant}/holds                  the page; ?format=csv the holds, ?format=limits.csv the limits,
                                        ?format=suggestions.csv the suggestions shown
POST /t/{tenant}/holds/suggestions      accept | dismiss one suggestion (the figures shown must still hold)
POST /t/{tenant}/holds/import           a CSV of limits (customer,amount[,currency]): all or nothing
```
Bookkeepers and admins only for the POSTs (a viewer's is 403, nothing read); every change audited. A bad
import shows the same line-numbered one-line error as `ccm limit import` and stores nothing.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from connector import creditcontrol as credit
from connector.creditcontrol.suggestions import Suggestion
from connector.model import Money, Tenant
from connector.rules.credit import CreditFileError
from connector.web import holds_views
from connector.web.holds_views import HoldsPage, figures, today_of
from connector.web.pages import HEADERS, Pages, RequestRefused, Visit, csv_response
from connector.web.paging import paging
from connector.web.users import User

log = structlog.get_logger(__name__)
MAX_UPLOAD = 2_000_000  # bytes: a limits file of tens of thousands of customers fits many times over
DONE = {
    "accept": "Suggestion accepted: the new limit counts from the next night.",
    "dismiss": "Suggestion dismissed: it stays hidden until its figures change.",
}


def routes(pages: Pages) -> list[Route]:
    holds = _Holds(pages)
    return [
        Route("/t/{tenant}/holds", pages.page(holds.show), methods=["GET"]),
        Route("/t/{tenant}/holds/suggestions", pages.page(holds.decide, post=True), methods=["POST"]),
        Route("/t/{tenant}/holds/import", pages.page(holds.upload, post=True), methods=["POST"]),
    ]


def _money(value: Money | None) -> str:
    """An amount in a CSV cell: exact and the same in every locale ("1317.50 GBP"), for a spreadsheet."""
    return "" if value is None else f"{value.amount} {value.currency}"


class _Holds:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.rt = pages.rt

    def _page(self, tenant: Tenant) -> HoldsPage:
        try:
            return holds_views.page(
                self.rt.store, self.rt.settings, tenant, today_of(tenant, self.rt.clock.now())
            )
        except CreditFileError as exc:
            raise RequestRefused(500, f"The firm's credit settings cannot be read: {exc}") from None

    async def show(
        self, request: Request, visit: Visit, user: User, error: str = "", status: int = 200
    ) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        data = await run_in_threadpool(self._page, tenant)
        fmt = request.query_params.get("format")
        if fmt == "csv":
            return csv_response(f"{tenant.id}-holds", (
                "customer", "state", "reason", "since (UTC)", "exposure", "limit", "overdue invoices",
            ), [(
                h.name, h.state, h.reason, f"{h.since:%Y-%m-%d %H:%M}" if h.since else "", _money(h.exposure),
                _money(h.limit), " ".join(h.overdue),
            ) for h in data.holds])  # fmt: skip
        if fmt == "limits.csv":
            return csv_response(f"{tenant.id}-limits", (
                "customer", "limit", "currency", "exposure", "rating", "over the limit", "on hold",
            ), [(
                r.name, r.limit.amount, r.limit.currency, r.exposure.amount, r.rating or "",
                "yes" if r.over else "no", "yes" if r.on_hold else "no",
            ) for r in data.limits])  # fmt: skip
        if fmt == "suggestions.csv":
            return csv_response(f"{tenant.id}-limit-suggestions", (
                "customer", "rating", "suggestion", "limit now", "suggested", "why",
            ), [(
                s.name, s.rating or "", s.kind, _money(s.limit), _money(s.suggested), s.reason,
            ) for s in data.suggestions])  # fmt: skip
        params = dict(request.query_params)
        holds_at = paging(params, len(data.holds), param="holds")
        limits_at = paging(params, len(data.limits), param="limits")
        suggested_at = paging(params, len(data.suggestions), param="suggestions")
        return self.pages.render(
            request, visit, "holds.html", status, title=f"{tenant.name}: holds and limits", tenant=tenant,
            data=data, holds=holds_at.cut(data.holds), holds_at=holds_at, limits=limits_at.cut(data.limits),
            limits_at=limits_at, suggestions=suggested_at.cut(data.suggestions), suggested_at=suggested_at,
            figures=figures, done=_done(request), error=error,
        )  # fmt: skip

    async def decide(self, request: Request, visit: Visit, user: User) -> Response:
        form = await self.pages.form_of(request, visit)
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        if not user.may_act:
            raise RequestRefused(403, "A viewer can read but not change anything")
        what, customer = str(form.get("do", "")), str(form.get("customer", ""))
        seen = {k: str(form.get(k, "")) for k in ("kind", "limit", "suggested")}
        if what not in ("accept", "dismiss") or not customer:
            raise RequestRefused(400, "Choose accept or dismiss for one suggestion")
        await run_in_threadpool(self._decide, user, tenant, what, customer, seen)
        return _back(tenant, what, 1)

    def _decide(self, user: User, tenant: Tenant, what: str, customer: str, seen: dict[str, str]) -> None:
        today = today_of(tenant, self.rt.clock.now())
        found: Suggestion | None = next(
            (s for s in holds_views.suggestions(self.rt.store, self.rt.settings, tenant, today)
             if s.customer_id == customer), None,
        )  # fmt: skip
        if found is None or figures(found) != seen:
            raise RequestRefused(409, "That suggestion has changed since the page was shown: reload the page")
        now = self.rt.real_now()
        with self.rt.store.begin() as conn:
            (holds_views.accept if what == "accept" else holds_views.dismiss)(
                conn, tenant, found, user.name, now
            )
        log.info("web.limit_suggestion", user=user.name, tenant=tenant.id, decision=what)

    async def upload(self, request: Request, visit: Visit, user: User) -> Response:
        form = await self.pages.form_of(request, visit)
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        if not user.may_act:
            raise RequestRefused(403, "A viewer can read but not change anything")
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return await self.show(request, visit, user, "Choose a CSV file of limits to import.", 400)
        raw = await file.read(MAX_UPLOAD + 1)
        name = file.filename.replace("\\", "/").rsplit("/", 1)[-1][:100]
        if len(raw) > MAX_UPLOAD:
            return await self.show(
                request, visit, user, f"{name}: larger than 2 MB: split it and import each part", 413
            )
        try:
            count = await run_in_threadpool(self._import, user, tenant, name, raw)
        except credit.LimitFileError as exc:
            return await self.show(request, visit, user, str(exc), 400)
        target = f"/t/{quote(tenant.id)}/holds?{urlencode({'done': 'import', 'n': count})}"
        return RedirectResponse(target, status_code=303, headers=HEADERS)

    def _import(self, user: User, tenant: Tenant, name: str, raw: bytes) -> int:
        with self.rt.store.begin() as conn:  # a bad line raises: the transaction rolls back, nothing stored
            count = holds_views.import_limits(conn, tenant, name, raw, user.name, self.rt.real_now())
        log.info("web.limit_import", user=user.name, tenant=tenant.id, count=count)
        return count


def _back(tenant: Tenant, what: str, count: int) -> Response:
    target = f"/t/{quote(tenant.id)}/holds?{urlencode({'done': what, 'n': count})}"
    return RedirectResponse(target, status_code=303, headers=HEADERS)


def _done(request: Request) -> str:
    what = request.query_params.get("done", "")
    if what == "import":
        n = request.query_params.get("n", "0")
        count = int(n) if n.isdigit() and len(n) < 10 else 0
        return f"Imported {count} credit limit{'s' if count != 1 else ''}."
    return DONE.get(what, "")
