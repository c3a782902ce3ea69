"""Credit holds: an ordered list of plain conditions, evaluated by a pure function like the dunning levels.

Rules file (shipped: connector/rules/credit.yaml; a tenant's own `credit.yaml` replaces it whole):

```yaml
version: 1
rules:
  - {when: over_limit, tolerance_percent: 5}       # exposure above the limit by more than 5%
  - {when: overdue, days: 60, min_amount: 500}     # any invoice over 60 days overdue with 500+ outstanding
  - {when: dunning_level, at_least: 5}             # reminder level 5 reached on any invoice
  - {when: rating, in: [E], min_amount: 500}       # payment rating E, with 500+ owed
```
Holds follow exposure: no rule fires for a customer whose net exposure (open invoices less unapplied payments
and credit) is at or below zero, or below the rule's `min_amount` (every rule takes one; base currency).
Decisions: hold when any rule fires; release a rule-made hold when none fires any more (saying so when
nothing is owed). A manual hold is never released automatically; a "never hold" customer is never held
automatically. Every decision carries its reasons in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    model_validator,
)  # fmt: skip

from connector.model import Money
from connector.reconcile.rating import DEFAULT_MODEL, LETTERS, RatingModel
from connector.yamlfile import FileModel, FileProblem, at, read_yaml, required, validated, worded

if TYPE_CHECKING:
    from connector.reconcile.behaviour import Behaviour

SHIPPED = Path(__file__).with_name("credit.yaml")
KINDS = ("over_limit", "overdue", "dunning_level", "rating")
Kind = Literal["over_limit", "overdue", "dunning_level", "rating"]
HOLD: Literal["hold"] = "hold"
RELEASE: Literal["release"] = "release"


class CreditFileError(FileProblem):
    pass


@dataclass(frozen=True, slots=True)
class Rule:
    when: Kind
    tolerance_percent: Decimal = Decimal(0)
    days: int = 0
    min_amount: Decimal = Decimal(0)
    at_least: int = 0
    ratings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Account:
    """One customer as credit control sees it (amounts in the limit's currency, or base without a limit)."""

    customer_id: str
    name: str
    exposure: Money
    limit: Money | None = None
    overdue: tuple[tuple[int, Decimal], ...] = ()  # (days overdue, outstanding in base) per overdue invoice
    overdue_numbers: tuple[
        str, ...
    ] = ()  # the invoice numbers of `overdue`, in the same order (may be empty)
    dunning_level: int = 0
    rating: str | None = None
    manual: Literal["hold", "never"] | None = None
    manual_reason: str = ""
    on_hold: bool = False
    held_by_rule: bool = False
    open: Money | None = None  # open invoices, base currency
    unapplied: Money | None = None  # payments and credit not yet applied, base currency
    net: Money | None = None  # net exposure in base currency (None: `exposure` is it)
    behaviour: Behaviour | None = None  # the payment behaviour behind `rating`, for the reason's words

    @property
    def owed(self) -> Money:
        """Net exposure in base currency: what the rules' `min_amount` and the nothing-owed test read."""
        return self.net if self.net is not None else self.exposure


@dataclass(frozen=True, slots=True)
class Decision:
    customer_id: str
    action: Literal["hold", "release"]
    reasons: tuple[str, ...]
    name: str = ""

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _over_limit(rule: Rule, account: Account) -> str | None:
    if account.limit is None or account.exposure.currency != account.limit.currency:
        return None
    if account.exposure.amount <= account.limit.amount * (1 + rule.tolerance_percent / 100):
        return None
    beyond = f" by more than {rule.tolerance_percent}%" if rule.tolerance_percent else ""
    return f"exposure {account.exposure} is over the limit {account.limit}{beyond}"


def _overdue(rule: Rule, account: Account) -> str | None:
    numbers = account.overdue_numbers if len(account.overdue_numbers) == len(account.overdue) else ()
    worst = [
        (d, a, numbers[i] if numbers else "an invoice")
        for i, (d, a) in enumerate(account.overdue)
        if d > rule.days and a >= rule.min_amount
    ]
    if not worst:
        return None
    days, amount, which = max(worst)
    more = f" ({len(worst) - 1} more over {rule.days} days)" if len(worst) > 1 else ""
    return (
        f"{which} is {days} days overdue ({Money(amount, account.owed.currency)} outstanding; the rule is "
        f"{rule.days} days){more}"
    )


def _dunning_level(rule: Rule, account: Account) -> str | None:
    return (
        f"reminder level {account.dunning_level} reached" if account.dunning_level >= rule.at_least else None
    )


def _rating(rule: Rule, account: Account) -> str | None:
    if account.rating is None or account.rating not in rule.ratings:
        return None
    if account.behaviour is None:
        return f"payment rating {account.rating}"
    from connector.reconcile.explain import brief  # the words only; the rules stay pure

    why = brief(account.behaviour, account.owed.currency).removeprefix(f"{account.rating}: ")  # said once
    return f"payment rating {account.rating}: {why}"


_CHECKS = {"over_limit": _over_limit, "overdue": _overdue, "dunning_level": _dunning_level, "rating": _rating}


def _fires(rule: Rule, account: Account) -> str | None:
    if account.owed.amount < rule.min_amount:
        return None  # every rule honours its min_amount against what the customer owes, net
    return _CHECKS[rule.when](rule, account)


def nothing_owed(account: Account) -> str | None:
    """Why no rule may hold the customer: net exposure at or below zero (None when something is owed)."""
    owed = account.owed
    if owed.amount > 0:
        return None
    parts = (
        f": open {account.open} less {account.unapplied} unapplied"
        if account.open is not None and account.unapplied is not None and account.unapplied.amount > 0
        else ""
    )
    return f"nothing is owed (net exposure {owed}{parts})"


def evaluate(accounts: Iterable[Account], rules: Sequence[Rule]) -> list[Decision]:
    """Holds to place and releases to make; customers whose state is right get no decision."""
    decisions: list[Decision] = []
    for account in sorted(accounts, key=lambda a: a.customer_id):
        if account.manual == "hold":
            if not account.on_hold:
                reason = (f"manual hold: {account.manual_reason}",)
                decisions.append(Decision(account.customer_id, HOLD, reason, account.name))
            continue
        settled = nothing_owed(account)
        reasons = () if settled else tuple(r for rule in rules if (r := _fires(rule, account)) is not None)
        if account.manual == "never":
            if account.on_hold and account.held_by_rule:
                never = ("the customer is marked never-hold",)
                decisions.append(Decision(account.customer_id, RELEASE, never, account.name))
            continue
        if reasons and not account.on_hold:
            decisions.append(Decision(account.customer_id, HOLD, reasons, account.name))
        elif not reasons and account.on_hold and account.held_by_rule:
            released = ("no hold rule applies any more" + (f": {settled}" if settled else ""),)
            decisions.append(Decision(account.customer_id, RELEASE, released, account.name))
    return decisions


# ---- the rules file

_NEGATIVE = "must be a number, at least 0, got {got}"
Number = Annotated[
    Decimal, Field(ge=0),
    worded("must be a number, got {got}", greater_than_equal=_NEGATIVE, finite_number=_NEGATIVE),
]  # fmt: skip
Whole = Annotated[StrictInt, Field(ge=0), worded("must be a whole number, at least 0, got {got}")]
Percent = Annotated[
    Number, Field(le=100), worded(None, less_than_equal="must be a percentage from 0 to 100, got {got}")
]


class _RuleSpec(FileModel):
    """One rule; each kind takes its own keys (and every one a `min_amount`)."""

    KIND: ClassVar[Kind]
    when: str
    min_amount: Number = Decimal(0)

    @classmethod
    def unknown(cls, key: str) -> str:
        allowed = [*(k for k in cls.FILE_KEYS if k not in ("when", "min_amount")), "min_amount"]
        return f"unknown for {cls.KIND} (allowed: {', '.join(allowed)})"

    def rule(self) -> Rule:
        return Rule(self.KIND, **self.model_dump(exclude={"when"}))


class _OverLimit(_RuleSpec):
    KIND = "over_limit"
    tolerance_percent: Number = Decimal(0)


class _Overdue(_RuleSpec):
    KIND = "overdue"
    days: Whole = 0


class _DunningLevel(_RuleSpec):
    KIND = "dunning_level"
    at_least: Whole = 0


class _Rating(_RuleSpec):
    KIND = "rating"
    # A list of the letters themselves: "DE" or 4 is no rating.
    ratings: Annotated[
        tuple[Literal["A", "B", "C", "D", "E"], ...], worded("must be a list of ratings A-E, got {got}")
    ] = Field(default=(), alias="in")


_KINDS: dict[str, type[_RuleSpec]] = {k.KIND: k for k in (_OverLimit, _Overdue, _DunningLevel, _Rating)}


def _rule(spec: Any) -> _RuleSpec:
    kind = spec.get("when") if isinstance(spec, dict) else None
    if not isinstance(kind, str) or kind not in _KINDS:
        raise at("when", f"must be one of {', '.join(KINDS)}")
    return _KINDS[kind].model_validate(spec)


# ---- the rating section (thresholds of the payment rating, connector/reconcile/rating.py)


def _letter(value: str) -> str:
    if value not in LETTERS:
        raise ValueError(value)
    return value


_ORDER = ("a_max_days", "b_max_days", "c_max_days", "d_max_days")


class _RatingSpec(FileModel):
    """The `rating:` section; a key left out keeps the shipped value (connector/reconcile/rating.py)."""

    a_max_days: Number = DEFAULT_MODEL.a_days
    a_min_on_time_percent: Percent = DEFAULT_MODEL.a_on_time * 100
    b_max_days: Number = DEFAULT_MODEL.b_days
    c_max_days: Number = DEFAULT_MODEL.c_days
    d_max_days: Number = DEFAULT_MODEL.d_days
    severe_days: Whole = DEFAULT_MODEL.severe_days
    severe_min_amount: Number = DEFAULT_MODEL.severe_min_amount
    severe_min_percent: Percent = DEFAULT_MODEL.severe_min_percent
    recent_days: Whole = DEFAULT_MODEL.recent_days
    trend_days: Number = DEFAULT_MODEL.trend_days
    small_severe_cap: Annotated[
        StrictStr, AfterValidator(_letter), worded("must be one rating A-E, got {got}")
    ] = DEFAULT_MODEL.small_severe_cap

    @classmethod
    def unknown(cls, key: str) -> str:
        return f"unknown (allowed: {', '.join(cls.FILE_KEYS)})"

    @model_validator(mode="after")
    def _ordered(self) -> _RatingSpec:
        for lower, higher in pairwise(_ORDER):
            low, high = getattr(self, lower), getattr(self, higher)
            if high < low:
                raise at(higher, f"must be at least {lower} ({low}), got {high}")
        return self

    def model(self) -> RatingModel:
        return RatingModel(
            a_days=self.a_max_days, a_on_time=self.a_min_on_time_percent / 100, b_days=self.b_max_days,
            c_days=self.c_max_days, d_days=self.d_max_days, severe_days=self.severe_days,
            severe_min_amount=self.severe_min_amount, severe_min_percent=self.severe_min_percent,
            small_severe_cap=self.small_severe_cap, recent_days=self.recent_days, trend_days=self.trend_days,
        )  # fmt: skip


def _no_section(value: Any) -> Any:
    return {} if value is None else value  # `rating:` with nothing under it


class _RatingFile(FileModel):
    """What `load_rating` reads of a credit.yaml: its rating section (other keys are not looked at)."""

    model_config = ConfigDict(extra="ignore")
    rating: Annotated[
        _RatingSpec, BeforeValidator(_no_section),
        worded("must be a mapping of thresholds, got {got}", shallow=True),
    ] = _RatingSpec()  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise at("version", "unsupported or missing (supported: 1)")
        return data


class _CreditFile(_RatingFile):
    """A whole credit.yaml: version 1, its rating section (checked first), then its rules."""

    rules: Annotated[
        list[Annotated[_RuleSpec, PlainValidator(_rule)]], worded("must be a list of rules", shallow=True)
    ] = required()

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("version") != 1:
            raise at("version", "unsupported or missing (supported: 1)")
        return data


def parse_rules(doc: Any, name: str) -> tuple[Rule, ...]:
    """The rules of a credit.yaml document (its rating section checked too). Raises CreditFileError."""
    return tuple(spec.rule() for spec in validated(_CreditFile, doc, name, CreditFileError).rules)


def _shipped_or(tenant_file: Path | None) -> tuple[Path, str]:
    path = tenant_file if tenant_file is not None and tenant_file.exists() else SHIPPED
    return path, str(path) if path != SHIPPED else "connector/rules/credit.yaml"


def load_rules(tenant_file: Path | None = None) -> tuple[Rule, ...]:
    path, name = _shipped_or(tenant_file)
    return parse_rules(read_yaml(path, name, CreditFileError), name)


def parse_rating(doc: Any, name: str) -> RatingModel:
    """The `rating:` section as a RatingModel; a missing section or key keeps the shipped value."""
    return validated(_RatingFile, doc, name, CreditFileError).rating.model()


def load_rating(tenant_file: Path | None = None) -> RatingModel:
    """The rating thresholds of the tenant's credit.yaml, else of the shipped one."""
    path, name = _shipped_or(tenant_file)
    return parse_rating(read_yaml(path, name, CreditFileError), name)
