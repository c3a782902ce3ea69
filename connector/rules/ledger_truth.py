"""The ledger's truth first, for credit holds: what ccm leaves alone whatever the hold rules say.

A pure screen over the rules' decisions (connector/rules/credit.py), fed by `Agreement`
(connector/reconcile/agreement.py):
- an inactive customer (archived, deleted or merged in the ledger) is never held, and a hold ccm's rules
  placed on it is released, saying why; a manual hold stays until a person lifts it;
- a customer whose balance in the ledger differs from ccm's is neither held nor released tonight: ccm's
  figures for it cannot be trusted either way until the two agree.
Invoices the ledger marks paid or owes differently never reach the rules: `Basis.ledger` leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from connector.reconcile.agreement import Agreement
from connector.rules.credit import HOLD, RELEASE, Account, Decision


def screen(decisions: Sequence[Decision], accounts: Iterable[Account], agreed: Agreement) -> list[Decision]:
    """`decisions` less those ccm must not make, plus the releases of rule holds on inactive customers."""
    kept = [
        d
        for d in decisions
        if d.customer_id not in agreed.balances
        and not (d.customer_id in agreed.inactive and d.action == HOLD)
    ]
    releasing = {d.customer_id for d in kept if d.action == RELEASE}
    for account in sorted(accounts, key=lambda a: a.customer_id):
        why = agreed.inactive.get(account.customer_id)
        if why is None or not (account.on_hold and account.held_by_rule):
            continue
        release = Decision(account.customer_id, RELEASE, (f"{why}: ccm leaves inactive customers alone",),
                           account.name)  # fmt: skip
        if account.customer_id in releasing:
            kept = [release if d.customer_id == account.customer_id else d for d in kept]
        else:
            kept.append(release)
    return sorted(kept, key=lambda d: d.customer_id)
