"""Every rule of the contract's Case, Progress and CallRecord, as ``national.contract`` checks
them: each broken rule is one problem with the field's JSON path and a code, and every
problem of a document is reported at once."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.problems import Problem
from national.contract import (
    CALL_OUTCOMES,
    CALL_RECORD_TIMES,
    CASE_TIMES,
    CHANNELS,
    CONTRACT_VERSION,
    CREDIT_CODE_ALPHABET,
    check_step_order,
    credit_code_check_char,
    format_datetime,
    format_money,
    next_steps,
    parse_date,
    parse_datetime,
    validate_call_record,
    validate_case,
    validate_progress,
    with_instants,
)
from tests.support.clock import EpochClock
from tests.support.documents import a_call_record, a_case, a_step, credit_code
from tests.support.national import PlatformContract

CLOCK = EpochClock(datetime(2026, 11, 23, 10, 15, tzinfo=timezone(timedelta(hours=8))).timestamp())
NOW = CLOCK.datetime()


def found(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.field, p.code) for p in problems}


def case_problems(case: Any, **kwargs: Any) -> set[tuple[str, str]]:
    return found(validate_case(case, now=NOW, **kwargs))


def case_with(mutate: Callable[[dict[str, Any]], None], **fields: Any) -> dict[str, Any]:
    case = a_case(CLOCK, **fields)
    mutate(case)
    return case


# --------------------------------------------------------------------------- the credit code


def independent_check_char(first17: str) -> str:
    """GB 32100-2015 as the contract states it, written out without national.contract."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(alphabet.index(c) * w for c, w in zip(first17, weights, strict=True))
    return alphabet[(31 - total % 31) % 31]


def with_wrong_check_char(code: str) -> str:
    return code[:17] + ("0" if code[17] != "0" else "1")


def test_the_contracts_example_credit_code_has_the_right_check_character() -> None:
    assert credit_code_check_char("91350100M000100Y4") == "3"
    assert case_problems(a_case(CLOCK, respondent={"name": "福建某公司", "region": "350100",
                                                    "credit_code": "91350100M000100Y43"})) == set()


@pytest.mark.parametrize("first17", [
    "91350100M000100Y4", "91330106MA2B3C4D5", "12100000400000624", "31110000E00000000", "Y1110108MA01ABCDE",
    "91440300708461136",
])
def test_the_check_character_follows_the_contracts_formula(first17: str) -> None:
    assert credit_code_check_char(first17) == independent_check_char(first17)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=17, max_size=17), st.integers(0, 16), st.integers(1, 30))
def test_any_single_mistyped_character_is_caught_by_the_check_character(first17: str, at: int, shift: int) -> None:
    changed = CREDIT_CODE_ALPHABET[(CREDIT_CODE_ALPHABET.index(first17[at]) + shift) % 31]
    typo = first17[:at] + changed + first17[at + 1:]
    assert credit_code_check_char(typo) != credit_code_check_char(first17)


def test_a_case_whose_credit_code_has_a_wrong_check_character_is_refused_with_bad_check_digit() -> None:
    case = a_case(CLOCK)
    case["respondent"]["credit_code"] = with_wrong_check_char(case["respondent"]["credit_code"])
    assert case_problems(case) == {("respondent.credit_code", "bad_check_digit")}


@pytest.mark.parametrize("code", [
    "91330106MA2B3C4D5",            # 17 characters
    "91330106MA2B3C4D5XX",          # 19
    "91330106MI2B3C4D5X",           # I is not in the alphabet (nor O, S, V, Z)
    "91330106MA2B3C4D5z",           # lower case
    "9133A106MA2B3C4D5X",           # characters 3..8 are digits
])
def test_a_credit_code_of_the_wrong_shape_is_bad_format(code: str) -> None:
    case = a_case(CLOCK)
    case["respondent"]["credit_code"] = code
    assert case_problems(case) == {("respondent.credit_code", "bad_format")}


def test_the_contracts_example_of_a_business_registered_at_national_level_is_valid(
        platform_contract: PlatformContract) -> None:
    # Characters 3..8 are 100000: the national registration authority, no region (1.0.1).
    assert independent_check_char("91100000100003962") == "T"
    case = a_case(CLOCK)
    case["respondent"]["credit_code"] = "91100000100003962T"
    assert case_problems(case) == set()
    assert platform_contract.schema_errors("/components/schemas/Case", case) == []


