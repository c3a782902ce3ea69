"""Connection health: what will stop a tenant's nightly run unless a person acts, told to the firm once.

Checked after every night's sync, from what the store knows and what the ledger said during the run:
- `reconnect_needed`: the ledger refused the refresh token; someone must connect again.
- `refresh_idle`: the refresh token has not been used for so long that it dies soon (Xero's die 60 days after
  their last use: warned from day 50 by default). ccm refreshes every night, so this means nights stopped.
- `consent_ending`: the consent itself ends soon whatever ccm does (QuickBooks' refresh tokens end five years
  after consent; the ledger stops extending them), so a person must re-consent before then.
- `day_limit`: the ledger's daily call allowance is nearly spent (Xero: 5,000 a day per organisation).
- `ledger_reminders`: the ledger's own invoice reminders are on: customers would be chased twice.
- `reference_rate_stale`: statutory interest is on and the central-bank rate today's half-year needs is not
  known yet (connector/reference_rates): interest is stated at the last rate known until it is. Checked
  after each reference-rate refresh (`ccm serve` daily, `ccm rates --refresh`), not by the night.
- `smtp_login_refused`: the SMTP server refused ccm's login: no e-mail goes out until smtp.username /
  smtp.password are fixed. Recorded by the executor when it opens its SMTP session; closed when one opens.
- `actions_need_attention`: outbox actions whose outcome is unknown or that failed wait for a person
  (`ccm outbox resolve`, `ccm outbox retry`). Recorded by the executor after each execution.

An issue stays open while the check keeps finding it and closes when it does not; the firm's contact address
gets one e-mail when an issue opens (through the outbox, so at most once), none while it stays open, and a new
one if it closes and opens again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from connector import ledger as registry
from connector.config import HealthSettings
from connector.ledger import Usage
from connector.model import Connection as Link
from connector.model import ConnectionState, Tenant
from connector.outbox import NewAction
from connector.payloads import Kind, NoticePayload
from connector.rules import interest
from connector.store.schema import health_issues
from connector.tokens.storage import expiries

KINDS = ("reconnect_needed", "refresh_idle", "consent_ending", "day_limit", "ledger_reminders")
STALE_RATE = "reference_rate_stale"
# Recorded by the reference-rate check (connector/reference_rates/refresh.py), never by a night: a kind in
# KINDS is closed by every night's check that does not find it.
RATE_KINDS = (STALE_RATE,)
SMTP_LOGIN = "smtp_login_refused"
ATTENTION = "actions_need_attention"
# Recorded by the executor as it sends (connector/run/execute.py), each with its own `checked`.
SEND_KINDS = (SMTP_LOGIN, ATTENTION)
_RATE_NAMES = {
    interest.Regime.UK: "Bank of England Bank Rate",
    interest.Regime.EU: "ECB main refinancing rate",
}


@dataclass(frozen=True, slots=True)
class Issue:
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class OpenIssue:
    tenant_id: str
    kind: str
    message: str
    first_seen: datetime
    last_seen: datetime
    notice_key: str | None


@dataclass(frozen=True, slots=True)
class Tokens:
    """The clear-text expiries the vault keeps beside the encrypted tokens."""

    refresh_expires_at: datetime | None
    updated_at: datetime  # when these tokens were issued: the refresh token was last used then


def ledger_name(ledger: str) -> str:
    """The ledger's name as people read it (its adapter's display name)."""
    return registry.display_name(ledger)


def tokens_of(conn: Connection, tenant_id: str) -> Tokens | None:
    row = expiries(conn, [tenant_id]).get(tenant_id)  # the tenant's grant's (migration 0019)
    return Tokens(row.refresh_expires_at, row.updated_at) if row else None


def _refresh_issue(
    tenant: Tenant, tokens: Tokens, idle_days: int | None, now: datetime, rules: HealthSettings
) -> Issue | None:
    name = ledger_name(tenant.ledger)
    rolling = tokens.updated_at + timedelta(days=idle_days) if idle_days else None
    hard = tokens.refresh_expires_at
    if hard is not None and (rolling is None or hard < rolling - timedelta(days=1)):
        left = hard - now
        if left <= timedelta(days=rules.reconsent_warn_days):
            return Issue(
                "consent_ending",
                f"the {name} consent ends on {hard:%Y-%m-%d} whatever ccm does: someone at the firm must "
                f"connect again before then ({_reconnect(tenant)})",
            )
        return None
    dies = min(d for d in (rolling, hard) if d is not None) if (rolling or hard) else None
    if dies is not None and dies - now <= timedelta(days=rules.refresh_warn_days):
        unused = (now - tokens.updated_at).days
        return Issue(
            "refresh_idle",
            f"the {name} refresh token has not been used for {unused} days and dies on {dies:%Y-%m-%d}: "
            f"nightly runs have stopped (see `ccm log --tenant {tenant.id}`)",
        )
    return None


def _reconnect(tenant: Tenant) -> str:
    return f"`ccm connect {tenant.ledger} -t {tenant.id}`"


def assess(
    tenant: Tenant,
    link: Link | None,
    tokens: Tokens | None,
    *,
    idle_days: int | None,
    usage: Usage | None,
    reminders_on: bool | None,
    now: datetime,
    rules: HealthSettings,
) -> list[Issue]:
    """Every problem found for one tenant (a pure function of what is passed in)."""
    name = ledger_name(tenant.ledger)
    found: list[Issue] = []
    if link is not None and link.state is ConnectionState.RECONNECT_NEEDED:
        why = link.message.removeprefix("reconnect needed: ")
        found.append(
            Issue(
                "reconnect_needed",
                f"ccm can no longer reach {name} ({why}): someone at the firm must connect again "
                f"({_reconnect(tenant)})",
            )
        )
    elif tokens is not None and (issue := _refresh_issue(tenant, tokens, idle_days, now, rules)):
        found.append(issue)
    left, limit = (usage.day_remaining, usage.day_limit) if usage is not None else (None, None)
    if left is not None and limit and left * 100 <= limit * rules.day_limit_warn_percent:
        found.append(
            Issue(
                "day_limit",
                f"only {left} of {limit} daily {name} API calls were left after the last run; running out "
                "stops syncs until midnight UTC",
            )
        )
    if reminders_on:
        found.append(
            Issue(
                "ledger_reminders",
                f"{name}'s own invoice reminders are switched on: customers would be chased twice; turn them "
                f"off in {name} (ccm sends the reminders)",
            )
        )
    return found


def reference_rate_issue(regime: interest.Regime, rates: interest.RateTable, today: date) -> Issue | None:
    """Whether statutory interest assessed `today` has the reference rate it needs (a pure function)."""
    series, on = interest.SERIES[regime.value], interest.needed(regime, today)
    if rates.confirmed(series, on):
        return None
    through = rates.through(series)
    try:
        last = f"the last rate known ({rates.in_force(series, on)}% + {interest.MARGIN}%)"
    except interest.RateUnknown:
        last = "no rate at all"
    known = f"ccm's rates are confirmed only up to {through}" if through else "ccm knows no such rate"
    half = interest.half_name(interest.half_start(today))
    return Issue(
        STALE_RATE,
        f"statutory interest for {half} uses the {_RATE_NAMES[regime]} on {on.day} {on:%B %Y}, but {known}: "
        f"reminders state interest at {last} until ccm fetches it (`ccm rates --refresh`; `ccm serve` tries "
        "daily) or it is added to reference_rates.yaml",
    )


def _row(row: Any) -> OpenIssue:
    return OpenIssue(row.tenant_id, row.kind, row.message, row.first_seen, row.last_seen, row.notice_key)


def record(
    conn: Connection, tenant_id: str, found: Sequence[Issue], now: datetime, checked: Sequence[str] = KINDS
) -> list[OpenIssue]:
    """Open or refresh the issues found, close the `checked` kinds not found; returns the newly opened."""
    h = health_issues.c
    rows = {r.kind: r for r in conn.execute(select(health_issues).where(h.tenant_id == tenant_id))}
    opened: list[OpenIssue] = []
    for issue in found:
        row = rows.get(issue.kind)
        this = update(health_issues).where(h.tenant_id == tenant_id, h.kind == issue.kind)
        if row is None:
            conn.execute(
                health_issues.insert().values(
                    tenant_id=tenant_id, kind=issue.kind, message=issue.message, first_seen=now, last_seen=now
                )
            )
        elif row.resolved_at is not None:  # back again: a new appearance, told anew
            conn.execute(
                this.values(
                    message=issue.message, first_seen=now, last_seen=now, resolved_at=None, notice_key=None
                )
            )
        else:
            conn.execute(this.values(message=issue.message, last_seen=now))
            continue
        opened.append(OpenIssue(tenant_id, issue.kind, issue.message, now, now, None))
    found_kinds = {i.kind for i in found}
    gone = [k for k in checked if k in rows and rows[k].resolved_at is None and k not in found_kinds]
    if gone:
        conn.execute(
            update(health_issues).where(h.tenant_id == tenant_id, h.kind.in_(gone)).values(resolved_at=now)
        )
    return opened


def open_issues(conn: Connection, tenant_id: str | None = None) -> list[OpenIssue]:
    """Issues not resolved, oldest first (one tenant's, or everyone's)."""
    h = health_issues.c
    query = select(health_issues).where(h.resolved_at.is_(None)).order_by(h.tenant_id, h.first_seen, h.kind)
    if tenant_id is not None:
        query = query.where(h.tenant_id == tenant_id)
    return [_row(r) for r in conn.execute(query)]


def notice_key(issue: OpenIssue) -> str:
    return f"notice:{issue.kind}:{issue.first_seen:%Y%m%dT%H%M%S}"


def notices(conn: Connection, tenant: Tenant, now: datetime) -> list[NewAction]:
    """Outbox actions telling the firm about open issues not told yet (none without a contact address)."""
    if not tenant.contact_email:
        return []
    actions = []
    h = health_issues.c
    for issue in open_issues(conn, tenant.id):
        if issue.notice_key is not None:
            continue
        key = notice_key(issue)
        conn.execute(
            update(health_issues).where(h.tenant_id == tenant.id, h.kind == issue.kind).values(notice_key=key)
        )
        actions.append(
            NewAction(
                key=key,
                kind=Kind.NOTICE,
                channel="email",
                customer_id="",
                payload=NoticePayload(
                    tenant.contact_email, issue.kind, issue.message, tenant.name, ledger_name(tenant.ledger)
                ),
                send_after=now,
            )
        )
    return actions


STORE_KINDS = ("reconnect_needed", "refresh_idle", "consent_ending")  # what the store alone can tell


def current(conn: Connection, tenant: Tenant, link: Link | None, idle_days: int | None, now: datetime,
            rules: HealthSettings) -> list[Issue]:  # fmt: skip
    """The tenant's health as of `now`: token and consent checks made afresh from the store, plus what the
    last run found that only the ledger can tell (day limit, the ledger's own reminders)."""
    fresh = assess(tenant, link, tokens_of(conn, tenant.id), idle_days=idle_days, usage=None,
                   reminders_on=None, now=now, rules=rules)  # fmt: skip
    recorded = [Issue(i.kind, i.message) for i in open_issues(conn, tenant.id) if i.kind not in STORE_KINDS]
    return fresh + recorded
