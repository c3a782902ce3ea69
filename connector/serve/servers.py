"""The servers alive now: each `ccm serve` keeps its row fresh; a row left stale belongs to a dead one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from connector.store.schema import servers

STALE = timedelta(seconds=60)  # a server renews its row every few seconds


@dataclass(frozen=True, slots=True)
class Server:
    server_id: str
    url: str
    clock: str
    started_at: datetime
    heartbeat_at: datetime


def register(conn: Connection, server_id: str, url: str, clock: str, now: datetime) -> None:
    conn.execute(
        servers.insert().values(server_id=server_id, url=url, clock=clock, started_at=now, heartbeat_at=now)
    )


def beat(conn: Connection, server_id: str, now: datetime) -> bool:
    """Renew the server's row; False if it was gone (then it is registered again by the caller)."""
    done = conn.execute(update(servers).where(servers.c.server_id == server_id).values(heartbeat_at=now))
    return done.rowcount == 1


def remove(conn: Connection, server_id: str) -> None:
    conn.execute(servers.delete().where(servers.c.server_id == server_id))


def forget_dead(conn: Connection, now: datetime) -> int:
    """Remove rows of servers that stopped renewing them."""
    return conn.execute(servers.delete().where(servers.c.heartbeat_at < now - STALE)).rowcount


def alive(conn: Connection, now: datetime) -> list[Server]:
    """Servers that renewed their row recently."""
    s = servers.c
    rows = conn.execute(select(servers).where(s.heartbeat_at >= now - STALE).order_by(s.started_at)).all()
    return [Server(r.server_id, r.url, r.clock, r.started_at, r.heartbeat_at) for r in rows]
