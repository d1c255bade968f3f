"""Masking in logs, both ways, by property: every way of writing a Chinese mobile, landline,
ID card or bank card number is masked wherever it stands in a text (Chinese around it too), and the
identifiers needed to follow a call or a case never are (the platform's case numbers, call
and ticket ids, Asterisk channel ids)."""

from __future__ import annotations

import logging
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.privacy import MaskingFilter, mask_phone, mask_text, mask_url

#: Around a number in a log line: Chinese, spaces, punctuation; letters only after a space.
CONTEXT = st.text(alphabet="电话号码身份证来电客户投诉：，。、 ()[]/:;'\"=", max_size=12)
LETTERS = st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True)
BEFORE = st.one_of(CONTEXT, st.builds(lambda w, c: f"{w} {c}", LETTERS, CONTEXT))
AFTER = st.one_of(CONTEXT, st.builds(lambda c, w: f"{c} {w}", CONTEXT, LETTERS))


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


MOBILE = st.builds(lambda second, rest: f"1{second}{rest}", st.sampled_from("3456789"), digits(9))
COUNTRY = st.sampled_from(["", "+86", "+86 ", "+86-", "0086 ", "0086", "86", "86 "])


@st.composite
def written_mobile(draw: st.DrawFn) -> tuple[str, str]:
    number = draw(MOBILE)
    sep = draw(st.sampled_from(["", " ", "-"]))
    return draw(COUNTRY) + f"{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}", number


@st.composite
def written_landline(draw: st.DrawFn) -> tuple[str, str]:
    area = "0" + draw(st.sampled_from("123456789")) + draw(digits(draw(st.sampled_from([1, 2]))))
    subscriber = draw(st.sampled_from("23456789")) + draw(digits(draw(st.sampled_from([6, 7]))))
    head, tail = subscriber[:-4], subscriber[-4:]
    form = draw(st.sampled_from(["{a}-{s}", "{a}{s}", "({a}){h}-{t}", "({a}){s}", "{a} {h} {t}", "{a}-{h}-{t}",
                                 "+86 {a1} {h} {t}", "+86-{a1}-{s}", "{h}-{t}", "{s}"]))
    text = form.format(a=area, s=subscriber, h=head, t=tail, a1=area[1:])
    return text, subscriber


@st.composite
def written_id(draw: st.DrawFn) -> tuple[str, str]:
    number = draw(digits(17)) + draw(st.sampled_from("0123456789Xx"))
    return number, number


@st.composite
def written_card(draw: st.DrawFn) -> tuple[str, str]:
    number = draw(st.sampled_from(["62", "4", "5", "9"])) + draw(digits(draw(st.integers(14, 17))))
    number = number[:19]
    if draw(st.booleans()) and len(number) >= 16:
        groups = [number[i:i + 4] for i in range(0, len(number), 4)]
        return draw(st.sampled_from([" ", "-"])).join(groups), number
    return number, number


@given(st.one_of(written_mobile(), written_landline(), written_id(), written_card()), BEFORE, AFTER)
def test_every_written_form_of_a_number_is_masked_wherever_it_stands(written: tuple[str, str], before: str,
                                                                     after: str) -> None:
    text, number = written
    masked = mask_text(f"{before}{text}{after}")
    assert number not in re.sub(r"[ ()\-+]", "", masked)
    assert "***" in masked


@st.composite
def identifier(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["case", "uuid", "channel", "digits uuid"]))
    if kind == "case":  # the platform's: 12315, the date, a sequence (6 digits, more past a million a day)
        day = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2099, 12, 31)))
        return f"12315{day:%Y%m%d}{draw(digits(draw(st.sampled_from([6, 6, 7]))))}"
    if kind == "uuid":
        return str(draw(st.uuids()))
    if kind == "channel":
        return f"{draw(digits(10))}.{draw(st.integers(0, 999))}"
    # A UUID whose groups happen to be all digits (and one to look like a phone).
    groups = [draw(digits(8)), draw(digits(4)), draw(digits(4)), draw(digits(4)), draw(digits(12))]
    if draw(st.booleans()):
        groups[0] = draw(MOBILE)[:8]
    return "-".join(groups)


@given(st.lists(identifier(), min_size=1, max_size=4), BEFORE)
def test_case_numbers_call_and_ticket_ids_and_channel_ids_are_never_masked(ids: list[str], words: str) -> None:
    text = " ".join(f"{words} {i}" for i in ids)
    assert mask_text(text) == text


@pytest.mark.parametrize(("text", "masked"), [
    ("电话13800138000", "电话138****8000"),
    ("回拨 +86 138 0013 8000。", "回拨 +86*******8000。"),
    ("mobile 138-0013-8000", "mobile 138****8000"),
    ("座机(0571)8888-1234转", "座机057*****1234转"),
    ("身份证11010519491231002X，", "身份证110***********002X，"),
    ("卡号6222 0212 3456 7890 123", "卡号622************0123"),
    ("case 1231520261123000123 ok", "case 1231520261123000123 ok"),
    ("caller 13812345678 dialled 12315", "caller 138****5678 dialled 12315"),
    ("call b5e3b0e3-3947-4676-bfe9-098296845297 on channel 1795524998.12 from 13800138000.",
     "call b5e3b0e3-3947-4676-bfe9-098296845297 on channel 1795524998.12 from 138****8000."),
])
def test_examples(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_a_short_number_shows_only_its_last_four(caplog: pytest.LogCaptureFixture) -> None:
    assert mask_phone("88881234") == "****1234" and mask_phone("8881234") == "***1234"
    logger = logging.getLogger("test.masking.short")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.masking.short"):
        logger.info("local %s, case %s", "8888-1234", "1231520261123000123")
    assert "local ****1234, case 1231520261123000123" in caplog.text


def test_a_urls_password_is_hidden_and_the_rest_of_the_url_kept() -> None:
    assert mask_url("redis://:s3cret@cache:6379/0") == "redis://:****@cache:6379/0"
    assert mask_url("'postgresql+asyncpg://hotline:pa55@db/hotline'") == "'postgresql+asyncpg://hotline:****@db/hotline'"
    assert mask_url("redis://cache:6379/0") == "redis://cache:6379/0"  # no password, nothing to hide