@pytest.mark.parametrize("first17", [
    "91100000MA01ABCDE",   # national registration, another business
    "91990106MA2B3C4D5",   # 99 is no province: the platform still does not refuse it
    "91000000MA2B3C4D5",
])
def test_characters_3_to_8_of_a_credit_code_are_never_a_reason_to_refuse_a_case(first17: str) -> None:
    case = a_case(CLOCK)
    case["respondent"]["credit_code"] = credit_code(first17)
    assert case_problems(case) == set()


def test_a_national_registration_code_with_a_wrong_check_character_is_still_refused() -> None:
    case = a_case(CLOCK)
    case["respondent"]["credit_code"] = "91100000100003962U"
    assert case_problems(case) == {("respondent.credit_code", "bad_check_digit")}


# --------------------------------------------------------------------------- Case: the whole


def test_a_valid_complaint_has_no_problems(platform_contract: PlatformContract) -> None:
    case = a_case(CLOCK)
    assert validate_case(case, now=NOW, idempotency_key=case["case_id"]) == []
    assert platform_contract.schema_errors("/components/schemas/Case", case) == []


def test_a_consultation_needs_no_respondent() -> None:
    case = a_case(CLOCK, case_type="consultation", demand="information")
    del case["respondent"]
    assert case_problems(case) == set()


def test_an_anonymous_report_without_phone_or_name_is_valid() -> None:
    case = a_case(CLOCK, case_type="report", caller={"anonymous": True, "region": "330106"})
    assert case_problems(case) == set()


def test_an_empty_object_lists_every_required_field_at_once() -> None:
    assert case_problems({}) == {(f, "required") for f in (
        "case_id", "case_type", "channel", "received_at", "handling", "summary")}


@pytest.mark.parametrize("body", [[], "case", 3, None])
def test_a_body_that_is_not_an_object_is_one_problem_at_the_root(body: Any) -> None:
    assert case_problems(body) == {("", "bad_type")}


def test_all_problems_of_a_case_are_reported_together_each_with_messages_in_both_languages() -> None:
    case = a_case(CLOCK, case_type="complaint", summary="太短", agent_id="A" * 33)
    case["handling"] = {"region": "330100", "level": "province"}
    case["respondent"]["credit_code"] = with_wrong_check_char(case["respondent"]["credit_code"])
    case["caller"]["phone"] = "138-0013-8000"
    case["subject"]["amount"] = "199.999"
    problems = validate_case(case, now=NOW, idempotency_key="00000000-0000-4000-8000-000000000000")
    assert found(problems) == {
        ("case_id", "mismatch"),
        ("handling.region", "mismatch"),
        ("agent_id", "too_long"),
        ("caller.phone", "bad_format"),
        ("respondent.credit_code", "bad_check_digit"),
        ("subject.amount", "bad_format"),
        ("summary", "too_short"),
    }
    for p in problems:
        assert p.message_zh and p.message_en
        assert p.to_dict() == {"field": p.field, "code": p.code, "message": p.message_en, "message_zh": p.message_zh}
        assert Problem.from_dict(p.to_dict()) == p


# --------------------------------------------------------------------------- Case: fields one by one

