"""`ccm demo`: a whole night on local sandbox ledgers, with the reminders saved as .eml files."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from connector.cli.app import Failure, app, err, out
from connector.cli.commands.run import print_details, summary_table

SHOWN = 5  # approved actions listed by name per tenant; the rest are counted


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its data and mail.")] = Path(
        "ccm-demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the generated demo firms.")] = 1,
) -> None:
    """Run a whole night on local Xero and QuickBooks sandboxes: connect, sync, reconcile, plan; then approve
    the plan as a person would and send it."""
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
    out.print("\nthe approval step: a person looks at the plan and approves it (`ccm outbox approve --all`)")
    for step in result.approvals:
        kinds = Counter(item.what for item in step.approved)
        listed = ", ".join(f"{n} {what}" for what, n in kinds.most_common()) or "nothing"
        out.print(f"{step.tenant_id}: approved {len(step.approved)} action(s): {listed}", markup=False)
        for item in step.approved[:SHOWN]:
            on = f" on {', '.join(item.invoices)}" if item.invoices else ""
            out.print(f"  {item.what} for {item.customer}{on}", markup=False)
        if len(step.approved) > SHOWN:
            out.print(f"  ... and {len(step.approved) - SHOWN} more (`ccm outbox list -t {step.tenant_id}`)")
        o = step.sent
        out.print(
            f"{step.tenant_id}: then sent exactly that (`ccm outbox send`): {len(o.sent)} reminder(s), "
            f"{len(o.tasks)} call task(s), {len(o.holds)} hold(s), {o.notes} ledger note(s); cancelled "
            f"{len(o.cancelled)}, deferred {len(o.deferred)}, failed {len(o.failed)}",
            markup=False,
        )
    home = result.settings.data_dir
    out.print(f"\n{len(result.mail)} reminder e-mail(s) saved in {result.workdir / 'mail'}")
    out.print("look further with:")
    for command in (
        "ccm nights last",
        "ccm log",
        "ccm connections",
        "ccm outbox list -t demo-xero",
        "ccm aging -t demo-xero",
        "ccm discrepancies -t demo-qbo",
    ):
        out.print(f"  CCM_HOME={home} {command}")
    out.print("every night, unattended, in each tenant's time zone: `ccm serve` (see README, ccm serve)")
    out.print(f"demo finished in {time.perf_counter() - began:.1f}s")
