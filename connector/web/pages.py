"""The bookkeeper's pages: routes of `ccm serve`'s app, server-rendered, usable without JavaScript.

```
GET  /login, POST /login, POST /logout   sign in (rate-limited per user and address: 429) and out
GET  /                                   the firms this user may see
GET  /t/{tenant}/                        last night for one firm, what waits for a person now, recent changes
POST /t/{tenant}/actions                 retry | sent | not_sent | dismiss one unsettled action (bookkeeper+)
GET  /t/{tenant}/approvals               every action awaiting approval, 20 a page, its e-mail rendered
POST /t/{tenant}/approvals               approve | reject | snooze (until a time: web/snoozing.py), one
                                         (`one=approve:KEY`), the checked `keys`, or all (web/approvals.py)
GET  /t/{tenant}/reports                 aging, DSO/CEI by month, forecast, collected (web/reports.py)
GET  /t/{tenant}/settings, POST .../mode|profile   sender, window, mode, policies, preview (web/settings.py)
GET  /static/ccm.css
```
Every table is also CSV with `?format=csv`. Every POST carries the form's CSRF token (else 403, nothing
read or changed); a viewer's POST is 403; a firm that does not exist and one not granted are both 404. An
anonymous GET is sent to /login. Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connector import outbox, settle
from connector.model import Tenant
from connector.serve.runtime import Runtime
from connector.store.tenants import UnknownTenant, get_tenant
from connector.web import audit, users, views
from connector.web.sessions import COOKIE, SESSION_LIFE, Session, Signer, SignInLimit, load_key, new_session
from connector.web.users import User
from connector.words import locale as words
from connector.words.context import reading_locale

log = structlog.get_logger(__name__)
Endpoint = Callable[[Request], Awaitable[Response]]
_pages = Environment(
    loader=PackageLoader("connector.web", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)
_pages.globals.update(money=words.money, number=words.number)  # in the locale of the page's firm
HEADERS = {
    # No script at all; inline styles only for the rendered e-mails shown in sandboxed frames.
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
DONE = {
    "retry": "planned again: it goes out at the next send",
    "sent": "recorded as sent",
    "not_sent": "planned again: it goes out at the next send",
    "dismiss": "dismissed",
    "approve": "approved: they go out at the next run, `ccm outbox send` or the server's send",
    "reject": "rejected: they will not go out",
    "snooze": "snoozed: off this list, and not sent, until the snooze ends",
}


class RequestRefused(Exception):
    """A page request refused (not signed in, no such firm, a viewer's change, a stale form): the error page
    with `status` and `message` is the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Visit:
    session: Session
    user: User | None
    fresh: bool  # the session was made for this response: set its cookie


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return (
        "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
    )  # no formulas in a spreadsheet


def csv_response(name: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[_csv_cell(v) for v in row] for row in rows])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', **HEADERS},
    )


