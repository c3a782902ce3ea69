"""The server's HTTP app: the OAuth connect flow, the ledgers' webhooks, /healthz and /metrics.

```
GET  /healthz                       200 {"status": "ok", ...counts}; 503 while stopping or without a database;
                                    the details (server, clock, tenants at work, last jobs) only with the
                                    metrics token as a bearer token
GET  /metrics                       Prometheus text (with serve.metrics_token set: 401 without it as bearer)
POST /webhooks/{ledger}             signed deliveries: 200 and queued, 401 on a bad signature
GET  /connect/{ledger}?invite=TOK   starts connecting a firm with an operator's invite (403 without one,
                                    unless a signed-in admin: a form, POSTed with CSRF; connectadmin.py)
GET  /oauth/{ledger}/callback       where the ledger sends the person back
POST /connect/{ledger}/choose       the organisation picked when consent covered several
/login, /, /t/{tenant}/...          the bookkeeper's pages, for signed-in users (connector/web/pages.py)
```
Anonymous clients learn little: /healthz says whether the server is well and how busy, and names no tenant.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connector.redact import register_secret
from connector.serve import webhooks
from connector.serve.connectweb import Flows
from connector.serve.metrics import CONTENT_TYPE
from connector.serve.runtime import Runtime
from connector.web.connectadmin import AdminConnect
from connector.web.pages import Pages


def build(
    rt: Runtime,
    wake: Callable[[Collection[str]], None],
    status: Callable[[], dict[str, Any]],
    on_connected: Callable[[], None],
) -> Starlette:
    """The app. `wake(tenants)` hands webhook-requested syncs to the executor; `status()` adds the
    scheduler's and workers' state to /healthz."""

    token = rt.settings.serve.metrics_token
    register_secret(token)

    def trusted(request: Request) -> bool:
        """The request carries the metrics token as a bearer token."""
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if not token or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.encode(), token.encode())

    def health_body(details: bool) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {}
        problem = ""
        try:
            with rt.store.read() as conn:
                conn.execute(text("SELECT 1"))
            body["database"] = "ok"
        except Exception as exc:
            body["database"] = "unreachable"
            problem = type(exc).__name__
        state = status()
        healthy = body["database"] == "ok" and not rt.should_stop() and state.get("scheduler") == "running"
        body["status"] = "ok" if healthy else ("stopping" if rt.should_stop() else "degraded")
        body["scheduler"] = state.get("scheduler")
        body["scheduled"] = state.get("scheduled")  # tenants with a nightly job
        workers = state.get("workers", {})
        body["workers"] = {"busy": workers.get("busy"), "of": workers.get("of")}
        body["queue"] = state.get("queue", {})
        if details:
            body |= {"server": rt.server_id, "clock": rt.clock.now().isoformat()}
            body["last"] = state.get("last", [])
            body["workers"]["tenants"] = workers.get("tenants", {})
            if problem:
                body["database_error"] = problem
        return (200 if healthy else 503), body

    async def health(request: Request) -> Response:
        code, body = await run_in_threadpool(health_body, trusted(request))
        return JSONResponse(body, status_code=code)

    async def metrics(request: Request) -> Response:
        if token and not trusted(request):
            return PlainTextResponse(
                "metrics need the bearer token (serve.metrics_token)",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="ccm metrics"'},
            )
        return Response(await run_in_threadpool(rt.metrics.render), media_type=CONTENT_TYPE)

    pages = Pages(rt)
    flows = Flows(rt, on_connected)
    flows.admin = AdminConnect(pages, flows)  # a signed-in admin connects without an invite
    routes = [
        Route("/healthz", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/webhooks/{ledger}", webhooks.endpoint(rt, wake), methods=["POST"]),
        *(Route(path, endpoint, methods=methods) for path, endpoint, methods in flows.routes()),
        *pages.routes(),
    ]
    return Starlette(routes=routes)
