"""A faithful local QuickBooks Online: OAuth, the accounting API, limits, CDC and webhooks, over HTTPS.

Everything is under one base URL (`handle.base_url`, "https://127.0.0.1:PORT"):

    GET|POST /connect/oauth2                       authorize: redirects with code, state and realmId
                                                   (auto-consent, or a consent form with Connect/Cancel)
    POST     /oauth2/v1/tokens/bearer              token (Basic client auth): authorization_code/refresh_token
    POST     /v2/oauth2/tokens/revoke              revoke, body {"token": ...} (or form token=...)
    GET|POST /v3/company/{realm}/query             ?query=... or POST body (Content-Type application/text)
    GET      /v3/company/{realm}/{entity}/{id}     read: customer, invoice, payment, creditmemo, attachable
    POST     /v3/company/{realm}/{entity}          update (sparse/full, SyncToken checked); create Attachable
    POST     /v3/company/{realm}/invoice?operation=void   void ({"Id", "SyncToken"})
    POST     /v3/company/{realm}/invoice/{id}/send?sendTo=...
    POST     /v3/company/{realm}/batch             up to 30 BatchItemRequests
    GET      /v3/company/{realm}/cdc?entities=...&changedSince=...
    GET      /v3/company/{realm}/companyinfo/{realm}

Every /v3 call needs a Bearer token; `minorversion` below 75, or none, is served as 75 (as QBO does since
August 2025). Limits per realm: 10 requests/s, 500/min, 10 in flight, 40 batches/min (429 + XML 3001).
Every answer carries an `intuit_tid` header. `extra_firms` serves more companies (realms) on the same
sandbox, each with its own data, limits and webhooks: `sandbox.realms` lists them, `connect(realm)` consents
to one without a browser, and the authorize endpoint takes the sandbox's own `realmId` parameter to pick one.
Point python-quickbooks at it per instance:
`qb.api_url_v3 = qb.sandbox_api_url_v3 = handle.api_url`, `qb.session.verify = str(handle.ca_path)` and
`qb.session.trust_env = False` (else REQUESTS_CA_BUNDLE overrides `verify`); its auth_client may be any
object with client_id, environment, access_token and refresh_token (intuitlib's AuthClient fetches Intuit's
discovery document from the internet). Point authlib's OAuth2Session at `handle.authorize_url`,
`handle.token_url` and `handle.revoke_url`, with the same `verify` and `trust_env`.
`python -m adapters.quickbooks.sandbox` serves one in a process of its own (process.py). Data comes from the
shared generator (adapters/sandbox/generator.py), rendered as QBO JSON (see render.py for how drafts, voids,
deletions and credit applications appear).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.quickbooks.sandbox.api import Api
from adapters.quickbooks.sandbox.app import API_PATH, AUTHORIZE_PATH, REVOKE_PATH, TOKEN_PATH, build_app
from adapters.quickbooks.sandbox.auth import SCOPE, OAuthServer
from adapters.quickbooks.sandbox.company import Company
from adapters.quickbooks.sandbox.notify import DEFAULT_VERIFIER, Format, Notifier
from adapters.quickbooks.settings import QuickBooksSettings
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.faults import Faults
from adapters.sandbox.generator import Firm, generate
from adapters.sandbox.handle import SandboxHandle, launch, prepare, run_until_interrupted, settings_env
from adapters.sandbox.limiter import Window, WindowLimiter

__all__ = ["SCOPE", "QuickBooksSandbox", "run_forever", "start"]

REQUESTS_PER_SECOND = 10  # per realm and app, sandbox companies too since 2025-09-15
REQUESTS_PER_MINUTE = 500
CONCURRENT = 10
BATCHES_PER_MINUTE = 40
WEBHOOK_POLL_S = 0.2


def realm_for(seed: int) -> str:
    """The company id (realmId) of the sandbox company made from `seed`."""
    return str(9130_3550_0000_0000 + seed)


def client_settings(
    base_url: str, ca: Path, client_id: str, client_secret: str, *, pacing: bool
) -> QuickBooksSettings:
    """ccm's `[quickbooks]` settings for a sandbox serving at `base_url`; `pacing` as its limits are on."""
    return QuickBooksSettings(
        client_id=client_id, client_secret=client_secret, authorize_url=base_url + AUTHORIZE_PATH,
        token_url=base_url + TOKEN_PATH, revoke_url=base_url + REVOKE_PATH, api_url=base_url, ca_bundle=ca,
        pacing=pacing,
    )  # fmt: skip


