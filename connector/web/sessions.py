"""Signed session cookies, CSRF tokens and the sign-in rate limit of the bookkeeper's pages.

The cookie holds the user's name, their password stamp (a password changed or a user removed ends every
session), a random CSRF token and when it was signed; it is signed with `web.key` (made 0600 in the data
folder on first use, beside the vault key) and refused after SESSION_LIFE. Before signing in, a cookie holds
only a CSRF token, so the sign-in form is protected too. Forms carry the token in a hidden field; a POST
whose field does not match its cookie's token is refused (403) before anything is read or changed.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from connector.config import Settings
from connector.redact import register_secret
from connector.store.engine import secure_data_dir

COOKIE = "ccm_session"
KEY_FILE = "web.key"
SESSION_LIFE = timedelta(hours=12)
FAILURES_ALLOWED = 5  # failed sign-ins of one user from one address ...
FAILURE_WINDOW = timedelta(minutes=15)  # ... within this long, then 429 until the oldest ages out
ADDRESS_FAILURES_ALLOWED = 20  # failed sign-ins from one address, whatever the user names


class WebKeyError(ValueError):
    """web.key is unusable; the message is one line and names the file."""


def load_key(settings: Settings) -> bytes:
    """<data_dir>/web.key, made (0600, 32 random bytes as hex) on first use."""
    path: Path = secure_data_dir(settings.data_dir) / KEY_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(secrets.token_hex(32))
    os.chmod(path, 0o600)
    key = path.read_text("ascii", "replace").strip()
    if len(key) < 32:
        raise WebKeyError(f"{path}: too short to sign sessions (remove it and a new one is made)")
    register_secret(key)
    return key.encode()


@dataclass(frozen=True, slots=True)
class Session:
    user: str | None  # None: not signed in (the cookie carries only the CSRF token)
    stamp: str
    csrf: str

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf.encode(), str(given).encode())


class Signer:
    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="ccm-web-session")

    def dump(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.user, "s": session.stamp, "c": session.csrf})

    def load(self, cookie: str | None) -> Session | None:
        """The session the cookie holds; None when missing, forged or older than SESSION_LIFE."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=int(SESSION_LIFE.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user = data.get("u")
        return Session(user if isinstance(user, str) else None, str(data.get("s", "")), data["c"])


def new_session(user: str | None = None, stamp: str = "") -> Session:
    return Session(user, stamp, secrets.token_urlsafe(32))


class SignInLimit:
    """Failed sign-ins per (user, address) and per address within FAILURE_WINDOW, in this process."""

    _MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        found = self._failures.get(key)
        if found is None:
            return deque()
        while found and found[0] <= now - FAILURE_WINDOW.total_seconds():
            found.popleft()
        if not found:
            del self._failures[key]
        return found

    def blocked(self, user: str, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return (
                len(self._recent((user, address), now)) >= FAILURES_ALLOWED
                or len(self._recent(("", address), now)) >= ADDRESS_FAILURES_ALLOWED
            )

    def failed(self, user: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= self._MAX_KEYS:  # bounded: the oldest keys go first
                for old in list(self._failures)[: self._MAX_KEYS // 10]:
                    del self._failures[old]
            for key in ((user, address), ("", address)):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._failures.pop((user, address), None)
