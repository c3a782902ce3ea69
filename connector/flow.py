"""What a ledger's connect flow hands back between the code exchange and saving the connection.

`ccm connect` and the server's connect pages both drive an adapter's `flow` module (begin, exchange, save,
revoke); a Grant carries the new tokens and what they may connect to (Xero: the organisations the person
granted; QuickBooks: the one company), so the person can pick before anything is stored.
"""

from __future__ import annotations

import importlib
import json
import uuid
from dataclasses import dataclass, field
from types import ModuleType

from connector import ledger as registry
from connector.ledger import Fatal
from connector.oauth import TokenSet


class NoFlow(LookupError):
    def __init__(self, ledger: str) -> None:
        super().__init__(f"ledger {ledger!r} has no connect flow")


@dataclass(frozen=True, slots=True)
class Choice:
    id: str  # the ledger's id of the organisation or company (the connection's external id)
    name: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Grant:
    """One consent's tokens and what they reach; tenants saved from one Grant share its tokens (`id`)."""

    tokens: TokenSet
    choices: tuple[Choice, ...]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def choose(self, wanted: str | None, what: str) -> Choice:
        """The choice named by id or name, or the only one."""
        if wanted is not None:
            for choice in self.choices:
                if wanted in (choice.id, choice.name):
                    return choice
            raise Fatal(f"no {what} {wanted!r} among those granted: {self.listed()}")
        if len(self.choices) == 1:
            return self.choices[0]
        raise Fatal(f"several {what}s were granted; choose one: {self.listed()}")

    def listed(self) -> str:
        return ", ".join(f"{c.name} ({c.id})" for c in self.choices) or "none"

    def to_json(self) -> str:
        return json.dumps(
            {"tokens": self.tokens.to_json(), "choices": [[c.id, c.name, c.kind] for c in self.choices]}
        )

    @classmethod
    def from_json(cls, text: str) -> Grant:
        data = json.loads(text)
        return cls(TokenSet.from_json(data["tokens"]), tuple(Choice(*c) for c in data["choices"]))


def flow(ledger: str) -> ModuleType:
    """The adapter's connect flow module (`adapters.<ledger>.flow`)."""
    registry.get(ledger)
    try:
        return importlib.import_module(f"adapters.{ledger}.flow")
    except ModuleNotFoundError:
        raise NoFlow(ledger) from None