@dataclass
class QuickBooksSandbox(SandboxHandle):
    """A running sandbox: its companies, OAuth server, limits, webhooks and test controls.

    `company`, `api` and `notifier` are the first company's; `companies`, `apis` and `notifiers` hold every
    company's by realm. Test controls act on the first company unless given a `realm`.
    """

    company: Company
    oauth: OAuthServer
    api: Api
    notifier: Notifier
    auto_consent: bool = True
    apis: dict[str, Api] = field(default_factory=dict)
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _pump: threading.Thread | None = field(default=None, repr=False)

    @property
    def realm(self) -> str:
        """The first company's id (realmId)."""
        return self.company.realm

    @property
    def realms(self) -> list[str]:
        """Every company's realmId, the first company's first."""
        return list(self.apis)

    @property
    def companies(self) -> dict[str, Company]:
        """Every company by realmId."""
        return {realm: api.company for realm, api in self.apis.items()}

    @property
    def api_url(self) -> str:
        """What python-quickbooks' `api_url_v3` must be."""
        return self.base_url + API_PATH

    @property
    def authorize_url(self) -> str:
        """Intuit's authorize endpoint, here."""
        return self.base_url + AUTHORIZE_PATH

    @property
    def token_url(self) -> str:
        """Intuit's token endpoint, here."""
        return self.base_url + TOKEN_PATH

    @property
    def revoke_url(self) -> str:
        """Intuit's revoke endpoint, here."""
        return self.base_url + REVOKE_PATH

    @property
    def limits(self) -> bool:
        """Whether QBO's limits are enforced (set False for throughput benches)."""
        return self.api.limiter.enabled

    @limits.setter
    def limits(self, on: bool) -> None:
        self.api.limiter.enabled = self.api.batch_limiter.enabled = on

    def settings(self) -> QuickBooksSettings:
        """ccm's `[quickbooks]` settings for this sandbox; paced only while its limits are on (unpaced against
        a sandbox that counts nothing, calls would only wait)."""
        return client_settings(
            self.base_url, self.ca_path, self.client_id, self.client_secret, pacing=self.limits
        )

    def env(self) -> dict[str, str]:
        """The same as `CCM_QUICKBOOKS__*` environment variables, for a `ccm` child process."""
        return settings_env("quickbooks", self.settings())

    # -- test controls ------------------------------------------------------------------------------

    def connect(self, realm: str | None = None) -> dict[str, Any]:
        """Consent without a browser: a token answer (access_token, refresh_token, ...) for one company."""
        return self.oauth.grant(self._realm(realm))

    def disconnect(self) -> None:
        """The user disconnects the app in QBO: every token stops working."""
        self.oauth.revoke_all()

    def post_payment(self, invoice_id: str, amount: Decimal, realm: str | None = None) -> str:
        """A customer pays an invoice; returns the new Payment's Id (and queues webhooks)."""
        realm = self._realm(realm)
        row = self.apis[realm].company.post_payment(invoice_id, amount)
        self.notifiers[realm].record("Payment", str(row.id), "Create")
        self.notifiers[realm].record("Invoice", invoice_id, "Update")
        return str(row.id)

    def set_online_payments(self, on: bool, realm: str | None = None) -> None:
        """The company takes online payments (or stops): invoices read with ?include=invoiceLink carry one."""
        self.apis[self._realm(realm)].company.online_payments = on

    def void_invoice(self, invoice_id: str, realm: str | None = None) -> None:
        """Void an invoice as QBO does (amounts zero, PrivateNote "Voided"), with a Void webhook."""
        realm = self._realm(realm)
        self.apis[realm].company.void_invoice(invoice_id)
        self.notifiers[realm].record("Invoice", invoice_id, "Void")

    def delete(self, entity: str, id_: str, realm: str | None = None) -> None:
        """Delete a record: gone from queries, a tombstone in CDC, a Delete webhook."""
        realm = self._realm(realm)
        self.apis[realm].company.delete(entity, id_)
        self.notifiers[realm].record(entity, id_, "Delete")

    def _realm(self, realm: str | None) -> str:
        if realm is None:
            return self.realm
        if realm not in self.apis:
            raise KeyError(f"realm {realm!r} is not a company of this sandbox (it serves {self.realms})")
        return realm

    def banner(self) -> list[str]:
        return [
            f"QuickBooks Online sandbox: {self.base_url}  (realmId {', '.join(self.realms)})",
            f"  API: {self.api_url}  CA: {self.ca_path}",
            f"  client_id: {self.client_id}  client_secret: {self.client_secret}",
        ]

    def stop(self) -> None:
        """Stop webhook delivery and the server."""
        self._stop.set()
        if self._pump is not None:
            self._pump.join(timeout=5)
        super().stop()

    def _pump_loop(self) -> None:
        while not self._stop.wait(WEBHOOK_POLL_S):
            for notifier in self.notifiers.values():
                notifier.pump()


