"""`ccm demo`."""

from __future__ import annotations

from connector.cli.app import app, out


@app.command()
def demo() -> None:
    """Run a whole night on local sandbox ledgers (arrives with the adapters)."""
    out.print("ccm demo: the demo arrives with the adapters (Xero and QuickBooks sandboxes).")
