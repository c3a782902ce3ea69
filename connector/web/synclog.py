"""/t/{tenant}/log and /t/{tenant}/log/{run}: the firm's sync runs, and one run's changes and errors.

```
GET /t/{tenant}/log            runs, newest first, paginated; ?format=csv this page of them
GET /t/{tenant}/log/{run}      counts per stream, changes in words (paginated), errors with record and reason;
                               ?format=csv every change, ?format=errors.csv every error
```
A run that does not exist, or is another firm's, is 404.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector import health
from connector.model import Tenant
from connector.store.synclog import Run
from connector.web import synclog_views as views
from connector.web.pages import Pages, RequestRefused, Visit, csv_response
from connector.web.paging import SIZE, paging
from connector.web.users import User

RUN_ID_MAX = 2**63 - 1  # the store's run ids are 64-bit
CSV_MAX = 100_000  # changes in one CSV: more is a database export, not a page


def routes(pages: Pages) -> list[Route]:
    log = _Log(pages)
    return [
        Route("/t/{tenant}/log", pages.page(log.runs), methods=["GET"]),
        Route("/t/{tenant}/log/{run}", pages.page(log.run), methods=["GET"]),
    ]


def _row(r: Run) -> tuple[object, ...]:
    changed = views.total(r, "inserted") + views.total(r, "updated") + views.total(r, "deleted")
    return (r.run_id, f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.kind, r.trigger or "", views.took(r), r.outcome,
            views.total(r, "read"), changed, r.error_count, r.api_calls, views.summary(r))  # fmt: skip


class _Log:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.store = pages.rt.store

    async def runs(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        count = await run_in_threadpool(self._count, tenant)
        at = paging(dict(request.query_params), count)
        found = await run_in_threadpool(self._runs, tenant, at.size, at.offset)
        if request.query_params.get("format") == "csv":
            return csv_response(f"{tenant.id}-sync-runs", (
                "run", "started (UTC)", "kind", "why", "took", "outcome", "read", "changed", "errors",
                "API calls", "summary",
            ), [_row(r) for r in found])  # fmt: skip
        return self.pages.render(
            request, visit, "synclog.html", title=f"{tenant.name}: sync log", tenant=tenant, runs=found,
            at=at, ledger=health.ledger_name(tenant.ledger), v=views,
        )  # fmt: skip

    def _count(self, tenant: Tenant) -> int:
        with self.store.read() as conn:
            return views.run_count(conn, tenant.id)

    def _runs(self, tenant: Tenant, limit: int, offset: int) -> list[Run]:
        with self.store.read() as conn:
            return views.runs(conn, tenant.id, limit, offset)

    async def run(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        text = request.path_params["run"]
        if not text.isdigit() or not 0 < int(text) <= RUN_ID_MAX:
            raise RequestRefused(404, "No such sync run")
        run_id, fmt = int(text), request.query_params.get("format")
        asked = paging(dict(request.query_params), RUN_ID_MAX)  # the page asked for; bounded once counted
        limit, offset = (CSV_MAX, 0) if fmt == "csv" else (SIZE, asked.offset)
        found = await run_in_threadpool(self._one, tenant, run_id, limit, offset)
        if found is None:
            raise RequestRefused(404, "No such sync run")
        if fmt == "csv":
            return csv_response(f"{tenant.id}-run-{run_id}-changes", ("record", "what changed"),
                                [(c.subject, c.what) for c in found.changes])  # fmt: skip
        if fmt == "errors.csv":
            return csv_response(f"{tenant.id}-run-{run_id}-errors", ("stream", "record", "reason"),
                                [(e.stream, e.record, e.reason) for e in found.errors])  # fmt: skip
        at = paging(dict(request.query_params), found.change_total)
        if at.number != asked.number:  # past the last page: show the last one
            found = await run_in_threadpool(self._one, tenant, run_id, SIZE, at.offset)
            assert found is not None
        return self.pages.render(
            request, visit, "syncrun.html", title=f"{tenant.name}: sync run {run_id}", tenant=tenant,
            page=found, at=at, ledger=health.ledger_name(tenant.ledger), v=views,
        )  # fmt: skip

    def _one(self, tenant: Tenant, run_id: int, limit: int, offset: int) -> views.RunPage | None:
        with self.store.read() as conn:
            return views.one(conn, tenant.id, run_id, limit, offset)
