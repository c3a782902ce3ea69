"""Connecting a firm through the server: /connect/{ledger}?invite=… → the ledger's consent → the callback.

Connecting is an operator's act: the pages answer only to a live invite (`ccm invite`, connector/invites.py)
or to an admin signed in to the bookkeeper's pages (a form with a CSRF token, audited: connector/web/
connectadmin.py); anything else is 403 and nothing is stored. The invite names the tenant; a new tenant
gets the details the operator gave, an existing one keeps its own, so the link's holder chooses nothing but
which organisation to consent to, and a tenant that has synced is only reconnected to its own organisation
(connector/binding.py).

The same flow modules as `ccm connect` (adapters/<ledger>/flow.py). What the server must remember between the
redirect and the callback (the tenant, the PKCE verifier, the invite's hash and, while the person picks among
several Xero organisations, the new tokens) is kept in `oauth_states`, encrypted with the vault key, for 15
minutes and used once. A person who denies consent, or a state that is unknown, expired or already used, gets
a page saying so and nothing is stored.
"""

from __future__ import annotations

import contextlib
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

from connector import binding, invites
from connector.flow import Choice, Grant, NoFlow, flow, save_grant
from connector.invites import InviteProblem
from connector.ledger import LedgerError, UnknownLedger
from connector.model import Tenant
from connector.oauth import TokenVault, load_key, new_state
from connector.serve.runtime import Runtime
from connector.store.schema import oauth_states
from connector.store.tenants import UnknownTenant, get_tenant
from connector.web import audit
from connector.web.connectadmin import ADMIN, AdminConnect

log = structlog.get_logger(__name__)
STATE_LIFE = timedelta(minutes=15)
_pages = Environment(
    loader=PackageLoader("connector.serve", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)
Endpoint = Callable[[Request], Awaitable[Response]]
NO_INVITE = (
    "Connecting a firm needs a connect link from whoever runs ccm: on the server, "
    "`ccm invite TENANT --ledger {ledger}` makes one, single use and expiring. Nothing was stored."
)


def page(title: str, message: str, status: int = 200, tone: str = "", **extra: Any) -> HTMLResponse:
    fields = {"choices": (), "action": "", "state": ""} | extra
    html = _pages.get_template("page.html").render(title=title, message=message, tone=tone, **fields)
    return HTMLResponse(html, status_code=status)


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}; nothing was stored."


