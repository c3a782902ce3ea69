"""The sandbox's Starlette app: Intuit's OAuth endpoints and the accounting API under one base URL."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.quickbooks.sandbox.api import Api
from adapters.quickbooks.sandbox.auth import OAuthError, OAuthServer

AUTHORIZE_PATH = "/connect/oauth2"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL path, not a secret
REVOKE_PATH = "/v2/oauth2/tokens/revoke"
API_PATH = "/v3"


def _with(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def build_app(api: Api, oauth: OAuthServer, auto_consent: Callable[[], bool]) -> Starlette:
    """The app; `auto_consent()` is read per request, so tests can switch the consent form on and off."""
    realm = api.company.realm

    async def authorize(request: Request) -> Response:
        if request.method == "POST":
            params = dict(parse_qsl((await request.body()).decode()))
            decision = params.pop("decision", "deny")
        else:
            params, decision = dict(request.query_params), "allow" if auto_consent() else ""
        redirect_uri, state = params.get("redirect_uri", ""), params.get("state", "")
        if params.get("client_id") != oauth.client_id or not redirect_uri:
            return PlainTextResponse("invalid_client: unknown client_id or no redirect_uri", status_code=400)
        if decision == "deny":
            return RedirectResponse(_with(redirect_uri, {"error": "access_denied", "state": state}), 302)
        if decision != "allow":
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in params.items())  # fmt: skip
            firm = html.escape(api.company.firm.name)
            page = (f"<!doctype html><title>Connect to QuickBooks</title><h1>{firm}</h1>"
                    "<p>Allow this app to read and write your accounting data?</p>"
                    f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}'
                    '<button name="decision" value="allow">Connect</button>'
                    '<button name="decision" value="deny">Cancel</button></form>')  # fmt: skip
            return HTMLResponse(page)
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
        answer = await run_in_threadpool(
            api.handle, request.method, request.path_params["realm"], request.path_params["rest"],
            dict(request.query_params), request.headers, body,
        )  # fmt: skip
        return Response(answer.body, answer.status, media_type=answer.media_type)

    return Starlette(routes=[
        Route(AUTHORIZE_PATH, authorize, methods=["GET", "POST"]),
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(REVOKE_PATH, revoke, methods=["POST"]),
        Route(API_PATH + "/company/{realm}/{rest:path}", accounting, methods=["GET", "POST"]),
    ])  # fmt: skip
