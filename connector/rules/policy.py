"""Dunning policies: ordered reminder levels, chosen per customer, declared in YAML and validated at load.

A policy file (shipped: connector/rules/policies.yaml; a tenant's own `policy.yaml` replaces it whole):

```yaml
version: 1
default: standard                  # used when no policy's `when` matches
policies:
  - name: standard
    when: {segments: [Retail], risk: [low, medium]}   # optional; both lists optional; first match wins
    days: calendar                 # calendar | business: how offsets count
    chase_on_hold: false           # remind customers on credit hold?
    hold_template: hold            # optional: the wording of any e-mail to a customer on (or going on) hold
    old_debt: {days: 60, template: overdue}  # optional: ccm's first e-mail on a debt this many days overdue
                                   #   uses this wording when its level was meant for younger debts
    backlog_days: 90               # optional: invoices overdue longer than this when the firm was connected
                                   #   are not chased until a person includes them (`ccm include`)
    levels:                        # ordered; offsets strictly increase
      - name: courtesy
        offset: -3                 # days relative to the due date (negative: before it)
        channel: email             # email | ledger_email | call_task
        template: courtesy
        min_amount: 5.00           # optional: skip smaller outstanding amounts
        min_days_since_last: 5     # optional: at least this many days after the previous reminder
        interest: true             # optional: add the statutory interest line (credit.statutory_interest)
        invoice_copy: false        # optional: no invoice copy (link or PDF) with this level (default: true)
```
Errors are one line: `policy.yaml: policies[0].levels[1].offset: must be after the previous level's (7)`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from connector.yamlfile import FileProblem, read_yaml

SHIPPED = Path(__file__).with_name("policies.yaml")
CHANNELS = ("email", "ledger_email", "call_task")
RISKS = ("low", "medium", "high")
DayKind = Literal["calendar", "business"]
Channel = Literal["email", "ledger_email", "call_task"]


class PolicyFileError(FileProblem):
    """A policy file is unreadable or invalid; one line naming file, key path and problem."""


@dataclass(frozen=True, slots=True)
class Level:
    number: int  # 1-based position in its policy
    name: str
    offset: int
    channel: Channel
    template: str
    min_amount: Decimal | None = None
    min_days_since_last: int | None = None
    interest: bool = False  # show the statutory interest line (when the tenant has it switched on)
    invoice_copy: bool = True  # link to (Xero) or attach (QuickBooks) each invoice (connector/envelope.py)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    version: str  # a digest of the policy's content: part of every action key, so edits never collide
    levels: tuple[Level, ...]
    days: DayKind = "calendar"
    chase_on_hold: bool = False
    segments: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    backlog_days: int | None = None  # None: no backlog cutoff (connector/backlog.py)
    hold_template: str = "hold"
    old_debt_days: int = 60
    old_debt_template: str = "overdue"

    def matches(self, segments: Sequence[str], risk: str | None) -> bool:
        segment_ok = not self.segments or any(s in self.segments for s in segments)
        risk_ok = not self.risks or (risk is not None and risk in self.risks)
        return segment_ok and risk_ok

    def level(self, number: int) -> Level | None:
        return self.levels[number - 1] if 1 <= number <= len(self.levels) else None


@dataclass(frozen=True, slots=True)
class PolicySet:
    source: str
    policies: tuple[Policy, ...]
    default: str

    def get(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

    def choose(self, segments: Sequence[str], risk: str | None, override: str | None = None) -> Policy:
        """The customer's own policy if known, else the first whose `when` matches, else the default."""
        if override and (chosen := self.get(override)):
            return chosen
        for policy in self.policies:
            if (policy.segments or policy.risks) and policy.matches(segments, risk):
                return policy
        default = self.get(self.default)
        assert default is not None  # checked at load
        return default


