"""Connecting a firm as a signed-in admin: the connect pages without an invite.

```
GET  /connect/{ledger}     a signed-in admin: a form to pick the firm (anyone else needs an invite: 403)
POST /connect/{ledger}     the admin's choice (CSRF token, admin only: else 403, nothing stored);
                           audited, then a link on to the ledger's consent page
```
Guarantees: only a signed-in admin gets past these pages without an invite; a bookkeeper, a viewer and an
anonymous visitor are refused (403) exactly as before. The POST carries the session's CSRF token, so another
site cannot start a connection in an admin's name; the start and the connection saved at the callback are both
written to the audit log with the admin's name. The callback is the invite flow's own (connector/serve/
connectweb.py): what the server keeps between the redirect and the callback names the admin instead of an
invite, and nothing else changes. An admin connects a firm that exists (`ccm tenants add`, or an invite for
a new one); the ledger's consent page is reached by a link, since the pages' CSP allows forms only to ccm.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from connector import ledger as registry
from connector.flow import NoFlow, flow
from connector.ledger import LedgerError, UnknownLedger
from connector.model import Tenant
from connector.oauth import new_state
from connector.store.tenants import list_tenants
from connector.web import audit
from connector.web.pages import Pages, RequestRefused, Visit
from connector.web.users import Role, User

if TYPE_CHECKING:
    from connector.serve.connectweb import Flows

log = structlog.get_logger(__name__)
ADMIN = "admin"  # what the kept state names instead of an invite


def is_admin(user: User | None) -> bool:
    return user is not None and user.role is Role.ADMIN


class AdminConnect:
    """The admin's way into the connect flow of one server."""

    def __init__(self, pages: Pages, flows: Flows) -> None:
        self.pages = pages
        self.flows = flows

    async def offer(self, request: Request, ledger: str) -> Response | None:
        """The form for a signed-in admin (None: the visitor is not one, the invite rule applies)."""
        visit = await run_in_threadpool(self.pages._visit, request)
        if not is_admin(visit.user):
            return None
        firms = await run_in_threadpool(self._firms)
        chosen = request.query_params.get("tenant", "")
        return self.pages.render(request, visit, "connect.html", title=f"Connect a firm to {_name(ledger)}",
                                 ledger=ledger, ledger_name=_name(ledger), firms=firms, chosen=chosen,
                                 go="", firm=None)  # fmt: skip

    def _firms(self) -> list[Tenant]:
        with self.pages.rt.store.read() as conn:
            return list_tenants(conn)

    async def begin(self, request: Request, visit: Visit, user: User) -> Response:
        """POST /connect/{ledger}: the admin's choice; the state kept and audited, then the way on."""
        form = await self.pages.form_of(request, visit)
        if not is_admin(user):
            raise RequestRefused(403, "Only an admin connects a firm without a connect link")
        ledger = request.path_params["ledger"]
        try:
            module = flow(ledger)
        except (UnknownLedger, NoFlow) as exc:
            raise RequestRefused(404, str(exc)) from None
        tenant = await run_in_threadpool(self.pages.tenant_for, user, str(form.get("tenant", "")))
        state = new_state()
        try:
            url, verifier = module.begin(self.pages.rt.settings, state)
        except LedgerError as exc:
            raise RequestRefused(500, f"Cannot connect: {exc}") from None
        payload = {"tenant": asdict(tenant), "verifier": verifier, ADMIN: user.name}
        await run_in_threadpool(self.flows._put, state, ledger, payload)
        await run_in_threadpool(self._audit, user, tenant, ledger)
        log.info("connect.admin_start", user=user.name, tenant=tenant.id, ledger=ledger)
        return self.pages.render(request, visit, "connect.html", title=f"Connect {tenant.name}",
                                 ledger=ledger, ledger_name=_name(ledger), firms=[], chosen=tenant.id, go=url,
                                 firm=tenant)  # fmt: skip

    def _audit(self, user: User, tenant: Tenant, ledger: str) -> None:
        rt = self.pages.rt
        with rt.store.begin() as conn:
            audit.write(conn, user.name, tenant.id, f"connect.start {ledger}", rt.real_now(), None,
                        {"ledger": ledger})  # fmt: skip


def _name(ledger: str) -> str:
    return registry.display_name(ledger)