#: (what is changed, the problem expected). Each is a rule the contract's schema states, so the
#: contract's own JSON Schema must find an error at the same place (checked below).
SCHEMA_RULES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("case_id not a uuid", lambda c: c.update(case_id="12345"), "case_id", "bad_format"),
    ("case_type outside the enum", lambda c: c.update(case_type="suggestion"), "case_type", "not_allowed"),
    ("case_type a number", lambda c: c.update(case_type=1), "case_type", "bad_type"),
    ("channel outside the enum", lambda c: c.update(channel="phone"), "channel", "not_allowed"),
    ("hotline_number outside the enum", lambda c: c.update(hotline_number="12345"), "hotline_number", "not_allowed"),
    ("business_line outside the enum", lambda c: c.update(business_line="tax"), "business_line", "not_allowed"),
    ("call_id not a uuid", lambda c: c.update(call_id="call-1"), "call_id", "bad_format"),
    ("received_at without an offset", lambda c: c.update(received_at="2026-11-23T10:15:00"),
     "received_at", "bad_format"),
    ("received_at a date only", lambda c: c.update(received_at="2026-11-23"), "received_at", "bad_format"),
    ("received_at on 30 February", lambda c: c.update(received_at="2026-02-30T10:15:00+08:00"),
     "received_at", "bad_format"),
    ("handling not an object", lambda c: c.update(handling="330100"), "handling", "bad_type"),
    ("handling.level missing", lambda c: c["handling"].pop("level"), "handling.level", "required"),
    ("handling.level outside the enum", lambda c: c["handling"].update(level="district"),
     "handling.level", "not_allowed"),
    ("handling.region of 5 digits", lambda c: c["handling"].update(region="33010"), "handling.region", "bad_format"),
    ("handling.station of 2 digits", lambda c: c.update(handling={"region": "330106", "level": "station",
                                                                 "station": "01"}),
     "handling.station", "bad_format"),
    ("agent_id of 33 characters", lambda c: c.update(agent_id="A" * 33), "agent_id", "too_long"),
    ("caller.phone with dashes", lambda c: c["caller"].update(phone="138-0013-8000"), "caller.phone", "bad_format"),
    ("caller.phone of 4 digits", lambda c: c["caller"].update(phone="1234"), "caller.phone", "bad_format"),
    ("caller.phone of 21 digits", lambda c: c["caller"].update(phone="1" * 21), "caller.phone", "bad_format"),
    ("caller.name of 51 characters", lambda c: c["caller"].update(name="张" * 51), "caller.name", "too_long"),
    ("caller.region starting with 0", lambda c: c["caller"].update(region="030106"), "caller.region", "bad_format"),
    ("caller.anonymous a string", lambda c: c["caller"].update(anonymous="yes"), "caller.anonymous", "bad_type"),
    ("respondent.name empty", lambda c: c["respondent"].update(name=""), "respondent.name", "too_short"),
    ("respondent.name of 201 characters", lambda c: c["respondent"].update(name="店" * 201),
     "respondent.name", "too_long"),
    ("respondent.name missing", lambda c: c["respondent"].pop("name"), "respondent.name", "required"),
    ("respondent.region missing", lambda c: c["respondent"].pop("region"), "respondent.region", "required"),
    ("respondent.address of 301 characters", lambda c: c["respondent"].update(address="路" * 301),
     "respondent.address", "too_long"),
    ("subject.kind outside the enum", lambda c: c["subject"].update(kind="food"), "subject.kind", "not_allowed"),
    ("subject.category of 101 characters", lambda c: c["subject"].update(category="类" * 101),
     "subject.category", "too_long"),
    ("subject.amount with 3 decimals", lambda c: c["subject"].update(amount="199.999"), "subject.amount", "bad_format"),
    ("subject.amount with a leading zero", lambda c: c["subject"].update(amount="0199.00"),
     "subject.amount", "bad_format"),
    ("subject.amount negative", lambda c: c["subject"].update(amount="-1.00"), "subject.amount", "bad_format"),
    ("subject.amount a number", lambda c: c["subject"].update(amount=199), "subject.amount", "bad_type"),
    ("subject.amount of 13 integer digits", lambda c: c["subject"].update(amount="1" * 13),
     "subject.amount", "bad_format"),
    ("subject.purchased_on month 13", lambda c: c["subject"].update(purchased_on="2026-13-01"),
     "subject.purchased_on", "bad_format"),
    ("summary of 4 characters", lambda c: c.update(summary="牛奶过期"), "summary", "too_short"),
    ("summary of 2001 characters", lambda c: c.update(summary="诉" * 2001), "summary", "too_long"),
    ("demand outside the enum", lambda c: c.update(demand="punish"), "demand", "not_allowed"),
    ("ivr_transcript of 2001 characters", lambda c: c.update(ivr_transcript="投" * 2001),
     "ivr_transcript", "too_long"),
    ("recording without its id", lambda c: c.update(recording={"sha256": "0" * 64, "duration_s": 10}),
     "recording.recording_id", "required"),
    ("recording.sha256 in upper case", lambda c: c.update(recording={"recording_id": "r1", "sha256": "A" * 64,
                                                                     "duration_s": 10}),
     "recording.sha256", "bad_format"),
    ("recording.duration_s negative", lambda c: c.update(recording={"recording_id": "r1", "sha256": "0" * 64,
                                                                    "duration_s": -1}),
     "recording.duration_s", "out_of_range"),
    ("recording.duration_s a string", lambda c: c.update(recording={"recording_id": "r1", "sha256": "0" * 64,
                                                                    "duration_s": "10"}),
     "recording.duration_s", "bad_type"),
    ("deadlines.accept_by not a date", lambda c: c["deadlines"].update(accept_by="23/11/2026"),
     "deadlines.accept_by", "bad_format"),
    ("deadlines.finish_by on 31 April", lambda c: c["deadlines"].update(finish_by="2026-04-31"),
     "deadlines.finish_by", "bad_format"),
]


