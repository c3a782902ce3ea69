"""A real SMTP server (aiosmtpd) that misbehaves as real ones do: greylisting, replies scripted per recipient
(421 closing, 450/451 try later, 550 no such mailbox), and a login it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.smtp import Inbox, _free_port


@dataclass
class FaultyInbox(Inbox):
    greylist: dict[str, int] = field(default_factory=dict)  # recipient: how many more times to answer 451
    # recipient: the replies its next RCPTs get, in order ("421 4.7.0 closing"); once used up, the usual ones
    script: dict[str, list[str]] = field(default_factory=dict)
    # the replies the next RCPTs get, whoever they name, in order ("" for the usual one); used up one by one
    next_rcpt: list[str] = field(default_factory=list)
    password: str | None = None  # the one password the server takes (None: it asks for no login)
    logins: int = 0  # login attempts, accepted or not

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if self.next_rcpt:
            reply = self.next_rcpt.pop(0)
            if reply:
                return reply
        if self.script.get(address):
            return self.script[address].pop(0)
        if self.greylist.get(address, 0) > 0:
            self.greylist[address] -= 1
            return "451 4.7.1 greylisted: please try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.logins += 1
        ok = isinstance(data, LoginPassword) and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)


@contextmanager
def faulty_smtp_server(password: str | None = None) -> Iterator[FaultyInbox]:
    """A server on a free loopback port; with `password`, it offers AUTH (over plain text) and takes only it."""
    inbox = FaultyInbox("127.0.0.1", _free_port(), password=password)
    auth: dict[str, Any] = (
        {"authenticator": inbox.authenticate, "auth_require_tls": False, "auth_exclude_mechanism": ["LOGIN"]}
        if password is not None
        else {}
    )
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port, **auth)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def per_key(inbox: Inbox) -> dict[str, int]:
    """How many messages the server accepted per action key (X-CCM-Action)."""
    counts: dict[str, int] = {}
    for message in inbox.messages:
        key = str(message["X-CCM-Action"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    return _free_port()
