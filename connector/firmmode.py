"""A firm's mode for a night: auto (send and write), approve (plan, wait for a person) or dry-run (show only).

Safe first nights: a firm connected to a new organisation runs its first `serve.safe_nights` nights in
approve mode whatever else is set (a firm set to dry-run stays in dry-run): everything is planned and shown,
nothing is sent and no hold is written until a person approves it (`ccm outbox approve`). After them, the mode
a person chose for the firm (`ccm tenants set T --mode`), else the server's `serve.mode`. A night counts once
per local date, when it planned (a dry run does not). Firms connected before ccm had safe nights have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from connector.config import Settings
from connector.outbox import Mode
from connector.store.tenants import Standing, get_standing, get_tenant


@dataclass(frozen=True, slots=True)
class Effective:
    """The mode a night runs in, and why, in the bookkeeper's words."""

    mode: Mode
    why: str
    safe_night: int | None = None  # this night's number among the safe nights (None: not a safe night)
    safe_nights: int = 0  # how many safe nights the firm gets

    @property
    def safe(self) -> bool:
        return self.safe_night is not None


def decide(standing: Standing, safe_nights: int, default: Mode, today: date) -> Effective:
    """The mode of the firm's night of local date `today` (a night already counted today keeps its number)."""
    chosen = Mode(standing.chosen) if standing.chosen else None
    if chosen is Mode.DRY_RUN:
        return Effective(Mode.DRY_RUN, "the firm's mode is dry-run (`ccm tenants set --mode`)")
    if standing.connected_at is not None and safe_nights > 0:
        counted_today = standing.last_night is not None and standing.last_night >= today
        number = standing.nights_run if counted_today else standing.nights_run + 1
        if number <= safe_nights:
            return Effective(
                Mode.APPROVE,
                f"safe night {number} of {safe_nights} since connecting on {standing.connected_at:%Y-%m-%d}",
                number,
                safe_nights,
            )
    if chosen is not None:
        return Effective(chosen, f"the firm's chosen mode is {chosen.value}", None, safe_nights)
    why = f"no mode chosen for the firm: serve.mode, {default.value}"
    return Effective(default, why, None, safe_nights)


def default_mode(settings: Settings) -> Mode:
    return Mode.APPROVE if settings.serve.mode == "approve" else Mode.AUTO


def effective(conn: Connection, settings: Settings, tenant_id: str, today: date | None = None) -> Effective:
    """The firm's mode for its night of `today` (default: today where the firm is)."""
    if today is None:
        from datetime import UTC, datetime

        tenant = get_tenant(conn, tenant_id)
        today = datetime.now(UTC).astimezone(ZoneInfo(tenant.timezone)).date()
    return decide(get_standing(conn, tenant_id), settings.serve.safe_nights, default_mode(settings), today)


def approve_hint(tenant_id: str) -> str:
    """How a person approves what a night planned."""
    return (
        f"approve with `ccm outbox approve --all -t {tenant_id}` (or by key; review them first with "
        f"`ccm outbox list -t {tenant_id} --state awaiting_approval`)"
    )
