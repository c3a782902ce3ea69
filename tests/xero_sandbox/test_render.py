"""Rendering: the fast JSON path says exactly what the plain one does, and dates are Xero's."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from adapters.sandbox import SandboxClock
from adapters.xero.sandbox import render
from adapters.xero.sandbox.book import Book


def test_fast_invoice_json_equals_the_plain_rendering_for_every_invoice(firm):
    book = Book(firm, SandboxClock())
    for inv in firm.invoices:
        assert json.loads(book.render_json("Invoices", inv)) == book.render("Invoices", inv)


def test_ms_json_dates_are_milliseconds_since_the_epoch_in_utc():
    assert render.ms_day(date(2019, 11, 14)) == "/Date(1573689600000+0000)/"
    assert render.ms(datetime(2019, 11, 14, 18, 10, 38, 314000, tzinfo=UTC)) == "/Date(1573755038314+0000)/"
    assert render.iso_day(date(2019, 11, 14)) == "2019-11-14T00:00:00"
