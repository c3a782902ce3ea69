"""The sandbox's Starlette app: Intuit's OAuth endpoints and the accounting API under one base URL.

Several companies (realms) may be served at once: the API routes by the realm in the path, and consent picks
the company as the user does on Intuit's consent page (a chooser on the form; with auto-consent, the first
company unless the authorize request names one with the sandbox's own `realmId` parameter, which the real
service does not have). Every answer carries an `intuit_tid` header, as Intuit's do.
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.quickbooks.sandbox.api import Api
from adapters.quickbooks.sandbox.auth import OAuthError, OAuthServer

AUTHORIZE_PATH = "/connect/oauth2"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL path, not a secret
REVOKE_PATH = "/v2/oauth2/tokens/revoke"
API_PATH = "/v3"


def _with(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def intuit_tid(now: datetime) -> str:
    """A transaction id shaped like Intuit's ("1-63ebf469-42aa3f7771c495f414fdfa6c", quoted in
    intuit/QuickBooks-V3-PHP-SDK#472): "1-", the epoch seconds in hex, "-", 24 random hex digits."""
    return f"1-{int(now.timestamp()):08x}-{secrets.token_hex(12)}"


class IntuitTid:
    """ASGI middleware: an `intuit_tid` header on every answer."""

    def __init__(self, app: ASGIApp, now: Callable[[], datetime]) -> None:
        self.app = app
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tid = intuit_tid(self.now()).encode()

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"intuit_tid", tid)]
            await send(message)

        await self.app(scope, receive, tagged)


def build_app(apis: Mapping[str, Api], oauth: OAuthServer, auto_consent: Callable[[], bool]) -> Starlette:
    """The app over one Api per realm (the first is the default company); `auto_consent()` is read per
    request, so tests can switch the consent form on and off."""
    primary = next(iter(apis.values()))

    async def authorize(request: Request) -> Response:
        if request.method == "POST":
            params = dict(parse_qsl((await request.body()).decode()))
            decision = params.pop("decision", "deny")
        else:
            params, decision = dict(request.query_params), "allow" if auto_consent() else ""
        redirect_uri, state = params.get("redirect_uri", ""), params.get("state", "")
        if params.get("client_id") != oauth.client_id or not redirect_uri:
            return PlainTextResponse("invalid_client: unknown client_id or no redirect_uri", status_code=400)
        realm = params.pop("realmId", primary.company.realm)
        if realm not in apis:
            return PlainTextResponse(f"realmId {realm!r} is not a company of this sandbox", status_code=400)
        if decision == "deny":
            return RedirectResponse(_with(redirect_uri, {"error": "access_denied", "state": state}), 302)
        if decision != "allow":
            return HTMLResponse(_consent_page(params, apis, realm))
        try:
            code = oauth.authorize(params, realm)
        except OAuthError as exc:
            return RedirectResponse(_with(redirect_uri, {"error": exc.error, "state": state}), 302)
        return RedirectResponse(_with(redirect_uri, {"code": code, "state": state, "realmId": realm}), 302)

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        try:
            oauth.check_client(request.headers.get("authorization"), form)
            return JSONResponse(oauth.token(form), headers={"Cache-Control": "no-store"})
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, exc.status)

    async def revoke(request: Request) -> Response:
        raw = (await request.body()).decode()
        form = dict(parse_qsl(raw))
        if raw.lstrip().startswith("{"):  # Intuit's revoke takes {"token": ...}; a form works too
            try:
                form = {k: str(v) for k, v in json.loads(raw).items()}
            except (ValueError, AttributeError):
                return JSONResponse({"error": "invalid_request", "error_description": "malformed JSON"}, 400)
        try:
            oauth.check_client(request.headers.get("authorization"), form)
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, exc.status)
        oauth.revoke(form.get("token", ""))
        return Response(status_code=200)

    async def accounting(request: Request) -> Response:
        body = await request.body()
        realm = request.path_params["realm"]
        api = apis.get(realm, primary)  # another realm's path: the primary answers 403 for its token
        answer = await run_in_threadpool(
            api.handle, request.method, realm, request.path_params["rest"],
            dict(request.query_params), request.headers, body,
        )  # fmt: skip
        return Response(answer.body, answer.status, media_type=answer.media_type)

    return Starlette(routes=[
        Route(AUTHORIZE_PATH, authorize, methods=["GET", "POST"]),
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(REVOKE_PATH, revoke, methods=["POST"]),
        Route(API_PATH + "/company/{realm}/{rest:path}", accounting, methods=["GET", "POST"]),
    ], middleware=[Middleware(IntuitTid, now=primary.company.now)])  # fmt: skip


def _consent_page(params: dict[str, str], apis: Mapping[str, Api], realm: str) -> str:
    """Intuit's consent page, played: Connect or Cancel, and a company chooser when there are several."""
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in params.items())  # fmt: skip
    firm = html.escape(apis[realm].company.firm.name)
    chooser = ""
    if len(apis) > 1:
        options = "".join(
            f'<option value="{html.escape(r)}"{" selected" if r == realm else ""}>'
            f"{html.escape(a.company.firm.name)}</option>"
            for r, a in apis.items()
        )
        chooser = f'<label>Company <select name="realmId">{options}</select></label>'
    else:
        chooser = f'<input type="hidden" name="realmId" value="{html.escape(realm)}">'
    return (f"<!doctype html><title>Connect to QuickBooks</title><h1>{firm}</h1>"
            "<p>Allow this app to read and write your accounting data?</p>"
            f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}{chooser}'
            '<button name="decision" value="allow">Connect</button>'
            '<button name="decision" value="deny">Cancel</button></form>')  # fmt: skip
