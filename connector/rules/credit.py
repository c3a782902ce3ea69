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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from connector.model import Money
from connector.reconcile.rating import DEFAULT_MODEL, LETTERS, RatingModel
from connector.yamlfile import FileProblem, read_yaml

if TYPE_CHECKING:
    from connector.reconcile.behaviour import Behaviour

SHIPPED = Path(__file__).with_name("credit.yaml")
KINDS = ("over_limit", "overdue", "dunning_level", "rating")
RATINGS = ("A", "B", "C", "D", "E")
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
        f"{which} is {days} days overdue ({amount:,.2f} {account.owed.currency} outstanding; the rule is "
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
        f": open {account.open.amount:,.2f} less {account.unapplied.amount:,.2f} unapplied"
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


def _number(spec: Mapping[str, Any], key: str, where: str, whole: bool = False) -> Any:
    value = spec.get(key, 0)
    if whole:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CreditFileError(f"{where}.{key}: must be a whole number, at least 0, got {value!r}")
        return value
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise CreditFileError(f"{where}.{key}: must be a number, got {value!r}") from None
    if not parsed.is_finite() or parsed < 0:
        raise CreditFileError(f"{where}.{key}: must be a number, at least 0, got {value!r}")
    return parsed


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


_ALLOWED = {
    "over_limit": ("tolerance_percent", "min_amount"),
    "overdue": ("days", "min_amount"),
    "dunning_level": ("at_least", "min_amount"),
    "rating": ("in", "min_amount"),
}


def parse_rules(doc: Any, name: str) -> tuple[Rule, ...]:
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise CreditFileError(f"{name}: version: unsupported or missing (supported: 1)")
    parse_rating(doc, name)  # a bad rating section stops the night as early as a bad rule does
    raw = doc.get("rules")
    if not isinstance(raw, list):
        raise CreditFileError(f"{name}: rules: must be a list of rules")
    rules = []
    for i, spec in enumerate(raw):
        where = f"{name}: rules[{i}]"
        if not isinstance(spec, dict) or spec.get("when") not in KINDS:
            raise CreditFileError(f"{where}.when: must be one of {', '.join(KINDS)}")
        kind = spec["when"]
        for key in spec:
            if key != "when" and key not in _ALLOWED[kind]:
                raise CreditFileError(
                    f"{where}.{key}: unknown for {kind} (allowed: {', '.join(_ALLOWED[kind])})"
                )
        ratings = spec.get("in", [])
        if kind == "rating" and (
            not isinstance(ratings, list) or not all(r in RATINGS for r in ratings)
        ):  # `r in RATINGS`, a tuple: "DE" or 4 is no rating (a substring test took "DE", and 4 raised)
            raise CreditFileError(f"{where}.in: must be a list of ratings A-E, got {_brief(ratings)}")
        rules.append(Rule(
            when=kind, tolerance_percent=_number(spec, "tolerance_percent", where),
            days=_number(spec, "days", where, whole=True), min_amount=_number(spec, "min_amount", where),
            at_least=_number(spec, "at_least", where, whole=True), ratings=tuple(ratings),
        ))  # fmt: skip
    return tuple(rules)


def load_rules(tenant_file: Path | None = None) -> tuple[Rule, ...]:
    path = tenant_file if tenant_file is not None and tenant_file.exists() else SHIPPED
    name = str(path) if path != SHIPPED else "connector/rules/credit.yaml"
    return parse_rules(read_yaml(path, name, CreditFileError), name)


# ---- the rating section (thresholds of the payment rating, connector/reconcile/rating.py)

# file key -> (RatingModel field, whole number?, default as the file states it)
RATING_KEYS: dict[str, tuple[str, bool, Decimal | int]] = {
    "a_max_days": ("a_days", False, DEFAULT_MODEL.a_days),
    "a_min_on_time_percent": ("a_on_time", False, DEFAULT_MODEL.a_on_time * 100),
    "b_max_days": ("b_days", False, DEFAULT_MODEL.b_days),
    "c_max_days": ("c_days", False, DEFAULT_MODEL.c_days),
    "d_max_days": ("d_days", False, DEFAULT_MODEL.d_days),
    "severe_days": ("severe_days", True, DEFAULT_MODEL.severe_days),
    "severe_min_amount": ("severe_min_amount", False, DEFAULT_MODEL.severe_min_amount),
    "severe_min_percent": ("severe_min_percent", False, DEFAULT_MODEL.severe_min_percent),
    "recent_days": ("recent_days", True, DEFAULT_MODEL.recent_days),
    "trend_days": ("trend_days", False, DEFAULT_MODEL.trend_days),
}
_PERCENTS = ("a_min_on_time_percent", "severe_min_percent")
_ORDER = ("a_max_days", "b_max_days", "c_max_days", "d_max_days")


def parse_rating(doc: Mapping[str, Any], name: str) -> RatingModel:
    """The `rating:` section as a RatingModel; a missing section or key keeps the shipped value."""
    raw = doc.get("rating", {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CreditFileError(f"{name}: rating: must be a mapping of thresholds, got {_brief(raw)}")
    allowed = (*RATING_KEYS, "small_severe_cap")
    for key in raw:
        if key not in allowed:
            raise CreditFileError(f"{name}: rating.{key}: unknown (allowed: {', '.join(allowed)})")
    where = f"{name}: rating"
    values: dict[str, Any] = {}
    given: dict[str, Decimal | int] = {}
    for key, (attr, whole, default) in RATING_KEYS.items():
        value = _number(raw, key, where, whole=whole) if key in raw else default
        if key in _PERCENTS and value > 100:
            raise CreditFileError(f"{where}.{key}: must be a percentage from 0 to 100, got {raw[key]!r}")
        given[key] = value
        values[attr] = Decimal(value) / 100 if key == "a_min_on_time_percent" else value
    for lower, higher in pairwise(_ORDER):
        if given[higher] < given[lower]:
            raise CreditFileError(
                f"{where}.{higher}: must be at least {lower} ({given[lower]}), got {given[higher]}"
            )
    cap = raw.get("small_severe_cap", DEFAULT_MODEL.small_severe_cap)
    if not isinstance(cap, str) or cap not in LETTERS:
        raise CreditFileError(f"{where}.small_severe_cap: must be one rating A-E, got {_brief(cap)}")
    return RatingModel(small_severe_cap=cap, **values)


def load_rating(tenant_file: Path | None = None) -> RatingModel:
    """The rating thresholds of the tenant's credit.yaml, else of the shipped one."""
    path = tenant_file if tenant_file is not None and tenant_file.exists() else SHIPPED
    name = str(path) if path != SHIPPED else "connector/rules/credit.yaml"
    doc = read_yaml(path, name, CreditFileError)
    if not isinstance(doc, dict):
        raise CreditFileError(f"{name}: version: unsupported or missing (supported: 1)")
    return parse_rating(doc, name)
