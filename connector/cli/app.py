"""The Typer application, shared state, and one-line errors with meaningful exit codes.

Exit codes: 0 done; 1 the work failed (a sync failed, a ledger refused); 2 bad usage or bad input
(arguments, unknown tenant, invalid settings or mapping files); 130 interrupted.
"""

from __future__ import annotations

import contextvars
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connector.config import ConfigError, Settings, config_path, load_settings
from connector.ledger import LedgerError, UnknownLedger
from connector.logs import configure
from connector.redact import scrub
from connector.store import Store
from connector.store.engine import DatabaseUnreachable, DatabaseUrlError
from connector.store.tenants import UnknownTenant
from connector.yamlfile import FileProblem

try:  # typer 0.2x vendors its own click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as click_errors  # type: ignore[no-redef]

app = typer.Typer(
    name="ccm",
    help="ccm: chase late payers politely, on time, never twice. A credit-and-collections connector for "
    "Xero and QuickBooks Online.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageProblem(Exception):
    """Bad input from the person at the keyboard: exit 2."""


class Failure(Exception):
    """The requested work failed: exit 1."""


@dataclass
class State:
    config: Path | None
    _settings: Settings | None = None
    _store: Store | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(config_path(self.config))
            configure(self._settings.log.level, self._settings.log.format)
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            from connector.wiring import open_store

            self._store = open_store(self.settings)
        return self._store


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Settings file (default: $CCM_CONFIG, else ./ccm.toml).")
    ] = None,
) -> None:
    ctx.obj = State(config)


_PIPE_WIDTH = 160
_USAGE_ERRORS = (UsageProblem, ConfigError, FileProblem, UnknownTenant, UnknownLedger, DatabaseUrlError)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `ccm` console script."""
    # Commands register themselves on import.
    from connector.cli import commands  # noqa: F401

    for console in (out, err):
        if not console.is_terminal:
            console.width = max(console.width, _PIPE_WIDTH)  # files and pipes get whole tables, not "sta…"
    try:
        # in a context of its own: what a command sets for itself (the firm's locale) ends with it
        code = contextvars.copy_context().run(app, args=argv, prog_name="ccm", standalone_mode=False)
    except click_errors.UsageError as exc:
        err.print(f"ccm: error: {exc.format_message()}", markup=False)
        sys.exit(2)
    except typer.Abort:
        err.print("ccm: interrupted", markup=False)
        sys.exit(130)
    except _USAGE_ERRORS as exc:
        err.print(f"ccm: error: {scrub(str(exc))}", markup=False)
        sys.exit(2)
    except (Failure, LedgerError, DatabaseUnreachable) as exc:  # a ledger's refusal, a database down
        err.print(f"ccm: {scrub(str(exc))}", markup=False)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
