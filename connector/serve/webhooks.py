"""POST /webhooks/{ledger}: verified on the raw body, answered at once, the sync queued (never done inline).

The adapter's `webhook` hook checks the signature (hmac.compare_digest) and reads the events; a bad or
missing signature is refused with the adapter's status (401) and changes nothing. Xero's intent-to-receive
deliveries carry no events and get 200 with an empty body. Events name the ledger's organisation (Xero's
tenantId, QuickBooks' realmId); those ccm connects become sync requests of the streams they name, which the
executor debounces and runs (on PostgreSQL: one procrastinate job per firm, `sync:<tenant>` queueing lock).
Events for organisations ccm does not know are acknowledged and dropped:
the ledger would otherwise retry them for a day.

Rejected deliveries are counted in /metrics, and logged at most once a minute per ledger and client address
(with how many were not logged since), so an anonymous client cannot make the log grow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Collection, Sequence

import structlog
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from connector import ledger as registry
from connector.ledger import Change, Rejected, UnknownLedger
from connector.model import ConnectionState
from connector.serve import syncqueue
from connector.serve.runtime import Runtime
from connector.store.schema import connections

log = structlog.get_logger(__name__)
MAX_BODY = 1_000_000  # bytes; the ledgers send a few kilobytes
LOG_EVERY = 60.0  # seconds between two log lines about rejections from one source


class Throttle:
    """At most one log line per source per `every` seconds; counts what it held back.

    Its memory is bounded: past `limit` sources, those not seen for `every` seconds are forgotten, and if that
    is not enough, all are (a flood from many addresses then costs at most `limit` lines a minute).
    """

    def __init__(
        self, every: float = LOG_EVERY, limit: int = 10_000, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.every, self.limit, self._now = every, limit, now
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def allow(self, source: str) -> int | None:
        """None: do not log now; else log, saying how many were held back since the last line."""
        now = self._now()
        with self._lock:
            last, held = self._seen.get(source, (float("-inf"), 0))
            if now - last < self.every:
                self._seen[source] = (last, held + 1)
                return None
            if len(self._seen) >= self.limit:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.every}
                if len(self._seen) >= self.limit:
                    self._seen.clear()
            self._seen[source] = (now, 0)
            return held


def queue(rt: Runtime, ledger: str, changes: Sequence[Change]) -> dict[str, int]:
    """Sync requests for the tenants the changes concern; returns requests added per tenant."""
    companions = registry.get(ledger).companions
    by_org: dict[str, set[str]] = {}
    for change in changes:
        streams = by_org.setdefault(change.tenant_external_id, set())
        streams.add(change.stream)
        streams.update(companions.get(change.stream, ()))
    added: dict[str, int] = {}
    c = connections.c
    with rt.store.begin() as conn:
        rows = conn.execute(
            select(c.tenant_id, c.external_id).where(
                c.ledger == ledger,
                c.external_id.in_(list(by_org)),
                c.state != str(ConnectionState.DISCONNECTED),
            )
        ).all()
        for tenant_id, external_id in rows:
            added[tenant_id] = syncqueue.add(
                conn, tenant_id, sorted(by_org[external_id]), syncqueue.WEBHOOK, rt.real_now()
            )
    unknown = set(by_org) - {external_id for _, external_id in rows}
    if unknown:
        log.info("webhook.unknown_organisations", ledger=ledger, count=len(unknown))
    return added


def endpoint(
    rt: Runtime, requested: Callable[[Collection[str]], None]
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for POST /webhooks/{ledger}; `requested(tenants)` hands their syncs to the
    executor (connector/jobs: the in-process dispatcher is woken, or a debounced job is deferred)."""

    throttle = Throttle()

    async def receive(request: Request) -> Response:
        ledger = request.path_params["ledger"]
        try:
            spec = registry.get(ledger)
        except UnknownLedger:
            return PlainTextResponse(f"no ledger {ledger!r}", status_code=404)
        if spec.webhook is None:
            return PlainTextResponse(f"{ledger} sends no webhooks ccm reads", status_code=404)
        body = await request.body()
        if len(body) > MAX_BODY:
            rt.metrics.webhooks.labels(ledger, "rejected").inc()
            return PlainTextResponse("body too large", status_code=413)
        result = spec.webhook(rt.settings, dict(request.headers), body)
        if isinstance(result, Rejected):
            rt.metrics.webhooks.labels(ledger, "rejected").inc()
            client = request.client.host if request.client else "unknown"
            held = throttle.allow(f"{ledger} {client}")
            if held is not None:
                log.warning("webhook.rejected", ledger=ledger, client=client, reason=result.reason,
                            status=result.status, not_logged_since=held)  # fmt: skip
            return PlainTextResponse(result.reason, status_code=result.status)
        rt.metrics.webhooks.labels(ledger, "accepted").inc()
        if result:
            added = await run_in_threadpool(queue, rt, ledger, result)
            log.info("webhook.queued", ledger=ledger, events=len(result), tenants=len(added))
            if added:
                await run_in_threadpool(requested, list(added))
        return Response(status_code=200)  # an empty body: what Xero's intent-to-receive requires

    return receive
