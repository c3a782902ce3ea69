"""/t/{tenant}/discrepancies: where ccm and the ledger disagree, each explained and linked to the ledger.

```
GET /t/{tenant}/discrepancies     the findings, paginated; ?format=csv all of them
```
Read only: ccm leaves these records alone (no chasing, no holds) until the two agree.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector import health
from connector.web import discrepancies_views
from connector.web.pages import Pages, Visit, csv_response
from connector.web.paging import paging
from connector.web.users import User


def routes(pages: Pages) -> list[Route]:
    async def show(request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(pages.tenant_for, user, request.path_params["tenant"])
        found = await run_in_threadpool(discrepancies_views.rows, pages.rt.store, tenant)
        if request.query_params.get("format") == "csv":
            return csv_response(f"{tenant.id}-discrepancies", (
                "kind", "customer", "records", "amounts", "explanation", "links",
            ), [(
                d.kind, d.customer, "; ".join(r.label for r in d.records), "; ".join(d.amounts),
                d.explanation, " ".join(r.url for r in d.records if r.url),
            ) for d in found])  # fmt: skip
        at = paging(dict(request.query_params), len(found))
        ledger = health.ledger_name(tenant.ledger)
        return pages.render(request, visit, "discrepancies.html", title=f"{tenant.name}: discrepancies",
                            tenant=tenant, rows=at.cut(found), at=at, ledger=ledger)  # fmt: skip

    return [Route("/t/{tenant}/discrepancies", pages.page(show), methods=["GET"])]
