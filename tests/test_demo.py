"""`ccm demo` from a clean folder: both sandboxes, the OAuth flow, a whole night, reminders as .eml files."""

from __future__ import annotations

import os
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest

pytest.importorskip("adapters.xero.sandbox", reason="the demo needs the sandboxes")
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
