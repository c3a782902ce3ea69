"""`ccm db migrate-to-postgres`: a SQLite store after a real night on the Xero sandbox, copied into PostgreSQL.

The copy holds every table's rows, equal value for value; its tokens decrypt with the same vault key; its
sequences continue after the copied keys; a night run on it sends nothing the SQLite night sent. Every
refusal is one line and exit 2 and leaves both databases as they were; a copy that fails half way leaves the
target empty. Runs when CCM_TEST_DATABASE_URL names a PostgreSQL (CI sets it).
"""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, func, inspect, select, text

from connector import chasing, invites
from connector.config import Settings
from connector.model import Tenant
from connector.oauth import TokenVault
from connector.outbox import Mode
from connector.run.night import run_night
from connector.serve import syncqueue
from connector.store import Store
from connector.store import copy as store_copy
from connector.store import engine as db
from connector.store.schema import (
    metadata,
    morning_digests,
    reference_rates,
    run_leases,
    servers,
    sync_changes,
    sync_requests,
    sync_runs,
    web_users,
)
from connector.store.tenants import save_tenant
from connector.web import users
from connector.web.users import Role
from tests.conftest import PG_URL, pg_schema
from tests.e2e.sandboxes import Side, connected, settings_for, start
from tests.e2e.test_credit_on_sandboxes import Days, days
from tests.smtp import Inbox, smtp_server
from tests.test_cli import ccm

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL: set CCM_TEST_DATABASE_URL (CI does)")
SCHEMA = Path(__file__).parent.parent / "schemas" / "migrate-to-postgres.json"
PLANTED = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # rows the test writes itself carry this instant


@dataclass(frozen=True)
class Night:
    """A data folder whose SQLite store ran one night on the sandbox, and what that night sent."""

    side: Side
    settings: Settings
    tenant: Tenant
    inbox: Inbox
    day: Days
    sent: tuple[str, ...]  # the X-CCM-Action of every e-mail the SQLite night sent

    @property
    def sqlite(self) -> Path:
        return self.settings.data_dir / db.DB_FILE


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    side = start("xero")
    try:
        with smtp_server() as inbox:
            settings = settings_for(side, tmp_path_factory.mktemp("sqlite") / "data", inbox)
            store = Store.open(settings.db_url)
            tenant = connected(side, settings, store)
            d = days()
            summary = run_night(store, settings, tenant.id, now=d.morning, mode=Mode.AUTO)
            assert summary.stopped is None and inbox.messages, "the night sent reminders"
            _plant(store, tenant)
            store.close()
            sent = tuple(str(m["X-CCM-Action"]) for m in inbox.messages)
            yield Night(side, settings, tenant, inbox, d, sent)
    finally:
        side.handle.stop()


def _plant(store: Store, tenant: Tenant) -> None:
    """Rows in tables one night leaves empty: people, a dispute, a queued sync, an invite, a rate, and the
    transient rows of a server and a run on the SQLite store."""
    with store.begin() as conn:
        users.add(conn, "alice", Role.BOOKKEEPER, "correct horse battery staple", PLANTED, [tenant.id])
        chasing.open_event(conn, tenant.id, "C-none", chasing.DISPUTE, PLANTED, note="wrong price")
        for _ in range(3):
            syncqueue.add(conn, tenant.id, [None], "webhook", PLANTED)
        invites.create(conn, "newco", "xero", Tenant("newco", "New Co Ltd", "xero"), PLANTED,
                       timedelta(hours=72), "cli:test")  # fmt: skip
        conn.execute(reference_rates.insert().values(source="boe_base_rate", effective_date=PLANTED.date(),
                                                     rate=Decimal("4.2500000001"), fetched_at=PLANTED))  # fmt: skip
        conn.execute(morning_digests.insert().values(tenant_id=tenant.id, enabled=True, updated_at=PLANTED))
        conn.execute(servers.insert().values(server_id="s1", url="http://127.0.0.1:1", clock="real",
                                             started_at=PLANTED, heartbeat_at=PLANTED))  # fmt: skip
        conn.execute(run_leases.insert().values(tenant_id=tenant.id, holder="h1", acquired_at=PLANTED,
                                                expires_at=PLANTED + timedelta(days=3650)))  # fmt: skip


