"""The command line around `ccm serve`: one-line errors for bad arguments and settings, `ccm sync --now`
without a server, a port already taken, `ccm tenants set`, `ccm schedule`."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.serve.harness import CCM, clean_env, free_port


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    found = clean_env() | {"CCM_HOME": str(home)}
    added = subprocess.run([CCM, "tenants", "add", "acme", "--ledger", "xero", "--name", "Acme Ltd"], env=found,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert added.returncode == 0, added.stderr
    return found


def ccm(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CCM, *args], env=env, capture_output=True, text=True, check=False, cwd=cwd, timeout=60
    )


def test_sync_now_needs_a_running_server(env):
    done = ccm(env, "sync", "--now", "-t", "acme")
    assert done.returncode == 1
    assert done.stderr == "ccm: no `ccm serve` is running to take it; `ccm sync -t acme` syncs here and now\n"
    both = ccm(env, "sync", "--now", "--full", "-t", "acme")
    assert both.returncode == 2
    assert both.stderr.strip() == (
        "ccm: error: --now asks the server for an incremental sync; --full runs here only"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "CCM_SERVE__CLOCK",
            "yesterday",
            "CCM_SERVE__CLOCK: clock origin is not an ISO date-time (got 'yesterday')",
        ),
        ("CCM_SERVE__CLOCK", "2026-10-24T18:00:00+00:00x0", "CCM_SERVE__CLOCK: clock speed must be above 0"),
        ("CCM_SERVE__WORKERS", "0", "CCM_SERVE__WORKERS: must be at least 1 (got '0')"),
        ("CCM_SERVE__MODE", "yolo", "CCM_SERVE__MODE: must be one of auto or approve (got 'yolo')"),
        (
            "CCM_HEALTH__DAY_LIMIT_WARN_PERCENT",
            "101",
            "CCM_HEALTH__DAY_LIMIT_WARN_PERCENT: must be at most 100",
        ),
    ],
)
def test_bad_serve_settings_stop_it_with_one_line(env, variable, value, message):
    done = ccm(env | {variable: value}, "serve")
    assert done.returncode == 2
    assert done.stderr.startswith(f"ccm: error: {message}")
    assert done.stderr.count("\n") == 1


def test_a_bad_night_time_in_the_settings_file_names_file_and_key(env, tmp_path):
    (tmp_path / "ccm.toml").write_text('[serve]\nnight_time = "25:00"\n')
    done = ccm(env, "serve", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "ccm: error: ccm.toml: serve.night_time: must be a time of day between 00:00 and 23:59 (got '25:00')\n"
    )


def test_a_port_out_of_range_and_a_port_taken(env):
    out_of_range = ccm(env, "serve", "--port", "70000")
    assert out_of_range.returncode == 2
    assert (
        out_of_range.stderr
        == "ccm: error: Invalid value for '--port': Input should be less than or equal to 65535\n"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = ccm(env, "serve", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr.startswith(f"ccm: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert done.stderr.count("\n") == 1


def test_tenants_set_changes_night_time_and_contact_and_refuses_bad_values(env):
    good = ccm(env, "tenants", "set", "acme", "--night-time", "03:30", "--contact-email", "owner@acme.example",
               "--timezone", "Europe/Helsinki")  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert "Europe/Helsinki" in good.stdout and "nightly at 03:30" in good.stdout
    assert "owner@acme.example" in good.stdout
    for args, message in (
        (["--night-time", "7pm"], "ccm: error: --night-time: must be a time of day HH:MM (got '7pm')"),
        (["--contact-email", "nope"], "ccm: error: --contact-email: not an e-mail address: 'nope'"),
        (["--timezone", "Mars/Base"], "ccm: error: --timezone: unknown time zone 'Mars/Base'"),
    ):
        done = ccm(env, "tenants", "set", "acme", *args)
        assert (done.returncode, done.stderr) == (2, message + "\n")
    unknown = ccm(env, "tenants", "set", "nobody", "--night-time", "01:00")
    assert unknown.returncode == 2 and "unknown tenant 'nobody'" in unknown.stderr
    cleared = ccm(env, "tenants", "set", "acme", "--night-time", "")
    assert "nightly at 02:00 (the server's default)" in cleared.stdout


def test_schedule_says_when_nights_run_and_that_no_server_is_up(env):
    connectionless = ccm(env, "schedule")
    assert connectionless.returncode == 0
    assert "no connected tenants to schedule" in connectionless.stdout
    assert "no `ccm serve` is running" in connectionless.stdout


def test_connect_on_a_port_the_server_holds_points_at_its_connect_page(env):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = ccm(env | {"CCM_XERO__CLIENT_ID": "x", "CCM_XERO__CLIENT_SECRET": "y",
                          "CCM_XERO__REDIRECT_URI": f"http://127.0.0.1:{port}/oauth/xero/callback"},
                   "connect", "xero", "-t", "acme", "--no-browser")  # fmt: skip
    assert done.returncode == 2
    assert "connect through it with a link from `ccm invite acme --ledger xero`" in done.stderr
    assert done.stderr.count("\n") == 1


def _connected(env: dict[str, str]) -> None:
    from connector.model import Connection
    from connector.store import Store
    from connector.store.tenants import save_connection

    store = Store.open(f"sqlite:///{env['CCM_HOME']}/ccm.db")
    with store.begin() as conn:
        save_connection(conn, Connection("acme", "xero", "org-acme"))
    store.close()


def test_a_ledger_app_not_configured_is_one_line_not_a_traceback(env):
    _connected(env)
    synced = ccm(env, "sync", "-t", "acme")
    assert synced.returncode == 1
    assert (
        synced.stderr == "ccm: xero.client_id is not set (ccm.toml [xero] client_id or CCM_XERO__CLIENT_ID)\n"
    )
    ran = ccm(env, "run", "-t", "acme")
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines()[-1] == (
        "ccm: 1 of 1 tenant(s) stopped: acme: xero.client_id is not set (ccm.toml [xero] client_id or "
        "CCM_XERO__CLIENT_ID)"
    )


def test_sync_waits_for_no_one_while_another_holder_runs_the_tenant(env):
    from datetime import UTC, datetime

    from connector import lease
    from connector.store import Store

    _connected(env)
    store = Store.open(f"sqlite:///{env['CCM_HOME']}/ccm.db")
    held = lease.acquire(store, "acme", lease.new_holder(), datetime.now(UTC))  # this live process has it
    try:
        done = ccm(env | {"CCM_XERO__CLIENT_ID": "x", "CCM_XERO__CLIENT_SECRET": "y"}, "sync", "-t", "acme")
    finally:
        lease.release(store, held)
        store.close()
    assert done.returncode == 1
    assert done.stderr.startswith(f"ccm: tenant 'acme' is being run by {held.holder} (lease until ")
