"""A firm is bound to its ledger organisation, on the command line too.

`ccm connect` for a tenant that has synced, with a consent for another organisation, is refused and changes
nothing; only `--replace-organisation` moves it, and then no record of the old organisation survives and
what was planned for them is cancelled.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from sqlalchemy import select

from connector.store.schema import connections, invoices, outbox
from tests.security.firm import FIRM, OTHER, Target, target
from tests.serve.harness import CCM

pytestmark = pytest.mark.slow


def _connect(t: Target, org: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`ccm connect xero -t acme --org ORG`, with the person's browser consenting on the sandbox."""
    child = subprocess.Popen([CCM, "connect", "xero", "-t", "acme", "--org", org, "--no-browser", "--timeout", "60",
                              *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=t.env)  # fmt: skip
    assert child.stdout is not None
    url = ""
    for _ in range(5):
        line = child.stdout.readline()
        if re.match(r"^https://", line):
            url = line.strip()
            break
    assert url, "ccm connect printed no authorize URL"
    consent = requests.get(url, allow_redirects=False, verify=str(t.sandbox.ca_path), timeout=30)
    assert consent.status_code in (302, 303) and urlparse(consent.headers["location"]).port == t.port
    requests.get(consent.headers["location"], timeout=30)
    stdout, stderr = child.communicate(timeout=60)
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def _open_actions(t: Target) -> list[str]:
    with t.store.read() as conn:
        query = select(outbox.c.key).where(outbox.c.state.in_(["awaiting_approval", "planned"]))
        return list(conn.execute(query).scalars())


def test_a_bound_firm_moves_to_another_organisation_only_when_the_operator_says_so(tmp_path: Path):
    with target(tmp_path) as t:
        first = _connect(t, FIRM)
        assert first.returncode == 0, first.stderr
        assert t.ccm("sync", "-t", "acme").returncode == 0
        planned = t.ccm("run", "-t", "acme", "--no-sync", "--approve")
        assert planned.returncode == 0, planned.stderr
        waiting = _open_actions(t)
        assert waiting, "the firm's night planned nothing to cancel"
        before = t.snapshot()

        refused = _connect(t, OTHER)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert refused.stderr.startswith("ccm: tenant 'acme' (")
        assert f"this consent is for {OTHER} ({t.org[OTHER]}): nothing was stored" in refused.stderr
        assert "run `ccm connect xero -t acme --replace-organisation`" in refused.stderr
        assert t.snapshot() == before

        moved = _connect(t, OTHER, "--replace-organisation")
        assert moved.returncode == 0, moved.stderr
        assert f"tenant acme: removed {len(t.ids[FIRM])} customers" in moved.stdout
        assert f"cancelled {len(waiting)} planned actions of the old organisation" in moved.stdout
        assert t.stored_customers() == set()
        with t.store.read() as conn:
            assert conn.execute(select(connections.c.external_id)).scalar_one() == t.org[OTHER]
            states = dict(
                conn.execute(select(outbox.c.key, outbox.c.state).where(outbox.c.key.in_(waiting))).all()
            )
            reasons = set(conn.execute(select(outbox.c.reason).where(outbox.c.key.in_(waiting))).scalars())
        assert set(states.values()) == {"cancelled"}
        assert reasons == {f"the tenant was moved to xero organisation {OTHER} ({t.org[OTHER]})"}
        assert _open_actions(t) == []

        assert t.ccm("sync", "-t", "acme").returncode == 0  # the first sync of the new organisation is full
        assert t.stored_customers() == t.ids[OTHER]
        with t.store.read() as conn:
            owners = set(conn.execute(select(invoices.c.customer_id)).scalars())
        assert owners <= t.ids[OTHER] and not owners & t.ids[FIRM]
