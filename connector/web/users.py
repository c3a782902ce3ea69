"""People who sign in to the bookkeeper's pages: a role, the firms granted, an argon2 password hash.

Roles: a viewer reads the firms granted; a bookkeeper also acts on them (approve, retry, settle); an admin
sees and acts on every firm. A bookkeeper or viewer sees the firms named in `web_grants`, or every firm
when `all_tenants` is set. Only the argon2 hash of a password is stored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, select, update

from connector.store.schema import tenants, web_grants, web_users

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# Verifying against this when the user does not exist takes as long as a real check: no timing tells.
_DUMMY = _hasher.hash("ccm: no such user")


class Role(StrEnum):
    ADMIN = "admin"
    BOOKKEEPER = "bookkeeper"
    VIEWER = "viewer"


class UserProblem(ValueError):
    """Bad input about a user; the message is one line and names what is wrong."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    all_tenants: bool
    tenants: tuple[str, ...]  # the firms granted (empty for admins and all_tenants)
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None
    stamp: str  # changes with the password: sessions signed before a change end with it

    @property
    def sees_all(self) -> bool:
        return self.role is Role.ADMIN or self.all_tenants

    def may_see(self, tenant_id: str) -> bool:
        return self.sees_all or tenant_id in self.tenants

    @property
    def may_act(self) -> bool:
        return self.role in (Role.ADMIN, Role.BOOKKEEPER)

    def firms(self) -> str:
        return "every firm" if self.sees_all else (", ".join(self.tenants) or "none")


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UserProblem(
            f"user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserProblem(f"password: at least {MIN_PASSWORD} characters")
    if password != password.strip() or "\n" in password:
        raise UserProblem("password: no leading or trailing spaces and no line breaks")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _grants(conn: Connection, names: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {n: [] for n in names}
    if not names:
        return found
    g = web_grants.c
    query = select(g.user_name, g.tenant_id).where(g.user_name.in_(list(names))).order_by(g.tenant_id)
    for user_name, tenant_id in conn.execute(query):
        found[user_name].append(tenant_id)
    return found


def _user(r: Any, granted: list[str]) -> User:
    return User(
        name=r.name, role=Role(r.role), all_tenants=bool(r.all_tenants), tenants=tuple(granted),
        created_at=r.created_at, password_changed_at=r.password_changed_at, last_login_at=r.last_login_at,
        stamp=_stamp(r.password_hash),
    )  # fmt: skip


def get(conn: Connection, name: str) -> User | None:
    row = conn.execute(select(web_users).where(web_users.c.name == name)).first()
    if row is None:
        return None
    return _user(row, _grants(conn, [name])[name])


def all_users(conn: Connection) -> list[User]:
    rows = conn.execute(select(web_users).order_by(web_users.c.name)).all()
    grants = _grants(conn, [r.name for r in rows])
    return [_user(r, grants[r.name]) for r in rows]


def _check_tenants(conn: Connection, wanted: Sequence[str]) -> list[str]:
    known = set(conn.execute(select(tenants.c.tenant_id)).scalars())
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise UserProblem(f"--tenants: no tenant {unknown[0]!r} (see `ccm tenants list`)")
    return sorted(set(wanted))


def _scope(role: Role, tenant_ids: Sequence[str] | None, all_tenants: bool) -> None:
    if role is Role.ADMIN and tenant_ids:
        raise UserProblem("--tenants: an admin sees every firm; give no --tenants")
    if role is not Role.ADMIN and not tenant_ids and not all_tenants:
        raise UserProblem(f"a {role} needs --tenants T1,T2 or --all")
    if tenant_ids and all_tenants:
        raise UserProblem("give --tenants or --all, not both")


def add(
    conn: Connection,
    name: str,
    role: Role,
    password: str,
    now: datetime,
    tenant_ids: Sequence[str] | None = None,
    all_tenants: bool = False,
) -> User:
    """A new user; raises UserProblem (one line) for a taken name, a short password or an unknown tenant."""
    check_name(name)
    _scope(role, tenant_ids, all_tenants)
    granted = _check_tenants(conn, tenant_ids or [])
    if get(conn, name) is not None:
        raise UserProblem(f"user {name!r} exists (change the password with `ccm users passwd {name}`)")
    conn.execute(web_users.insert().values(
        name=name, role=str(role), all_tenants=all_tenants or role is Role.ADMIN,
        password_hash=hash_password(password), created_at=now, password_changed_at=now,
    ))  # fmt: skip
    if granted:
        conn.execute(web_grants.insert(), [{"user_name": name, "tenant_id": t} for t in granted])
    found = get(conn, name)
    assert found is not None
    return found


def remove(conn: Connection, name: str) -> User:
    found = get(conn, name)
    if found is None:
        raise UserProblem(f"no user {name!r} (see `ccm users list`)")
    conn.execute(delete(web_grants).where(web_grants.c.user_name == name))
    conn.execute(delete(web_users).where(web_users.c.name == name))
    return found


def set_password(conn: Connection, name: str, password: str, now: datetime) -> None:
    """A new password; every session signed with the old one ends."""
    if get(conn, name) is None:
        raise UserProblem(f"no user {name!r} (see `ccm users list`)")
    conn.execute(
        update(web_users)
        .where(web_users.c.name == name)
        .values(password_hash=hash_password(password), password_changed_at=now)
    )


def authenticate(conn: Connection, name: str, password: str, now: datetime) -> User | None:
    """The user when the password is theirs (their last sign-in noted), else None; as slow either way."""
    row = conn.execute(select(web_users).where(web_users.c.name == name)).first()
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    values: dict[str, object] = {"last_login_at": now}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    conn.execute(update(web_users).where(web_users.c.name == name).values(**values))
    return get(conn, name)
