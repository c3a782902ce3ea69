"""Write-back references and idempotency markers."""

from __future__ import annotations

import pytest

from adapters.xero.writes import MAX_DETAILS, BadReference, marker, parse_ref, short_key, with_marker


def test_references_name_the_kind_of_record() -> None:
    assert parse_ref("invoice:i-1") == ("invoice", "i-1")
    assert parse_ref("customer:c-1") == ("contact", "c-1")
    assert parse_ref("i-9") == ("invoice", "i-9")
    assert parse_ref("c-9", default="contact") == ("contact", "c-9")
    with pytest.raises(BadReference, match="'bill:b-1'"):
        parse_ref("bill:b-1")


def test_long_keys_are_digested_to_fit_xero_s_128_characters() -> None:
    assert short_key("acme/i-1/dunning/2/v3") == "acme/i-1/dunning/2/v3"
    long = "k" * 300
    assert len(short_key(long)) <= 128
    assert short_key(long) == short_key(long)
    assert short_key(long) != short_key(long + "x")


def test_a_note_ends_with_its_marker_and_fits_xero_s_limit() -> None:
    text = with_marker("x" * 5000, "key-1")
    assert len(text) == MAX_DETAILS
    assert text.endswith(marker("key-1"))
    assert with_marker("Reminder sent", "key-1") == "Reminder sent [ccm:key-1]"
