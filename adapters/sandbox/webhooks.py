"""Signing and delivering webhooks the way the ledgers do: base64 HMAC-SHA256 of the raw body."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import requests
import structlog

log = structlog.get_logger(__name__)


def sign(body: bytes, key: str) -> str:
    """The base64 HMAC-SHA256 of `body` under `key` (Xero's x-xero-signature, QBO's intuit-signature)."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def sign_and_post(url: str, body: bytes, header: str, key: str, *, verify: Path | str | bool = True,
                  timeout: float = 5.0) -> int:  # fmt: skip
    """POST `body` to `url` with its signature in `header`; return the HTTP status.

    Returns 0 when no answer came within `timeout` seconds or the connection failed: the ledgers treat that
    as a failed delivery, as they do a non-2xx status.
    """
    headers = {header: sign(body, key), "Content-Type": "application/json"}
    try:
        trust = str(verify) if isinstance(verify, Path) else verify
        answer = requests.post(url, data=body, headers=headers, verify=trust, timeout=timeout)
    except requests.RequestException as exc:
        log.info("webhook delivery failed", url=url, error=type(exc).__name__)
        return 0
    return answer.status_code
