"""`ccm sandbox NAME`: serve a ledger's local sandbox (`AdapterSpec.sandbox`) until interrupted."""

from __future__ import annotations

from typing import Annotated

import typer

from connector import ledger as registry
from connector.cli.app import UsageProblem, app

SIZES = ("demo", "small", "large")


@app.command()
def sandbox(
    name: Annotated[
        str, typer.Argument(help="which ledger: xero or quickbooks (any adapter with a sandbox)")
    ],
    port: Annotated[int, typer.Option(help="port to listen on (0: a free one)")] = 0,
    seed: Annotated[int, typer.Option(help="seed of the generated firm")] = 1,
    size: Annotated[str, typer.Option(help="firm size: demo, small or large")] = "demo",
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
) -> None:
    """Serve a faithful local ledger over HTTPS; prints its URL, CA certificate and client credentials."""
    with_sandbox = {n: s for n in registry.names() if (s := registry.get(n).sandbox) is not None}
    if name not in with_sandbox:
        raise UsageProblem(f"sandbox: unknown ledger {name!r} (known: {', '.join(sorted(with_sandbox))})")
    if size not in SIZES:
        raise UsageProblem(f"sandbox: --size must be one of {', '.join(SIZES)}, not {size!r}")
    if not 0 <= port <= 65_535:
        raise UsageProblem(f"sandbox: --port must be between 0 and 65535, not {port}")
    try:
        with_sandbox[name].serve(host, port, seed, size)
    except ModuleNotFoundError as exc:
        raise UsageProblem(f"sandbox: the {name} sandbox is not installed ({exc.name})") from exc
