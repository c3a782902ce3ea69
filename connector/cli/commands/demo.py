"""`ccm demo`: a whole night on local sandbox ledgers, with the reminders saved as .eml files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from connector.cli.app import Failure, app, err, out
from connector.cli.commands.run import print_details, summary_table


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its data and mail.")] = Path(
        "ccm-demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the generated demo firms.")] = 1,
) -> None:
    """Run a whole night on local Xero and QuickBooks sandboxes: connect, sync, reconcile, remind."""
    from connector.demo import DemoError, prepare, run
    from connector.logs import configure

    configure("warning")
    began = time.perf_counter()
    try:
        prepare(directory.resolve())
        err.print("starting the Xero and QuickBooks sandboxes and connecting through OAuth ...")
        result = run(directory.resolve(), seed, prepared=True)
    except DemoError as exc:
        raise Failure(str(exc)) from None
    for tenant_id, what in result.connected:
        out.print(f"connected {tenant_id} to {what}")
    out.print(summary_table(result.summaries))
    for summary in result.summaries:
        print_details(summary)
    home = result.settings.data_dir
    out.print(f"\n{len(result.mail)} reminder e-mail(s) saved in {result.workdir / 'mail'}")
    out.print("look further with:")
    for command in (
        "ccm log",
        "ccm connections",
        "ccm outbox list -t demo-xero",
        "ccm aging -t demo-xero",
        "ccm discrepancies -t demo-qbo",
    ):
        out.print(f"  CCM_HOME={home} {command}")
    out.print("every night, unattended, in each tenant's time zone: `ccm serve` (see README, ccm serve)")
    out.print(f"demo finished in {time.perf_counter() - began:.1f}s")
