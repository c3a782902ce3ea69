"""The `ccm` command line (Typer + Rich)."""

from connector.cli.app import app, main

__all__ = ["app", "main"]
