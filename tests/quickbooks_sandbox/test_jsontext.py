"""JSON text with exact Decimal numbers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from adapters.quickbooks.sandbox.jsontext import dumps, has_marks


def test_decimals_are_written_as_exact_json_numbers():
    value = {"a": Decimal("1.50"), "b": [Decimal("-2"), Decimal("1E+2"), None, True, 3, "x"], "c": "é"}
    text = dumps(value)
    assert text == '{"a":1.50,"b":[-2,100,null,true,3,"x"],"c":"\\u00e9"}'
    assert json.loads(text, parse_float=Decimal)["a"] == Decimal("1.50")


def test_other_types_are_refused():
    with pytest.raises(TypeError, match="complex"):
        dumps({"a": 1.5j})
    with pytest.raises(TypeError, match="Decimal"):
        dumps({"a": Decimal("NaN")})


def test_text_with_the_marker_characters_is_detected():
    assert has_marks({"Notes": ["ok", "bad\x00"]}) and has_marks({"k\x01": 1})
    assert not has_marks({"Notes": "fine", "n": Decimal(1)})
