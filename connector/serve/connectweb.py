"""Connecting a firm through the server: /connect/{ledger} → the ledger's consent → /oauth/{ledger}/callback.

The same flow modules as `ccm connect` (adapters/<ledger>/flow.py). What the server must remember between the
redirect and the callback (the tenant's details, the PKCE verifier and, while the person picks among several
Xero organisations, the new tokens) is kept in `oauth_states`, encrypted with the vault key, for 15 minutes
and used once. A person who denies consent, or a state that is unknown, expired or already used, gets a page
saying so and nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import structlog
from cryptography.fernet import Fernet, InvalidToken
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adapters.base import LedgerError, UnknownLedger
from connector.flow import Choice, Grant, NoFlow, flow
from connector.model import Tenant
from connector.oauth import TokenVault, load_key, new_state
from connector.serve.runtime import Runtime
from connector.store.schema import oauth_states
from connector.tenantspec import TenantProblem, build, check_id, slug

log = structlog.get_logger(__name__)
STATE_LIFE = timedelta(minutes=15)
_pages = Environment(
    loader=PackageLoader("connector.serve", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)
Endpoint = Callable[[Request], Awaitable[Response]]


def page(title: str, message: str, status: int = 200, tone: str = "", **extra: Any) -> HTMLResponse:
    fields = {"choices": (), "ask": False, "action": "", "state": "", "ledger": ""} | extra
    html = _pages.get_template("page.html").render(title=title, message=message, tone=tone, **fields)
    return HTMLResponse(html, status_code=status)


class Flows:
    """The connect endpoints of one server."""

    def __init__(self, rt: Runtime, on_connected: Callable[[], None]) -> None:
        self.rt = rt
        self.on_connected = on_connected
        self._fernet = Fernet(load_key(rt.settings))

    # -- state kept between the redirect and the callback
    def _put(self, state: str, ledger: str, payload: dict[str, Any]) -> None:
        now = self.rt.real_now()
        text = self._fernet.encrypt(json.dumps(payload).encode()).decode()
        with self.rt.store.begin() as conn:
            conn.execute(oauth_states.delete().where(oauth_states.c.expires_at < now))
            conn.execute(oauth_states.delete().where(oauth_states.c.state == state))
            conn.execute(
                oauth_states.insert().values(
                    state=state, ledger=ledger, payload=text, created_at=now, expires_at=now + STATE_LIFE
                )
            )

    def _take(self, state: str, ledger: str, keep: bool = False) -> dict[str, Any] | None:
        """The payload of a live state of this ledger (removed unless `keep`), else None."""
        s = oauth_states.c
        with self.rt.store.begin() as conn:
            row = conn.execute(select(oauth_states).where(s.state == state)).first()
            if row is None:
                return None
            if not keep or row.expires_at <= self.rt.real_now():
                conn.execute(oauth_states.delete().where(s.state == state))
        if row.ledger != ledger or row.expires_at <= self.rt.real_now():
            return None
        try:
            return dict(json.loads(self._fernet.decrypt(row.payload.encode())))
        except InvalidToken:  # the vault key changed since: start again
            return None

    # -- GET /connect/{ledger}
    async def start(self, request: Request) -> Response:
        ledger = request.path_params["ledger"]
        try:
            module = flow(ledger)
        except (UnknownLedger, NoFlow) as exc:
            return page("Unknown ledger", str(exc), 404, "bad")
        q = request.query_params
        if not q.get("tenant"):
            return page(
                f"Connect a firm's {ledger}",
                "Who is this firm? ccm files its data under the tenant id.",
                ask=True,
                action=f"/connect/{ledger}",
                ledger=ledger,
            )
        try:
            tenant = build(
                q["tenant"],
                q.get("name", ""),
                ledger,
                base_currency=q.get("base_currency", "GBP"),
                timezone=q.get("timezone", "Europe/London"),
                country=q.get("country", "GB"),
                night_time=q.get("night_time") or None,
                contact_email=q.get("contact_email") or None,
            )
        except TenantProblem as exc:
            return page("Cannot connect", str(exc), 400, "bad")
        state = new_state()
        try:
            url, verifier = module.begin(self.rt.settings, state)
        except LedgerError as exc:
            return page("Cannot connect", str(exc), 500, "bad")
        await run_in_threadpool(self._put, state, ledger, {"tenant": asdict(tenant), "verifier": verifier})
        return RedirectResponse(url, status_code=302)

    # -- GET /oauth/{ledger}/callback
    async def callback(self, request: Request) -> Response:
        ledger = request.path_params["ledger"]
        q = dict(request.query_params)
        payload = await run_in_threadpool(self._take, q.get("state", ""), ledger)
        again = f"start again at /connect/{ledger}"
        if payload is None:
            return page(
                "Connect link expired",
                f"This connect link is unknown, expired or already used: {again}.",
                400,
                "bad",
            )
        if "error" in q:
            log.info("connect.denied", ledger=ledger, error=q["error"])
            return page(
                "Not connected", f"Access was not granted ({q['error']}); nothing was stored.", 200, "bad"
            )
        if "code" not in q:
            return page(
                "Not connected",
                f"The ledger sent no authorization code; nothing was stored: {again}.",
                400,
                "bad",
            )
        tenant = Tenant(**payload["tenant"])
        module = flow(ledger)
        try:
            grant: Grant = await run_in_threadpool(
                module.exchange, self.rt.settings, q, payload.get("verifier"), self.rt.clock.now()
            )
        except LedgerError as exc:
            return page(
                "Not connected", f"Connecting failed ({exc}); nothing was stored: {again}.", 502, "bad"
            )
        if len(grant.choices) > 1:
            state = q["state"]
            await run_in_threadpool(self._put, state, ledger, {**payload, "grant": grant.to_json()})
            named = [(c, tenant.id if i == 0 else slug(c.name)) for i, c in enumerate(grant.choices)]
            return page(
                "Choose the organisations",
                f"Access was granted to {len(grant.choices)} organisations. Which should ccm look after, and "
                "under which tenant id?",
                choices=named,
                action=f"/connect/{ledger}/choose",
                state=state,
            )
        return await self._save(ledger, grant, [(tenant, grant.choices[0])])

    # -- POST /connect/{ledger}/choose
    async def choose(self, request: Request) -> Response:
        ledger = request.path_params["ledger"]
        pairs = parse_qsl((await request.body()).decode("utf-8", "replace"))
        form = dict(pairs)
        payload = await run_in_threadpool(self._take, form.get("state", ""), ledger)
        if payload is None or "grant" not in payload:
            return page(
                "Connect link expired",
                f"This choice has expired: start again at /connect/{ledger}.",
                400,
                "bad",
            )
        grant = Grant.from_json(payload["grant"])
        wanted = [value for key, value in pairs if key == "choice"]
        by_id = {c.id: c for c in grant.choices}
        unknown = [w for w in wanted if w not in by_id]
        if unknown or not wanted:
            what = (
                f"{unknown[0]!r} was not among the organisations granted" if unknown else "nothing was chosen"
            )
            return page("Not connected", f"{what}; nothing was stored.", 400, "bad")
        base = Tenant(**payload["tenant"])
        picked: list[tuple[Tenant, Choice]] = []
        for choice_id in wanted:
            tenant_id = form.get(f"tenant_{choice_id}") or (
                base.id if len(wanted) == 1 else slug(by_id[choice_id].name)
            )
            try:
                check_id(tenant_id)
            except TenantProblem as exc:
                return page(
                    "Not connected", f"{by_id[choice_id].name}: {exc}; nothing was stored.", 400, "bad"
                )
            name = base.name if len(wanted) == 1 else ""
            picked.append((replace(base, id=tenant_id, name=name), by_id[choice_id]))
        if len({t.id for t, _ in picked}) < len(picked):
            same = "two organisations were given the same tenant id; nothing was stored."
            return page("Not connected", same, 400, "bad")
        return await self._save(ledger, grant, picked)

    async def _save(self, ledger: str, grant: Grant, picked: list[tuple[Tenant, Choice]]) -> Response:
        rt = self.rt
        vault = TokenVault(rt.store, load_key(rt.settings), rt.clock.now)
        module = flow(ledger)
        done: list[str] = []
        for tenant, choice in picked:
            try:
                what = await run_in_threadpool(
                    module.save, rt.settings, rt.store, tenant, grant, choice, vault
                )
            except (LedgerError, ValueError) as exc:
                saved = f" ({'; '.join(done)} saved)" if done else ""
                return page("Not connected", f"Saving {tenant.id} failed: {exc}{saved}", 500, "bad")
            at = tenant.night_time or rt.settings.serve.night_time
            done.append(f"tenant {tenant.id} is connected to {what}, its nights at {at} {tenant.timezone}")
        self.on_connected()
        said = "; ".join(done)
        return page("Connected", f"{said[0].upper()}{said[1:]}. `ccm connections` shows them.", tone="ok")

    def routes(self) -> list[tuple[str, Endpoint, list[str]]]:
        return [
            ("/connect/{ledger}", self.start, ["GET"]),
            ("/oauth/{ledger}/callback", self.callback, ["GET"]),
            ("/connect/{ledger}/choose", self.choose, ["POST"]),
        ]