class Pages:
    """The bookkeeper's pages of one server."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.signer = Signer(load_key(rt.settings))
        self.limit = SignInLimit()

    # -- sessions
    def _visit(self, request: Request) -> Visit:
        session = self.signer.load(request.cookies.get(COOKIE))
        if session is None:
            return Visit(new_session(), None, True)
        if session.user is None:
            return Visit(session, None, False)
        with self.rt.store.read() as conn:
            user = users.get(conn, session.user)
        if user is None or user.stamp != session.stamp:  # removed, or the password changed since
            return Visit(new_session(), None, True)
        return Visit(session, user, False)

    def _cookie(self, response: Response, request: Request, session: Session) -> Response:
        response.set_cookie(
            COOKIE, self.signer.dump(session), max_age=int(SESSION_LIFE.total_seconds()), path="/",
            httponly=True, samesite="lax", secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    def render(
        self, request: Request, visit: Visit, template: str, status: int = 200, **fields: Any
    ) -> Response:
        html = _pages.get_template(template).render(
            user=visit.user, csrf=visit.session.csrf, path=request.url.path, **fields
        )
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        return self._cookie(response, request, visit.session) if visit.fresh else response

    def refused(self, request: Request, visit: Visit, exc: RequestRefused) -> Response:
        return self.render(request, visit, "error.html", exc.status, title=exc.message)

    @staticmethod
    async def form_of(request: Request, visit: Visit) -> FormData:
        """The POSTed form when its CSRF token is the session's; else RequestRefused(403), nothing read."""
        form = await request.form()
        given = form.get("csrf")
        if visit.fresh or not visit.session.csrf_ok(given if isinstance(given, str) else None):
            raise RequestRefused(
                403, "This form has expired or did not come from ccm: reload the page and try again"
            )
        return form

    def tenant_for(self, user: User, tenant_id: str) -> Tenant:
        """The firm, when the user may see it; an unknown firm and one not granted are both 404."""
        if not user.may_see(tenant_id):
            raise RequestRefused(404, "No such firm")
        try:
            with self.rt.store.read() as conn:
                return get_tenant(conn, tenant_id)
        except UnknownTenant:
            raise RequestRefused(404, "No such firm") from None

    def page(
        self, handler: Callable[[Request, Visit, User], Awaitable[Response]], post: bool = False
    ) -> Endpoint:
        """An endpoint for signed-in users: anonymous GETs go to /login, anonymous POSTs are 403."""

        async def endpoint(request: Request) -> Response:
            visit = await run_in_threadpool(self._visit, request)
            if visit.user is None:
                if post:
                    return self.refused(request, visit, RequestRefused(403, "Sign in first"))
                target = "/login?" + urlencode({"next": request.url.path})
                response = RedirectResponse(target, status_code=303, headers=HEADERS)
                return self._cookie(response, request, visit.session) if visit.fresh else response
            locale = await run_in_threadpool(self._locale, visit.user, request.path_params.get("tenant"))
            with words.writing_in(locale):  # a firm's page names amounts as the firm writes them
                try:
                    return await handler(request, visit, visit.user)
                except RequestRefused as exc:
                    return self.refused(request, visit, exc)

        return endpoint

    def _locale(self, user: User, tenant_id: object) -> str:
        """The locale of the firm a page is about (one the user may see), else en_GB."""
        if not isinstance(tenant_id, str) or not user.may_see(tenant_id):
            return words.DEFAULT
        with self.rt.store.read() as conn:
            try:
                return reading_locale(conn, get_tenant(conn, tenant_id))
            except UnknownTenant:
                return words.DEFAULT

    # -- /login, /logout
    async def login_form(self, request: Request) -> Response:
        visit = await run_in_threadpool(self._visit, request)
        if visit.user is not None:
            return RedirectResponse("/", status_code=303, headers=HEADERS)
        return self.render(
            request,
            visit,
            "login.html",
            title="Sign in",
            next=_next(request.query_params.get("next")),
            error="",
        )

    async def login(self, request: Request) -> Response:
        visit = await run_in_threadpool(self._visit, request)
        try:
            form = await self.form_of(request, visit)
        except RequestRefused as exc:
            return self.refused(request, visit, exc)
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        target = _next(str(form.get("next", "")))
        address = request.client.host if request.client else "unknown"
        if self.limit.blocked(name, address):
            log.warning("web.login_limited", user=name[:64], address=address)
            return self.render(request, visit, "login.html", 429, title="Sign in", next=target,
                                error="Too many failed sign-ins: wait 15 minutes and try again.")  # fmt: skip
        user = await run_in_threadpool(self._authenticate, name, password)
        if user is None:
            self.limit.failed(name, address)
            log.info("web.login_failed", user=name[:64], address=address)
            return self.render(request, visit, "login.html", 401, title="Sign in", next=target,
                                error="That name and password do not match.")  # fmt: skip
        self.limit.succeeded(name, address)
        log.info("web.login", user=user.name, address=address)
        session = new_session(user.name, user.stamp)  # a new token at sign-in: none fixed beforehand
        return self._cookie(RedirectResponse(target, status_code=303, headers=HEADERS), request, session)

    def _authenticate(self, name: str, password: str) -> User | None:
        if not name or not password or len(password) > 1024:
            return None
        with self.rt.store.begin() as conn:
            return users.authenticate(conn, name, password, self.rt.real_now())

    async def logout(self, request: Request) -> Response:
        visit = await run_in_threadpool(self._visit, request)
        try:
            await self.form_of(request, visit)
        except RequestRefused as exc:
            return self.refused(request, visit, exc)
        response = RedirectResponse("/login", status_code=303, headers=HEADERS)
        return self._cookie(response, request, new_session())

    # -- /
    async def firms(self, request: Request, visit: Visit, user: User) -> Response:
        rows = await run_in_threadpool(self._firms, user)
        if request.query_params.get("format") == "csv":
            return csv_response("firms", (
                "tenant", "name", "ledger", "connection", "health", "last night", "outcome", "headline",
                "awaiting approval", "failed", "unknown", "next night (local)", "snoozed",
                "snoozed until (UTC)",
            ), [(
                r.tenant.id, r.tenant.name, r.tenant.ledger, r.connection, "; ".join(r.issues),
                r.last_night.night if r.last_night else "", r.last_night.outcome if r.last_night else "",
                r.last_night.headline if r.last_night else "", r.awaiting, r.failed, r.unknown, r.next_local,
                r.snoozed, f"{r.snoozed_until:%Y-%m-%d %H:%M}" if r.snoozed_until else "",
            ) for r in rows])  # fmt: skip
        return self.render(request, visit, "firms.html", title="Firms", rows=rows)

    def _firms(self, user: User) -> list[views.FirmRow]:
        with self.rt.store.read() as conn:
            return views.firms(conn, self.rt.settings, user, self.rt.clock.now())

    # -- /t/{tenant}/
    async def night(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.tenant_for, user, request.path_params["tenant"])
        page = await run_in_threadpool(self._night, tenant)
        if request.query_params.get("format") == "csv":
            return csv_response(f"{tenant.id}-unsettled", (
                "key", "state", "what", "customer", "invoices", "reason", "since (UTC)"
            ), [(
                u.action.key, u.action.state, u.what, u.customer, " ".join(u.invoices), u.action.reason or "",
                f"{u.action.updated_at:%Y-%m-%d %H:%M}",
            ) for u in page.unsettled])  # fmt: skip
        return self.render(request, visit, "night.html", title=tenant.name, tenant=tenant, page=page,
                            done=done_message(request))  # fmt: skip

    def _night(self, tenant: Tenant) -> views.NightPage:
        with self.rt.store.read() as conn:
            return views.night(conn, tenant)

    async def act(self, request: Request, visit: Visit, user: User) -> Response:
        form = await self.form_of(request, visit)
        tenant = await run_in_threadpool(self.tenant_for, user, request.path_params["tenant"])
        if not user.may_act:
            raise RequestRefused(403, "A viewer can read but not change anything")
        what, key = str(form.get("do", "")), str(form.get("key", ""))
        if what not in ("retry", "sent", "not_sent", "dismiss") or not key:
            raise RequestRefused(400, "Choose an action: retry, mark sent, mark not sent or dismiss")
        changed = await run_in_threadpool(self._act, user, tenant, what, key)
        if not changed:
            raise RequestRefused(409, "That action is no longer waiting for this: reload the page")
        return back(f"/t/{quote(tenant.id)}/", what, 1)

    def _act(self, user: User, tenant: Tenant, what: str, key: str) -> bool:
        now = self.rt.real_now()
        with self.rt.store.begin() as conn:
            before = outbox.get(conn, tenant.id, key)
            if before is None:
                return False
            if what == "retry":
                done = bool(outbox.retry(conn, tenant.id, [key], now))
            elif what == "dismiss":
                done = bool(outbox.dismiss(conn, tenant.id, [key], now))
            else:
                done = settle.resolve(conn, tenant, key, went_out=what == "sent", now=now) is not None
            if done:
                after = outbox.get(conn, tenant.id, key)
                audit.write(
                    conn,
                    user.name,
                    tenant.id,
                    f"outbox.{what} {key}",
                    now,
                    action_state(before),
                    action_state(after),
                )
        log.info("web.action", user=user.name, tenant=tenant.id, action=what, key=key, done=done)
        return done

    # -- static
    @staticmethod
    async def css(request: Request) -> Response:
        text = resources.files("connector.web").joinpath("templates", "ccm.css").read_text("utf-8")
        return Response(text, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/static/ccm.css", self.css, methods=["GET"]),
            Route("/", self.page(self.firms), methods=["GET"]),
            Route("/t/{tenant}/", self.page(self.night), methods=["GET"]),
            Route("/t/{tenant}/actions", self.page(self.act, post=True), methods=["POST"]),
            *self._more_routes(),
        ]

    def _more_routes(self) -> list[Route]:
        """The pages that live in modules of their own (they import this one, so imported here)."""
        from connector.web import approvals, calls, customers, discrepancies, holds, synclog
        from connector.web.reports import ReportsPage
        from connector.web.settings import SettingsPage

        return [*ReportsPage(self).routes(), *SettingsPage(self).routes(), *holds.routes(self),
                *discrepancies.routes(self), *synclog.routes(self), *customers.routes(self),
                *calls.routes(self), *approvals.routes(self)]  # fmt: skip


def action_state(action: outbox.Action | None) -> dict[str, Any] | None:
    if action is None:
        return None
    return {"state": str(action.state), "reason": action.reason, "attempts": action.attempts}


def _next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def done_message(request: Request) -> str:
    what = request.query_params.get("done", "")
    if what not in DONE:
        return ""
    n = request.query_params.get("n", "1")
    count = int(n) if n.isdigit() else 1
    return f"{count} action{'s' if count != 1 else ''} {DONE[what]}."


def back(path: str, what: str, count: int) -> Response:
    return RedirectResponse(
        f"{path}?{urlencode({'done': what, 'n': count})}", status_code=303, headers=HEADERS
    )