@pytest.mark.parametrize(("what", "mutate", "field", "code"), SCHEMA_RULES, ids=[r[0] for r in SCHEMA_RULES])
def test_a_case_breaking_one_schema_rule_gets_exactly_that_problem(
        what: str, mutate: Callable[[dict[str, Any]], None], field: str, code: str,
        platform_contract: PlatformContract) -> None:
    case = case_with(mutate)
    assert case_problems(case) == {(field, code)}
    # The contract's own schema agrees that this is wrong, at that place.
    # (jsonschema places a missing property at its parent).
    where = field.rpartition(".")[0] if code == "required" else field
    schema_errors = platform_contract.schema_errors("/components/schemas/Case", case)
    assert any(e.startswith(f"{where.replace('.', '/') or '(root)'}:") for e in schema_errors), schema_errors


@pytest.mark.parametrize(("field", "value"), [
    ("summary", "五个字符了"), ("summary", "诉" * 2000), ("agent_id", "A" * 32),
])
def test_lengths_at_the_limit_are_allowed_and_counted_in_characters_not_bytes(field: str, value: str) -> None:
    assert case_problems(a_case(CLOCK, **{field: value})) == set()


def test_a_nan_duration_is_not_a_json_number() -> None:
    case = a_case(CLOCK, recording={"recording_id": "r1", "sha256": "0" * 64, "duration_s": float("nan")})
    assert case_problems(case) == {("recording.duration_s", "bad_type")}


# --------------------------------------------------------------------------- Case: cross-field rules


@pytest.mark.parametrize("case_type", ["complaint", "report"])
def test_complaints_and_reports_need_a_respondent(case_type: str) -> None:
    case = a_case(CLOCK, case_type=case_type)
    del case["respondent"]
    assert case_problems(case) == {("respondent", "required")}


@pytest.mark.parametrize("missing", ["hotline_number", "call_id"])
def test_a_hotline_case_needs_the_dialled_number_and_the_call(missing: str) -> None:
    case = a_case(CLOCK)
    del case[missing]
    assert case_problems(case) == {(missing, "required")}


def test_a_case_from_the_web_needs_neither_number_nor_call() -> None:
    case = a_case(CLOCK, channel="web")
    del case["hotline_number"], case["call_id"]
    assert case_problems(case) == set()


def test_a_case_handed_over_by_the_government_service_hotline_is_valid_without_number_or_call(
        platform_contract: PlatformContract) -> None:
    # channel gov_hotline (1.1.0): only channel hotline needs the number dialled and the call.
    case = a_case(CLOCK, channel="gov_hotline")
    del case["hotline_number"], case["call_id"], case["agent_id"]
    assert case_problems(case) == set()
    assert platform_contract.schema_errors("/components/schemas/Case", case) == []


def test_a_government_hotline_case_keeps_every_other_rule() -> None:
    case = a_case(CLOCK, channel="gov_hotline", case_type="report", received_at=CLOCK.rfc3339(301))
    del case["respondent"]
    assert case_problems(case) == {("respondent", "required"), ("received_at", "in_future")}


@pytest.mark.parametrize(("number", "line", "ok"), [
    ("12365", "quality", True), ("12365", "price", False),
    ("12331", "food_drug", True), ("12331", "general", False),
    ("12358", "price", True), ("12358", "quality", False),
    ("12330", "intellectual_property", True), ("12330", "food_drug", False),
    ("12315", "price", True),  # the unified number carries every line
    ("12315", "general", True),
])
def test_the_business_line_must_match_a_former_hotline_number(number: str, line: str, ok: bool) -> None:
    problems = case_problems(a_case(CLOCK, hotline_number=number, business_line=line))
    assert problems == (set() if ok else {("business_line", "mismatch")})


@pytest.mark.parametrize("case_type", ["complaint", "consultation"])
def test_only_a_report_may_be_anonymous(case_type: str) -> None:
    case = a_case(CLOCK, case_type=case_type, caller={"anonymous": True})
    if case_type == "consultation":
        del case["respondent"]
    assert case_problems(case) == {("caller.anonymous", "not_allowed")}


