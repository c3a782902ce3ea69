"""Files at rest: ccm's data folder 0700, its database (with -wal/-shm) and vault key 0600, whatever the umask.

Customers' names, e-mail addresses and balances are in the database; no other local user may read them. An
install from before is tightened when ccm opens it. And CCM_HOME is a path, never a URL fragment: a `?`, `%`
or `#` in it still opens exactly <CCM_HOME>/ccm.db.
"""

from __future__ import annotations

import os
import smtplib
import sqlite3
import stat
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from connector.cli import main
from connector.config import Settings, load_settings
from connector.demo import mail_server
from connector.model import Tenant
from connector.oauth import load_key
from connector.store import Store
from connector.store.engine import normalise_url
from connector.store.tenants import save_tenant


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process umask for the test (022: the usual; 000: nothing taken away), restored after."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No settings from the outside: each test says where CCM_HOME is."""
    for name in ("CCM_DATABASE_URL", "CCM_CONFIG", "CCM_VAULT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def ccm(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def add_and_list(capsys: pytest.CaptureFixture[str]) -> str:
    """`ccm tenants add` then `ccm tenants list`; what they wrote to stderr."""
    code, _, added = ccm(capsys, "tenants", "add", "acme", "--ledger", "xero", "--name", "Acme Ltd")
    assert code == 0, added
    code, out, listed = ccm(capsys, "tenants", "list")
    assert code == 0, listed
    assert "Acme Ltd" in out
    return added + listed


def test_a_fresh_install_is_private(capsys, env, tmp_path, umask):
    home = tmp_path / "home"
    env.setenv("CCM_HOME", str(home))
    add_and_list(capsys)
    assert mode(home) == 0o700
    assert mode(home / "ccm.db") == 0o600
    # A write in WAL mode, with the connection still open: SQLite's -wal and -shm are there, as private.
    store = Store.open(load_settings().db_url)
    try:
        with store.begin() as conn:
            save_tenant(conn, Tenant("beta", "Beta Ltd", "xero"))
        for name in ("ccm.db", "ccm.db-wal", "ccm.db-shm"):
            assert mode(home / name) == 0o600, name
    finally:
        store.close()


def test_an_existing_loose_install_is_tightened_when_ccm_opens_it(capsys, env, tmp_path, umask):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    db = home / "ccm.db"
    # An install from before: the database 0644, in WAL mode, its -wal/-shm held open (so still there) 0644.
    old = sqlite3.connect(db)
    try:
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("CREATE TABLE leftover (x)")
        old.commit()
        db.chmod(0o644)
        for name in ("ccm.db-wal", "ccm.db-shm"):
            (home / name).chmod(0o644)
        key = home / "vault.key"
        key.write_bytes(b"k" * 43 + b"=")
        key.chmod(0o644)
        env.setenv("CCM_HOME", str(home))
        env.setenv("CCM_LOG__LEVEL", "info")  # the tightening is logged at info
        err = add_and_list(capsys)
        assert mode(home) == 0o700
        for name in ("ccm.db", "ccm.db-wal", "ccm.db-shm", "vault.key"):
            assert mode(home / name) == 0o600, name
    finally:
        old.close()
    assert f"path={home} was=0755" in err  # paths and modes only, never what the files hold
    assert "kkkk" not in err


def test_the_vault_key_and_its_folder_are_private(env, tmp_path, umask):
    home = tmp_path / "home"
    key = load_key(Settings(data_dir=home))
    assert load_key(Settings(data_dir=home)) == key
    assert mode(home) == 0o700
    assert mode(home / "vault.key") == 0o600


def test_a_loose_data_folder_is_tightened_by_the_vault_too(env, tmp_path, umask):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    load_key(Settings(data_dir=home))
    assert mode(home) == 0o700
    assert mode(home / "vault.key") == 0o600


def test_a_database_url_outside_the_data_folder_gets_a_private_file_and_nothing_else_changes(
    capsys, env, tmp_path, umask
):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    db = shared / "ledger.db"
    env.setenv("CCM_HOME", str(tmp_path / "home"))
    env.setenv("CCM_DATABASE_URL", f"sqlite:///{db}")
    add_and_list(capsys)
    assert mode(db) == 0o600
    assert mode(shared) == 0o755  # the user's folder is theirs
    assert not (tmp_path / "home").exists()  # nothing of ccm's needed there yet


@pytest.mark.parametrize(
    "name",
    ["a?b", "p%41q", "pc%", "h#x", "with space", "x?mode=ro&cache=shared#y %41z"],
    ids=["question", "percent41", "percent", "hash", "space", "all"],
)
def test_a_data_folder_with_url_characters_opens_exactly_its_own_database(capsys, env, tmp_path, name):
    home = tmp_path / name
    env.setenv("CCM_HOME", str(home))
    add_and_list(capsys)
    db = home / "ccm.db"
    assert db.is_file()
    assert mode(db) == 0o600
    assert mode(home) == 0o700
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.parent == Path(name) for p in made), made  # no other database anywhere
    # The URL parses back to the same file, through the normalising ccm does before opening it.
    assert make_url(normalise_url(load_settings().db_url)).database == str(db)


def test_the_demo_mail_folder_and_its_messages_are_private(tmp_path, umask):
    folder = tmp_path / "demo" / "mail"
    with mail_server(folder) as (box, port):
        message = EmailMessage()
        message["From"] = "accounts@demo.example"
        message["To"] = "ann@example.com"
        message["Subject"] = "Invoice I1 is overdue"
        message.set_content("Ann, £100.00 is overdue.")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(message)
    assert mode(folder) == 0o700
    assert [mode(p) for p in box.saved] == [0o600]