class _Problem(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Problem(where, "expected a mapping")
    return value


def _only(spec: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in spec:
        if key not in allowed:
            raise _Problem(
                f"{where}.{key}" if where else str(key), f"unknown key (allowed: {', '.join(allowed)})"
            )


def _text(spec: Mapping[str, Any], key: str, where: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _Problem(f"{where}.{key}", "must be non-empty text")
    return value


def _int(value: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem(where, f"must be a whole number of days, got {value!r}")
    if minimum is not None and value < minimum:
        raise _Problem(where, f"must be at least {minimum}")
    return value


def _amount(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _Problem(where, f"must be an amount, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise _Problem(where, f"must be a non-negative amount, got {value!r}")
    return amount


def _names(value: Any, where: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Problem(where, "must be a list of names")
    for v in value:
        if allowed is not None and v not in allowed:
            raise _Problem(where, f"{v!r} is not one of {', '.join(allowed)}")
    return tuple(value)


_LEVEL_KEYS = (
    "name", "offset", "channel", "template", "min_amount", "min_days_since_last", "interest", "invoice_copy",
)  # fmt: skip


def _level(spec: Any, number: int, where: str, previous: int | None) -> Level:
    spec = _mapping(spec, where)
    _only(spec, _LEVEL_KEYS, where)
    interest = spec.get("interest", False)
    if not isinstance(interest, bool):
        raise _Problem(f"{where}.interest", "must be true or false")
    if not isinstance(spec.get("invoice_copy", True), bool):
        raise _Problem(f"{where}.invoice_copy", "must be true or false")
    offset = _int(spec.get("offset"), f"{where}.offset")
    if previous is not None and offset <= previous:
        raise _Problem(f"{where}.offset", f"must be after the previous level's ({previous})")
    channel = spec.get("channel")
    if channel not in CHANNELS:
        raise _Problem(f"{where}.channel", f"must be one of {', '.join(CHANNELS)}, got {channel!r}")
    return Level(
        number=number, name=_text(spec, "name", where), offset=offset, channel=channel,
        template=_text(spec, "template", where),
        min_amount=_amount(spec["min_amount"], f"{where}.min_amount") if "min_amount" in spec else None,
        min_days_since_last=(
            _int(spec["min_days_since_last"], f"{where}.min_days_since_last", 0)
            if "min_days_since_last" in spec else None
        ),
        interest=interest, invoice_copy=spec.get("invoice_copy", True),
    )  # fmt: skip


def _policy(spec: Any, where: str) -> Policy:
    spec = _mapping(spec, where)
    _only(spec, ("name", "when", "days", "chase_on_hold", "backlog_days", "hold_template", "old_debt",
                 "levels"), where)  # fmt: skip
    name = _text(spec, "name", where)
    days = spec.get("days", "calendar")
    if days not in ("calendar", "business"):
        raise _Problem(f"{where}.days", f"must be calendar or business, got {days!r}")
    chase_on_hold = spec.get("chase_on_hold", False)
    if not isinstance(chase_on_hold, bool):
        raise _Problem(f"{where}.chase_on_hold", "must be true or false")
    when = _mapping(spec.get("when", {}), f"{where}.when")
    _only(when, ("segments", "risk"), f"{where}.when")
    raw_levels = spec.get("levels")
    if not isinstance(raw_levels, list) or not raw_levels:
        raise _Problem(f"{where}.levels", "must be a non-empty list of levels")
    levels: list[Level] = []
    for i, raw in enumerate(raw_levels):
        previous = levels[-1].offset if levels else None
        levels.append(_level(raw, i + 1, f"{where}.levels[{i}]", previous))
    backlog = spec.get("backlog_days")
    backlog_days = _int(backlog, f"{where}.backlog_days", 0) if backlog is not None else None
    # The cutoff decides which invoices are chased, not what a reminder says: it is not part of the version,
    # so setting it does not re-key reminders already planned.
    worded = {k: v for k, v in spec.items() if k != "backlog_days"}
    digest = hashlib.sha256(json.dumps(worded, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return Policy(
        name=name, version=digest, levels=tuple(levels), days=days, chase_on_hold=chase_on_hold,
        segments=_names(when["segments"], f"{where}.when.segments") if "segments" in when else (),
        risks=_names(when["risk"], f"{where}.when.risk", RISKS) if "risk" in when else (),
        backlog_days=backlog_days, **_wordings(spec, where),
    )  # fmt: skip


def _wordings(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`hold_template` and `old_debt: {days, template}`, each optional (the defaults stand)."""
    found: dict[str, Any] = {}
    if "hold_template" in spec:
        found["hold_template"] = _text(spec, "hold_template", where)
    if "old_debt" in spec:
        old = _mapping(spec["old_debt"], f"{where}.old_debt")
        _only(old, ("days", "template"), f"{where}.old_debt")
        if "days" in old:
            found["old_debt_days"] = _int(old["days"], f"{where}.old_debt.days", 1)
        if "template" in old:
            found["old_debt_template"] = _text(old, "template", f"{where}.old_debt")
    return found


def parse_policies(doc: Any, source: str) -> PolicySet:
    """Validate a policy document. Raises PolicyFileError with one line."""
    try:
        doc = _mapping(doc, "(top)")
        _only(doc, ("version", "default", "policies"), "")
        if doc.get("version") != 1:
            raise _Problem("version", f"unsupported policy version {doc.get('version')!r} (supported: 1)")
        raw = doc.get("policies")
        if not isinstance(raw, list) or not raw:
            raise _Problem("policies", "must be a non-empty list of policies")
        policies = tuple(_policy(p, f"policies[{i}]") for i, p in enumerate(raw))
        names = [p.name for p in policies]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise _Problem(f"policies[{i}].name", f"duplicate policy name {name!r}")
        default = doc.get("default", names[0])
        if default not in names:
            raise _Problem("default", f"no policy named {default!r} (have: {', '.join(names)})")
    except _Problem as problem:
        raise PolicyFileError(f"{source}: {problem.where}: {problem.message}") from None
    return PolicySet(source, policies, default)


def load_policies(tenant_file: Path | None = None) -> PolicySet:
    """The tenant's policy file if it exists, else the shipped defaults."""
    path = tenant_file if tenant_file is not None and tenant_file.exists() else SHIPPED
    name = str(path) if path != SHIPPED else "connector/rules/policies.yaml"
    return parse_policies(read_yaml(path, name, PolicyFileError), name)