def test_an_anonymous_caller_gives_neither_phone_nor_name() -> None:
    case = a_case(CLOCK, case_type="report", caller={"anonymous": True, "phone": "13800138000", "name": "张三"})
    assert case_problems(case) == {("caller.phone", "not_allowed"), ("caller.name", "not_allowed")}


@pytest.mark.parametrize(("level", "region", "station", "expected"), [
    ("national", "000000", None, set()),
    ("province", "330000", None, set()),
    ("city", "330100", None, set()),
    ("county", "330106", None, set()),
    ("station", "330106", "012", set()),
    ("national", "330000", None, {("handling.region", "mismatch")}),
    ("province", "000000", None, {("handling.region", "mismatch")}),
    ("province", "330100", None, {("handling.region", "mismatch")}),
    ("city", "330000", None, {("handling.region", "mismatch")}),
    ("city", "330106", None, {("handling.region", "mismatch")}),
    ("county", "330100", None, {("handling.region", "mismatch")}),
    ("station", "330100", "012", {("handling.region", "mismatch")}),
    ("station", "330106", None, {("handling.station", "required")}),
    ("province", "990000", None, {("handling.region", "unknown_region")}),
])
def test_the_handling_level_must_agree_with_its_region(level: str, region: str, station: str | None,
                                                       expected: set[tuple[str, str]]) -> None:
    handling = {"region": region, "level": level}
    if station is not None:
        handling["station"] = station
    assert case_problems(a_case(CLOCK, handling=handling)) == expected


@pytest.mark.parametrize(("prefix", "known"), [
    ("11", True), ("15", True), ("16", False), ("21", True), ("23", True), ("24", False), ("31", True),
    ("37", True), ("38", False), ("41", True), ("46", True), ("47", False), ("50", True), ("54", True),
    ("55", False), ("61", True), ("65", True), ("66", False), ("71", True), ("72", False), ("81", True),
    ("82", True), ("83", False), ("10", False), ("99", False),
])
def test_only_the_listed_province_prefixes_are_known_regions(prefix: str, known: bool) -> None:
    case = a_case(CLOCK)
    case["respondent"]["region"] = prefix + "0101"
    assert case_problems(case) == (set() if known else {("respondent.region", "unknown_region")})


def test_received_at_may_be_up_to_5_minutes_ahead_of_the_platforms_clock() -> None:
    assert case_problems(a_case(CLOCK, received_at=CLOCK.rfc3339(300))) == set()
    assert case_problems(a_case(CLOCK, received_at=CLOCK.rfc3339(301))) == {("received_at", "in_future")}
    # The same instant in another offset is the same instant.
    utc = format_datetime(CLOCK.datetime(301).astimezone(UTC))
    assert case_problems(a_case(CLOCK, received_at=utc)) == {("received_at", "in_future")}


def test_case_id_must_equal_the_idempotency_key_ignoring_case() -> None:
    case = a_case(CLOCK)
    assert case_problems(case, idempotency_key=case["case_id"].upper()) == set()
    assert case_problems(case, idempotency_key="00000000-0000-4000-8000-000000000000") == {("case_id", "mismatch")}


def test_validating_needs_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_case(a_case(CLOCK), now=datetime(2026, 11, 23, 10, 15))


# --------------------------------------------------------------------------- Progress


def test_a_valid_step_of_each_kind_has_no_problems(platform_contract: PlatformContract) -> None:
    for step in ("accepted", "rejected", "transferred", "closed"):
        doc = a_step(step, CLOCK)
        assert validate_progress(doc) == []
        assert platform_contract.schema_errors("/components/schemas/Progress", doc) == []


def test_a_step_without_anything_lists_every_required_field() -> None:
    assert found(validate_progress({})) == {("step_id", "required"), ("step", "required"), ("at", "required")}


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"step_id": "step-1"}, "step_id", "bad_format"),
    ({"step": "reopened"}, "step", "not_allowed"),
    ({"at": "yesterday"}, "at", "bad_format"),
    ({"to": {"region": "330100", "level": "county"}}, "to.region", "mismatch"),
    ({"to": {"level": "county"}}, "to.region", "required"),
    ({"outcome": "fined"}, "outcome", "not_allowed"),
    ({"note": "记" * 1001}, "note", "too_long"),
])
def test_a_step_breaking_one_rule_gets_exactly_that_problem(change: dict[str, Any], field: str, code: str) -> None:
    assert found(validate_progress(a_step("transferred", CLOCK, **change))) == {(field, code)}


