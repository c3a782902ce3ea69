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
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from connector.yamlfile import FileModel, FileProblem, at, read_yaml, required, validated, worded

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


# ---- the file, as its models check it


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("blank")
    return value


def _risks(value: tuple[str, ...]) -> tuple[str, ...]:
    for risk in value:
        if risk not in RISKS:
            raise ValueError(f"{risk!r} is not one of {', '.join(RISKS)}")
    return value


Text = Annotated[StrictStr, AfterValidator(_non_empty), worded("must be non-empty text")]
Days = Annotated[StrictInt, worded("must be a whole number of days, got {got}")]
Flag = Annotated[StrictBool, worded("must be true or false")]
Names = Annotated[tuple[StrictStr, ...], worded("must be a list of names")]
_AMOUNT, _NEGATIVE = "must be an amount, got {got}", "must be a non-negative amount, got {got}"
Amount = Annotated[
    Annotated[Decimal, Field(ge=0)] | None,
    worded(_AMOUNT, greater_than_equal=_NEGATIVE, finite_number=_NEGATIVE),
]
_LEVEL = Level(0, "", 0, "email", "")
_POLICY = Policy("", "", ())


def _days_from(minimum: int) -> Any:
    return worded(
        "must be a whole number of days, got {got}", greater_than_equal=f"must be at least {minimum}"
    )


class _LevelSpec(FileModel):
    name: Text = required()
    offset: Days = required()
    channel: Annotated[Channel, worded(f"must be one of {', '.join(CHANNELS)}, got {{got}}")] = required()
    template: Text = required()
    min_amount: Amount = _LEVEL.min_amount
    min_days_since_last: Annotated[Annotated[StrictInt, Field(ge=0)] | None, _days_from(0)] = (
        _LEVEL.min_days_since_last
    )
    interest: Flag = _LEVEL.interest
    invoice_copy: Flag = _LEVEL.invoice_copy

    def level(self, number: int) -> Level:
        return Level(number, **self.model_dump())


class _When(FileModel):
    segments: Names = ()
    risk: Annotated[Names, AfterValidator(_risks)] = ()


class _OldDebt(FileModel):
    days: Annotated[Days, Field(ge=1)] = _POLICY.old_debt_days
    template: Text = _POLICY.old_debt_template


class _PolicySpec(FileModel):
    name: Text = required()
    days: Annotated[DayKind, worded("must be calendar or business, got {got}")] = _POLICY.days
    chase_on_hold: Flag = _POLICY.chase_on_hold
    when: _When = _When()
    levels: Annotated[
        list[_LevelSpec], Field(min_length=1), worded("must be a non-empty list of levels", shallow=True)
    ] = required()
    backlog_days: Annotated[Annotated[StrictInt, Field(ge=0)] | None, _days_from(0)] = _POLICY.backlog_days
    hold_template: Text = _POLICY.hold_template
    old_debt: _OldDebt = _OldDebt()

    @field_validator("levels")
    @classmethod
    def _ordered(cls, levels: list[_LevelSpec]) -> list[_LevelSpec]:
        for i, (before, level) in enumerate(pairwise(levels), start=1):
            if level.offset <= before.offset:
                raise at((i, "offset"), f"must be after the previous level's ({before.offset})")
        return levels

    def policy(self, raw: Mapping[str, Any]) -> Policy:
        """The policy; `raw` is its mapping as the file has it, whose digest is the policy's version."""
        # The cutoff decides which invoices are chased, not what a reminder says: it is not part of the
        # version, so setting it does not re-key reminders already planned.
        wording = {k: v for k, v in raw.items() if k != "backlog_days"}
        digest = hashlib.sha256(json.dumps(wording, sort_keys=True, default=str).encode()).hexdigest()[:12]
        return Policy(
            name=self.name, version=digest, levels=tuple(lv.level(i) for i, lv in enumerate(self.levels, 1)),
            days=self.days, chase_on_hold=self.chase_on_hold, segments=self.when.segments,
            risks=self.when.risk, backlog_days=self.backlog_days, hold_template=self.hold_template,
            old_debt_days=self.old_debt.days, old_debt_template=self.old_debt.template,
        )  # fmt: skip


class _PolicyFile(FileModel):
    version: Any = Field(default=None, validate_default=True)
    default: Any = None  # checked against the policies' names, below
    policies: Annotated[
        list[_PolicySpec], Field(min_length=1), worded("must be a non-empty list of policies", shallow=True)
    ] = required()

    @field_validator("version")
    @classmethod
    def _supported(cls, version: Any) -> Any:
        if version != 1:
            raise ValueError(f"unsupported policy version {version!r} (supported: 1)")
        return version

    @model_validator(mode="after")
    def _named(self) -> _PolicyFile:
        names = [p.name for p in self.policies]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise at(("policies", i, "name"), f"duplicate policy name {name!r}")
        if self.chosen not in names:
            raise at("default", f"no policy named {self.chosen!r} (have: {', '.join(names)})")
        return self

    @property
    def chosen(self) -> Any:
        """The default policy's name: `default`, else the first policy's."""
        return self.default if "default" in self.model_fields_set else self.policies[0].name


def parse_policies(doc: Any, source: str) -> PolicySet:
    """Validate a policy document. Raises PolicyFileError with one line."""
    spec = validated(_PolicyFile, doc, source, PolicyFileError)
    policies = tuple(p.policy(raw) for p, raw in zip(spec.policies, doc["policies"], strict=True))
    return PolicySet(source, policies, spec.chosen)


def load_policies(tenant_file: Path | None = None) -> PolicySet:
    """The tenant's policy file if it exists, else the shipped defaults."""
    path = tenant_file if tenant_file is not None and tenant_file.exists() else SHIPPED
    name = str(path) if path != SHIPPED else "connector/rules/policies.yaml"
    return parse_policies(read_yaml(path, name, PolicyFileError), name)
