"""The server's HTTP app: the OAuth connect flow, the ledgers' webhooks, /healthz and /metrics.

```
GET  /healthz                       200 {"status": "ok", ...}; 503 while stopping or without a database
GET  /metrics                       Prometheus text
POST /webhooks/{ledger}             signed deliveries: 200 and queued, 401 on a bad signature
GET  /connect/{ledger}?tenant=ID    starts connecting a firm (a form when no tenant is given)
GET  /oauth/{ledger}/callback       where the ledger sends the person back
POST /connect/{ledger}/choose       the organisation picked when consent covered several
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.serve import webhooks
from connector.serve.connectweb import Flows
from connector.serve.metrics import CONTENT_TYPE
from connector.serve.runtime import Runtime


def build(
    rt: Runtime,
    wake: Callable[[], None],
    status: Callable[[], dict[str, Any]],
    on_connected: Callable[[], None],
) -> Starlette:
    """The app. `status()` adds the scheduler's and workers' state to /healthz."""

    def health_body() -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"server": rt.server_id, "clock": rt.clock.now().isoformat()}
        try:
            with rt.store.read() as conn:
                conn.execute(text("SELECT 1"))
            body["database"] = "ok"
        except Exception as exc:
            body["database"] = f"unreachable ({type(exc).__name__})"
        body |= status()
        healthy = body["database"] == "ok" and not rt.should_stop() and body.get("scheduler") == "running"
        body["status"] = "ok" if healthy else ("stopping" if rt.should_stop() else "degraded")
        return (200 if healthy else 503), body

    async def health(request: Request) -> Response:
        code, body = await run_in_threadpool(health_body)
        return JSONResponse(body, status_code=code)

    async def metrics(request: Request) -> Response:
        return Response(await run_in_threadpool(rt.metrics.render), media_type=CONTENT_TYPE)

    flows = Flows(rt, on_connected)
    routes = [
        Route("/healthz", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/webhooks/{ledger}", webhooks.endpoint(rt, wake), methods=["POST"]),
        *(Route(path, endpoint, methods=methods) for path, endpoint, methods in flows.routes()),
    ]
    return Starlette(routes=routes)
