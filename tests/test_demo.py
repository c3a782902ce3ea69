"""`ccm demo` from a clean folder: both sandboxes, the OAuth flow, a whole night, reminders as .eml files."""

from __future__ import annotations

import os
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest

CCM = str(Path(sys.executable).parent / "ccm")


@pytest.mark.slow
def test_the_demo_runs_a_night_and_saves_the_reminders(tmp_path: Path):
    workdir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")}
    done = subprocess.run([CCM, "demo", "--dir", str(workdir)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "connected demo-xero to" in done.stdout
    assert "connected demo-qbo to" in done.stdout
    said = " ".join(done.stdout.split())
    for tenant in ("demo-xero", "demo-qbo"):  # a safe first night; a person approves; then it sends
        assert f"{tenant}: safe night 1 of 3: planned" in said
        assert f"{tenant}: approved" in said and f"{tenant}: then sent exactly that" in said
    mails = sorted((workdir / "mail").glob("*.eml"))
    assert mails, done.stdout[-2000:]
    ids = []
    for path in mails:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        ids.append(str(message["Message-ID"]))
        assert str(message["X-CCM-Action"]).startswith("dun-")
    assert len(ids) == len(set(ids)), "a reminder went out twice"
    log = subprocess.run([CCM, "log"], capture_output=True, text=True, check=False,
                         env={**env, "CCM_HOME": str(workdir / "data")})  # fmt: skip
    assert log.returncode == 0
    assert "demo-xero" in log.stdout and "demo-qbo" in log.stdout
    held_sensibly(workdir / "data" / "ccm.db")
    nights = subprocess.run([CCM, "nights", "last"], capture_output=True, text=True, check=False,
                            env={**env, "CCM_HOME": str(workdir / "data")})  # fmt: skip
    assert nights.returncode == 0, nights.stderr
    assert "demo-xero: night of" in nights.stdout and "waiting for approval:" in nights.stdout
    # Running it again starts afresh (the folder is the demo's own) and sends the same night again, once.
    again = subprocess.run([CCM, "demo", "--dir", str(workdir)], capture_output=True, text=True, env=env,
                           timeout=600, check=False)  # fmt: skip
    assert again.returncode == 0
    assert len(list((workdir / "mail").glob("*.eml"))) == len(mails)


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path: Path):
    (tmp_path / "precious.txt").write_text("keep me")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")}
    done = subprocess.run([CCM, "demo", "--dir", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"ccm: {tmp_path} exists and was not made by `ccm demo`; choose another --dir\n"
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def held_sensibly(database: Path) -> None:
    """Every customer the demo put on hold owes something net, is active in the ledger, and the hold's reason
    names the invoices (or the exposure and limit) behind it."""
    import re
    from datetime import UTC, datetime

    from connector import creditcontrol as credit
    from connector.model import CustomerStatus
    from connector.reconcile import Basis, load_snapshot
    from connector.store import Store

    store = Store.open(f"sqlite:///{database}")
    try:
        for tenant in ("demo-xero", "demo-qbo"):
            with store.read() as conn:
                on_hold = {cid: h for cid, h in credit.holds(conn, tenant).items() if h.on_hold}
            assert on_hold, f"{tenant}: the demo held nobody"
            snapshot = load_snapshot(store, tenant)
            basis = Basis.of(snapshot, datetime.now(UTC).date())  # the machine's: `ccm demo` runs on it
            status = {c.id: c.status for c in snapshot.customers}
            for cid, held in on_hold.items():
                position = basis.positions.get(cid)
                assert position is not None and position.base.net > 0, (tenant, cid, held.reason)
                assert status[cid] is CustomerStatus.ACTIVE, (tenant, cid, held.reason)
                assert re.search(r"INV-\d+|exposure .* over the limit", held.reason), held.reason
    finally:
        store.close()
