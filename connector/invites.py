"""Connect invites: the only way into the server's connect pages.

Connecting a firm is an operator's act. `ccm invite T --ledger xero` makes a single-use, expiring link for
the firm's owner; the server's /connect pages answer to nothing else (403, nothing stored). The database keeps
only the link's SHA-256, so a copy of it opens no door. A tenant that does not exist yet is created from the
details the operator gave with the invite; an existing one keeps its own: the link's holder chooses only which
organisation to consent to, and `connector.binding` refuses one other than the tenant's own.

An invite is claimed (compare-and-set on `used_at`) just before the connection is saved, and released again
if saving fails, so two consents racing on one link connect once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select, update

from connector.model import Tenant
from connector.store.schema import invites

_LIFE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_LIFE = timedelta(days=30)


class InviteProblem(ValueError):
    """The link cannot be used; the message is one line for the person holding it."""


@dataclass(frozen=True, slots=True)
class Invite:
    token_hash: str
    tenant_id: str
    ledger: str
    tenant: Tenant | None  # a new tenant's details; None: the tenant exists and keeps its own
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_life(text: str) -> timedelta:
    """'30m', '72h', '7d' as a timedelta; ValueError with a one-line reason otherwise."""
    found = _LIFE.match(text)
    if not found:
        raise ValueError(f"expected minutes, hours or days such as 30m, 72h or 7d, got {text!r}")
    life = timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    if life <= timedelta(0) or life > MAX_LIFE:
        raise ValueError(f"must be more than 0 and at most 30d, got {text!r}")
    return life


def link(redirect_uri: str, ledger: str, token: str) -> str:
    """The invite's address on the server the ledger's redirect URI points at."""
    parts = urlsplit(redirect_uri)
    return f"{parts.scheme}://{parts.netloc}/connect/{ledger}?invite={token}"


def create(
    conn: Connection,
    tenant_id: str,
    ledger: str,
    new_tenant: Tenant | None,
    now: datetime,
    life: timedelta,
    by: str,
) -> str:
    """Store a new invite and return its token (shown once; only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        invites.insert().values(
            token_hash=digest(token),
            tenant_id=tenant_id,
            ledger=ledger,
            tenant=asdict(new_tenant) if new_tenant is not None else None,
            created_by=by,
            created_at=now,
            expires_at=now + life,
        )
    )
    return token


def _invite(row: Any) -> Invite:
    details = row.tenant
    return Invite(
        token_hash=row.token_hash,
        tenant_id=row.tenant_id,
        ledger=row.ledger,
        tenant=Tenant(**details) if details else None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


def find(conn: Connection, token: str, ledger: str, now: datetime) -> Invite:
    """The live invite for `token` on `ledger`, or InviteProblem saying why not."""
    row = conn.execute(select(invites).where(invites.c.token_hash == digest(token))).first()
    if row is None:
        raise InviteProblem("this connect link is not valid: ask whoever sent it for a new one")
    found = _invite(row)
    if found.ledger != ledger:
        raise InviteProblem(f"this connect link is for {found.ledger}, not {ledger}")
    if found.used_at is not None:
        raise InviteProblem("this connect link was already used: ask whoever sent it for a new one")
    if found.expires_at <= now:
        raise InviteProblem(
            f"this connect link expired on {found.expires_at:%Y-%m-%d %H:%M} UTC: "
            "ask whoever sent it for a new one"
        )
    return found


def claim(conn: Connection, token_hash: str, now: datetime) -> bool:
    """Mark the invite used; False if it was used (or revoked) meanwhile."""
    c = invites.c
    unused = (c.token_hash == token_hash, c.used_at.is_(None))
    done = conn.execute(update(invites).where(*unused).values(used_at=now))
    return done.rowcount == 1


def unclaim(conn: Connection, token_hash: str) -> None:
    """Give a claimed invite back (saving the connection failed, so it was not used)."""
    conn.execute(update(invites).where(invites.c.token_hash == token_hash).values(used_at=None))


def revoke(conn: Connection, tenant_id: str, now: datetime) -> int:
    """End every open invite of a tenant (marked used now); returns how many."""
    c = invites.c
    live = (c.tenant_id == tenant_id, c.used_at.is_(None), c.expires_at > now)
    done = conn.execute(update(invites).where(*live).values(used_at=now))
    return int(done.rowcount)


def open_invites(conn: Connection, now: datetime) -> list[Invite]:
    """Invites not used and not expired, oldest first."""
    c = invites.c
    query = select(invites).where(c.used_at.is_(None), c.expires_at > now).order_by(c.created_at)
    return [_invite(r) for r in conn.execute(query)]
