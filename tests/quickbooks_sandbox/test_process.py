"""The sandbox in a process of its own: it says where it serves, and OAuth plus the API work there."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from adapters.quickbooks.sandbox.process import spawn


def test_spawned_sandbox_serves_oauth_and_api():
    sandbox = spawn(seed=2, size="demo")
    try:
        tokens = sandbox.connect()
        assert tokens["realmId"] == sandbox.realm and tokens["expires_in"] == 3600
        http = requests.Session()
        http.verify, http.trust_env = str(sandbox.ca_path), False
        with http:
            answer = http.get(
                f"{sandbox.api_url}/company/{sandbox.realm}/customer/1",
                params={"minorversion": 75},
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
        assert answer.status_code == 200 and answer.json()["Customer"]["Id"] == "1"
    finally:
        sandbox.stop()
    assert sandbox.process.returncode == 0 and not sandbox.ca_path.exists()


def test_run_forever_prints_where_it_serves_and_stops_on_interrupt():
    # The child takes Ctrl-C as a terminal's foreground command does, whatever it inherits: a test run started
    # as a background job (`make test &`) has SIGINT ignored, and that survives exec. SIGUSR1 dumps its threads.
    code = (
        "import faulthandler, signal; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
        "signal.signal(signal.SIGINT, signal.default_int_handler); "
        "faulthandler.register(signal.SIGUSR1, all_threads=True); "
        "from adapters.quickbooks.sandbox import run_forever; run_forever('127.0.0.1', 0, seed=1, size='demo')"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = [child.stdout.readline() for _ in range(3)] if child.stdout else []
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=30)  # a deadlock guard, not a speed check
        except subprocess.TimeoutExpired:
            state = Path(f"/proc/{child.pid}/status").read_text()
            child.send_signal(signal.SIGUSR1)
            time.sleep(1)
            child.kill()
            _, err = child.communicate()
            sig = " ".join(line for line in state.splitlines() if line.startswith(("Sig", "Shd")))
            pytest.fail(f"the sandbox did not stop on SIGINT ({sig}); its threads:\n{err}")
    assert lines[0].startswith("QuickBooks Online sandbox: https://127.0.0.1:")
    assert "CA: /" in lines[1] and "client_id: ccm-sandbox-client" in lines[2]
    assert child.returncode == 0
