"""The call list of one firm: whom to call, on which number, about what, and what came of each call.

```
GET  /t/{tenant}/calls     the call tasks to do (customer, phone, invoices, amounts, what to say, due)
                           and the calls recorded; `?format=csv` for the list
POST /t/{tenant}/calls     record an outcome: key, outcome (promise | dispute | no-answer | paid), note,
                           until and amount (a promise); bookkeeper+, CSRF, audited
```
Guarantees: the POST is refused (403) without the form's CSRF token or for a viewer, and changes nothing; bad
input (a past date, a bad amount) is a 400 naming the field, nothing stored. A recorded outcome feeds chasing
exactly as `ccm call done` does (connector/calls.py) and is written to the audit log in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from connector import calls
from connector.model import Tenant
from connector.web import audit
from connector.web.pages import HEADERS, Pages, RequestRefused, Visit, csv_response
from connector.web.users import User

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CallsPage:
    pages: Pages

    async def show(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        found = await run_in_threadpool(self._tasks, tenant)
        to_do = [t for t in found if t.outcome is None]
        if request.query_params.get("format") == "csv":
            return csv_response(f"{tenant.id}-calls", (
                "key", "customer", "phone", "invoices", "amounts", "total", "what to say", "due (UTC)",
            ), [(
                t.key, t.customer, t.phone or "", " ".join(t.invoices),
                "; ".join(f"{line.number} {calls.money(line.amount)}" for line in t.lines), t.total,
                t.script(tenant.name), f"{t.due:%Y-%m-%d %H:%M}",
            ) for t in to_do])  # fmt: skip
        done = sorted(
            (t for t in found if t.outcome is not None),
            key=lambda t: t.outcome.at if t.outcome else t.due,
            reverse=True,
        )
        recorded = request.query_params.get("recorded", "")
        message = next((f"Recorded for {t.customer}: {t.outcome.words()}." for t in done
                        if t.key == recorded and t.outcome), "")  # fmt: skip
        today = self.pages.rt.clock.now().astimezone(ZoneInfo(tenant.timezone)).date()
        return self.pages.render(request, visit, "calls.html", title=f"{tenant.name}: calls", tenant=tenant,
                                 to_do=to_do, done=done[:50], done_message=message, today=today.isoformat(),
                                 outcomes=calls.OUTCOMES)  # fmt: skip

    def _tasks(self, tenant: Tenant) -> list[calls.CallTask]:
        with self.pages.rt.store.read() as conn:
            return calls.tasks(conn, tenant.id, done=True)

    async def record(self, request: Request, visit: Visit, user: User) -> Response:
        form = await self.pages.form_of(request, visit)
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        if not user.may_act:
            raise RequestRefused(403, "A viewer can read but not change anything")
        key, outcome = str(form.get("key", "")), str(form.get("outcome", ""))
        if not key or outcome not in calls.OUTCOMES:
            raise RequestRefused(400, f"Choose the call and its outcome ({', '.join(calls.OUTCOMES)})")
        until_text = str(form.get("until", "")).strip()
        amount = str(form.get("amount", "")).strip() or None
        until: date | None = None
        if until_text and outcome == "promise":
            try:
                until = date.fromisoformat(until_text)
            except ValueError:
                raise RequestRefused(
                    400, f"Pay by: not a date (like 2026-03-31): {until_text[:40]!r}"
                ) from None
        if outcome != "promise":
            amount = None
        note = str(form.get("note", ""))[:1000]
        task = await run_in_threadpool(self._record, user, tenant, key, outcome, note, until, amount)
        target = f"/t/{quote(tenant.id)}/calls?{urlencode({'recorded': task.key})}"
        return RedirectResponse(target, status_code=303, headers=HEADERS)

    def _record(
        self,
        user: User,
        tenant: Tenant,
        key: str,
        outcome: str,
        note: str,
        until: date | None,
        amount: str | None,
    ) -> calls.CallTask:
        rt = self.pages.rt
        now = rt.clock.now()
        today = now.astimezone(ZoneInfo(tenant.timezone)).date()
        with rt.store.begin() as conn:
            try:
                task = calls.record(conn, tenant, key, outcome, note=note, until=until, amount=amount,
                                    by=user.name, today=today, now=now)  # fmt: skip
            except calls.CallProblem as exc:
                text = str(exc).replace("--until", "Pay by").replace("--amount", "Amount")
                raise RequestRefused(400, text[:1].upper() + text[1:]) from None
            assert task.outcome is not None
            after = {"state": f"called: {outcome}", "outcome": outcome, "said": task.outcome.words()}
            what = f"call.done {task.key}"
            audit.write(conn, user.name, tenant.id, what, rt.real_now(), {"state": "to call"}, after)
        log.info("web.call_recorded", user=user.name, tenant=tenant.id, key=task.key, outcome=outcome)
        return task


def routes(pages: Pages) -> list[Route]:
    page = CallsPage(pages)
    return [
        Route("/t/{tenant}/calls", pages.page(page.show), methods=["GET"]),
        Route("/t/{tenant}/calls", pages.page(page.record, post=True), methods=["POST"]),
    ]
