"""Who sees which jurisdiction: an admin everything, a supervisor their subtree, an agent their home."""

from __future__ import annotations

import pytest

from accounts.auth import in_scope, require_scope
from accounts.models import User
from core.jurisdictions import JurisdictionTree
from core.web import ApiError


def person(role: str, jurisdiction: str) -> User:
    return User(id=1, username="u", role=role, jurisdiction=jurisdiction, display_name="x", lines=[])


@pytest.mark.parametrize(("code", "seen"), [
    ("330000", True), ("330100", True), ("330106", True), ("330106-01", True),
    ("110100", False), ("320000", False), ("000000", False), ("999999", False), ("33", False),
])
def test_a_supervisor_of_zhejiang_sees_its_whole_subtree_and_nothing_else(
        jurisdiction_tree: JurisdictionTree, code: str, seen: bool) -> None:
    assert in_scope(person("supervisor", "330000"), code, jurisdiction_tree) is seen


def test_an_agent_sees_only_their_own_home_not_what_lies_under_or_beside_it(
        jurisdiction_tree: JurisdictionTree) -> None:
    agent = person("agent", "330106")
    assert in_scope(agent, "330106", jurisdiction_tree)
    assert not any(in_scope(agent, code, jurisdiction_tree) for code in ("330106-01", "330100", "330105", "000000"))


def test_an_admin_sees_everything(jurisdiction_tree: JurisdictionTree) -> None:
    admin = person("admin", "000000")
    assert all(in_scope(admin, code, jurisdiction_tree) for code in ("000000", "110100", "330106-01", "650000"))


def test_a_supervisor_of_a_station_sees_that_station_only(jurisdiction_tree: JurisdictionTree) -> None:
    supervisor = person("supervisor", "330106-01")
    assert in_scope(supervisor, "330106-01", jurisdiction_tree)
    assert not in_scope(supervisor, "330106-02", jurisdiction_tree)
    assert not in_scope(supervisor, "330106", jurisdiction_tree)


def test_the_tree_decides_not_the_digits_of_the_codes() -> None:
    # 重庆's 5002xx counties hang under the city 500100: a prefix rule would get them wrong.
    assert in_scope(person("supervisor", "500100"), "500230")
    assert not in_scope(person("supervisor", "500100"), "510100")


def test_without_a_stations_file_a_station_is_judged_by_the_county_its_code_names() -> None:
    # The shipped tree knows no stations; a station code names its county, which decides.
    assert in_scope(person("supervisor", "330100"), "330106-07")
    assert in_scope(person("supervisor", "330106"), "330106-07")
    assert not in_scope(person("supervisor", "110100"), "330106-07")
    assert not in_scope(person("supervisor", "330100"), "999999-01")


def test_outside_the_scope_is_the_403_forbidden_refusal(jurisdiction_tree: JurisdictionTree) -> None:
    with pytest.raises(ApiError) as caught:
        require_scope(person("supervisor", "330000"), "110100", jurisdiction_tree)
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert "110100" in caught.value.message_en and "330000" in caught.value.message_en
    require_scope(person("supervisor", "330000"), "330106-02", jurisdiction_tree)
