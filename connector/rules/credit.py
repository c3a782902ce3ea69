"""Credit holds: an ordered list of plain conditions, evaluated by a pure function like the dunning levels.

Rules file (shipped: connector/rules/credit.yaml; a tenant's own `credit.yaml` replaces it whole):

```yaml
version: 1
rules:
  - {when: over_limit, tolerance_percent: 5}       # exposure above the limit by more than 5%
  - {when: overdue, days: 60, min_amount: 500}     # any invoice over 60 days overdue with 500+ outstanding
  - {when: dunning_level, at_least: 5}             # reminder level 5 reached on any invoice
  - {when: rating, in: [E]}                        # payment rating E
```
Decisions: hold when any rule fires; release a rule-made hold when none fires any more. A manual hold is
never released automatically; a "never hold" customer is never held automatically. Every decision carries
its reasons in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from connector.model import Money
from connector.yamlfile import FileProblem, read_yaml

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
    dunning_level: int = 0
    rating: str | None = None
    manual: Literal["hold", "never"] | None = None
    manual_reason: str = ""
    on_hold: bool = False
    held_by_rule: bool = False


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
    worst = [(d, a) for d, a in account.overdue if d > rule.days and a >= rule.min_amount]
    if not worst:
        return None
    days, amount = max(worst)
    return f"an invoice is {days} days overdue ({amount:,.2f} outstanding; the rule is {rule.days} days)"


def _dunning_level(rule: Rule, account: Account) -> str | None:
    return (
        f"reminder level {account.dunning_level} reached" if account.dunning_level >= rule.at_least else None
    )


def _rating(rule: Rule, account: Account) -> str | None:
    return (
        f"payment rating {account.rating}"
        if account.rating is not None and account.rating in rule.ratings
        else None
    )


_CHECKS = {"over_limit": _over_limit, "overdue": _overdue, "dunning_level": _dunning_level, "rating": _rating}


def _fires(rule: Rule, account: Account) -> str | None:
    return _CHECKS[rule.when](rule, account)


def evaluate(accounts: Iterable[Account], rules: Sequence[Rule]) -> list[Decision]:
    """Holds to place and releases to make; customers whose state is right get no decision."""
    decisions: list[Decision] = []
    for account in sorted(accounts, key=lambda a: a.customer_id):
        if account.manual == "hold":
            if not account.on_hold:
                reason = (f"manual hold: {account.manual_reason}",)
                decisions.append(Decision(account.customer_id, HOLD, reason, account.name))
            continue
        reasons = tuple(r for rule in rules if (r := _fires(rule, account)) is not None)
        if account.manual == "never":
            if account.on_hold and account.held_by_rule:
                never = ("the customer is marked never-hold",)
                decisions.append(Decision(account.customer_id, RELEASE, never, account.name))
            continue
        if reasons and not account.on_hold:
            decisions.append(Decision(account.customer_id, HOLD, reasons, account.name))
        elif not reasons and account.on_hold and account.held_by_rule:
            released = ("no hold rule applies any more",)
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
    "over_limit": ("tolerance_percent",),
    "overdue": ("days", "min_amount"),
    "dunning_level": ("at_least",),
    "rating": ("in",),
}


def parse_rules(doc: Any, name: str) -> tuple[Rule, ...]:
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise CreditFileError(f"{name}: version: unsupported or missing (supported: 1)")
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