def test_closing_needs_an_outcome() -> None:
    doc = a_step("closed", CLOCK)
    del doc["outcome"]
    assert found(validate_progress(doc)) == {("outcome", "required")}


@pytest.mark.parametrize("step", ["accepted", "rejected"])
def test_acceptance_must_happen_by_the_deadline_day_in_china_time(step: str) -> None:
    deadline = date(2026, 11, 30)
    on_time = a_step(step, at="2026-11-30T23:59:59+08:00")
    late = a_step(step, at="2026-12-01T00:00:00+08:00")
    late_in_utc = a_step(step, at="2026-11-30T16:00:00Z")  # 00:00 on 1 December in Beijing
    assert validate_progress(on_time, accept_by=deadline) == []
    assert found(validate_progress(late, accept_by=deadline)) == {("at", "past_deadline")}
    assert found(validate_progress(late_in_utc, accept_by=deadline)) == {("at", "past_deadline")}


def test_the_acceptance_deadline_does_not_bind_later_steps() -> None:
    assert validate_progress(a_step("transferred", at="2027-01-01T00:00:00+08:00"), accept_by=date(2026, 11, 30)) == []


@pytest.mark.parametrize(("previous", "step", "ok"), [
    ([], "accepted", True),
    ([], "rejected", True),
    ([], "transferred", False),
    ([], "closed", False),
    (["accepted"], "accepted", False),
    (["accepted"], "rejected", False),
    (["accepted"], "transferred", True),
    (["accepted"], "closed", True),
    (["accepted", "transferred", "transferred"], "transferred", True),
    (["accepted", "transferred", "transferred"], "closed", True),
    (["rejected"], "closed", True),
    (["accepted", "closed"], "transferred", False),
    (["accepted", "closed"], "closed", False),
    (["accepted", "transferred", "closed"], "accepted", False),
])
def test_steps_follow_the_life_cycle(previous: list[str], step: str, ok: bool) -> None:
    problem = check_step_order(previous, step)
    if ok:
        assert problem is None
        assert step in next_steps(previous)
    else:
        assert problem is not None and (problem.field, problem.code) == ("step", "out_of_order")
        assert problem.message_en and problem.message_zh


# --------------------------------------------------------------------------- CallRecord


def test_a_valid_call_record_has_no_problems(platform_contract: PlatformContract) -> None:
    record = a_call_record(CLOCK)
    assert validate_call_record(record, idempotency_key=record["call_id"]) == []
    assert platform_contract.schema_errors("/components/schemas/CallRecord", record) == []


def test_an_unanswered_call_needs_only_the_required_fields() -> None:
    record = {"call_id": "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", "hotline_number": "12365",
              "started_at": "2026-11-23T10:00:00+08:00", "ended_at": "2026-11-23T10:00:30+08:00",
              "outcome": "abandoned_in_menu"}
    assert validate_call_record(record) == []


def test_an_empty_call_record_lists_every_required_field() -> None:
    assert found(validate_call_record({})) == {(f, "required") for f in (
        "call_id", "hotline_number", "started_at", "ended_at", "outcome")}


def test_an_answered_call_needs_when_it_was_answered_and_by_whom() -> None:
    record = a_call_record(CLOCK)
    del record["answered_at"], record["agent_id"]
    assert found(validate_call_record(record)) == {("answered_at", "required"), ("agent_id", "required")}


@pytest.mark.parametrize(("field", "offset", "expected"), [
    ("queued_at", -500, {("queued_at", "out_of_order")}),      # queued before the call started
    ("answered_at", -380, {("answered_at", "out_of_order")}),  # answered before it was queued
    ("ended_at", -350, {("ended_at", "out_of_order")}),        # ended before it was answered
    ("ended_at", -340, set()),                                 # ended the moment it was answered
])
def test_call_times_run_started_queued_answered_ended(field: str, offset: float,
                                                       expected: set[tuple[str, str]]) -> None:
    record = a_call_record(CLOCK)
    record[field] = CLOCK.rfc3339(offset)
    assert found(validate_call_record(record)) == expected


