"""Credit control over the store: limits, the holds the ledger shows, planning holds and releases, limit
suggestions.

Not to be confused with connector/rules/credit.py, the pure hold rules and their file, which this package
feeds. Its modules, each with one job:

- `store`: limits, holds, manual holds read and written in the caller's transaction; `standing` reads what
  planning needs in one go;
- `csvimport`: limits as typed (`parse_limit`) and imported from CSV, all or nothing (`LimitFileError`);
- `planning`: every customer's account (exposure in the limit's currency), tonight's hold decisions
  (`decide_on`, pure and shared by the night), who is held after them, unapplied-money flags, the outbox
  actions that carry them out;
- `suggestions`: credit limit suggestions with the figures behind them (`ccm limits suggest`).

Hold decisions go through the outbox like every side effect. Unapplied money while invoices are open is not
a reason to hold: `planning.unapplied_flags` asks the bookkeeper.
"""

from __future__ import annotations

from connector.creditcontrol.csvimport import LimitFileError, import_limits, import_limits_upload, parse_limit
from connector.creditcontrol.planning import (
    accounts,
    decide,
    decide_on,
    held_after,
    hold_actions,
    hold_key,
    unapplied_flags,
    with_segment_defaults,
)
from connector.creditcontrol.store import (
    Held,
    Standing,
    holds,
    limits,
    manual_holds,
    record_hold,
    set_limit,
    standing,
)
from connector.creditcontrol.suggestions import Suggestion, peak_exposure, suggest
from connector.rules.credit import HOLD, RELEASE, Account, Decision

__all__ = [
    "HOLD", "RELEASE", "Account", "Decision", "Held", "LimitFileError", "Standing", "Suggestion", "accounts",
    "decide", "decide_on", "held_after", "hold_actions", "hold_key", "holds", "import_limits",
    "import_limits_upload", "limits", "manual_holds", "parse_limit", "peak_exposure", "record_hold",
    "set_limit", "standing", "suggest", "unapplied_flags", "with_segment_defaults",
]  # fmt: skip
