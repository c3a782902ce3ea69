"""Outbox action keys as a person types them: the full key, or a prefix unique within the tenant.

`shortest` gives each key the shortest prefix (at least MIN_SHORT characters) that no other key of the tenant
shares, as `ccm outbox list` shows it; `resolve` turns what was typed back into full keys. A prefix shared by
several actions is a one-line usage error listing them; one matching nothing is passed on unchanged, so each
command says in its own words that there is no such action.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, select

from connector.cli.app import UsageProblem
from connector.store.schema import outbox

MIN_SHORT = 12  # "dun-" and 8 hex digits: unique in practice, short enough to type
_LISTED = 5


def shortest(keys: Iterable[str]) -> dict[str, str]:
    """Each key's shortest unique prefix among `keys` (a key that is a prefix of another stays whole)."""
    ordered = sorted(set(keys))
    found: dict[str, str] = {}
    for n, key in enumerate(ordered):
        shared = max((_common(key, ordered[m]) for m in (n - 1, n + 1) if 0 <= m < len(ordered)), default=0)
        found[key] = key[: max(MIN_SHORT, shared + 1)]
    return found


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def resolve(conn: Connection, tenant_id: str, typed: Sequence[str]) -> list[str]:
    """The full key for each typed key or unique prefix, in order (no match: the text as typed)."""
    resolved: list[str] = []
    for text in typed:
        o = outbox.c
        exact = select(o.key).where(o.tenant_id == tenant_id, o.key == text)
        if conn.execute(exact).first() is not None:
            resolved.append(text)
            continue
        query = (
            select(o.key)
            .where(o.tenant_id == tenant_id, o.key.startswith(text, autoescape=True))
            .order_by(o.key)
            .limit(_LISTED + 1)
        )
        matches = list(conn.execute(query).scalars())
        if len(matches) > 1:
            shown = ", ".join(matches[:_LISTED]) + (", ..." if len(matches) > _LISTED else "")
            raise UsageProblem(
                f"key {text!r} matches several actions in {tenant_id!r}: {shown} (type more of it)"
            )
        resolved.append(matches[0] if matches else text)
    return resolved