def test_missing_optional_times_are_skipped_in_the_order_check() -> None:
    record = a_call_record(CLOCK, outcome="abandoned_in_menu")
    del record["queued_at"], record["answered_at"], record["agent_id"]
    record["ended_at"] = CLOCK.rfc3339(-500)
    assert found(validate_call_record(record)) == {("ended_at", "out_of_order")}


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"call_id": "c-1"}, "call_id", "bad_format"),
    ({"hotline_number": "110"}, "hotline_number", "not_allowed"),
    ({"caller_phone": "+86 138"}, "caller_phone", "bad_format"),
    ({"started_at": "2026-11-23 10:00:00+08:00"}, "started_at", "bad_format"),
    ({"menu_path": ["m"] * 21}, "menu_path", "too_many"),
    ({"menu_path": ["main", "x" * 41]}, "menu_path[1]", "too_long"),
    ({"menu_path": [1]}, "menu_path[0]", "bad_type"),
    ({"menu_path": "main"}, "menu_path", "bad_type"),
    ({"recognized_by": "keypad"}, "recognized_by", "not_allowed"),
    ({"outcome": "hung_up"}, "outcome", "not_allowed"),
    ({"agent_id": "A" * 33}, "agent_id", "too_long"),
    ({"satisfaction": 0}, "satisfaction", "out_of_range"),
    ({"satisfaction": 6}, "satisfaction", "out_of_range"),
    ({"satisfaction": 3.5}, "satisfaction", "bad_type"),
    ({"satisfaction": True}, "satisfaction", "bad_type"),
    ({"handling": {"region": "330106", "level": "city"}}, "handling.region", "mismatch"),
    ({"outcome": "transferred_out", "transferred_to": "1" * 41}, "transferred_to", "too_long"),
    ({"outcome": "transferred_out", "transferred_to": 12345}, "transferred_to", "bad_type"),
])
def test_a_call_record_breaking_one_rule_gets_exactly_that_problem(
        change: dict[str, Any], field: str, code: str, platform_contract: PlatformContract) -> None:
    record = a_call_record(CLOCK, **change)
    assert found(validate_call_record(record)) == {(field, code)}


def a_call_handed_over(**fields: Any) -> dict[str, Any]:
    """A call the menu handed over to the government service hotline before any agent."""
    record = a_call_record(CLOCK, outcome="transferred_out", transferred_to="12345", **fields)
    del record["queued_at"], record["answered_at"], record["agent_id"], record["satisfaction"]
    return record


def test_a_call_handed_over_elsewhere_is_valid_with_where_it_went(platform_contract: PlatformContract) -> None:
    record = a_call_handed_over()
    assert validate_call_record(record) == []
    assert platform_contract.schema_errors("/components/schemas/CallRecord", record) == []


def test_a_call_handed_over_without_saying_where_breaks_no_rule_of_the_contract(
        platform_contract: PlatformContract) -> None:
    # The contract's rules name companions for answered only; transferred_to is described,
    # not required, so the platform takes the record without it and so do we.
    record = a_call_handed_over()
    del record["transferred_to"]
    assert validate_call_record(record) == []
    assert platform_contract.schema_errors("/components/schemas/CallRecord", record) == []


def test_an_answered_call_the_agent_then_handed_over_may_say_where(platform_contract: PlatformContract) -> None:
    record = a_call_record(CLOCK, transferred_to="12345")
    assert validate_call_record(record) == []
    assert platform_contract.schema_errors("/components/schemas/CallRecord", record) == []


def test_a_call_answered_by_self_service_needs_no_agent(platform_contract: PlatformContract) -> None:
    record = a_call_record(CLOCK, outcome="self_service")
    del record["queued_at"], record["answered_at"], record["agent_id"]
    assert validate_call_record(record) == []
    assert platform_contract.schema_errors("/components/schemas/CallRecord", record) == []


def test_handed_over_and_self_service_calls_keep_the_order_of_their_times() -> None:
    record = a_call_handed_over(ended_at=CLOCK.rfc3339(-500))
    assert found(validate_call_record(record)) == {("ended_at", "out_of_order")}
    record = a_call_record(CLOCK, outcome="self_service", ended_at=CLOCK.rfc3339(-350))
    assert found(validate_call_record(record)) == {("ended_at", "out_of_order")}


def test_a_whole_number_written_as_4_0_is_an_integer_as_json_schema_says() -> None:
    assert validate_call_record(a_call_record(CLOCK, satisfaction=4.0)) == []


