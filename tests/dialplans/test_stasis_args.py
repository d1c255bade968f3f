"""The Stasis() argument contract, as the application reads it."""

from __future__ import annotations

import pytest

from calls.stasis_args import InboundArgs
from core.vocabulary import LINE_OF_NUMBER


def test_the_five_hotlines_and_their_business_lines() -> None:
    assert LINE_OF_NUMBER == {
        "12315": "general",
        "12365": "quality",
        "12331": "food_drug",
        "12358": "price",
        "12330": "intellectual_property",
    }


@pytest.mark.parametrize(("args", "expected"), [
    (["12365", "quality", ""], InboundArgs("12365", "quality", None)),
    (["12315", "general", "0571"], InboundArgs("12315", "general", "0571")),
    (["12331", "food_drug", "010"], InboundArgs("12331", "food_drug", "010")),
    (["12330", "intellectual_property", "0755"], InboundArgs("12330", "intellectual_property", "0755")),
])
def test_valid_arguments_parse_and_round_trip(args: list[str], expected: InboundArgs) -> None:
    parsed = InboundArgs.parse(args)
    assert parsed == expected
    assert parsed.to_args() == args


@pytest.mark.parametrize(("args", "message"), [
    ([], "expected 3 Stasis arguments"),
    (["12315", "general"], "expected 3 Stasis arguments"),
    (["12315", "general", "", "extra"], "expected 3 Stasis arguments"),
    (["12345", "general", ""], "'12345' is not a hotline number"),
    (["12365", "general", ""], "hotline 12365 belongs to business line 'quality'"),
    (["12315", "general", "571"], "'571' is not an area code"),
    (["12315", "general", "00571"], "'00571' is not an area code"),
    (["12315", "general", "05710"], "'05710' is not an area code"),
    (["12315", "general", "0x71"], "'0x71' is not an area code"),
])
def test_anything_else_is_a_clear_value_error(args: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InboundArgs.parse(args)
