"""`ccm users`: argon2-hashed passwords, roles and grants checked, one-line errors, every change audited."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from connector.store import Store
from connector.store.schema import web_audit, web_users
from tests.test_cli import ccm

PASSWORD = "correct horse battery staple"


@pytest.fixture
def store(home, capsys):
    code, _, err = ccm(capsys, "tenants", "add", "acme", "--ledger", "xero", "--name", "Acme Ltd")
    assert code == 0, err
    opened = Store.open(f"sqlite:///{home / 'ccm.db'}")
    yield opened
    opened.close()


def typed(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_users_are_added_listed_and_removed_with_only_a_hash_kept(capsys, monkeypatch, store):
    typed(monkeypatch, PASSWORD + "\n")
    code, out, err = ccm(capsys, "users", "add", "ann", "--role", "bookkeeper", "--tenants", "acme",
                         "--password-stdin")  # fmt: skip
    assert code == 0, err
    assert "user ann added: bookkeeper, acme" in out
    with store.read() as conn:
        stored = conn.execute(select(web_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    code, out, _ = ccm(capsys, "users", "list", "--format", "json")
    (row,) = json.loads(out)["rows"]
    assert (row["name"], row["role"], row["firms"], row["last sign-in"]) == (
        "ann",
        "bookkeeper",
        "acme",
        None,
    )
    typed(monkeypatch, "another long password\n")
    assert ccm(capsys, "users", "passwd", "ann", "--password-stdin")[0] == 0
    with store.read() as conn:
        assert conn.execute(select(web_users.c.password_hash)).scalar_one() != stored
    assert ccm(capsys, "users", "remove", "ann")[0] == 0
    with store.read() as conn:
        assert conn.execute(select(web_users)).first() is None
        whats = [
            w.split()[0]
            for w in conn.execute(select(web_audit.c.what).order_by(web_audit.c.audit_id)).scalars()
        ]
    assert whats == ["users.add", "users.passwd", "users.remove"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--role", "viewer", "--tenants", "nope"), PASSWORD, "ccm: error: --tenants: no tenant 'nope'"),
        (("--role", "viewer"), PASSWORD, "ccm: error: a viewer needs --tenants T1,T2 or --all"),
        (
            ("--role", "admin", "--tenants", "acme"),
            PASSWORD,
            "ccm: error: --tenants: an admin sees every firm",
        ),
        (("--role", "viewer", "--all"), "short", "ccm: error: password: at least 10 characters"),
        (("--role", "viewer", "--all"), "", "ccm: error: --password-stdin: standard input was empty"),
    ],
)
def test_bad_input_is_one_line_and_adds_nobody(capsys, monkeypatch, store, args, stdin, message):
    typed(monkeypatch, stdin + ("\n" if stdin else ""))
    code, _, err = ccm(capsys, "users", "add", "bob", *args, "--password-stdin")
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert PASSWORD not in err
    with store.read() as conn:
        assert conn.execute(select(web_users)).first() is None