def test_call_id_must_equal_the_idempotency_key() -> None:
    record = a_call_record(CLOCK)
    assert found(validate_call_record(record, idempotency_key="00000000-0000-4000-8000-000000000000")) == {
        ("call_id", "mismatch")}


# --------------------------------------------------------------------------- small parsers and writers


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-23T10:15:00+08:00", datetime(2026, 11, 23, 2, 15, tzinfo=UTC)),
    ("2026-11-23T02:15:00Z", datetime(2026, 11, 23, 2, 15, tzinfo=UTC)),
    ("2026-11-23t02:15:00z", datetime(2026, 11, 23, 2, 15, tzinfo=UTC)),
    ("2026-11-23T02:15:00.5-00:30", datetime(2026, 11, 23, 2, 45, 0, 500000, tzinfo=UTC)),
    ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),  # a leap second
])
def test_rfc_3339_times_with_an_offset_are_read(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", [
    "2026-11-23T10:15:00", "2026-11-23 10:15:00+08:00", "2026-11-23T25:00:00Z", "2026-11-23T10:15:00+24:00",
    "2026-11-23T10:15+08:00", "２０２６-11-23T10:15:00Z", "",
])
def test_anything_else_is_not_a_time(text: str) -> None:
    assert parse_datetime(text) is None


def test_dates_are_calendar_dates() -> None:
    assert parse_date("2024-02-29") == date(2024, 2, 29)
    assert parse_date("2026-02-29") is None
    assert parse_date("2026-1-5") is None


def test_times_are_written_to_the_second_with_their_offset() -> None:
    assert format_datetime(datetime(2026, 11, 23, 10, 15, 0, 123, tzinfo=timezone(timedelta(hours=8)))) \
        == "2026-11-23T10:15:00+08:00"
    with pytest.raises(ValueError, match="offset"):
        format_datetime(datetime(2026, 11, 23, 10, 15))


@pytest.mark.parametrize(("amount", "text"), [
    (Decimal("199"), "199.00"), (199, "199.00"), ("0.005", "0.01"), ("12.344", "12.34"), ("0", "0.00"),
    ("-0.004", "0.00"), ("999999999999.99", "999999999999.99"), ("1E+2", "100.00"),
])
def test_money_is_written_in_yuan_with_two_decimals(amount: Any, text: str) -> None:
    assert format_money(amount) == text


@pytest.mark.parametrize("amount", ["-1", "1000000000000", "abc", "NaN", "Infinity", ""])
def test_what_cannot_be_platform_money_is_refused(amount: str) -> None:
    with pytest.raises(ValueError):
        format_money(amount)


def test_the_same_instant_written_in_two_offsets_reads_the_same_for_idempotency() -> None:
    beijing = {"received_at": "2026-11-23T10:15:00+08:00", "summary": "牛奶过期了"}
    utc = {"received_at": "2026-11-23T02:15:00Z", "summary": "牛奶过期了"}
    later = {"received_at": "2026-11-23T10:15:01+08:00", "summary": "牛奶过期了"}
    assert with_instants(beijing, CASE_TIMES) == with_instants(utc, CASE_TIMES)
    assert with_instants(beijing, CASE_TIMES) != with_instants(later, CASE_TIMES)
    assert beijing["received_at"] == "2026-11-23T10:15:00+08:00"  # the document itself is left alone


def test_only_times_are_read_as_instants_and_anything_else_is_left_as_written() -> None:
    record = {"started_at": "2026-11-23T10:15:00.000+08:00", "ended_at": "soon", "outcome": "answered"}
    assert with_instants(record, CALL_RECORD_TIMES) == {
        "started_at": "2026-11-23T02:15:00+00:00", "ended_at": "soon", "outcome": "answered"}
    assert with_instants(["not", "an", "object"], CALL_RECORD_TIMES) == ["not", "an", "object"]


def test_our_enumerations_and_version_are_the_contracts(platform_contract: PlatformContract) -> None:
    schemas = platform_contract.document["components"]["schemas"]
    assert platform_contract.document["info"]["version"] == CONTRACT_VERSION
    assert tuple(schemas["Case"]["properties"]["channel"]["enum"]) == CHANNELS
    assert tuple(schemas["CallRecord"]["properties"]["outcome"]["enum"]) == CALL_OUTCOMES


def test_validators_do_not_change_what_they_check() -> None:
    case = a_case(CLOCK)
    before = copy.deepcopy(case)
    validate_case(case, now=NOW)
    assert case == before
