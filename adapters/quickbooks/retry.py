"""The one tenacity Retrying factory of the QBO adapter: honours Retry-After, backs off on failures.

Reads go through it as they are. Writes reach it only as RateLimited (QBO refused them before doing
anything) or as errors marked `resend = False` (OutcomeUnknown, StaleObject), which it never resends:
see QboApi._write and writeback.py, which look at QBO before sending a write again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from connector.ledger import RateLimited, Retriable

MAX_ATTEMPTS = 5
MAX_WAIT_S = 120.0  # a longer Retry-After ends the run (the engine reports when it can resume)
_backoff = wait_exponential_jitter(multiplier=0.5, max=8.0)


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, RateLimited):
        return exc.retry_after <= MAX_WAIT_S
    return isinstance(exc, Retriable) and getattr(exc, "resend", True)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RateLimited):
        return max(exc.retry_after, 0.0)
    return float(_backoff(state))


def retrying(attempts: int = MAX_ATTEMPTS, sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """A Retrying that re-runs a call on RateLimited (after its Retry-After) and Retriable (backing off).

    After `attempts` tries, or on any other error, the last error is raised as it was.
    """
    return Retrying(
        retry=retry_if_exception(_worth_retrying),
        wait=_wait,
        stop=stop_after_attempt(attempts),
        sleep=sleep,
        reraise=True,
    )
