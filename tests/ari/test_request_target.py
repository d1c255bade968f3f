"""ARI request targets are built as aiohttp (yarl) builds them, with or without the fast path."""

from __future__ import annotations

import yarl
from hypothesis import given
from hypothesis import strategies as st

from ari.rest import request_target

#: Printable ASCII and a few others: ids, sound names, escapes, spaces, dots, non-ASCII.
PIECE = st.sampled_from([chr(c) for c in range(32, 127)] + ["é", "中", "%2F", "%2f", "/./", "/../", "/."])
TEXT = st.lists(PIECE, max_size=16).map("".join)


def by_yarl(base: str, path: str, params: list[tuple[str, str]] | None) -> str:
    url = yarl.URL("http://asterisk:8088" + base + path)
    return (url.with_query(params) if params else url).raw_path_qs


@given(path=TEXT, params=st.lists(st.tuples(TEXT, TEXT), max_size=3))
def test_any_target_is_what_yarl_makes_of_it(path: str, params: list[tuple[str, str]]) -> None:
    path = "/channels/" + path
    assert request_target("/ari", path, params or None) == by_yarl("/ari", path, params or None)


def test_an_everyday_target_is_joined_as_it_is() -> None:
    params = [("media", "sound:hotline/zh_CN/welcome_general,sound:hotline/zh_CN/recording_notice"),
              ("lang", "zh_CN"), ("playbackId", "pb-5a60b365-15")]
    assert request_target("/ari", "/channels/1733490000.123/play", params) == (
        "/ari/channels/1733490000.123/play?media=sound:hotline/zh_CN/welcome_general,"
        "sound:hotline/zh_CN/recording_notice&lang=zh_CN&playbackId=pb-5a60b365-15")


def test_an_escaped_id_stays_escaped_and_a_space_is_escaped() -> None:
    assert request_target("/ari", "/sounds/a%2Fb", None) == "/ari/sounds/a%2Fb"
    assert request_target("/ari", "/channels/x", [("variables", "a b")]) == "/ari/channels/x?variables=a+b"
