"""`ccm sandbox xero`: serves until stopped, printing what a developer needs to connect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

CCM = [sys.executable, "-c", "from connector.cli import main; main()"]


def run_ccm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CCM, *args], capture_output=True, text=True, timeout=60, check=False)


def test_ccm_sandbox_xero_serves_and_stops_cleanly_on_sigterm(tmp_path):
    env = {**os.environ, "CCM_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [*CCM, "sandbox", "xero", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        base_url = lines[0].split(": ", 1)[1]
        ca = Path(lines[1].split(": ", 1)[1])
        assert base_url.startswith("https://127.0.0.1:") and ca.exists()
        assert "client_id: ccm-sandbox-client" in lines[2] and "client_secret: ccm-sandbox-secret" in lines[2]
        answer = requests.get(f"{base_url}/connections", verify=str(ca), timeout=10)
        assert answer.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert not ca.exists()  # stopped properly: its CA files are gone


def test_unknown_ledger_or_size_is_a_one_line_usage_error():
    unknown = run_ccm("sandbox", "sage")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "ccm: error: sandbox: unknown ledger 'sage' (known: quickbooks, xero)"
    ]
    bad_size = run_ccm("sandbox", "xero", "--size", "huge")
    assert bad_size.returncode == 2 and "--size must be one of demo, small, large" in bad_size.stderr