@pytest.fixture
def target() -> Iterator[str]:
    assert PG_URL
    with pg_schema(PG_URL) as url:
        yield url


@pytest.fixture
def at_home(night: Night, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Night:
    """The command line pointed at the night's data folder, as its owner would run it."""
    monkeypatch.setenv("CCM_HOME", str(night.settings.data_dir))
    for name in ("CCM_DATABASE_URL", "CCM_CONFIG", "CCM_VAULT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return night


def body_of(out: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(engine: Engine, name: str) -> list[tuple[Any, ...]]:
    """Every row of the table as Python values, in an order that does not depend on the database's
    collation."""
    with engine.connect() as conn:
        return sorted((tuple(r) for r in conn.execute(select(metadata.tables[name]))), key=repr)


def _tables(url: str) -> set[str]:
    engine = create_engine(db.normalise_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _count_all(url: str) -> dict[str, int]:
    engine = db.create(url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in metadata.sorted_tables
                if t.name in present
            }
    finally:
        engine.dispose()


def test_the_copy_holds_every_row_its_tokens_decrypt_and_its_keys_continue(capsys, at_home, target):
    before = _digest(at_home.sqlite)
    with_password = target.replace("postgres@", "postgres:s3cret@", 1)  # trust auth: never asked for
    code, out, err = ccm(capsys, "db", "migrate-to-postgres", with_password, "-f", "json")
    assert code == 0, err
    body = body_of(out)
    assert "s3cret" not in out + err and "postgres:***@" in body["database_url"]
    jsonschema.validate(body, json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert _digest(at_home.sqlite) == before, "the SQLite file is left untouched"
    assert "left untouched" in err and "database_url = " in err and "vault.key" in err
    assert body["revisions"] == sorted(db.head_revisions())

    source, copied = db.create(at_home.settings.db_url), db.create(target)
    try:
        reported = {r["table"]: r for r in body["rows"]}
        assert set(reported) == set(metadata.tables)
        present = set(inspect(source).get_table_names())
        for table in metadata.sorted_tables:
            row = reported[table.name]
            if table.name not in present:
                assert (row["rows in sqlite"], row["rows in postgresql"]) == (None, None)
            elif table.name in store_copy.TRANSIENT:
                assert row["note"] and (row["rows in sqlite"], row["rows in postgresql"]) == (1, 0)
                assert _rows(copied, table.name) == []
            else:
                assert row["note"] is None
                assert row["rows in sqlite"] == row["rows in postgresql"] == len(_rows(source, table.name))
                assert _rows(copied, table.name) == _rows(source, table.name), table.name
        for busy in ("tenants", "oauth_tokens", "customers", "invoices", "outbox", "reminder_history",
                     "sync_changes", "sync_requests", "web_users", "chasing_events", "reference_rates"):  # fmt: skip
            assert reported[busy]["rows in postgresql"], f"{busy}: the test should copy rows of it"

        on_pg = Store(copied)
        tokens = TokenVault.open(on_pg, at_home.settings).get(at_home.tenant.id)
        assert tokens is not None
        assert tokens == TokenVault.open(Store(source), at_home.settings).get(at_home.tenant.id)

        with on_pg.begin() as conn:
            assert syncqueue.add(conn, at_home.tenant.id, [None], "now", PLANTED) == 1
            newest = syncqueue.newest(conn, at_home.tenant.id)
            runs = conn.execute(sync_runs.insert().values(
                tenant_id="acme", kind="incremental", started_at=PLANTED, outcome="ok", counts={},
            ).returning(sync_runs.c.run_id)).scalar_one()  # fmt: skip
        with source.connect() as conn:
            assert newest == conn.execute(select(func.max(sync_requests.c.request_id))).scalar_one() + 1
            assert runs == conn.execute(select(func.max(sync_runs.c.run_id))).scalar_one() + 1
    finally:
        source.dispose()
        copied.dispose()


def test_a_night_on_the_copy_sends_nothing_the_sqlite_night_sent(capsys, at_home, target):
    code, _, err = ccm(capsys, "db", "migrate-to-postgres", target)
    assert code == 0, err
    before = _digest(at_home.sqlite)
    on_pg = at_home.settings.model_copy(update={"database_url": target})
    store = Store.open(target)
    try:
        with store.read() as conn:
            runs = conn.execute(select(func.count()).select_from(sync_runs)).scalar_one()
        again = run_night(store, on_pg, at_home.tenant.id, now=at_home.day.morning, mode=Mode.AUTO)
        assert again.stopped is None
        assert [str(m["X-CCM-Action"]) for m in at_home.inbox.messages] == list(at_home.sent)
        later = run_night(store, on_pg, at_home.tenant.id, now=at_home.day.morning + timedelta(days=1))
        assert later.stopped is None
        keys = [str(m["X-CCM-Action"]) for m in at_home.inbox.messages]
        assert len(keys) == len(set(keys)), "an action was sent twice"
        with store.read() as conn:  # the nights synced from the ledger through the copied (decrypted) tokens
            assert conn.execute(select(func.count()).select_from(sync_runs)).scalar_one() == runs + 2
    finally:
        store.close()
    assert _digest(at_home.sqlite) == before


def test_a_target_that_holds_ccm_data_is_refused(capsys, at_home, target):
    assert ccm(capsys, "db", "migrate-to-postgres", target)[0] == 0
    counts = _count_all(target)
    said = _one_line_refusal(capsys, target)
    assert said.startswith(f"{db.shown_url(target)} already holds ccm data (table ")
    assert said.endswith("): migrate into an empty database")
    assert _count_all(target) == counts


def test_a_failure_half_way_leaves_the_target_empty(capsys, at_home, target):
    Store.open(target).close()  # at head, empty, with a trigger that fails a late table's first insert
    with db.create(target).begin() as conn:
        conn.execute(text(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
        ))  # fmt: skip
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON sync_changes EXECUTE FUNCTION refuse()"))
    code, _, err = ccm(capsys, "db", "migrate-to-postgres", target)
    assert code == 1
    assert err.count("\n") == 1 and "copying sync_changes failed (disk full)" in err, err
    assert "nothing was written" in err
    assert set(_count_all(target).values()) == {0}


def test_a_conflicting_row_half_way_rolls_everything_back(at_home, target):
    ends = store_copy.prepare(at_home.settings.db_url, target)
    try:
        with ends.target.begin() as conn:  # someone wrote into the target after the checks
            conn.execute(web_users.insert().values(name="alice", role="viewer", password_hash="x",
                                                   created_at=PLANTED, password_changed_at=PLANTED))  # fmt: skip
        with pytest.raises(
            store_copy.CopyFailed,
            match=r"^copying web_users failed \(duplicate key .*\(name\)=\(alice\) already exists",
        ):
            store_copy.copy(ends)
    finally:
        ends.dispose()
    counts = _count_all(target)
    assert counts.pop("web_users") == 1 and set(counts.values()) == {0}


def test_a_value_postgresql_cannot_hold_is_named_and_nothing_is_written(tmp_path, target):
    source = Store.open(db.default_url(tmp_path))
    with source.begin() as conn:
        save_tenant(conn, Tenant("acme", "A" * 300, "xero"))  # SQLite keeps any length; VARCHAR(255) does not
    source.close()
    ends = store_copy.prepare(db.default_url(tmp_path), target)
    try:
        with pytest.raises(store_copy.CopyFailed) as failed:
            store_copy.copy(ends)
    finally:
        ends.dispose()
    assert str(failed.value) == (
        "tenants tenant_id='acme': name is 300 characters, PostgreSQL's column holds 255; "
        f"nothing was written to {db.shown_url(target)}"
    )
    assert set(_count_all(target).values()) == {0}


def test_a_target_a_newer_ccm_made_is_refused(capsys, at_home, target):
    with db.create(target).begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    said = _one_line_refusal(capsys, target)
    assert said.startswith(f"cannot upgrade {db.shown_url(target)} to ccm's schema (")
    assert "9999" in said
    assert _tables(target) == {"alembic_version"}


def _one_line_refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = ccm(capsys, "db", "migrate-to-postgres", *args)
    assert (code, out) == (2, ""), err
    assert err.startswith("ccm: error: ") and err.count("\n") == 1, err
    return err.removeprefix("ccm: error: ").rstrip("\n")


def test_refusals_are_one_line_and_touch_nothing(capsys, at_home, target, monkeypatch, tmp_path):
    before = _digest(at_home.sqlite)
    said = _one_line_refusal(capsys, f"sqlite:///{tmp_path / 'other.db'}")
    assert said == f"TARGET_URL: sqlite:///{tmp_path / 'other.db'} is not PostgreSQL " \
                   "(postgresql://USER@HOST:5432/DATABASE)"  # fmt: skip
    assert not (tmp_path / "other.db").exists()
    assert "not a database URL" in _one_line_refusal(capsys, "nonsense")
    assert "unsupported database 'mysql'" in _one_line_refusal(capsys, "mysql://u@h/d")

    said = _one_line_refusal(capsys, "postgresql://ccm:s3cret@127.0.0.1:1/ccm")
    assert said.startswith("cannot reach the database postgresql://ccm@127.0.0.1:1/ccm (")
    assert "s3cret" not in said

    monkeypatch.setenv("CCM_DATABASE_URL", target)
    said = _one_line_refusal(capsys, target)
    assert said == f"the configured store is already {db.shown_url(target)} (database_url), not SQLite: " \
                   "nothing to migrate"  # fmt: skip
    monkeypatch.delenv("CCM_DATABASE_URL")

    monkeypatch.setenv("CCM_HOME", str(tmp_path / "empty"))
    said = _one_line_refusal(capsys, target)
    assert said == f"no SQLite store at {tmp_path / 'empty' / 'ccm.db'} (data_dir or database_url)"
    assert not (tmp_path / "empty" / "ccm.db").exists()
    assert _tables(target) == set(), "no refusal touched the target"
    assert _digest(at_home.sqlite) == before


def test_a_store_behind_this_ccm_is_refused_before_the_target_is_touched(
    capsys, tmp_path, monkeypatch, target
):
    home = tmp_path / "old"
    engine = db.create(db.default_url(db.secure_data_dir(home)))
    with engine.connect() as conn:
        config = db._alembic_config(conn)
        command.upgrade(config, "0016")
        conn.commit()
    engine.dispose()
    monkeypatch.setenv("CCM_HOME", str(home))
    monkeypatch.delenv("CCM_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    said = _one_line_refusal(capsys, target)
    heads = ", ".join(sorted(db.head_revisions()))
    assert said == f"sqlite:///{home / 'ccm.db'} is at migration 0016, this ccm at {heads}: " \
                   "run `ccm db upgrade` first"  # fmt: skip
    assert _tables(target) == set()


ROWS = 40_000
SAMPLE = 10_000


@pytest.mark.slow
def test_a_large_table_copies_in_bounded_memory(tmp_path, target):
    """sync_changes of 40,000 rows copies, batch by batch, within less memory than a quarter of them loaded."""
    source = Store.open(db.default_url(tmp_path))
    with source.begin() as conn:
        conn.execute(sync_runs.insert().values(
            run_id=1, tenant_id="acme", kind="full", started_at=PLANTED, outcome="ok", counts={}))  # fmt: skip
        conn.execute(sync_changes.insert(), [
            {"run_id": 1, "tenant_id": "acme", "stream": "invoices", "entity": "invoice", "record_id": f"I{n}",
             "op": "update", "fields": {"amount_due": [f"{n}.00", "0.00"], "status": ["open", "paid"]}}
            for n in range(ROWS)
        ])  # fmt: skip
    with source.read() as conn:
        tracemalloc.start()
        sample = conn.execute(select(sync_changes).limit(SAMPLE)).all()
        loaded = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(sample) == SAMPLE
        del sample
    source.close()

    ends = store_copy.prepare(db.default_url(tmp_path), target)
    try:
        tracemalloc.start()
        copied = store_copy.copy(ends, batch=1_000)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        ends.dispose()
    [changes] = [c for c in copied if c.table == "sync_changes"]
    assert changes.sqlite_rows == changes.postgresql_rows == ROWS
    assert peak < loaded, (
        f"copying {ROWS:,} rows peaked at {peak:,} bytes; {SAMPLE:,} of them loaded take {loaded:,}"
    )
