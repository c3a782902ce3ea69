"""One GET per source: requests with a timeout, tenacity retrying what may pass, then a strict parse.

Retried (three tries in all, backing off, or after the Retry-After the service asks for, up to a minute):
refused or dropped connections, timeouts, 429 and 5xx. Anything else (a 404, an answer in the wrong shape)
is final at once. Nothing here touches the database: the caller stores what comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from connector.reference_rates.sources import START, BadAnswer, Source
from connector.rules.interest import Changes

ATTEMPTS = 3
TIMEOUT = (5.0, 30.0)  # seconds to connect, to read
MAX_RETRY_AFTER = 60.0
USER_AGENT = "ccm (credit-and-collections connector; statutory interest reference rates)"
_backoff = wait_exponential(multiplier=1, max=10)


class Unreachable(Exception):
    """A source could not be asked or would not answer; nothing stored changes. One line."""


class _Again(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Again) and exc.retry_after is not None:
        return min(exc.retry_after, MAX_RETRY_AFTER)
    return float(_backoff(state))


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None  # absent, or an HTTP date: back off as usual


def _get(session: requests.Session, source: Source, start: date, timeout: tuple[float, float]) -> str:
    host = urlsplit(source.url).netloc
    try:
        response = session.get(
            source.url, params=source.params(start), timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "text/csv, */*;q=0.1"},
        )  # fmt: skip
    except requests.Timeout:
        raise _Again(f"no answer from {host} in time") from None
    except requests.ConnectionError:
        raise _Again(f"cannot connect to {host}") from None
    except requests.RequestException as exc:
        raise Unreachable(f"{source.label}: cannot ask {host} ({type(exc).__name__})") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise _Again(f"{host} answered HTTP {response.status_code}", _retry_after(response))
    if response.status_code != 200:
        raise Unreachable(f"{source.label}: {host} answered HTTP {response.status_code}")
    return response.content.decode("utf-8-sig", errors="replace")


def fetch(
    source: Source,
    start: date = START,
    *,
    session: requests.Session | None = None,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    timeout: tuple[float, float] = TIMEOUT,
) -> Changes:
    """The source's observations from `start` on, ascending, after at most `attempts` tries (default ATTEMPTS
    as it is when called).

    Raises:
        Unreachable: no usable answer after `attempts` tries (or a final refusal such as a 404).
        BadAnswer: an answer not in the source's shape.
    """
    attempts = ATTEMPTS if attempts is None else attempts
    own = session is None
    http = session or requests.Session()
    retrying = Retrying(
        retry=retry_if_exception_type(_Again), wait=_wait, stop=stop_after_attempt(attempts), sleep=sleep,
        reraise=True,
    )  # fmt: skip
    try:
        text = retrying(_get, http, source, start, timeout)
    except _Again as exc:
        tries = f"{attempts} tries" if attempts != 1 else "1 try"
        raise Unreachable(f"{source.label}: {exc} (after {tries})") from None
    finally:
        if own:
            http.close()
    return source.parse(text)


__all__ = ["BadAnswer", "Unreachable", "fetch"]
