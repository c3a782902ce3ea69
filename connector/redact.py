"""Keeping secrets out of logs, errors and pages.

Two nets: values under secret-sounding keys are replaced, and every registered secret value (a token, a
client secret, a password) is scrubbed from any text that passes through `scrub`, wherever it appears.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|authorization|api[_-]?key|cookie|code_verifier|signature|"
    r"webhook_key|verifier)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@", re.I)
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
_MIN_SECRET = 6  # shorter values would scrub ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so `scrub` removes it from any text from now on."""
    if value and len(value) >= _MIN_SECRET:
        with _lock:
            _secrets.add(value)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def scrub(text: str) -> str:
    """`text` with registered secrets, URL passwords and bearer/basic credentials replaced."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_value(key: str, value: Any) -> Any:
    if is_secret_key(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(key, v) for v in value)
    if isinstance(value, BaseException):
        return scrub(str(value))
    return value


def structlog_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor applying both nets to every key of every event."""
    for key in list(event_dict):
        event_dict[key] = scrub_value(key, event_dict[key])
    return event_dict


class StdlibFilter(logging.Filter):
    """Scrubs records from libraries that log through the standard library (urllib3, uvicorn, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = scrub(message)
        record.args = None
        return True
