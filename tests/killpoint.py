"""Run `ccm` and SIGKILL it at the Nth side effect, before or after the effect happens.

    python -m tests.killpoint N before|after -- ccm arguments...

The side effects counted are the ones that leave the process: an e-mail handed to SMTP, a note, a hold or a
ledger e-mail written to the ledger. "after" kills once the effect is done but before ccm records it: the
moment an at-most-once design must survive. A test harness, never shipped.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

_count = 0


def _kill_if(n: int, phase: str, wanted: str) -> None:
    if phase == wanted and _count == n:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def _counted(original: Callable[..., Any], n: int, when: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def effect(*args: Any, **kwargs: Any) -> Any:
        global _count  # noqa: PLW0603 - one counter for the whole process, by design
        _count += 1
        _kill_if(n, "before", when)
        result = original(*args, **kwargs)
        _kill_if(n, "after", when)
        return result

    return effect


def main(argv: list[str]) -> None:
    n, when, sep, *args = argv
    assert sep == "--" and when in ("before", "after")
    from adapters.quickbooks.ledger import QuickBooksLedger
    from adapters.xero.ledger import XeroLedger
    from connector import mail
    from connector.cli import main as ccm

    mail.deliver = _counted(mail.deliver, int(n), when)
    for cls in (XeroLedger, QuickBooksLedger):
        for name in ("add_note", "set_hold", "send_via_ledger"):
            setattr(cls, name, _counted(getattr(cls, name), int(n), when))
    ccm(args)


if __name__ == "__main__":
    main(sys.argv[1:])
