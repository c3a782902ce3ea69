"""ccm's errors, by what the caller does next. Every problem ccm expects is a `CcmError`; anything else is a
bug (or the database), which a server logs with its traceback and files as a `crashed` night to run again.

- `NeedsPerson`: this firm cannot go on until a person acts (a settings or rules file, a template, the
  firm's calendar, reconnecting its ledger, an unknown tenant): its night fails with the one-line message,
  and other firms go on.
- `TryLater`: the same work may succeed later by itself (a 5xx, a dropped connection, a rate limit, an SMTP
  4xx): its night or action is retried after a wait.

The kinds are mixed into the errors the modules raise (`FileProblem`, `TemplateProblem`, `CalendarError`,
`NotConnected`, `UnknownTenant`, the ledgers' `AuthExpired`/`Retriable`/`RateLimited`, mail's `Transient`),
which keep their own base classes (ValueError, LookupError, ...) for the code that catches those.
"""

from __future__ import annotations


class CcmError(Exception):
    """A problem ccm expects; its message is one line a person can act on, and never holds a secret."""


class NeedsPerson(CcmError):
    """Nothing more can be done for this firm until a person acts on the message."""


class TryLater(CcmError):
    """Transient: the same work may succeed later by itself."""
