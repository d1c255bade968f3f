"""Routing a call to a jurisdiction: the dialled line's area code, else the caller's number,
else a city the caller names or keys in, else the default; never an exception on the call path."""

from __future__ import annotations

import logging

import phonenumbers.geodata
import pytest

from core.jurisdictions import JurisdictionTree, Level, UnknownJurisdiction
from queues.resolve import JurisdictionResolver, Resolution


@pytest.fixture(scope="module")
def tree() -> JurisdictionTree:
    return JurisdictionTree.load()


@pytest.fixture(scope="module")
def resolver(tree: JurisdictionTree) -> JurisdictionResolver:
    return JurisdictionResolver(tree)


# -- the order of sources ----------------------------------------------------------------


def test_a_caller_who_dials_057112315_is_routed_to_hangzhou(resolver: JurisdictionResolver) -> None:
    # The line wins even over a Beijing mobile: the caller chose Hangzhou's 12315.
    assert resolver.resolve(area_code="0571", caller_number="13800138000") == Resolution(
        "330100", "dialled_area_code")


def test_a_beijing_mobile_number_resolves_to_beijing_when_the_line_has_no_area_code(
    resolver: JurisdictionResolver,
) -> None:
    for area in (None, ""):
        assert resolver.resolve(area_code=area, caller_number="13800138000") == Resolution(
            "110100", "caller_mobile")


def test_a_landline_caller_is_routed_by_the_area_code_of_their_number(
    resolver: JurisdictionResolver,
) -> None:
    assert resolver.resolve(area_code=None, caller_number="0755-86001234") == Resolution(
        "440300", "caller_landline")


def test_a_local_number_falls_through_to_the_city_the_caller_names(
    resolver: JurisdictionResolver,
) -> None:
    got = resolver.resolve(area_code=None, caller_number="87654321", spoken_city="杭州")
    assert got == Resolution("330100", "spoken_city")


def test_with_nothing_to_go_on_the_call_goes_to_the_default(tree: JurisdictionTree) -> None:
    assert JurisdictionResolver(tree).resolve(area_code=None, caller_number="87654321") == Resolution(
        "000000", "default")
    zhejiang = JurisdictionResolver(tree, default_code="330000")
    assert zhejiang.resolve(area_code=None, caller_number="", spoken_city="西湖") == Resolution(
        "330000", "default")  # 西湖 alone is ambiguous: Hangzhou or Nanchang


def test_a_default_that_is_not_a_jurisdiction_fails_at_start_up(tree: JurisdictionTree) -> None:
    with pytest.raises(UnknownJurisdiction, match="'990000'"):
        JurisdictionResolver(tree, default_code="990000")


@pytest.mark.parametrize(
    ("area_code", "caller", "spoken"),
    [("0000", "abc", "???"), ("57", "12", ""), ("0999999", "+86", None), ("", "", "12345"),
     ("05a1", "138001380001380013800", "000000"), ("0571 ", None, 42)],
)
def test_invalid_input_never_raises_and_takes_the_next_source(
    resolver: JurisdictionResolver, area_code: str, caller: object, spoken: object
) -> None:
    got = resolver.resolve(area_code=area_code, caller_number=caller, spoken_city=spoken)  # type: ignore[arg-type]
    assert got.source in {"dialled_area_code", "default"}


def test_logs_mask_the_callers_number(
    resolver: JurisdictionResolver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="queues.resolve"):
        resolver.resolve(area_code=None, caller_number="13912345678")
        resolver.resolve(area_code=None, caller_number="87654321")
    assert caplog.records
    assert "13912345678" not in caplog.text and "139****5678" in caplog.text


# -- area codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("area_code", "code", "name"),
    [
        ("010", "110100", "北京市"), ("021", "310100", "上海市"), ("022", "120100", "天津市"),
        ("023", "500100", "重庆市"), ("020", "440100", "广州市"), ("0755", "440300", "深圳市"),
        ("0571", "330100", "杭州市"), ("0931", "620100", "兰州市"), ("0769", "441900", "东莞市"),
        ("0433", "222400", "延边朝鲜族自治州"), ("0710", "420600", "襄阳市"),
        ("0993", "659001", "石河子市"),
    ],
)
def test_area_codes_resolve_to_their_city(
    resolver: JurisdictionResolver, tree: JurisdictionTree, area_code: str, code: str, name: str
) -> None:
    assert resolver.area_code_city(area_code) == code
    assert tree.get(code).name == name


