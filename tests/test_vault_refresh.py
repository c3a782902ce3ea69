"""A token refresh holds no database transaction while it waits on the token endpoint, and stays one at a time.

Against the local Xero sandbox over real HTTPS (its identity service watched and slowed by a subclass, so only
the token endpoint is slow), on SQLite and on PostgreSQL: another tenant's page and run lease commit while a
refresh is in flight; threads and processes refreshing one grant at once make one call to the token endpoint;
the rotated refresh token is in the vault before the new access token reaches the API; an answer lost between
the endpoint and the commit (the process died, or the database refused it) costs one more call, in Xero's
grace window. Beside them, the refresh claim's rules with a stand-in refresher.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool
from starlette.requests import Request
from starlette.responses import Response

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import FirmSize, generate
from adapters.xero import connect as xero_connect
from adapters.xero import sandbox as xero_sandbox
from adapters.xero.sandbox.identity import Access, Identity
from adapters.xero.settings import XeroSettings
from adapters.xero.settings import xero_settings as xero_section
from connector.config import Settings
from connector.lease import acquire, renew
from connector.ledger import Retriable
from connector.model import Tenant
from connector.oauth import TokenSet, TokenVault, load_key
from connector.store import Store
from connector.store.schema import customers, run_leases
from connector.store.tenants import get_tenant, save_tenant
from connector.sync import run_sync
from connector.wiring import ledger_for, mapping_for

SLOW_S = 3.0  # the token endpoint's answer time in the test that commits beside a refresh
SIZE = FirmSize(5, 100, 50)
JOIN_S = 60.0


@dataclass
class Endpoint:
    """What the sandbox's token endpoint saw and when, in order; `delay` slows refresh grants only."""

    delay: float = 0.0
    events: list[str] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)  # each refresh grant's answer, in order
    on_arrival: Callable[[], None] | None = None  # runs (in the server's thread) as a refresh grant arrives
    on_first_use: Callable[[str], None] | None = None  # runs as the API first sees a refreshed access token
    used: set[str] = field(default_factory=set)  # access tokens the API has seen
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, event: str) -> None:
        with self._lock:
            self.events.append(event)

    def issued_with(self, access: str) -> str | None:
        """The refresh token a refresh grant issued together with `access`, if one did."""
        return next((a["refresh_token"] for a in self.answers if a["access_token"] == access), None)


def watched_identity(endpoint: Endpoint) -> type[Identity]:
    class Watched(Identity):
        async def token(self, request: Request) -> Response:
            refreshing = b"grant_type=refresh_token" in await request.body()  # Starlette keeps the body
            if refreshing:
                if endpoint.on_arrival is not None:
                    endpoint.on_arrival()
                else:
                    endpoint.note("token asked")
                await asyncio.sleep(endpoint.delay)
            response = await super().token(request)
            if refreshing and response.status_code == 200:
                endpoint.answers.append(json.loads(bytes(response.body)))
            if refreshing:
                endpoint.note("token answered")
            return response

        def check(self, authorization: str | None) -> Access | str:
            checked = super().check(authorization)
            access = (authorization or "")[7:].strip()
            if isinstance(checked, Access) and endpoint.on_first_use and access not in endpoint.used:
                endpoint.used.add(access)
                if endpoint.issued_with(access) is not None:
                    endpoint.on_first_use(access)
            return checked

    return Watched


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


