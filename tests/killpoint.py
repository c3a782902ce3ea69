"""Run `ccm` and SIGKILL it at the Nth side effect, before or after the effect happens; or freeze it.

    python -m tests.killpoint N before|after [--only email|ledger] -- ccm arguments...
    python -m tests.killpoint --freeze-holding-lease [--lease-ttl SECONDS] -- ccm arguments...

The side effects counted are the ones that leave the process: an e-mail handed to SMTP (`mail.Session.send`
and `mail.deliver`, whichever the executor calls, counted once when one calls the other), a note, a hold or a
ledger e-mail written to the ledger (the adapters' `add_note`, `set_hold`, `send_via_ledger`). The kill
points wrap these module boundaries, never the executor, so they stay where they say as the executor changes.
`--only` counts one kind: "3 before --only email" dies just before the third e-mail, whatever ledger writes
came first. "after" kills once the effect is done but before ccm records it: the moment an at-most-once
design must survive.

`--freeze-holding-lease` stops the process (SIGSTOP) the moment it has taken a tenant's run lease, as a laptop
lid or a debugger would; the test decides when it goes on (SIGCONT). `--lease-ttl` makes every lease the
process takes last that many seconds, so a frozen holder's lease runs out within a test's patience.

A test harness, never shipped.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

LEDGER_WRITES = ("add_note", "set_hold", "send_via_ledger")


@dataclass
class _Kill:
    n: int
    when: str  # before | after
    only: str | None  # email | ledger | None: every side effect
    seen: int = 0


_inside = threading.local()  # a counted effect in progress on this thread (Session.send calling deliver, say)


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _counted(original: Callable[..., Any], kind: str, kill: _Kill) -> Callable[..., Any]:
    @functools.wraps(original)
    def effect(*args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "active", False) or kill.only not in (None, kind):
            return original(*args, **kwargs)
        kill.seen += 1
        if kill.when == "before" and kill.seen == kill.n:
            _die()
        _inside.active = True
        try:
            result = original(*args, **kwargs)
        finally:
            _inside.active = False
        if kill.when == "after" and kill.seen == kill.n:
            _die()
        return result

    return effect


def _with_ttl(original: Callable[..., Any], ttl: timedelta) -> Callable[..., Any]:
    """`lease.kept` / `lease.held` with their `ttl` replaced, whatever the caller passed."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def short(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.arguments["ttl"] = ttl
        return original(*bound.args, **bound.kwargs)

    return short


def _freezing(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def acquire(*args: Any, **kwargs: Any) -> Any:
        taken = original(*args, **kwargs)
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSTOP)  # every thread stops here until the test sends SIGCONT
        return taken

    return acquire


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: python -m tests.killpoint [N before|after] [options] -- ccm arguments...")
    at = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m tests.killpoint")
    parser.add_argument("n", type=int, nargs="?")
    parser.add_argument("when", choices=("before", "after"), nargs="?")
    parser.add_argument("--only", choices=("email", "ledger"))
    parser.add_argument("--freeze-holding-lease", action="store_true")
    parser.add_argument("--lease-ttl", type=float)
    options = parser.parse_args(argv[:at])
    if (options.n is None) != (options.when is None):
        parser.error("give N and before|after together")
    return options, argv[at + 1 :]


def main(argv: list[str]) -> None:
    options, args = _parse(argv)
    from adapters.quickbooks.ledger import QuickBooksLedger
    from adapters.xero.ledger import XeroLedger
    from connector import lease, mail
    from connector.cli import main as ccm

    if options.n is not None:
        kill = _Kill(options.n, options.when, options.only)
        mail.deliver = _counted(mail.deliver, "email", kill)
        mail.Session.send = _counted(mail.Session.send, "email", kill)  # type: ignore[method-assign]
        for cls in (XeroLedger, QuickBooksLedger):
            for name in LEDGER_WRITES:
                setattr(cls, name, _counted(getattr(cls, name), "ledger", kill))
    if options.lease_ttl is not None:
        ttl = timedelta(seconds=options.lease_ttl)
        lease.kept = _with_ttl(lease.kept, ttl)
        lease.held = _with_ttl(lease.held, ttl)
    if options.freeze_holding_lease:
        lease.acquire = _freezing(lease.acquire)
    ccm(args)


if __name__ == "__main__":
    main(sys.argv[1:])
