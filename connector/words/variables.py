"""Every variable a message template may use, with its type and meaning: the one source of truth behind
`ccm templates vars` and the README's table.

Guarantees (pinned by tests/test_reminder_words.py): every field of the views the templates are rendered
against (connector/mail.py: ReminderView, LineView, NoticeView) is listed here with the type its dataclass
declares, and every variable a shipped template uses (found by jinja2.meta) is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.words.filters import DOCS as FILTER_DOCS


@dataclass(frozen=True, slots=True)
class Variable:
    name: str  # as the template writes it: `firm`, `line.amount`
    type: str  # the Python type of the view's field
    description: str
    scope: str = "reminder"  # reminder (reminders, call tasks and statements) | line | notice | include


REMINDER = (
    Variable("firm", "str", "the firm's name (the tenant's name in the ledger)"),
    Variable("customer", "str", "the customer's name as the ledger has it"),
    Variable("level", "int", "the message's highest reminder level: it sets the tone (0 in a statement)"),
    Variable("level_name", "str", 'the name of that level ("first reminder", "final notice"; "statement")'),
    Variable(
        "lines", "tuple[LineView, ...]", "the invoices the message is about, oldest due first (see line.*)"
    ),
    Variable(
        "totals", "tuple[str, ...]", 'what is outstanding in all, one amount per currency ("£1,437.00")'
    ),
    Variable("today", "date", "the day the message is written, in the firm's time zone"),
    Variable("reference", "str", "the message's key (the outbox action), for the firm's records"),
    Variable("contact_email", "str | None", "the customer's e-mail address, if the ledger has one"),
    Variable("contact_phone", "str | None", 'the customer\'s number to call ("+44 20 7946 0958"), if any'),
    Variable("interest_line", "str | None", "the statutory interest sentence, when the level claims it"),
    Variable(
        "signoff",
        "SignOff",
        "the firm's sign-off: signoff.signature (lines), signoff.name, signoff.footer (legal footer lines)",
    ),
    Variable(
        "pay",
        "PayDetails | None",
        "bank transfer details: pay.account_name, pay.sort_code, "
        "pay.account_number, pay.iban, pay.bic, pay.reference; None when the firm set none",
    ),
    Variable("copies", "tuple[InvoiceCopy, ...]", "invoice copies: copy.number, copy.url (None: attached)"),
    Variable("locale", "str", 'the firm\'s locale ("en_GB"): the money and date filters write in it'),
    Variable(
        "written_about",
        "tuple[str, ...]",
        "numbers of the listed invoices we wrote to the customer about before",
    ),
    Variable(
        "first_time", "tuple[str, ...]", "numbers of the listed invoices this message is the first to mention"
    ),
    Variable("month", "date | None", "a statement's month (its first day); None in a reminder"),
)

LINE = (
    Variable("line.number", "str", "the invoice number", "line"),
    Variable("line.due_date", "date", "the due date (write it with `| date`)", "line"),
    Variable("line.days_overdue", "int", "days past the due date (0 or less: not yet due)", "line"),
    Variable("line.amount", "str", 'what is outstanding, in the firm\'s locale ("£1,317.00")', "line"),
    Variable("line.level_name", "str", "the name of this invoice's own reminder level", "line"),
    Variable("line.pay_url", "str | None", "the ledger's online payment link, if any", "line"),
    Variable("line.level", "int", "this invoice's own reminder level (0 in a statement)", "line"),
    Variable(
        "line.written_on", "date | None", "when we last wrote to the customer about it; None: never", "line"
    ),
    Variable(
        "line.total", "str | None", "the invoice total, when it differs from what is outstanding", "line"
    ),
    Variable(
        "line.outstanding",
        "Decimal | None",
        "what is outstanding as a number (`| money(line.currency)`)",
        "line",
    ),
    Variable("line.currency", "str", 'the invoice currency ("GBP")', "line"),
)

NOTICE = (
    Variable("firm", "str", "the firm's name", "notice"),
    Variable("ledger", "str", 'the ledger ("xero", "quickbooks")', "notice"),
    Variable("kind", "str", "the health issue's kind", "notice"),
    Variable("message", "str", "what needs a person's attention, in one line", "notice"),
    Variable("reference", "str", "the notice's key", "notice"),
)

INCLUDE = (
    Variable(
        "closing",
        "str",
        'the closing words of `_signoff.*` ("Kind regards,"); a template sets it '
        'with `{% with closing = "Regards," %}`',
        "include",
    ),
)

ALL = REMINDER + LINE + NOTICE + INCLUDE


def names(scope: str | None = None) -> set[str]:
    """The top-level names a template may use (`line.*` counts as its loop variable)."""
    return {v.name for v in ALL if scope is None or v.scope == scope}


def rows() -> list[tuple[str, str, str, str]]:
    """(scope, variable, type, description) for the table, then the filters."""
    found = [(v.scope, v.name, v.type, v.description) for v in ALL]
    found += [("filter", name, "filter", text) for name, text in FILTER_DOCS.items()]
    return found