def start(firm: Firm | None = None, *, seed: int = 1, size: str = "demo", clock: SandboxClock | None = None,
          limits: bool = True, faults: Faults | None = None, webhook_url: str | None = None,
          client_id: str = "ccm-sandbox-client",
          client_secret: str = "ccm-sandbox-secret",  # noqa: S107 - the sandbox's published demo client
          auto_consent: bool = True, webhook_verifier: str = DEFAULT_VERIFIER,
          webhook_format: Format = "legacy", webhook_retries: bool = True, webhook_out_of_order: bool = False,
          webhook_verify: Path | bool = True, realm: str | None = None, host: str = "127.0.0.1",
          port: int = 0, extra_firms: Sequence[Firm] = ()) -> QuickBooksSandbox:  # fmt: skip
    """Start a sandbox company on a free loopback port over HTTPS.

    Args:
        firm: the data; generated from `seed` and `size` when None.
        seed: generator seed (also picks the realmId unless `realm` is given).
        size: "demo", "small" or "large".
        clock: the sandbox clock (real time by default).
        limits: enforce 10 requests/s, 500/min, 10 concurrent and 40 batches/min per realm.
        faults: fault injection (latency, 500/503, dropped connections).
        webhook_url: where to deliver notifications (a background pump delivers and retries them).
        client_id: the OAuth client the sandbox accepts.
        client_secret: its secret.
        auto_consent: redirect at once from authorize; False shows a consent form.
        webhook_verifier: the verifier token that signs `intuit-signature`.
        webhook_format: "legacy" (eventNotifications) or "cloudevents".
        webhook_retries: retry failed deliveries on Intuit's schedule.
        webhook_out_of_order: one change per notification, delivered newest first.
        webhook_verify: CA bundle (or True) for delivering to an HTTPS webhook_url.
        realm: the company id; derived from `seed` when None.
        host: the address to bind.
        port: the port (0: a free one).
        extra_firms: more companies on the same sandbox, with realmIds `realm_for(seed + 1)`, ... in order;
            each has its own data, limits and webhooks (to the same `webhook_url`).

    Returns:
        The running sandbox; call `stop()` when done.
    """
    clock = prepare(clock, client_secret, webhook_verifier)
    firms = [(realm or realm_for(seed), firm or generate(seed, size))]
    firms += [(realm_for(seed + i), extra) for i, extra in enumerate(extra_firms, start=1)]
    if len({r for r, _ in firms}) < len(firms):
        raise ValueError(f"start: realm {realm!r} clashes with an extra firm's realm; pick another")
    oauth = OAuthServer(client_id, client_secret, clock.now, clock.speed)
    windows = [Window("second", REQUESTS_PER_SECOND, 1), Window("minute", REQUESTS_PER_MINUTE, 60)]
    limiter = WindowLimiter(clock, windows, concurrency=CONCURRENT, enabled=limits)
    batch_limiter = WindowLimiter(clock, [Window("batch", BATCHES_PER_MINUTE, 60)], enabled=limits)
    apis: dict[str, Api] = {}
    notifiers: dict[str, Notifier] = {}
    for index, (realm_id, data) in enumerate(firms):
        company = Company(realm_id, data, clock.now)
        notifier = notifiers[realm_id] = Notifier(
            realm_id, clock, url=webhook_url, verifier=webhook_verifier, fmt=webhook_format,
            retries=webhook_retries, out_of_order=webhook_out_of_order, verify=webhook_verify,
            seed=seed + index,
        )  # fmt: skip
        apis[realm_id] = Api(company, oauth, limiter, batch_limiter, on_change=notifier.record)
    holder: dict[str, QuickBooksSandbox] = {}
    app = build_app(apis, oauth, lambda: holder["sandbox"].auto_consent)
    running = launch(app, clock, faults, host, port)
    first = next(iter(apis.values()))
    sandbox = QuickBooksSandbox(running, client_id, client_secret, first.company, oauth, first,
                                notifiers[first.company.realm], auto_consent, apis, notifiers)  # fmt: skip
    holder["sandbox"] = sandbox
    if webhook_url:
        sandbox._pump = threading.Thread(target=sandbox._pump_loop, name="qbo-sandbox-webhooks", daemon=True)
        sandbox._pump.start()
    return sandbox


def run_forever(host: str, port: int, *, seed: int, size: str) -> None:
    """Serve a sandbox until interrupted (what `ccm sandbox quickbooks` runs); prints how to reach it."""
    run_until_interrupted(lambda: start(seed=seed, size=size, host=host, port=port))