class Flows:
    """The connect endpoints of one server."""

    def __init__(
        self, rt: Runtime, on_connected: Callable[[], None], admin: AdminConnect | None = None
    ) -> None:
        self.rt = rt
        self.on_connected = on_connected
        self._fernet = Fernet(load_key(rt.settings))
        self.admin = admin  # a signed-in admin's way in without an invite (connector/web/connectadmin.py)

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

    # -- GET /connect/{ledger}?invite=TOKEN
    async def start(self, request: Request) -> Response:
        ledger = request.path_params["ledger"]
        try:
            module = flow(ledger)
        except (UnknownLedger, NoFlow) as exc:
            return page("Unknown ledger", str(exc), 404, "bad")
        token = request.query_params.get("invite", "")
        if not token:
            offered = await self.admin.offer(request, ledger) if self.admin is not None else None
            if offered is not None:
                return offered
            log.info("connect.refused", ledger=ledger, reason="no invite")
            return page("Connect link needed", NO_INVITE.format(ledger=ledger), 403, "bad")
        try:
            invite, tenant = await run_in_threadpool(self._invited, token, ledger)
        except InviteProblem as exc:
            log.info("connect.refused", ledger=ledger, reason=str(exc).split(":")[0])
            return page("Cannot connect", _sentence(exc), 403, "bad")
        state = new_state()
        try:
            url, verifier = module.begin(self.rt.settings, state)
        except LedgerError as exc:
            return page("Cannot connect", str(exc), 500, "bad")
        payload = {"tenant": asdict(tenant), "verifier": verifier, "invite": invite.token_hash}
        await run_in_threadpool(self._put, state, ledger, payload)
        return RedirectResponse(url, status_code=302)

    def _invited(self, token: str, ledger: str) -> tuple[invites.Invite, Tenant]:
        """The live invite and the tenant it connects: the stored one if it exists, else the invite's."""
        with self.rt.store.read() as conn:
            invite = invites.find(conn, token, ledger, self.rt.real_now())
            try:
                return invite, get_tenant(conn, invite.tenant_id)
            except UnknownTenant:
                if invite.tenant is None:
                    raise invites.InviteProblem(
                        f"tenant {invite.tenant_id} no longer exists: ask whoever sent the link for a new one"
                    ) from None
                return invite, invite.tenant

    # -- GET /oauth/{ledger}/callback
    async def callback(self, request: Request) -> Response:
        ledger = request.path_params["ledger"]
        q = dict(request.query_params)
        payload = await run_in_threadpool(self._take, q.get("state", ""), ledger)
        again = "open your connect link again"
        if payload is None or not ({"invite", ADMIN} & payload.keys()):
            return page(
                "Connect link expired",
                f"This connect attempt is unknown, expired or already used: {again}.",
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
            return page(
                "Choose the organisation",
                f"Access was granted to {len(grant.choices)} organisations. "
                f"Which one is {tenant.name or tenant.id}?",
                choices=grant.choices,
                action=f"/connect/{ledger}/choose",
                state=state,
            )
        return await self._save(ledger, grant, tenant, grant.choices[0], _by(payload))

    # -- POST /connect/{ledger}/choose
    async def choose(self, request: Request) -> Response:
        ledger = request.path_params["ledger"]
        pairs = parse_qsl((await request.body()).decode("utf-8", "replace"))
        form = dict(pairs)
        payload = await run_in_threadpool(self._take, form.get("state", ""), ledger)
        if payload is None or "grant" not in payload or not ({"invite", ADMIN} & payload.keys()):
            return page(
                "Connect link expired",
                "This choice has expired: open your connect link again.",
                400,
                "bad",
            )
        grant = Grant.from_json(payload["grant"])
        wanted = [value for key, value in pairs if key == "choice"]
        by_id = {c.id: c for c in grant.choices}
        unknown = [w for w in wanted if w not in by_id]
        if unknown or len(wanted) != 1:
            what = (
                f"{unknown[0]!r} was not among the organisations granted"
                if unknown
                else "choose exactly one organisation"
            )
            return page("Not connected", f"{what}; nothing was stored.", 400, "bad")
        tenant = Tenant(**payload["tenant"])
        return await self._save(ledger, grant, tenant, by_id[wanted[0]], _by(payload))

    async def _save(self, ledger: str, grant: Grant, tenant: Tenant, choice: Choice, invite: str) -> Response:
        try:
            what = await run_in_threadpool(self._save_one, ledger, grant, tenant, choice, invite)
        except binding.OtherOrganisation as exc:
            log.warning("connect.other_organisation", ledger=ledger, tenant=tenant.id)
            return page("Not connected", str(exc), 409, "bad")
        except invites.InviteProblem as exc:
            return page("Not connected", _sentence(exc), 409, "bad")
        except (LedgerError, ValueError) as exc:
            return page("Not connected", f"Saving {tenant.id} failed: {exc}; nothing was stored.", 500, "bad")
        self.on_connected()
        at = tenant.night_time or self.rt.settings.serve.night_time
        message = f"Tenant {tenant.id} is connected to {what}, its nights at {at} {tenant.timezone}."
        return page("Connected", message, tone="ok")

    def _save_one(self, ledger: str, grant: Grant, tenant: Tenant, choice: Choice, invite: str) -> str:
        """Check the binding, claim the invite, save; the invite is given back if saving fails."""
        rt = self.rt
        with rt.store.begin() as conn:
            with contextlib.suppress(UnknownTenant):  # an existing tenant keeps its details as they are now
                tenant = get_tenant(conn, tenant.id)
            bound = binding.check(conn, tenant.id, ledger, choice)
            if bound is not None:
                how = (
                    "If the firm really moved to it, the operator can move the tenant with "
                    f"`ccm connect {ledger} -t {tenant.id} --replace-organisation`; this link stays usable."
                )
                raise binding.refusal(bound, choice, how)
            if invite.startswith(ADMIN + ":"):  # a signed-in admin's connection: no invite, audited instead
                who, what = invite.partition(":")[2], f"connect.{ledger} {choice.name}"
                audit.write(conn, who, tenant.id, what, rt.real_now(), None,
                            {"ledger": ledger, "organisation": choice.name})  # fmt: skip
            elif not invites.claim(conn, invite, rt.real_now()):
                raise invites.InviteProblem("this connect link was already used")
        vault = TokenVault(rt.store, load_key(rt.settings), rt.clock.now)
        try:
            return save_grant(rt.store, vault, replace(tenant, ledger=ledger), grant, choice)
        except BaseException:
            if not invite.startswith(ADMIN + ":"):
                with rt.store.begin() as conn:
                    invites.unclaim(conn, invite)
            raise

    def routes(self) -> list[tuple[str, Endpoint, list[str]]]:
        return [
            ("/connect/{ledger}", self.start, ["GET"]),
            ("/oauth/{ledger}/callback", self.callback, ["GET"]),
            ("/connect/{ledger}/choose", self.choose, ["POST"]),
            *(
                [("/connect/{ledger}", self.admin.pages.page(self.admin.begin, post=True), ["POST"])]
                if self.admin is not None
                else []
            ),
        ]


def _by(payload: dict[str, Any]) -> str:
    """Who let this connection start: the invite's hash, or `admin:NAME` for a signed-in admin."""
    return str(payload["invite"]) if "invite" in payload else f"{ADMIN}:{payload[ADMIN]}"