def test_an_area_code_shared_by_several_cities_resolves_to_what_they_have_in_common(
    resolver: JurisdictionResolver,
) -> None:
    assert resolver.area_code_city("0898") == "460000"  # 海口 and 三亚: Hainan
    assert resolver.area_code_city("028") == "510000"  # 成都, 资阳, 眉山: Sichuan
    assert resolver.area_code_city("0728") == "429000"  # 仙桃, 潜江, 天门: Hubei's direct units


def test_area_codes_work_with_or_without_the_trunk_zero_and_reject_the_rest(
    resolver: JurisdictionResolver,
) -> None:
    assert resolver.area_code_city("571") == "330100"
    for bad in ("", "0", "0000", "0331", "05712", "abc", "+86571", "1"):
        assert resolver.area_code_city(bad) is None, bad


def test_every_area_code_phonenumbers_knows_has_a_jurisdiction(
    resolver: JurisdictionResolver, tree: JurisdictionTree
) -> None:
    candidates = ["10", *(f"2{d}" for d in range(10)), *map(str, range(300, 1000))]
    known = {a: code for a in candidates if (code := resolver.area_code_city(a)) is not None}
    assert len(known) >= 300  # China has some 320 landline area codes
    for code in known.values():
        assert tree.get(code).level in (Level.PROVINCE, Level.CITY, Level.COUNTY)


def test_every_place_the_phone_geocoder_names_in_china_matches_the_tree(
    resolver: JurisdictionResolver,
) -> None:
    # phonenumbers' own table (public module attribute): every Chinese description it can
    # give, for mobile segments and area codes alike, must land on a jurisdiction.
    texts = {v["zh"] for k, v in phonenumbers.geodata.GEOCODE_DATA.items()
             if k.startswith("86") and v.get("zh")}
    assert len(texts) > 300
    unmatched = sorted(t for t in texts if resolver._match_description(t) is None)
    assert unmatched == []


# -- caller numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["13800138000", "+8613800138000", "8613800138000", "008613800138000", "138 0013 8000",
     "013800138000"],
)
def test_a_mobile_number_in_any_form_asterisk_gives_resolves_by_its_segment(
    resolver: JurisdictionResolver, number: str
) -> None:
    assert resolver.city_of_number(number) == ("110100", "caller_mobile")


def test_a_hangzhou_mobile_segment_resolves_to_hangzhou(resolver: JurisdictionResolver) -> None:
    assert resolver.city_of_number("13957100000") == ("330100", "caller_mobile")


@pytest.mark.parametrize(
    ("number", "code"),
    [("057187654321", "330100"), ("0571-87654321", "330100"), ("+86 571 8765 4321", "330100"),
     ("8657187654321", "330100"), ("01087654321", "110100"), ("(010) 8765-4321", "110100"),
     ("02087654321", "440100"), ("09318123456", "620100"), ("089866123456", "460000")],
)
def test_a_landline_resolves_by_its_area_code(
    resolver: JurisdictionResolver, number: str, code: str
) -> None:
    assert resolver.city_of_number(number) == (code, "caller_landline")


@pytest.mark.parametrize(
    "number",
    ["87654321", "8765432", "", "anonymous", "1380013", "+85291234567", "+14155550100",
     "12315", "03318123456", "138001380001", "+86"],
)
def test_numbers_that_say_nothing_about_a_city_give_none(
    resolver: JurisdictionResolver, number: str
) -> None:
    assert resolver.city_of_number(number) is None


# -- spoken or keyed cities --------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "code"),
    [("杭州", "330100"), ("杭州市", "330100"), ("深圳", "440300"), ("北京", "110100"),
     ("北京市", "110100"), ("浙江杭州", "330100"), ("浙江省杭州市", "330100"),
     ("海南", "460000"), ("延边", "222400"), ("西湖区", None), ("西湖", None),
     ("330106", "330106"), ("0571", "330100"), ("310000", "310100"), ("000000", None),
     ("全国", None), ("火星", None), ("571", None)],
)
def test_a_city_the_caller_names_or_keys_in(
    resolver: JurisdictionResolver, said: str, code: str | None
) -> None:
    assert resolver.spoken_city_code(said) == code
