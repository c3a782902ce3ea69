"""A ledger's connect flow, what it hands back between the code exchange and saving, and the saving.

`ccm connect` and the server's connect pages both drive the adapter's `ConnectFlow` (`AdapterSpec.connect`:
begin, exchange, revoke); a Grant carries the new tokens and what they may connect to (Xero: the
organisations the person granted; QuickBooks: the one company), so the person can pick before anything is
stored. Saving is the core's (`save_grant`), the same for every ledger: tokens in the vault first, then the
tenant and its connection in one transaction, so a connection never exists without its tokens.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, urlparse

from connector import ledger as registry
from connector.ledger import Fatal
from connector.model import Connection, ConnectionState, Tenant
from connector.oauth import TokenSet, TokenVault
from connector.store.tenants import save_connection, save_tenant

if TYPE_CHECKING:
    from connector.config import Settings
    from connector.store import Store


class NoFlow(LookupError):
    """The ledger's adapter has no connect flow."""

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


class ConnectFlow(Protocol):
    """How a ledger is connected: the OAuth authorization-code flow, in the steps a person's browser takes."""

    def redirect_uri(self, settings: Settings) -> str:
        """Where the ledger sends the person back with the code (`ccm connect` listens there)."""
        ...

    def begin(self, settings: Settings, state: str) -> tuple[str, str | None]:
        """The authorize URL to send the person to (carrying `state`), and the PKCE verifier to keep for
        `exchange` (None: the ledger uses no PKCE)."""
        ...

    def exchange(
        self,
        settings: Settings,
        callback: Mapping[str, str],
        code_verifier: str | None,
        now: datetime | None = None,
    ) -> Grant:
        """Trade the callback's query (`code`, and what else the ledger sends) for tokens and what they reach.

        Raises:
            AuthExpired: The ledger refused the code.
            Fatal: The consent reaches nothing ccm can connect.
        """
        ...

    def revoke(self, settings: Settings, store: Store, tenant_id: str) -> str:
        """End ccm's access to the tenant's organisation at the ledger; says what was done.

        Raises:
            AuthExpired: The tenant holds no tokens to revoke.
        """
        ...


def flow(ledger: str) -> ConnectFlow:
    """The connect flow of the ledger's adapter.

    Raises:
        UnknownLedger: No adapter is registered as `ledger`.
        NoFlow: Its adapter has no connect flow.
    """
    found = registry.get(ledger).connect
    if found is None:
        raise NoFlow(ledger)
    return found


def save_grant(store: Store, vault: TokenVault, tenant: Tenant, grant: Grant, choice: Choice) -> str:
    """Store the chosen organisation as the tenant's connection to its ledger; says what was connected.

    The same for every ledger: the tokens go into the vault first (under the grant's id: tenants connected
    from one consent share its tokens), then the tenant (named after the organisation when it has no name
    yet) and its connection, in one transaction. A connection therefore never exists without its tokens.

    Args:
        store: The store.
        vault: The token vault (`TokenVault.open(store, settings)`, or one on a test's clock).
        tenant: The tenant to connect; its `ledger` names the adapter.
        grant: What the flow's `exchange` gave.
        choice: The organisation chosen among the grant's.

    Returns:
        The organisation's name, as the person chose it.
    """
    vault.put(tenant.id, grant.tokens, grant.id)
    with store.begin() as conn:
        save_tenant(conn, replace(tenant, name=tenant.name or choice.name))
        save_connection(conn, Connection(tenant.id, tenant.ledger, choice.id, ConnectionState.CONNECTED, ""))
    return choice.name


def follow_consent(url: str, verify: str | bool = True) -> dict[str, str]:
    """Follow an authorize URL where consent is automatic (a sandbox's) and return the callback's query.

    This stands in for a person's browser in `ccm demo`, the tests and the benches; against a real ledger a
    person signs in and the callback receives the same query.

    Raises:
        Fatal: The ledger did not redirect back with a code.
    """
    import requests

    answer = requests.get(url, allow_redirects=False, verify=verify, timeout=30)
    query = {k: v[0] for k, v in parse_qs(urlparse(answer.headers.get("location", "")).query).items()}
    if answer.status_code not in (302, 303, 307) or "code" not in query:
        raise Fatal(
            f"the consent did not redirect back with a code ({query.get('error', answer.status_code)})"
        )
    return query
