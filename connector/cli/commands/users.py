"""`ccm users add|list|remove|passwd`: who may sign in to the bookkeeper's pages of `ccm serve`, and see what.

A viewer reads the firms granted, a bookkeeper also acts on them (approve, retry, settle), an admin sees and
acts on every firm. Passwords are read from standard input (`--password-stdin`) or typed twice at a prompt,
and only their argon2 hash is stored. Each change is written to the audit log.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from connector.cli.app import UsageProblem, app, out, state
from connector.cli.output import Format, FormatOpt, emit
from connector.web import audit, users
from connector.web.users import Role, UserProblem

users_app = typer.Typer(help="Who may sign in to the bookkeeper's pages, and see what.", no_args_is_help=True)
app.add_typer(users_app, name="users")

NameArg = Annotated[str, typer.Argument(help="The user's sign-in name.")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")
]


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UsageProblem("--password-stdin: standard input was empty")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageProblem("no terminal to type the password at: give --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UsageProblem("the two passwords differ; nothing was changed")
    return first


@users_app.command()
def add(
    ctx: typer.Context,
    name: NameArg,
    role: Annotated[Role, typer.Option(help="admin, bookkeeper or viewer.")],
    tenants: Annotated[str | None, typer.Option(help="The firms granted, comma-separated: T1,T2.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every firm, present and future.")] = False,
    password_stdin: StdinOpt = False,
) -> None:
    """Add a user who may sign in to `ccm serve`'s pages."""
    wanted = [t.strip() for t in tenants.split(",") if t.strip()] if tenants is not None else None
    if tenants is not None and not wanted:
        raise UsageProblem("--tenants: name at least one tenant (T1,T2)")
    try:
        users.check_name(name)
        password = users.check_password(_password(password_stdin))
        now = datetime.now(UTC)
        with state(ctx).store.begin() as conn:
            user = users.add(conn, name, role, password, now, wanted, all_)
            after = {"role": str(user.role), "firms": user.firms()}
            audit.write(conn, _who(), None, f"users.add {name}", now, None, after)
    except UserProblem as exc:
        raise UsageProblem(str(exc)) from None
    out.print(f"user {name} added: {user.role}, {user.firms()}", markup=False)


USER_COLUMNS = ("name", "role", "firms", "added", "last sign-in")
USER_LABELS = {"name": "name", "role": "role", "firms": "firms", "added": "added (UTC)",
               "last sign-in": "last sign-in (UTC)"}  # fmt: skip


@users_app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = Format.TABLE) -> None:
    """Every user with their role, firms and last sign-in (never a password or its hash)."""
    with state(ctx).store.read() as conn:
        found = users.all_users(conn)
    rows = [(u.name, str(u.role), u.firms(), u.created_at, u.last_login_at) for u in found]
    emit(fmt, "users", USER_COLUMNS, rows, labels=USER_LABELS,
         empty="no users yet: `ccm users add NAME --role admin --password-stdin`")  # fmt: skip


@users_app.command()
def remove(ctx: typer.Context, name: NameArg) -> None:
    """Remove a user; their sessions end at once."""
    now = datetime.now(UTC)
    try:
        with state(ctx).store.begin() as conn:
            gone = users.remove(conn, name)
            before = {"role": str(gone.role), "firms": gone.firms()}
            audit.write(conn, _who(), None, f"users.remove {name}", now, before, None)
    except UserProblem as exc:
        raise UsageProblem(str(exc)) from None
    out.print(f"user {name} removed", markup=False)


@users_app.command()
def passwd(ctx: typer.Context, name: NameArg, password_stdin: StdinOpt = False) -> None:
    """Set a user's password; their sessions end at once."""
    try:
        users.check_name(name)
        password = users.check_password(_password(password_stdin))
        now = datetime.now(UTC)
        with state(ctx).store.begin() as conn:
            users.set_password(conn, name, password, now)
            audit.write(conn, _who(), None, f"users.passwd {name}", now)
    except UserProblem as exc:
        raise UsageProblem(str(exc)) from None
    out.print(f"password of {name} changed; their sessions have ended", markup=False)
