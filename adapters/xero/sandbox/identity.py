"""Xero's identity service, locally: authorize (auto-consent or a form), token, revocation, connections.

Tokens follow Xero's rules on the sandbox clock: access tokens live 30 minutes; every refresh returns a new
refresh token, and the one just used is still accepted for 30 minutes, answering with the same new pair (so a
lost response is recoverable); a refresh token unused for 60 days dies; revocation removes the connections.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from adapters.sandbox.clock import SandboxClock
from adapters.xero.sandbox.idtoken import Signer, User, claims
from connector.redact import register_secret

ACCESS_TTL = timedelta(minutes=30)
GRACE = timedelta(minutes=30)
REFRESH_TTL = timedelta(days=60)
CODE_TTL = timedelta(minutes=5)
# On a clock running faster than real time, a code also lives at least this many real seconds: five
# simulated minutes can be 40 real ms there, less than a busy machine takes from the consent redirect
# to the code exchange. At 1x, and on a stopped clock that only a test moves, the five minutes alone count.
CODE_REAL_FLOOR_S = 60.0


@dataclass
class Connection:
    """One tenant connected to the app by one authorisation (Xero's /connections entry)."""

    id: str
    tenant_id: str
    tenant_name: str
    auth_event_id: str
    created: datetime


@dataclass
class Grant:
    """What one consent produced: scopes and the tenants it connected."""

    auth_event_id: str
    client_id: str
    scopes: tuple[str, ...]
    connections: list[Connection] = field(default_factory=list)
    revoked: bool = False
    nonce: str | None = None  # the authorize request's, echoed in the id_token
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class _Refresh:
    grant: Grant
    issued: datetime
    used: datetime | None = None
    answer: dict[str, Any] | None = None  # the token response its first use produced


@dataclass(frozen=True, slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    method: str | None
    issued: datetime
    nonce: str | None = None
    issued_real: float = field(default_factory=time.monotonic)


def _code_expired(code: _Code, now: datetime, speed: float) -> bool:
    """Past five minutes of the sandbox clock and, on a clock running faster than real time, past the real
    floor (CODE_REAL_FLOOR_S). A stopped clock (speed 0) moves only when a test advances it: no floor."""
    floor = CODE_REAL_FLOOR_S if speed > 1 else 0.0
    return now - code.issued > CODE_TTL and time.monotonic() - code.issued_real >= floor


@dataclass(frozen=True, slots=True)
class Access:
    """A valid access token: its grant and expiry."""

    grant: Grant
    expires: datetime


async def _form(request: Request) -> dict[str, str]:
    """An x-www-form-urlencoded body (what OAuth clients send), without a multipart parser."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def _error(code: str, status: int = 400, description: str | None = None) -> JSONResponse:
    body = {"error": code} if description is None else {"error": code, "error_description": description}
    return JSONResponse(body, status_code=status)


class Identity:
    """The OAuth 2.0 authorisation server for one sandbox (one app's client, its tenants)."""

    def __init__(
        self,
        clock: SandboxClock,
        client_id: str,
        client_secret: str,
        tenants: dict[str, str],
        auto_consent: bool = True,
    ) -> None:
        self.clock = clock
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenants = tenants  # tenant id -> name
        self.auto_consent = auto_consent
        self.lock = threading.Lock()
        self.codes: dict[str, _Code] = {}
        self.access: dict[str, Access] = {}
        self.refresh: dict[str, _Refresh] = {}
        self.grants: list[Grant] = []
        self.token_requests = 0
        self.signer = Signer()
        self.user = User(str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-sandbox-user:{client_id}")))

    # ---- bearer checks used by the API ------------------------------------------------------------------
    def check(self, authorization: str | None) -> Access | str:
        """The access behind a Bearer header, or Xero's Detail text for the 401."""
        if not authorization or not authorization.startswith("Bearer "):
            return "AuthenticationUnsuccessful"
        with self.lock:
            access = self.access.get(authorization[7:].strip())
        if access is None or access.grant.revoked:
            return "AuthenticationUnsuccessful"
        if access.expires <= self.clock.now():
            return f"TokenExpired: token expired at {access.expires.strftime('%m/%d/%Y %H:%M:%S')}"
        return access

    def expire_access_tokens(self) -> None:
        """Test control: every access token expires now (as if 30 minutes had passed)."""
        with self.lock:
            now = self.clock.now()
            self.access = {t: Access(a.grant, min(a.expires, now)) for t, a in self.access.items()}

    def revoke_refresh_token(self, token: str) -> None:
        """Test control: the user revoked this refresh token's authorisation in Xero."""
        with self.lock:
            found = self.refresh.get(token)
            if found:
                self._revoke(found.grant)

    def disconnect(self, tenant_id: str) -> None:
        """Test control: the tenant was disconnected from the app (its connections are gone)."""
        with self.lock:
            for grant in self.grants:
                grant.connections = [c for c in grant.connections if c.tenant_id != tenant_id]

    def _revoke(self, grant: Grant) -> None:
        grant.revoked = True
        grant.connections.clear()

    # ---- authorize --------------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        """GET /identity/connect/authorize (and the consent form's POST)."""
        params = dict(request.query_params)
        if request.method == "POST":
            params = await _form(request)
        refused = self._refuse(params)
        if refused is not None:
            return refused
        redirect_uri, state = params["redirect_uri"], params.get("state", "")
        scopes = tuple(params["scope"].split())
        if request.method == "GET" and not self.auto_consent:
            return self._consent_form(params)
        if request.method == "POST" and params.get("decision") != "allow":
            return self._back(redirect_uri, {"error": "access_denied", "state": state})
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = _Code(
                self.client_id,
                redirect_uri,
                scopes,
                params.get("code_challenge"),
                params.get("code_challenge_method"),
                self.clock.now(),
                params.get("nonce"),
            )
        return self._back(
            redirect_uri,
            {"code": code, "scope": " ".join(scopes), "state": state, "session_state": secrets.token_hex(8)},
        )

    def _refuse(self, params: dict[str, str]) -> Response | None:
        """The error answer for a bad authorisation request, or None when it may go on."""
        if params.get("client_id") != self.client_id:
            return HTMLResponse(
                "<h1>Error: unauthorized_client</h1><p>Unknown client_id</p>", status_code=400
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return HTMLResponse("<h1>Error: invalid_request</h1><p>Invalid redirect_uri</p>", status_code=400)
        state = params.get("state", "")
        if params.get("response_type") != "code":
            return self._back(redirect_uri, {"error": "unsupported_response_type", "state": state})
        if not params.get("scope", "").split():
            return self._back(redirect_uri, {"error": "invalid_scope", "state": state})
        return None

    def _back(self, redirect_uri: str, query: dict[str, str]) -> Response:
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(query)}", status_code=302)

    def _consent_form(self, params: dict[str, str]) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        names = ", ".join(html.escape(n) for n in self.tenants.values())
        page = (
            f"<!doctype html><title>Xero sandbox: allow access</title><h1>Allow access to {names}?</h1>"
            f"<p>Scopes: {html.escape(params.get('scope', ''))}</p>"
            f'<form method="post" action="/identity/connect/authorize">{hidden}'
            '<button name="decision" value="allow">Allow access</button> '
            '<button name="decision" value="deny">Cancel</button></form>'
        )
        return HTMLResponse(page)

    # ---- token ------------------------------------------------------------------------------------------
    def _client(self, request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None, None
            return unquote(user), unquote(password)
        return form.get("client_id"), form.get("client_secret")

    async def token(self, request: Request) -> Response:
        """POST /connect/token: authorization_code and refresh_token grants; Basic or client_secret_post."""
        form = await _form(request)
        client_id, secret = self._client(request, form)
        with self.lock:
            self.token_requests += 1
            grant_type = form.get("grant_type")
            if client_id != self.client_id:
                return _error("invalid_client")
            if grant_type == "authorization_code":
                return self._code_grant(form, secret)
            if secret is None or not hmac.compare_digest(secret, self.client_secret):
                return _error("invalid_client")
            if grant_type == "refresh_token":
                return self._refresh_grant(form.get("refresh_token", ""))
            return _error("unsupported_grant_type")

    def _code_grant(self, form: dict[str, str], secret: str | None) -> Response:
        code = self.codes.pop(form.get("code", ""), None)
        now = self.clock.now()
        if (
            code is None
            or _code_expired(code, now, self.clock.speed)
            or code.redirect_uri != form.get("redirect_uri")
        ):
            return _error("invalid_grant")
        if code.challenge:
            verifier = form.get("code_verifier", "")
            digest = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            )
            expected = digest if code.method == "S256" else verifier
            if not verifier or not hmac.compare_digest(expected, code.challenge):
                return _error("invalid_grant", description="code_verifier does not match the code_challenge")
        elif secret is None or not hmac.compare_digest(secret, self.client_secret):
            return _error("invalid_client")  # without PKCE the client must authenticate
        if secret is not None and not hmac.compare_digest(secret, self.client_secret):
            return _error("invalid_client")
        grant = Grant(str(uuid.uuid4()), code.client_id, code.scopes, nonce=code.nonce)
        grant.connections = [
            Connection(str(uuid.uuid4()), tid, name, grant.auth_event_id, now)
            for tid, name in self.tenants.items()
        ]
        self.grants.append(grant)
        return JSONResponse(self._issue(grant, now))

    def _issue(self, grant: Grant, now: datetime) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        register_secret(access)
        register_secret(refresh)
        self.access[access] = Access(grant, now + ACCESS_TTL)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(ACCESS_TTL.total_seconds()),
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
        }
        if "openid" in grant.scopes:
            body["id_token"] = self.signer.sign(
                claims(self.user, grant.client_id, grant.scopes, access, now, grant.session_id, grant.nonce)
            )
        if "offline_access" in grant.scopes:
            self.refresh[refresh] = _Refresh(grant, now)
            body["refresh_token"] = refresh
        return body

    def _refresh_grant(self, token: str) -> Response:
        now = self.clock.now()
        held = self.refresh.get(token)
        if held is None or held.grant.revoked:
            return _error("invalid_grant")
        if held.answer is not None:  # already rotated: the grace window replays the same new pair
            assert held.used is not None
            if now - held.used > GRACE:
                return _error("invalid_grant")
            return JSONResponse(held.answer)
        if now - held.issued > REFRESH_TTL:
            return _error("invalid_grant")
        held.used, held.answer = now, self._issue(held.grant, now)
        return JSONResponse(held.answer)

    async def revoke(self, request: Request) -> Response:
        """POST /connect/revocation: revoke a refresh token and remove its connections."""
        form = await _form(request)
        client_id, secret = self._client(request, form)
        if (
            client_id != self.client_id
            or secret is None
            or not hmac.compare_digest(secret, self.client_secret)
        ):
            return _error("invalid_client")
        with self.lock:
            held = self.refresh.get(form.get("token", ""))
            if held is not None:
                self._revoke(held.grant)
        return Response(status_code=200)

    # ---- connections ------------------------------------------------------------------------------------
    def _bearer(self, request: Request) -> Access | Response:
        checked = self.check(request.headers.get("authorization"))
        if isinstance(checked, str):
            return JSONResponse(
                {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": checked}, status_code=401
            )
        return checked

    async def connections(self, request: Request) -> Response:
        """GET /connections: the tenants this token's authorisation connected."""
        access = self._bearer(request)
        if isinstance(access, Response):
            return access
        event = request.query_params.get("authEventId")
        rows = [
            {
                "id": c.id,
                "authEventId": c.auth_event_id,
                "tenantId": c.tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": c.tenant_name,
                "createdDateUtc": c.created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "updatedDateUtc": c.created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            for c in list(access.grant.connections)
            if event is None or c.auth_event_id == event
        ]
        return JSONResponse(rows)

    async def delete_connection(self, request: Request) -> Response:
        """DELETE /connections/{id}: disconnect one tenant."""
        access = self._bearer(request)
        if isinstance(access, Response):
            return access
        wanted = request.path_params["id"]
        with self.lock:
            before = len(access.grant.connections)
            access.grant.connections = [c for c in access.grant.connections if c.id != wanted]
            gone = len(access.grant.connections) < before
        return Response(status_code=204 if gone else 404)

    def tenant_allowed(self, access: Access, tenant_id: str | None) -> bool:
        return tenant_id is not None and any(c.tenant_id == tenant_id for c in access.grant.connections)
