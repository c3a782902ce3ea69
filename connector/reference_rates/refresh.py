"""Fetch the reference rates, store what came back, and tell firms whose statutory interest is not covered.

Each source is fetched outside any transaction and stored in a short one of its own, so one service down
does not hold back the other; a failed or malformed answer changes nothing stored. Then every connected
tenant is checked (`check`): with statutory interest on, a half-year whose reference day is past what is
confirmed opens the health issue `reference_rate_stale` (told to the firm once, by the next night's
notices); once covered, or with statutory interest off, it closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import requests
import structlog
from sqlalchemy import Connection

from connector import health
from connector.config import Settings
from connector.model import ConnectionState, Tenant
from connector.reference_rates import sources, stored
from connector.reference_rates.fetch import Unreachable, fetch
from connector.reference_rates.sources import BadAnswer, Source
from connector.rules import interest
from connector.store import Store
from connector.store.tenants import UnknownTenant, get_connection, get_tenant, list_tenants
from connector.yamlfile import FileProblem

log = structlog.get_logger(__name__)
MAX_LAG = timedelta(days=10)  # a daily series whose newest row is older than this is a stale answer


@dataclass(frozen=True, slots=True)
class Refreshed:
    source: Source
    count: int = 0  # observations stored
    error: str | None = None  # why nothing was stored


def refresh(
    store: Store,
    now: datetime,
    wanted: Sequence[Source] | None = None,
    *,
    session: requests.Session | None = None,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Refreshed]:
    """Fetch each source (default: both, at their module URLs) and store its answer, stamped `now`."""
    done = []
    for source in wanted if wanted is not None else sources.every():
        try:
            changes = fetch(source, session=session, attempts=attempts, sleep=sleep)
            newest = changes[-1][0]
            if source.daily and now.date() - newest > MAX_LAG:
                raise BadAnswer(f"{source.label}: the newest observation is {newest}: a stale answer")
            with store.begin() as conn:
                before = stored.newest(conn, source.series)
                if before is not None and newest < before:
                    raise BadAnswer(f"{source.label}: the answer ends {newest}, before the {before} stored")
                stored.save(conn, source.series, changes, now)
        except (Unreachable, BadAnswer) as exc:
            log.info("rates.refresh_failed", source=source.key, reason=str(exc))  # the caller reports it
            done.append(Refreshed(source, error=str(exc)))
            continue
        log.info("rates.refreshed", source=source.key, observations=len(changes), newest=str(newest))
        done.append(Refreshed(source, len(changes)))
    return done


def check(
    store: Store, settings: Settings, now: datetime, tenant_id: str | None = None
) -> dict[str, health.Issue | None]:
    """Open or close `reference_rate_stale` for every connected tenant (or only `tenant_id`); returns what
    each has now.

    A tenant whose own reference_rates.yaml cannot be read is left as it was (its night fails on the
    same file, with the reason).
    """
    regime = settings.credit.statutory_interest
    with store.read() as conn:
        tenants = []
        for tenant in _candidates(conn, tenant_id):
            link = get_connection(conn, tenant.id)
            if link is not None and link.state is not ConnectionState.DISCONNECTED:
                tenants.append(tenant)
        fetched = stored.observed(conn)
    found: dict[str, health.Issue | None] = {}
    for tenant in tenants:
        issue = None
        if regime != "off":
            try:
                rates = interest.load_rates(settings.tenant_dir(tenant.id) / stored.RATES_FILE, fetched)
            except FileProblem as exc:
                log.warning("rates.tenant_file", tenant=tenant.id, reason=str(exc))
                continue
            today = now.astimezone(ZoneInfo(tenant.timezone)).date()
            issue = health.reference_rate_issue(interest.Regime(regime), rates, today)
        with store.begin() as conn:
            health.record(conn, tenant.id, [issue] if issue else [], now, health.RATE_KINDS)
        found[tenant.id] = issue
    return found


def _candidates(conn: Connection, tenant_id: str | None) -> list[Tenant]:
    """Every tenant, or only `tenant_id` (each firm's night asks for its own: reading every tenant there
    made a night's cost grow with the number of firms)."""
    if tenant_id is None:
        return list_tenants(conn)
    try:
        return [get_tenant(conn, tenant_id)]
    except UnknownTenant:
        return []


def wanted_by(settings: Settings) -> tuple[Source, ...]:
    """The sources the installation's statutory interest needs (none when it is off)."""
    regime = settings.credit.statutory_interest
    every = sources.every(settings.rates.boe_url, settings.rates.ecb_url)
    return tuple(s for s in every if regime != "off" and s.series == interest.SERIES[regime])


def daily(store: Store, settings: Settings, now: datetime) -> str:
    """`ccm serve`'s daily refresh: fetch what statutory interest needs, check every tenant; one line."""
    done = refresh(store, now, wanted_by(settings))
    stale = sorted(t for t, issue in check(store, settings, now).items() if issue is not None)
    parts = [r.error or f"{r.source.label}: {r.count} observations" for r in done] or ["nothing to fetch"]
    if stale:
        parts.append(f"stale for {', '.join(stale)}")
    return "; ".join(parts)