@pytest.fixture
def xero(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[xero_sandbox.XeroSandbox]:
    monkeypatch.setattr(xero_sandbox, "Identity", watched_identity(endpoint))
    real = SandboxClock()  # the machine's clock, as the vault's: the firm ends the day before its date
    handle = xero_sandbox.start(generate(5, SIZE, today=real.now().date(), name="Acme Ltd"), clock=real,
                                limits=False)  # fmt: skip
    yield handle
    handle.stop()


def xero_settings(handle: xero_sandbox.XeroSandbox, tmp_path: Path) -> Settings:
    url = handle.base_url
    return Settings(data_dir=tmp_path / "ccm", ledgers={"xero": XeroSettings(
        client_id=handle.client_id, client_secret=handle.client_secret, login_url=url, identity_url=url,
        api_url=url, ca_bundle=handle.ca_path,
    )})  # fmt: skip


def connected(
    handle: xero_sandbox.XeroSandbox, store: Store, settings: Settings, tenants: tuple[str, ...] = ("acme",)
) -> TokenVault:
    """One consent through the sandbox, saved for each of `tenants` (as one grant when several), expired."""
    auth = xero_connect.begin(xero_section(settings))
    code = xero_connect.consent_code(auth, xero_section(settings))
    tokens, orgs = xero_connect.complete(xero_section(settings), code, auth.code_verifier, datetime.now(UTC))
    vault = TokenVault(store, load_key(settings))
    grant = "consent-1" if len(tenants) > 1 else None
    for name in tenants:
        xero_connect.save(store, vault, Tenant(name, name.title(), "xero"), orgs[0], tokens, grant)
    expired = replace(tokens, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    vault.put(tenants[0], expired, grant)  # ccm thinks the access token dead: the next use refreshes
    return vault


def refresher(settings: Settings) -> Callable[[TokenSet], TokenSet]:
    renew: Callable[[TokenSet], TokenSet] = xero_connect.refresher(xero_section(settings))
    return renew


def in_use(store: Store) -> int:
    """Connections checked out of the store's pool now (a transaction open, or a connection kept)."""
    pool = store.engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def commit_a_page(store: Store, tenant_id: str, n: int = 20) -> None:
    with store.begin() as conn:
        conn.execute(customers.insert(), [
            {"tenant_id": tenant_id, "id": f"c{i}", "name": f"Customer {i}", "status": "active", "segments": []}
            for i in range(n)
        ])  # fmt: skip


# ---- no transaction across the token endpoint's answer


def test_another_tenant_commits_a_page_and_renews_its_lease_while_a_refresh_waits_on_the_endpoint(
    xero: xero_sandbox.XeroSandbox, endpoint: Endpoint, store: Store, tmp_path: Path
) -> None:
    settings = xero_settings(xero, tmp_path)
    vault = connected(xero, store, settings)
    with store.begin() as conn:
        save_tenant(conn, Tenant("other", "Other Ltd", "scripted"))
    lease = acquire(store, "other", "other-night", datetime.now(UTC))
    asked = threading.Event()

    def arrival() -> None:  # in the sandbox's thread, as the refresh grant arrives and before it is answered
        endpoint.note(f"token asked; database connections held by the refresher: {in_use(store)}")
        asked.set()

    def other_tenant() -> None:
        asked.wait(JOIN_S)
        commit_a_page(store, "other")
        endpoint.note("other tenant's page committed")
        renew(store, lease, datetime.now(UTC))
        endpoint.note("other tenant's lease renewed")

    endpoint.delay, endpoint.on_arrival = SLOW_S, arrival
    beside = threading.Thread(target=other_tenant)
    beside.start()
    try:
        got = vault.fresh("acme", refresher(settings))
    finally:
        asked.set()
        beside.join(JOIN_S)
    assert endpoint.events == [
        "token asked; database connections held by the refresher: 0",
        "other tenant's page committed",
        "other tenant's lease renewed",
        "token answered",
    ]
    assert vault.get("acme") == got
    assert got.refresh_token == endpoint.answers[0]["refresh_token"]


def test_the_rotated_refresh_token_is_in_the_vault_before_the_api_sees_the_new_access_token(
    xero: xero_sandbox.XeroSandbox, endpoint: Endpoint, store: Store, tmp_path: Path
) -> None:
    settings = xero_settings(xero, tmp_path)
    vault = connected(xero, store, settings)
    looked: list[bool] = []

    def first_use(
        access: str,
    ) -> None:  # the API's first request with a refreshed access token: check the vault
        stored = TokenVault(store, load_key(settings)).get("acme")
        looked.append(stored is not None and stored.refresh_token == endpoint.issued_with(access))

    endpoint.on_first_use = first_use
    with store.read() as conn:
        tenant = get_tenant(conn, "acme")
    assert tenant is not None
    ledger = ledger_for(settings, store, tenant, xero.clock)
    result = run_sync(store, "acme", ledger, mapping_for(settings, tenant), clock=xero.clock.now)
    assert result.outcome == "ok", result.error
    assert len(endpoint.answers) == 1
    assert looked == [True]
    assert vault.get("acme") is not None


# ---- one refresh at a time, threads and processes


def test_two_threads_refreshing_one_expired_token_make_one_call_share_its_answer_and_hold_no_connection(
    xero: xero_sandbox.XeroSandbox, endpoint: Endpoint, store: Store, tmp_path: Path
) -> None:
    settings = xero_settings(xero, tmp_path)
    vault = connected(xero, store, settings)
    old = vault.get("acme")
    together = threading.Barrier(2)
    got: list[TokenSet] = []

    def look() -> None:  # once both threads are in: one on the token endpoint, one waiting for it
        time.sleep(0.4)
        endpoint.note(f"database connections held meanwhile: {in_use(store)}")

    def arrival() -> None:
        endpoint.note("token asked")
        threading.Thread(target=look).start()

    endpoint.delay, endpoint.on_arrival = 1.0, arrival

    def refresh() -> None:
        together.wait()
        got.append(TokenVault(store, load_key(settings)).fresh("acme", refresher(settings)))

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert endpoint.events == ["token asked", "database connections held meanwhile: 0", "token answered"]
    assert len(got) == 2 and got[0] == got[1] == vault.get("acme")
    assert old is not None and got[0].refresh_token != old.refresh_token
    assert got[0].refresh_token == endpoint.answers[0]["refresh_token"]


def _refresh_in_a_process(url: str, key: bytes, xero: dict[str, str], tenant: str, ready: Any, go: Any,
                          answers: Any) -> None:  # fmt: skip
    store = Store.open(url)
    try:
        settings = Settings(ledgers={"xero": XeroSettings(**xero)})  # type: ignore[arg-type]
        vault = TokenVault(store, key)
        ready.release()
        go.wait(JOIN_S)
        answers.put(vault.fresh(tenant, refresher(settings)).to_json())
    finally:
        store.close()


def held_across_a_wait(store: Store, application: str) -> int:
    """Sessions of `application` idle inside a transaction, or waiting on a lock, for over 0.3 s now
    (PostgreSQL; 0 on SQLite, where a held write lock shows as the commit beside it waiting)."""
    if store.backend != "postgresql":
        return 0
    with store.read() as conn:
        count = conn.execute(text("""
            SELECT count(*) FROM pg_stat_activity WHERE application_name = :app AND (
              (state LIKE 'idle in transaction%' AND now() - state_change > interval '300 milliseconds')
              OR (wait_event_type = 'Lock' AND now() - query_start > interval '300 milliseconds'))
        """), {"app": application}).scalar_one()  # fmt: skip
    return int(count)


@pytest.mark.parametrize("tenants", [("acme", "acme"), ("north", "south")], ids=["one tenant", "one grant"])
def test_two_processes_refreshing_one_grant_make_one_call_share_its_answer_and_wait_outside_the_database(
    xero: xero_sandbox.XeroSandbox, endpoint: Endpoint, db_url: str, store: Store, tmp_path: Path,
    tenants: tuple[str, str],
) -> None:  # fmt: skip
    settings = xero_settings(xero, tmp_path)
    vault = connected(xero, store, settings, tuple(dict.fromkeys(tenants)))
    with store.begin() as conn:
        save_tenant(conn, Tenant("other", "Other Ltd", "scripted"))
    application = f"ccm-refresh-{os.getpid()}-{time.monotonic_ns()}"
    url = db_url
    if store.backend == "postgresql":  # names the workers' sessions, to find them in pg_stat_activity
        url = make_url(db_url).update_query_dict({"application_name": application}).render_as_string(False)
    asked = threading.Event()

    def arrival() -> None:
        endpoint.note("token asked")
        asked.set()

    def other_tenant() -> None:  # while one worker's call is in flight and the other waits for it
        asked.wait(JOIN_S)
        time.sleep(0.6)
        held = held_across_a_wait(store, application)
        commit_a_page(store, "other")
        endpoint.note(f"other tenant's page committed; worker sessions held across a wait: {held}")

    endpoint.delay, endpoint.on_arrival = 1.5, arrival
    ctx = multiprocessing.get_context("spawn")
    ready, go, answers = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    assert xero_section(settings).client_secret is not None
    xero_args = {"client_id": xero_section(settings).client_id, "client_secret": xero_section(settings).client_secret,
                 "identity_url": xero.base_url, "ca_bundle": str(xero.ca_path)}  # fmt: skip
    key = load_key(settings)
    workers = [
        ctx.Process(target=_refresh_in_a_process, args=(url, key, xero_args, t, ready, go, answers))
        for t in tenants
    ]
    for w in workers:
        w.start()
    for _ in workers:
        assert ready.acquire(timeout=JOIN_S)
    beside = threading.Thread(target=other_tenant)
    beside.start()
    go.set()
    try:
        got = [TokenSet.from_json(answers.get(timeout=JOIN_S)) for _ in workers]
    finally:
        asked.set()
        beside.join(JOIN_S)
        for w in workers:
            w.join(JOIN_S)
    assert [w.exitcode for w in workers] == [0, 0]
    assert endpoint.events == [
        "token asked",
        "other tenant's page committed; worker sessions held across a wait: 0",
        "token answered",
    ]
    assert got[0] == got[1] == vault.get(tenants[0]) == vault.get(tenants[1])
    assert got[0].refresh_token == endpoint.answers[0]["refresh_token"]
    with store.read() as conn:
        assert conn.execute(select(run_leases)).all() == []  # the refresh's claim is released


# ---- an answer that was not stored


def _die_after_the_answer(url: str, key: bytes, xero: dict[str, str], answer_file: str) -> None:
    store = Store.open(url)
    settings = Settings(ledgers={"xero": XeroSettings(**xero)})  # type: ignore[arg-type]
    renew = refresher(settings)

    def answered_then_died(current: TokenSet) -> TokenSet:
        fresh = renew(current)
        Path(answer_file).write_text(fresh.refresh_token)
        os._exit(9)  # between the token endpoint's answer and the commit

    TokenVault(store, key).fresh("acme", answered_then_died)


def test_a_refresher_that_dies_between_the_answer_and_the_commit_costs_nothing(
    xero: xero_sandbox.XeroSandbox, endpoint: Endpoint, db_url: str, store: Store, tmp_path: Path
) -> None:
    settings = xero_settings(xero, tmp_path)
    vault = connected(xero, store, settings)
    old = vault.get("acme")
    assert old is not None and xero_section(settings).client_secret is not None
    xero_args = {"client_id": xero_section(settings).client_id, "client_secret": xero_section(settings).client_secret,
                 "identity_url": xero.base_url, "ca_bundle": str(xero.ca_path)}  # fmt: skip
    answer = tmp_path / "answer"
    died = multiprocessing.get_context("spawn").Process(
        target=_die_after_the_answer, args=(db_url, load_key(settings), xero_args, str(answer))
    )
    died.start()
    died.join(JOIN_S)
    assert died.exitcode == 9
    lost = answer.read_text()
    stored = vault.get("acme")
    assert stored is not None and stored.refresh_token == old.refresh_token  # the answer was never stored

    got = vault.fresh("acme", refresher(settings))  # the dead holder's claim does not hold this one up

    # Xero accepts the old refresh token for 30 minutes after its use, answering with the same new pair.
    assert len(endpoint.answers) == 2
    assert got.refresh_token == lost == endpoint.answers[1]["refresh_token"]
    assert vault.get("acme") == got
    assert xero_connect.connections(xero_section(settings), got, datetime.now(UTC))


def test_a_rotation_that_cannot_be_stored_is_not_used_and_the_next_refresh_recovers_it(
    xero: xero_sandbox.XeroSandbox, endpoint: Endpoint, store: Store, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    settings = xero_settings(xero, tmp_path)
    vault = connected(xero, store, settings)
    old = vault.get("acme")
    assert old is not None

    def database_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("UPDATE oauth_grants", {}, Exception("database is locked"))

    with monkeypatch.context() as patched:
        patched.setattr(vault.tokens, "write", database_down)
        with pytest.raises(Retriable, match="could not be stored"):
            vault.fresh("acme", refresher(settings))
    assert vault.get("acme") == old  # the new access token was never handed out
    got = vault.fresh("acme", refresher(settings))
    assert len(endpoint.answers) == 2
    assert got.refresh_token == endpoint.answers[0]["refresh_token"] == endpoint.answers[1]["refresh_token"]
    assert vault.get("acme") == got


# ---- the claim: waited for by polling, taken over when it runs out, given up on after a bound

KEY = Fernet.generate_key()


def expired(access: str = "access-1", refresh: str = "refresh-1") -> TokenSet:
    return TokenSet(access, refresh, datetime.now(UTC) - timedelta(seconds=1), ("offline_access",))


def live(access: str, refresh: str) -> TokenSet:
    return TokenSet(access, refresh, datetime.now(UTC) + timedelta(minutes=30), ("offline_access",))


def claimed_elsewhere(store: Store, key: str, seconds: float) -> datetime:
    """A refresh claim held by a process on another host (so never known dead), running out in `seconds`."""
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    with store.begin() as conn:
        conn.execute(run_leases.insert().values(
            tenant_id=f"refresh:{key}", holder="elsewhere:4242:0badc0de", acquired_at=datetime.now(UTC),
            expires_at=until,
        ))  # fmt: skip
    return until


def test_a_refresh_claimed_on_another_host_is_waited_for_until_the_claim_runs_out(
    store: Store, tenant
) -> None:
    vault = TokenVault(store, KEY)
    vault.put("acme", expired())
    until = claimed_elsewhere(store, "acme", 1.0)
    called: list[datetime] = []

    def refresh(current: TokenSet) -> TokenSet:
        called.append(datetime.now(UTC))
        return live("access-2", "refresh-2")

    got = vault.fresh("acme", refresh)
    assert got.access_token == "access-2"
    assert len(called) == 1 and called[0] >= until


def test_a_waiter_gives_up_retriably_on_a_claim_that_outlasts_its_patience(store: Store, tenant) -> None:
    vault = TokenVault(store, KEY)
    vault.refresh_wait = timedelta(seconds=0.5)
    vault.put("acme", expired())
    claimed_elsewhere(store, "acme", 60.0)
    called: list[TokenSet] = []

    def refresh(current: TokenSet) -> TokenSet:
        called.append(current)
        return live("access-2", "refresh-2")

    with pytest.raises(Retriable, match="being refreshed"):
        vault.fresh("acme", refresh)
    assert called == []
    stored = vault.get("acme")
    assert stored is not None and stored.access_token == "access-1"


def test_a_refresher_overtaken_by_another_holder_uses_the_tokens_that_holder_stored(
    store: Store, tenant
) -> None:
    vault = TokenVault(store, KEY)
    vault.put("acme", expired())
    theirs = live("access-theirs", "refresh-theirs")
    done = threading.Event()

    def put_theirs() -> None:
        TokenVault(store, KEY).put("acme", theirs)  # another holder, its claim taken over, stored first
        done.set()

    def slow_refresh(current: TokenSet) -> TokenSet:
        beside = threading.Thread(target=put_theirs, daemon=True)
        beside.start()
        done.wait(5.0)
        return live("access-ours", "refresh-ours")

    got = vault.fresh("acme", slow_refresh)
    done.wait(JOIN_S)
    assert got == theirs
    assert vault.get("acme") == theirs


def test_concurrent_forced_refreshes_after_one_rejection_make_one_call(store: Store, tenant) -> None:
    vault = TokenVault(store, KEY)
    vault.put("acme", live("access-1", "refresh-1"))
    calls: list[str] = []
    together = threading.Barrier(4)

    def refresh(current: TokenSet) -> TokenSet:
        calls.append(current.access_token)
        time.sleep(0.2)
        return live("access-2", "refresh-2")

    got: list[str] = []

    def rejected() -> None:
        together.wait()
        got.append(vault.refresh("acme", refresh, force=True, rejected="access-1").access_token)

    threads = [threading.Thread(target=rejected) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert calls == ["access-1"]
    assert got == ["access-2"] * 4
