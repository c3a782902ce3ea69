"""The one tenacity retry factory of the ledger adapters: the ledger's Retry-After, else the adapter's backoff

An adapter states its policy as a `RetryPolicy` (how many tries, which errors are worth another, how long to
back off) and gets its `Retrying` from `policy.retrying(sleep)`; the waiting and giving up are the same for
every ledger.

Invariants:
- A `RateLimited` error waits its own `retry_after` (never less than 0), whatever the backoff says.
- Only errors the policy's `worth` accepts are tried again; any other error, and the last one after
  `attempts` tries, is raised as it was (tenacity's `reraise`), never wrapped in a RetryError.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from connector.ledger import RateLimited


def doubling(first: float, most: float) -> Callable[[RetryCallState], float]:
    """Backoff without jitter: `first` seconds after the first failure, doubling, at most `most`."""

    def wait(state: RetryCallState) -> float:
        return min(first * 2 ** (state.attempt_number - 1), most)

    return wait


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What one adapter retries: up to `attempts` tries of the errors `worth` accepts, `backoff` between them
    (when the ledger named no Retry-After)."""

    attempts: int
    worth: Callable[[BaseException], bool]
    backoff: Callable[[RetryCallState], float]

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next try: the ledger's Retry-After when it gave one, else the backoff."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            return max(error.retry_after, 0.0)
        return float(self.backoff(state))

    def retrying(self, sleep: Callable[[float], None] = time.sleep, attempts: int | None = None) -> Retrying:
        """A tenacity Retrying under this policy, waiting with `sleep` (the ledger's clock, in tests a fake);
        `attempts` overrides the policy's number of tries."""
        return Retrying(
            retry=retry_if_exception(self.worth),
            wait=self.wait,
            stop=stop_after_attempt(attempts or self.attempts),
            sleep=sleep,
            reraise=True,
        )
