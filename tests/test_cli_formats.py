"""Every list and report in every format: the table names things, CSV parses with its header, JSON validates
against its schema in schemas/ and holds names (customers, invoice numbers), amounts as exact strings.

One firm is built once for the module through the real entry point: synced from the scripted ledger, a night
run that e-mails Ann over real SMTP, a credit limit, a manual hold, a dispute, a user and an invite.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from connector import chasing, invites
from connector.cli.output import csv_cell
from connector.ledger import AdapterSpec, register
from connector.model import Connection, Tenant
from connector.store import Store
from connector.store.schema import tenants
from connector.store.tenants import save_connection, save_tenant
from connector.web import users
from connector.web.users import Role
from tests.conftest import FIXTURES
from tests.scripted import SCHEMA, ScriptedLedger, contact, invoice
from tests.smtp import smtp_server
from tests.test_cli import ccm

SCHEMAS = Path(__file__).parent.parent / "schemas"
AT = "2026-11-24T10:00:00Z"
CONNECTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ANN, BOB = "Ann's Café", "=Bob's Bikes"  # a name from the ledger that a spreadsheet would run as a formula


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with Acme's books, one night sent, a limit, a hold, a dispute, a user and an invite."""
    home = tmp_path_factory.mktemp("formats") / "home"
    ledger = ScriptedLedger()
    register(AdapterSpec("scripted", lambda ctx: ledger, FIXTURES / "scripted.yaml", SCHEMA))
    with pytest.MonkeyPatch.context() as mp, smtp_server() as inbox:
        for name, value in {"CCM_HOME": str(home), "CCM_SERVE__SAFE_NIGHTS": "0",
                            "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
                            "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example"}.items():  # fmt: skip
            mp.setenv(name, value)
        mp.delenv("CCM_DATABASE_URL", raising=False)
        mp.delenv("CCM_CONFIG", raising=False)
        mp.chdir(home.parent)
        store = Store.open(f"sqlite:///{home / 'ccm.db'}")
        with store.begin() as conn:
            save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
            save_connection(conn, Connection("acme", "scripted", "org-1"))
            conn.execute(tenants.update().values(connected_at=CONNECTED))
        ledger.put("contacts", contact("C1", ANN, EmailAddress="ann@example.com"))
        ledger.put("contacts", contact("C2", BOB, EmailAddress="bob@example.com"))
        ledger.put("invoices", invoice("I1", "C1", total="1317.50", due="2026-11-10", Number="INV-0001"))
        ledger.put("invoices", invoice("I2", "C1", total="80.00", due="2026-11-20", Number="INV-0002"))
        ledger.put("invoices", invoice("I3", "C2", total="50.00", due="2026-01-27", Number="INV-0003"))
        _run("run", "--at", AT)
        assert inbox.messages, "the night sent Ann a reminder"
        _run("limit", "set", ANN, "1000")
        now = datetime.now(UTC)
        with store.begin() as conn:
            chasing.open_event(conn, "acme", "C1", chasing.DISPUTE, now, note="wrong price", invoice_id="I2")
            users.add(conn, "alice", Role.BOOKKEEPER, "correct horse battery staple", now, ["acme"], False)
            invites.create(conn, "newco", "xero", Tenant("newco", "New Co Ltd", "xero"), now,
                           timedelta(hours=72), "cli:test")  # fmt: skip
        store.close()
        _run("hold", ANN, "--reason", "=over the limit")  # a reason that looks like a formula
        _run("run", "--at", "2026-11-25T10:00:00Z")
        yield home


def _run(*args: str) -> None:
    from connector.cli import main

    with pytest.raises(SystemExit) as done:
        main(list(args))
    assert done.value.code in (0, None), f"ccm {' '.join(args)} exited {done.value.code}"


