"""A snoozed action is shown apart wherever actions awaiting approval are counted or listed: the firms page
counts it beside them ("2 to review", "1 snoozed until 5 Dec"), `ccm outbox list` shows when its snooze ends
(table, CSV and JSON, the JSON valid against schemas/outbox.json)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from connector import outbox, snooze
from connector.config import load_settings
from connector.model import Tenant
from connector.outbox import Mode, NewAction
from connector.payloads import HoldPayload, Kind
from connector.store import Store
from connector.store.tenants import save_tenant
from connector.web import views
from connector.web.users import Role, User
from tests.test_cli import ccm

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
UNTIL = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)  # midnight in London in December: "5 Dec"
SCHEMA = Path(__file__).parent.parent / "schemas" / "outbox.json"
ADMIN = User("root", Role.ADMIN, True, (), NOW, NOW, None, "s")


def _plan(store: Store, tenant_id: str, keys: list[str]) -> None:
    actions = [
        NewAction(key, Kind.HOLD, "ledger", f"C{n}", HoldPayload("", "over the limit"), NOW)
        for n, key in enumerate(keys)
    ]
    with store.begin() as conn:
        outbox.plan(conn, tenant_id, actions, Mode.APPROVE, NOW)


def test_the_firms_page_counts_snoozed_actions_apart_from_those_awaiting_approval(store: Store):
    firm = Tenant("acme", "Acme Ltd", "scripted", timezone="Europe/London")
    with store.begin() as conn:
        save_tenant(conn, firm)
        save_tenant(conn, Tenant("quiet", "Quiet Ltd", "scripted"))
    _plan(store, "acme", ["hold:a", "hold:b", "hold:c", "hold:d"])
    with store.begin() as conn:
        assert snooze.snooze(conn, "acme", ["hold:c"], UNTIL, "ann", NOW) == ["hold:c"]
        assert snooze.snooze(conn, "acme", ["hold:d"], UNTIL + timedelta(hours=36), "ann", NOW) == ["hold:d"]
    settings = load_settings(None, {})
    with store.read() as conn:
        rows = {r.tenant.id: r for r in views.firms(conn, settings, ADMIN, NOW)}
    acme = rows["acme"]
    assert (acme.awaiting, acme.snoozed, acme.snoozed_until) == (2, 2, UNTIL)
    assert acme.snoozed_text == "2 snoozed, the first until 5 Dec"
    assert (rows["quiet"].awaiting, rows["quiet"].snoozed, rows["quiet"].snoozed_text) == (0, 0, "")
    with store.begin() as conn:  # one snooze ended, one action approved meanwhile: neither counts as snoozed
        snooze.wake(conn, "acme", ["hold:d"])
        outbox.approve(conn, "acme", ["hold:c"], NOW)
    with store.read() as conn:
        acme = next(r for r in views.firms(conn, settings, ADMIN, NOW) if r.tenant.id == "acme")
    assert (acme.awaiting, acme.snoozed, acme.snoozed_text) == (3, 0, "")
    with store.read() as conn:  # after its end a snooze is over by itself
        later = views.firms(conn, settings, ADMIN, UNTIL + timedelta(days=3))
    assert next(r for r in later if r.tenant.id == "acme").snoozed == 0


def test_outbox_list_shows_when_a_snooze_ends_in_every_format(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, _, err = ccm(capsys, "tenants", "add", "acme", "--ledger", "xero", "--name", "Acme Ltd")
    assert code == 0, err
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    _plan(store, "acme", ["hold:a", "hold:b"])
    with store.begin() as conn:
        snooze.snooze(conn, "acme", ["hold:b"], UNTIL, "ann", NOW)
    store.close()
    at = ("--at", NOW.isoformat())

    code, text, err = ccm(capsys, "outbox", "list", "-t", "acme", "-f", "json", *at)
    assert code == 0, err
    body = json.loads(text)
    jsonschema.validate(body, json.loads(SCHEMA.read_text()))
    until = {row["key"]: row["snoozed until"] for row in body["rows"]}
    assert until == {"hold:a": None, "hold:b": "2026-12-05T00:00:00+00:00"}

    code, text, err = ccm(capsys, "outbox", "list", "-t", "acme", "-f", "csv", *at)
    assert code == 0, err
    rows = {r["key"]: r["snoozed until"] for r in csv.DictReader(io.StringIO(text))}
    assert rows == {"hold:a": "", "hold:b": "2026-12-05T00:00:00+00:00"}

    code, text, err = ccm(capsys, "outbox", "list", "-t", "acme", *at)
    assert code == 0, err
    assert "snoozed until" in text and "2026-12-05" in text

    code, text, err = ccm(
        capsys, "outbox", "list", "-t", "acme", "-f", "json", "--at", "2026-12-06T00:00:00Z"
    )
    assert code == 0, err
    assert [row["snoozed until"] for row in json.loads(text)["rows"]] == [None, None]  # the snooze is over
