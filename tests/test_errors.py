"""Every problem ccm expects is a CcmError of the kind that says what the caller does next; a bug is not."""

from __future__ import annotations

import pytest

from connector import mail
from connector.errors import CcmError, NeedsPerson, TryLater
from connector.ledger import AuthExpired, Fatal, LedgerError, RateLimited, Retriable, ServerError, Skippable
from connector.mail import TemplateProblem
from connector.rules.calendar import CalendarError
from connector.store.tenants import UnknownTenant
from connector.wiring import NotConnected
from connector.yamlfile import FileProblem


@pytest.mark.parametrize(
    "error",
    [
        FileProblem("credit.yaml: rules[0].in: must be a list of ratings A-E"),
        TemplateProblem("reminder.txt: unexpected '}'"),
        CalendarError("unknown time zone 'Mars/Base'"),
        NotConnected("acme"),
        UnknownTenant("acme"),
        AuthExpired("the refresh token was refused: reconnect"),
        Fatal("QuickBooks fault 6000"),
        mail.LoginRefused("SMTP login refused (535)"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_a_person_must_act_on_needs_a_person(error: Exception) -> None:
    assert isinstance(error, NeedsPerson) and not isinstance(error, TryLater)


@pytest.mark.parametrize(
    "error",
    [
        Retriable("connection reset"),
        ServerError("Xero answered 503", 503),
        RateLimited(60, "minute"),
        mail.Transient("the mail server refused ann@example.com: 451 greylisted"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_may_pass_by_itself_is_try_later(error: Exception) -> None:
    assert isinstance(error, TryLater) and not isinstance(error, NeedsPerson)


def test_the_modules_own_bases_still_hold_for_code_that_catches_them() -> None:
    assert isinstance(FileProblem("x"), ValueError) and isinstance(UnknownTenant("x"), LookupError)
    assert isinstance(NotConnected("x"), RuntimeError) and isinstance(Skippable("r", "why"), LedgerError)
    assert isinstance(Skippable("r", "why"), CcmError) and isinstance(mail.MessageRefused("550"), CcmError)


def test_a_bug_is_no_ccm_error() -> None:
    assert not isinstance(ValueError("a bug"), CcmError) and not isinstance(KeyError("x"), CcmError)