@pytest.fixture
def at_firm(firm: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CCM_HOME", str(firm))
    monkeypatch.setenv("CCM_SERVE__SAFE_NIGHTS", "0")
    monkeypatch.delenv("CCM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CCM_CONFIG", raising=False)
    monkeypatch.chdir(firm.parent)
    return firm


# (command, kind, the CSV header's first columns, names the JSON must hold)
COMMANDS: list[tuple[tuple[str, ...], str, tuple[str, ...], tuple[str, ...]]] = [
    (("log",), "runs", ("run", "tenant", "kind", "why", "started"), ("acme",)),
    (("log", "1"), "run", ("section", "stream", "record", "what"), ("INV-0001", ANN)),
    (("outbox", "list"), "outbox", ("key", "short key", "kind", "channel", "customer"), (ANN, "INV-0001@")),
    (("limit", "list"), "limits", ("customer", "customer id", "currency", "limit", "exposure"), (ANN,)),
    (("limits", "suggest"), "limit-suggestions", ("customer", "customer id", "rating", "suggestion"), ()),
    (("connections",), "connections", ("tenant", "ledger", "ledger id", "state"), ("acme",)),
    (("schedule",), "schedule", ("tenant", "name", "time zone", "night at"), ("acme",)),
    (("tenants", "list"), "tenants", ("tenant", "name", "ledger", "currency"), ("Acme Ltd",)),
    (("nights",), "nights", ("night", "tenant", "ran from", "mode", "outcome"), ("acme",)),
    (("nights", "2026-11-24"), "night", ("night", "tenant", "section", "line"), (ANN, "INV-0001")),
    (("aging", "--as-of", "2026-11-24"), "aging", ("customer", "name", "current", "1-30"), (ANN, BOB)),
    (
        ("customer", ANN, "--as-of", "2026-11-24"),
        "customer",
        ("invoice", "state", "issued", "due"),
        (ANN, "INV-0001", "INV-0002", "ann@example.com"),
    ),
    (
        ("backlog", "-t", "acme", "--at", AT),
        "backlog",
        ("customer", "customer id", "invoice", "due"),
        (BOB, "INV-0003"),
    ),
    (("discrepancies",), "discrepancies", ("kind", "customer", "records", "amounts", "explanation"), ()),
    (
        ("forecast", "--as-of", "2026-11-24"),
        "forecast",
        ("week", "from", "to", "low", "expected", "high"),
        (),
    ),
    (("rates",), "rates", ("source", "rate", "in force"), ()),
    (("users", "list"), "users", ("name", "role", "firms", "added", "last sign-in"), ("alice",)),
    (("invites",), "invites", ("tenant", "ledger", "new tenant", "made", "expires"), ("newco",)),
]


def _schema(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{kind}.json").read_text(encoding="utf-8"))
    return loaded


def test_every_kind_has_a_schema_and_every_schema_is_valid():
    stems = {p.stem for p in SCHEMAS.glob("*.json")}
    assert {kind for _, kind, _, _ in COMMANDS} <= stems
    for kind in stems:
        schema = _schema(kind)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["kind"] == {"const": kind}
        assert schema["properties"]["version"] == {"const": 1}


@pytest.mark.parametrize(
    ("args", "kind", "header", "names"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS]
)
def test_each_format(capsys, at_firm, args, kind, header, names):
    code, table, err = ccm(capsys, *args)
    assert code == 0, err
    assert table.strip() and not table.lstrip().startswith(("{", "[")), "the default is a table for people"
    for name in names:
        assert name in table, f"{name!r} not in the table"

    code, text, err = ccm(capsys, *args, "--format", "csv")
    assert code == 0, err
    parsed = list(csv.reader(io.StringIO(text)))
    assert tuple(parsed[0][: len(header)]) == header
    assert all(len(row) == len(parsed[0]) for row in parsed[1:])

    code, text, err = ccm(capsys, *args, "-f", "json")
    assert code == 0, err
    body = json.loads(text)
    jsonschema.validate(body, _schema(kind))
    assert (body["kind"], body["version"]) == (kind, 1)
    assert [list(row) for row in body["rows"]] == [parsed[0]] * len(body["rows"])  # the same keys as CSV
    assert len(body["rows"]) == len(parsed) - 1
    for name in names:
        assert name in text, f"{name!r} not in the JSON"


def test_outbox_json_names_the_customer_and_keeps_the_full_key(capsys, at_firm):
    body = json.loads(ccm(capsys, "outbox", "list", "-f", "json")[1])
    reminder = next(r for r in body["rows"] if r["kind"] == "reminder")
    assert (reminder["customer"], reminder["customer id"], reminder["state"]) == (ANN, "C1", "sent")
    assert reminder["invoices"].startswith("INV-0001@")
    short, key = reminder["short key"], reminder["key"]
    assert key.startswith(short) and len(short) < len(key)
    assert datetime.fromisoformat(reminder["send after"]).utcoffset() == timedelta(0)
    table = ccm(capsys, "outbox", "list")[1]
    assert reminder["short key"] in table and reminder["key"] not in table


def test_amounts_are_exact_strings_and_dates_iso(capsys, at_firm):
    body = json.loads(ccm(capsys, "customer", ANN, "--as-of", "2026-11-24", "-f", "json")[1])
    first = next(r for r in body["rows"] if r["invoice"] == "INV-0001")
    assert (first["total"], first["outstanding"], first["due"]) == ("1317.50", "1317.50", "2026-11-10")
    assert Decimal(body["open"]) == Decimal("1397.50")
    assert body["email"] == "ann@example.com"
    assert ("INV-0001", "2026-11-24") in [(r["invoice"], r["sent on"]) for r in body["reminders"]]
    assert any(h["action"] == "placed" and "=over the limit" in h["reason"] for h in body["holds"])
    [dispute] = [e for e in body["history"] if e["kind"] == "dispute"]
    assert (dispute["invoice"], dispute["note"]) == ("INV-0002", "wrong price")
    assert "INV-0002" in (body["disputed"] or "")
    limits = json.loads(ccm(capsys, "limit", "list", "-f", "json")[1])
    ann = next(r for r in limits["rows"] if r["customer"] == ANN)
    assert (ann["limit"], ann["currency"], ann["exposure"]) == ("1000.00", "GBP", "1397.50")


def test_customer_table_shows_contact_reminders_holds_and_disputes_by_number(capsys, at_firm):
    code, out, err = ccm(capsys, "customer", ANN, "--as-of", "2026-11-24")
    assert code == 0, err
    text = " ".join(out.split())
    assert "e-mail ann@example.com" in text
    assert "reminders sent" in text and "2026-11-24 │ INV-0001 │" in text
    assert "holds placed and released" in text and "=over the limit" in text
    assert "disputed: INV-0002" in text


def test_the_aging_table_leads_with_the_name(capsys, at_firm):
    out = ccm(capsys, "aging", "--as-of", "2026-11-24")[1]
    header = next(line for line in out.splitlines() if "current" in line)
    assert header.split("┃")[1].strip() == "customer"
    row = next(line for line in out.splitlines() if ANN in line)
    assert row.split("│")[1].strip() == ANN and "C1" not in row


def test_csv_cells_never_run_as_formulas(capsys, at_firm):
    text = ccm(capsys, "customer", ANN, "--as-of", "2026-11-24", "-f", "csv")[1]
    assert "INV-0001" in text
    limits = list(csv.reader(io.StringIO(ccm(capsys, "limit", "list", "-f", "csv")[1])))
    held = next(row for row in limits[1:] if row[0] == ANN)
    assert held[limits[0].index("reason")].startswith("'") or "=" not in held[limits[0].index("reason")][:1]
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_cell("+1") == "+1" and csv_cell("-20.00") == "-20.00"  # numbers stay numbers
    assert csv_cell("-x") == "'-x" and csv_cell("@SUM") == "'@SUM" and csv_cell(Decimal("-5")) == "-5"
    assert csv_cell(None) == "" and csv_cell(True) == "true"
