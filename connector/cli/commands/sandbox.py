"""`ccm sandbox NAME`: serve a local ledger sandbox (xero, quickbooks) until interrupted."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from connector.cli.app import UsageProblem, app
from connector.ledger import BUILTIN

SIZES = ("demo", "small", "large")


@app.command()
def sandbox(
    name: Annotated[str, typer.Argument(help="which ledger: xero or quickbooks")],
    port: Annotated[int, typer.Option(help="port to listen on (0: a free one)")] = 0,
    seed: Annotated[int, typer.Option(help="seed of the generated firm")] = 1,
    size: Annotated[str, typer.Option(help="firm size: demo, small or large")] = "demo",
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
) -> None:
    """Serve a faithful local ledger over HTTPS; prints its URL, CA certificate and client credentials."""
    if name not in BUILTIN:
        raise UsageProblem(f"sandbox: unknown ledger {name!r} (known: {', '.join(sorted(BUILTIN))})")
    if size not in SIZES:
        raise UsageProblem(f"sandbox: --size must be one of {', '.join(SIZES)}, not {size!r}")
    if not 0 <= port <= 65_535:
        raise UsageProblem(f"sandbox: --port must be between 0 and 65535, not {port}")
    try:
        module = importlib.import_module(f"adapters.{name}.sandbox")
    except ModuleNotFoundError as exc:
        raise UsageProblem(f"sandbox: the {name} sandbox is not installed ({exc.name})") from exc
    module.run_forever(host, port, seed=seed, size=size)
