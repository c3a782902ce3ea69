"""A sandbox in a process of its own, for benches and demos: the caller's CPU and memory stay its own.

`python -m adapters.quickbooks.sandbox --size large` serves and prints one JSON line with the base URL, the
CA path, the realmId(s) and the client credentials; `spawn()` starts that and reads the line. `--companies N`
serves N companies (generated from seeds seed, seed+1, ...), each with its own data and limits.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

from adapters.quickbooks.sandbox.auth import SCOPE

_REDIRECT = "https://ccm.invalid/callback"


@dataclass
class Spawned:
    """A sandbox running in a child process."""

    base_url: str
    ca_path: Path
    realm: str
    client_id: str
    client_secret: str
    process: subprocess.Popen[str]
    realms: list[str] = field(default_factory=list)  # every company's realmId, `realm` first

    @property
    def api_url(self) -> str:
        """What python-quickbooks' `api_url_v3` must be."""
        return self.base_url + "/v3"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self.base_url + "/oauth2/v1/tokens/bearer"

    def connect(self, realm: str | None = None) -> dict[str, Any]:
        """Consent (auto) to `realm` (the first company by default) and exchange the code over HTTP: the
        token answer, plus "realmId"."""
        http = requests.Session()
        http.verify, http.trust_env = str(self.ca_path), False
        with http:
            params = {"client_id": self.client_id, "response_type": "code", "scope": SCOPE,
                      "redirect_uri": _REDIRECT, "state": "spawned",
                      "realmId": realm or self.realm}  # fmt: skip
            answer = http.get(self.base_url + "/connect/oauth2", params=params, allow_redirects=False)
            back = parse_qs(urlparse(answer.headers["location"]).query)
            form = {"grant_type": "authorization_code", "code": back["code"][0], "redirect_uri": _REDIRECT}
            tokens: dict[str, Any] = http.post(self.token_url, data=form,
                                               auth=(self.client_id, self.client_secret)).json()  # fmt: skip
        return {**tokens, "realmId": back["realmId"][0]}

    def stop(self) -> None:
        """End the child process."""
        self.process.terminate()
        self.process.wait(timeout=10)


def spawn(*, seed: int = 1, size: str = "demo", limits: bool = True, companies: int = 1) -> Spawned:
    """Start `python -m adapters.quickbooks.sandbox` and wait until it serves.

    Raises:
        RuntimeError: the child exited before saying where it serves.
    """
    args = [sys.executable, "-m", "adapters.quickbooks.sandbox", "--seed", str(seed), "--size", size]
    args += [] if limits else ["--no-limits"]
    args += ["--companies", str(companies)] if companies != 1 else []
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our own module
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        process.wait(timeout=10)
        raise RuntimeError(f"the QBO sandbox process exited with {process.returncode} before serving")
    info = json.loads(line)
    return Spawned(info["base_url"], Path(info["ca_path"]), info["realm"], info["client_id"],
                   info["client_secret"], process, info["realms"])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Serve until terminated, after printing where (one JSON line on stdout)."""
    from adapters.quickbooks.sandbox import start
    from adapters.sandbox.generator import generate

    parser = argparse.ArgumentParser(prog="python -m adapters.quickbooks.sandbox", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", default="demo", choices=["demo", "small", "large"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-limits", action="store_true", help="do not enforce QBO's request limits")
    parser.add_argument("--companies", type=int, default=1, help="how many companies (realms) to serve")
    opts = parser.parse_args(argv)
    if opts.companies < 1:
        parser.error(f"--companies must be 1 or more, not {opts.companies}")
    extra = [generate(opts.seed + i, opts.size) for i in range(1, opts.companies)]
    sandbox = start(seed=opts.seed, size=opts.size, limits=not opts.no_limits, host=opts.host, port=opts.port,
                    extra_firms=extra)  # fmt: skip
    info = {"base_url": sandbox.base_url, "ca_path": str(sandbox.ca_path), "realm": sandbox.realm,
            "realms": sandbox.realms, "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret}  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop cleanly: the CA files are removed
    print(json.dumps(info), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
