"""The stand-in refuses what the contract refuses, replays what it should, and every answer
it gives validates against the contract's response schemas (checked by the ``platform``
fixture on every exchange)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, timedelta
from typing import Any

import aiohttp
import pytest

from devtools.platform_sim import Exchange, PlatformSim
from national.contract import format_datetime, parse_datetime
from tests.support.clock import EpochClock
from tests.support.documents import ORG, OTHER_ORG, OTHER_SECRET, SECRET, a_call_record, a_case, a_step
from tests.support.national import (
    PlatformContract,
    TrafficChecker,
    assert_clean,
    encode,
    platform_under,
    post_case,
    send,
)

CASE_NO = re.compile(r"12315([0-9]{8})([0-9]{6})")


@pytest.fixture
def base(platform: PlatformSim) -> str:
    return platform.url


async def stored_case_no(http: aiohttp.ClientSession, base: str, clock: EpochClock, **fields: Any) -> str:
    status, _, receipt = await post_case(http, base, a_case(clock, **fields), clock=clock)
    assert status == 201, receipt
    return receipt["platform_case_no"]


async def progress(http: aiohttp.ClientSession, base: str, number: str, step: dict[str, Any], clock: EpochClock,
                   **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return await send(http, base, "POST", f"/v1/cases/{number}/progress", encode(step), clock=clock, **kwargs)


# --------------------------------------------------------------------------- 401


async def test_a_request_without_a_signature_is_unauthorized(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    status, headers, body = await post_case(http, base, a_case(clock), clock=clock, headers={"X-Signature": None})
    assert status == 401
    assert body["code"] == "unauthorized"
    assert body["errors"] == [{"field": "X-Signature", "code": "required", "message": "header X-Signature is missing"}]
    assert "WWW-Authenticate" in headers
    assert platform.cases() == []


async def test_a_request_signed_with_another_secret_is_unauthorized(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    status, _, body = await post_case(http, base, a_case(clock), clock=clock, secret="guessed")
    assert (status, body["errors"][0]["code"]) == (401, "bad_signature")
    assert platform.stats.unauthorized == 1 and platform.cases() == []


async def test_a_signature_over_the_base_path_too_is_unauthorized(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    # The signed PATH is relative to the server URL (1.0.1): /v1/cases, never /api/v1/cases.
    status, _, body = await post_case(http, base, a_case(clock), clock=clock, sign_path="/api/v1/cases")
    assert (status, body["errors"][0]["code"]) == (401, "bad_signature")
    assert platform.cases() == []


@pytest.mark.parametrize("base_path", ["/gateway/12315/api", ""])
async def test_under_any_base_path_the_stand_in_verifies_the_path_relative_to_its_url(
    http: aiohttp.ClientSession, clock: EpochClock, platform_contract: PlatformContract, base_path: str
) -> None:
    async with platform_under(base_path, platform_contract, clock) as (sim, traffic):
        case = a_case(clock)
        if base_path:  # signed over the whole request path, as our client did before 1.0.1
            old_way, _, refusal = await post_case(http, sim.url, case, clock=clock,
                                                  sign_path=base_path + "/v1/cases")
            assert (old_way, refusal["errors"][0]["code"]) == (401, "bad_signature")
        status, _, receipt = await post_case(http, sim.url, case, clock=clock)
        number = receipt["platform_case_no"]
        stepped, _, _ = await progress(http, sim.url, number, a_step("accepted", clock), clock)
        record = a_call_record(clock)
        recorded, _, _ = await send(http, sim.url, "POST", "/v1/call-records", encode(record), clock=clock,
                                    key=record["call_id"])
        read, _, _ = await send(http, sim.url, "GET", f"/v1/cases/{number}", clock=clock)
    assert (status, stepped, recorded, read) == (201, 201, 201, 200)
    assert_clean(traffic.response_violations())


@pytest.mark.parametrize("skew", [-301, 301])
async def test_a_request_signed_more_than_300_s_away_from_the_platforms_clock_is_unauthorized(
        http: aiohttp.ClientSession, base: str, clock: EpochClock, skew: float) -> None:
    sender_clock = EpochClock(clock.now + skew)
    status, _, body = await post_case(http, base, a_case(clock), clock=sender_clock)
    assert (status, body["errors"][0]) == (401, {"field": "X-Timestamp", "code": "stale_timestamp",
                                                 "message": body["message"]})


async def test_a_nonce_used_twice_within_10_minutes_is_unauthorized_the_second_time(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    nonce = "reused-nonce-0123456789"
    first, _, _ = await post_case(http, base, a_case(clock), clock=clock, nonce=nonce)
    again, _, body = await post_case(http, base, a_case(clock), clock=clock, nonce=nonce)
    assert (first, again, body["errors"][0]["code"]) == (201, 401, "reused_nonce")
    clock.advance(600)
    later, _, _ = await post_case(http, base, a_case(clock), clock=clock, nonce=nonce)
    assert later == 201


async def test_an_unknown_organisation_is_unauthorized(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    status, _, body = await post_case(http, base, a_case(clock), clock=clock, org="SH310000", secret="x")
    assert (status, body["errors"][0]["code"]) == (401, "unknown_org")


# --------------------------------------------------------------------------- 400


async def test_a_case_without_an_idempotency_key_is_malformed(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock)
    status, _, body = await send(http, base, "POST", "/v1/cases", encode(case), clock=clock)
    assert status == 400
    assert body["code"] == "malformed"
    assert body["errors"][0]["field"] == "Idempotency-Key" and body["errors"][0]["code"] == "required"
    assert platform.stats.rejected_400 == 1 and platform.cases() == []


async def test_an_idempotency_key_that_is_not_a_uuid_is_malformed(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    status, _, body = await post_case(http, base, a_case(clock), clock=clock, key="case-1")
    assert (status, body["errors"][0]["code"]) == (400, "bad_format")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=gbk"])
async def test_a_body_of_the_wrong_content_type_is_malformed(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, content_type: str | None
) -> None:
    status, _, body = await post_case(http, base, a_case(clock), clock=clock, content_type=content_type)
    assert (status, body["code"]) == (400, "malformed")
    assert body["errors"][0]["field"] == "Content-Type"


@pytest.mark.parametrize(("raw", "words"), [
    (b'{"case_id": ', "not JSON"),
    (b'{"duration_s": NaN}', "not JSON"),
    (b"[1, 2, 3]", "must be a JSON object, not an array"),
    (b'"a case"', "must be a JSON object, not a string"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
])
async def test_a_body_that_is_not_a_json_object_is_malformed(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, raw: bytes, words: str
) -> None:
    status, _, body = await send(http, base, "POST", "/v1/cases", raw, clock=clock, key=str(uuid.uuid4()))
    assert (status, body["code"]) == (400, "malformed")
    assert words in body["message"]


# --------------------------------------------------------------------------- 413


def padded_to(case: dict[str, Any], size: int) -> bytes:
    """The case with an extra property (the contract allows them) making the body ``size`` bytes."""
    case = dict(case, padding="")
    case["padding"] = "x" * (size - len(encode(case)))
    body = encode(case)
    assert len(body) == size
    return body


async def test_a_body_of_exactly_256_kib_is_read_and_one_byte_more_is_too_large(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock)
    status, _, _ = await send(http, base, "POST", "/v1/cases", padded_to(case, 256 * 1024), clock=clock,
                              key=case["case_id"])
    assert status == 201
    bigger = a_case(clock)
    status, _, body = await send(http, base, "POST", "/v1/cases", padded_to(bigger, 256 * 1024 + 1), clock=clock,
                                 key=bigger["case_id"])
    assert (status, body["code"]) == (413, "too_large")
    assert len(platform.cases()) == 1


# --------------------------------------------------------------------------- 201, 200 and 409


async def test_a_valid_case_is_stored_with_a_receipt(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock)
    status, headers, receipt = await post_case(http, base, case, clock=clock)
    assert status == 201 and "Idempotent-Replayed" not in headers
    day, sequence = CASE_NO.fullmatch(receipt["platform_case_no"]).groups()  # type: ignore[union-attr]
    assert day == clock.datetime().strftime("%Y%m%d") and sequence == "000001"
    assert parse_datetime(receipt["received_at"]) == clock.datetime().replace(microsecond=0)
    assert [c["case_id"] for c in platform.cases()] == [case["case_id"]]


async def test_case_numbers_count_up_within_a_china_day_and_start_again_the_next(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    first = await stored_case_no(http, base, clock)
    second = await stored_case_no(http, base, clock)
    midnight = clock.datetime().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    clock.advance((midnight - clock.datetime()).total_seconds() + 1)
    third = await stored_case_no(http, base, clock)
    assert [n[-6:] for n in (first, second, third)] == ["000001", "000002", "000001"]
    assert third[5:13] == midnight.strftime("%Y%m%d")


async def test_the_same_case_sent_again_is_a_replay_of_the_original_receipt(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock)
    _, _, receipt = await post_case(http, base, case, clock=clock)
    clock.advance(30)
    status, headers, again = await post_case(http, base, case, clock=clock)
    assert (status, headers.get("Idempotent-Replayed"), again) == (200, "true", receipt)
    assert platform.stats.replayed == 1
    assert platform.stats.store_counts[("case", ORG, case["case_id"])] == 1


async def test_the_same_document_written_differently_is_still_a_replay(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    case = a_case(clock)
    await post_case(http, base, case, clock=clock)
    reordered = json.dumps(dict(reversed(list(case.items()))), indent=2).encode()  # \u escapes too
    status, _, _ = await send(http, base, "POST", "/v1/cases", reordered, clock=clock, key=case["case_id"].upper())
    assert status == 200


async def test_the_same_key_with_a_different_case_is_a_conflict_and_changes_nothing(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock)
    await post_case(http, base, case, clock=clock)
    status, _, body = await post_case(http, base, dict(case, summary="另一件事：快递丢失，要求赔偿。"), clock=clock)
    assert (status, body["code"]) == (409, "conflict")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("Idempotency-Key", "conflict")]
    assert platform.cases()[0]["summary"] == case["summary"]


async def test_the_same_case_with_its_received_at_written_in_another_offset_is_a_replay(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock)  # received_at in Beijing time, +08:00
    _, _, receipt = await post_case(http, base, case, clock=clock)
    in_utc = dict(case, received_at=format_datetime(parse_datetime(case["received_at"]).astimezone(UTC)))
    assert in_utc["received_at"].endswith("+00:00") and in_utc["received_at"] != case["received_at"]
    status, headers, again = await post_case(http, base, in_utc, clock=clock)
    assert (status, headers.get("Idempotent-Replayed"), again) == (200, "true", receipt)
    a_second_later = dict(case, received_at=format_datetime(parse_datetime(case["received_at"]) + timedelta(seconds=1)))
    conflict, _, _ = await post_case(http, base, a_second_later, clock=clock)
    assert conflict == 409
    assert platform.cases()[0]["received_at"] == case["received_at"]  # stored as first written


async def test_a_step_and_a_call_record_with_their_times_in_another_offset_are_replays(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    def in_utc(doc: dict[str, Any], *times: str) -> dict[str, Any]:
        moved = {key: parse_datetime(doc[key]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                 for key in times}
        return {**doc, **moved}

    number = await stored_case_no(http, base, clock)
    accepted = a_step("accepted", clock)
    _, _, first = await progress(http, base, number, accepted, clock)
    status, _, again = await progress(http, base, number, in_utc(accepted, "at"), clock)
    assert (status, again) == (200, first)
    record = a_call_record(clock)
    times = ("started_at", "queued_at", "answered_at", "ended_at")
    answers = [await send(http, base, "POST", "/v1/call-records", encode(doc), clock=clock, key=record["call_id"])
               for doc in (record, in_utc(record, *times))]
    assert [(status, headers.get("Idempotent-Replayed")) for status, headers, _ in answers] == [
        (201, None), (200, "true")]
    assert platform.stats.conflicts == 0 and platform.stats.call_records_stored == 1


async def test_idempotency_keys_belong_to_one_organisation(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock)
    mine, _, _ = await post_case(http, base, case, clock=clock)
    theirs, _, _ = await post_case(http, base, case, clock=clock, org=OTHER_ORG, secret=OTHER_SECRET)
    assert (mine, theirs) == (201, 201)
    assert sorted(c["org"] for c in platform.cases()) == [OTHER_ORG, ORG]


async def test_an_invalid_case_is_refused_with_every_problem_and_not_stored(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock, handling={"region": "330100", "level": "county"}, summary="短")
    case["respondent"]["credit_code"] = "91350100M000100Y44"
    del case["caller"]
    status, _, body = await post_case(http, base, case, clock=clock)
    assert (status, body["code"]) == (422, "invalid")
    assert {(e["field"], e["code"]) for e in body["errors"]} == {
        ("handling.region", "mismatch"), ("summary", "too_short"), ("respondent.credit_code", "bad_check_digit")}
    assert all(e["message"] and e["message_zh"] for e in body["errors"])
    assert platform.cases() == [] and platform.stats.rejected_422 == 1
    # Not stored means the key is free: the corrected case goes through with it.
    fixed = a_case(clock, case_id=case["case_id"])
    status, _, _ = await post_case(http, base, fixed, clock=clock)
    assert status == 201


async def test_a_case_whose_id_is_not_its_idempotency_key_is_invalid(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    status, _, body = await post_case(http, base, a_case(clock), clock=clock, key=str(uuid.uuid4()))
    assert (status, body["errors"][0]["field"], body["errors"][0]["code"]) == (422, "case_id", "mismatch")


async def test_a_case_received_more_than_5_minutes_in_the_platforms_future_is_invalid(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    status, _, body = await post_case(http, base, a_case(clock, received_at=clock.rfc3339(301)), clock=clock)
    assert (status, body["errors"][0]["code"]) == (422, "in_future")


# --------------------------------------------------------------------------- progress


async def test_a_case_goes_through_its_life_cycle_and_reads_back_with_its_progress(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    number = await stored_case_no(http, base, clock)
    steps = [a_step("accepted", clock), a_step("transferred", clock), a_step("transferred", clock,
             to={"region": "330106", "level": "station", "station": "003"}), a_step("closed", clock)]
    for step in steps:
        status, _, answer = await progress(http, base, number, step, clock)
        assert status == 201 and answer["step_id"] == step["step_id"]
    status, _, case = await send(http, base, "GET", f"/v1/cases/{number}", clock=clock)
    assert status == 200
    assert case["platform_case_no"] == number and case["progress"] == steps


async def test_a_step_sent_again_is_a_replay_even_after_later_steps(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    number = await stored_case_no(http, base, clock)
    accepted = a_step("accepted", clock)
    _, _, first = await progress(http, base, number, accepted, clock)
    await progress(http, base, number, a_step("transferred", clock), clock)
    status, _, again = await progress(http, base, number, accepted, clock)
    assert (status, again) == (200, first)
    assert platform.stats.progress_recorded == 2


async def test_a_step_id_sent_again_with_a_different_step_is_a_conflict(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    number = await stored_case_no(http, base, clock)
    accepted = a_step("accepted", clock)
    await progress(http, base, number, accepted, clock)
    status, _, body = await progress(http, base, number, dict(accepted, note="改了"), clock)
    assert (status, body["code"], body["errors"][0]["field"]) == (409, "conflict", "step_id")


@pytest.mark.parametrize(("before", "step"), [
    ([], "transferred"), ([], "closed"), (["accepted"], "rejected"), (["accepted", "closed"], "transferred"),
])
async def test_a_step_out_of_order_is_a_conflict_naming_the_step(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, before: list[str], step: str
) -> None:
    number = await stored_case_no(http, base, clock)
    for kind in before:
        status, _, _ = await progress(http, base, number, a_step(kind, clock), clock)
        assert status == 201
    status, _, body = await progress(http, base, number, a_step(step, clock), clock)
    assert status == 409 and body["code"] == "conflict"
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("step", "out_of_order")]


async def test_acceptance_after_the_cases_deadline_is_invalid(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    today = clock.datetime().date().isoformat()
    number = await stored_case_no(http, base, clock, deadlines={"accept_by": today})
    status, _, body = await progress(http, base, number, a_step("accepted", clock, at=clock.rfc3339(86400)), clock)
    assert (status, [(e["field"], e["code"]) for e in body["errors"]]) == (422, [("at", "past_deadline")])
    status, _, _ = await progress(http, base, number, a_step("accepted", clock), clock)
    assert status == 201


async def test_an_invalid_step_is_refused_and_not_recorded(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    number = await stored_case_no(http, base, clock)
    await progress(http, base, number, a_step("accepted", clock), clock)
    closing = a_step("closed", clock)
    del closing["outcome"]
    status, _, body = await progress(http, base, number, closing, clock)
    assert (status, body["errors"][0]["field"]) == (422, "outcome")
    _, _, case = await send(http, base, "GET", f"/v1/cases/{number}", clock=clock)
    assert [s["step"] for s in case["progress"]] == ["accepted"]


async def test_progress_on_an_unknown_case_or_another_centres_case_is_not_found(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    number = await stored_case_no(http, base, clock)
    status, _, body = await progress(http, base, "1231520200101000001", a_step("accepted", clock), clock)
    assert (status, body["code"]) == (404, "not_found")
    status, _, _ = await progress(http, base, number, a_step("accepted", clock), clock,
                                  org=OTHER_ORG, secret=OTHER_SECRET)
    assert status == 404


# --------------------------------------------------------------------------- reading back


async def test_a_case_reads_back_as_stored_only_for_its_own_centre(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    case = a_case(clock)
    _, _, receipt = await post_case(http, base, case, clock=clock)
    number = receipt["platform_case_no"]
    status, _, mine = await send(http, base, "GET", f"/v1/cases/{number}", clock=clock)
    assert status == 200 and mine == {**case, "platform_case_no": number, "progress": []}
    status, _, _ = await send(http, base, "GET", f"/v1/cases/{number}", clock=clock, org=OTHER_ORG,
                              secret=OTHER_SECRET)
    assert status == 404


# --------------------------------------------------------------------------- call records


async def test_call_records_are_stored_replayed_and_checked_like_cases(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    record = a_call_record(clock)
    body = encode(record)
    first, _, answer = await send(http, base, "POST", "/v1/call-records", body, clock=clock, key=record["call_id"])
    again, headers, replay = await send(http, base, "POST", "/v1/call-records", body, clock=clock,
                                        key=record["call_id"])
    conflict, _, _ = await send(http, base, "POST", "/v1/call-records", encode(dict(record, satisfaction=1)),
                                clock=clock, key=record["call_id"])
    assert (first, again, headers.get("Idempotent-Replayed"), replay, conflict) == (201, 200, "true", answer, 409)
    unanswered = a_call_record(clock)
    del unanswered["agent_id"]
    status, _, problems = await send(http, base, "POST", "/v1/call-records", encode(unanswered), clock=clock,
                                     key=unanswered["call_id"])
    assert (status, problems["errors"][0]["field"], problems["errors"][0]["code"]) == (422, "agent_id", "required")
    assert [r["call_id"] for r in platform.call_records()] == [record["call_id"]]
    assert platform.stats.call_records_stored == 1


async def test_contract_1_1_documents_are_stored(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, platform: PlatformSim
) -> None:
    handed_over_case = a_case(clock, channel="gov_hotline")
    del handed_over_case["hotline_number"], handed_over_case["call_id"]
    handed_over_case["respondent"]["credit_code"] = "91100000100003962T"  # registered at national level
    status, _, _ = await post_case(http, base, handed_over_case, clock=clock)
    assert status == 201
    handed_over_call = a_call_record(clock, outcome="transferred_out", transferred_to="12345")
    del handed_over_call["answered_at"], handed_over_call["agent_id"]
    self_service_call = a_call_record(clock, outcome="self_service")
    del self_service_call["queued_at"], self_service_call["answered_at"], self_service_call["agent_id"]
    for record in (handed_over_call, self_service_call):
        status, _, body = await send(http, base, "POST", "/v1/call-records", encode(record), clock=clock,
                                     key=record["call_id"])
        assert status == 201, body
    assert [c["channel"] for c in platform.cases()] == ["gov_hotline"]
    assert [r["outcome"] for r in platform.call_records()] == ["transferred_out", "self_service"]


# --------------------------------------------------------------------------- routing


async def test_a_path_outside_the_contract_is_not_found(
    http: aiohttp.ClientSession, base: str, clock: EpochClock
) -> None:
    for path in ("/v2/cases", "/v1/cases/", "/v1/complaints"):
        status, _, body = await send(http, base, "GET", path, clock=clock)
        assert (status, body["code"]) == (404, "not_found")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/v1/cases", "POST"), ("PUT", "/v1/cases/1231520261123000001", "GET"),
    ("DELETE", "/v1/cases/1231520261123000001", "GET"), ("GET", "/v1/cases/1/progress", "POST"),
    ("PATCH", "/v1/call-records", "POST"),
])
async def test_a_wrong_method_on_a_contract_path_is_not_allowed(
    http: aiohttp.ClientSession, base: str, clock: EpochClock, method: str, path: str, allowed: str
) -> None:
    async with http.request(method, base + path) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == allowed
        assert (await resp.json())["code"] == "method_not_allowed"


async def test_the_rate_limit_answers_429_with_a_whole_second_retry_after(
    platform_contract: PlatformContract, http: aiohttp.ClientSession
) -> None:
    clock = EpochClock()
    traffic = TrafficChecker(platform_contract)
    sim = PlatformSim(orgs={ORG: SECRET}, clock=clock, rate_limit_per_s=2, observer=traffic)
    await sim.start()
    try:
        statuses = [(await post_case(http, sim.url, a_case(clock), clock=clock))[0] for _ in range(3)]
        status, headers, body = await post_case(http, sim.url, a_case(clock), clock=clock)
        assert statuses == [201, 201, 429] and status == 429
        assert headers["Retry-After"] == "1" and body["code"] == "rate_limited"
        clock.advance(0.5)  # one token back
        assert (await post_case(http, sim.url, a_case(clock), clock=clock))[0] == 201
        assert sim.stats.rate_limited == 2
    finally:
        await sim.stop()
    assert_clean(traffic.response_violations())


# --------------------------------------------------------------------------- the referee itself


def test_the_contract_checker_catches_an_answer_the_contract_does_not_allow(
    platform_contract: PlatformContract
) -> None:
    checker = TrafficChecker(platform_contract)
    receipt_without_time = json.dumps({"platform_case_no": "1231520261123000001"}).encode()
    checker(Exchange("POST", "/api/v1/cases", {}, b"", 201, {"Content-Type": "application/json"},
                     receipt_without_time))
    checker(Exchange("POST", "/api/v1/cases", {}, b"", 200, {"Content-Type": "application/json"},
                     json.dumps({"platform_case_no": "1", "received_at": "2026-11-23T10:15:00+08:00"}).encode()))
    checker(Exchange("POST", "/api/v1/cases", {}, b"", 429, {"Content-Type": "application/json"},
                     json.dumps({"code": "rate_limited"}).encode()))
    checker(Exchange("GET", "/api/v1/cases/1", {}, b"", 500, {"Content-Type": "application/json"},
                     json.dumps({"code": "internal_error", "message": "x"}).encode()))
    violations = "\n".join(checker.response_violations())
    assert "'received_at' is a required property" in violations
    assert "Idempotent-Replayed is missing" in violations
    assert "Retry-After is missing" in violations and "'message' is a required property" in violations
    assert "status 500 is not declared" in violations


def test_our_test_documents_are_valid_for_the_contracts_own_schemas(platform_contract: PlatformContract) -> None:
    clock = EpochClock()
    assert platform_contract.schema_errors("/components/schemas/Case", a_case(clock)) == []
    assert platform_contract.schema_errors("/components/schemas/CallRecord", a_call_record(clock)) == []
    for kind in ("accepted", "transferred", "closed"):
        assert platform_contract.schema_errors("/components/schemas/Progress", a_step(kind, clock)) == []
