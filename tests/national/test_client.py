"""``PlatformClient`` against the stand-in: each answer the platform can give becomes the
outcome a delivery worker acts on (delivered, replayed, retry, rejected), and every request
the client sends is one the contract allows."""

from __future__ import annotations

import email.utils
import random
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from devtools.platform_sim import Faults, OutageMode, PlatformSim
from national.client import (
    MAX_RETRY_AFTER_S,
    Backoff,
    LookupOutcome,
    Outcome,
    PlatformClient,
    parse_retry_after,
)
from tests.support.clock import EpochClock
from tests.support.documents import ORG, SECRET, a_call_record, a_case, a_step
from tests.support.national import PlatformContract, TrafficChecker, assert_clean, contract_signature, platform_under

#: The statuses a random fault may take beyond what the contract declares.
FAULT_STATUSES = frozenset({500, 502, 408})


@pytest.fixture(autouse=True)
def requests_keep_the_contract(traffic: TrafficChecker) -> object:
    """Whatever a test makes the platform do, the client's own requests must be valid."""
    yield
    assert_clean(traffic.request_violations())


def faulty(platform: PlatformSim, traffic: TrafficChecker, **faults: object) -> None:
    traffic.extra_statuses = FAULT_STATUSES
    platform.set_faults(Faults(**faults))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- delivered, replayed


async def test_a_new_case_is_delivered_with_the_platforms_case_number(
    client: PlatformClient, clock: EpochClock, platform: PlatformSim
) -> None:
    result = await client.submit_case(a_case(clock))
    assert result.outcome is Outcome.DELIVERED and result.ok and result.status == 201
    assert result.platform_case_no == platform.cases()[0]["platform_case_no"]


async def test_a_case_sent_again_is_replayed_with_the_same_number(
    client: PlatformClient, clock: EpochClock, platform: PlatformSim
) -> None:
    case = a_case(clock)
    first = await client.submit_case(case)
    again = await client.submit_case(case)
    assert again.outcome is Outcome.REPLAYED and again.ok
    assert again.platform_case_no == first.platform_case_no
    assert len(platform.cases()) == 1


async def test_a_call_record_is_delivered_then_replayed(
    client: PlatformClient, clock: EpochClock, platform: PlatformSim
) -> None:
    record = a_call_record(clock)
    assert (await client.submit_call_record(record)).outcome is Outcome.DELIVERED
    assert (await client.submit_call_record(record)).outcome is Outcome.REPLAYED
    assert len(platform.call_records()) == 1


async def test_progress_is_delivered_replayed_and_read_back(client: PlatformClient, clock: EpochClock) -> None:
    number = (await client.submit_case(a_case(clock))).platform_case_no
    accepted = a_step("accepted", clock)
    assert (await client.report_progress(number, accepted)).outcome is Outcome.DELIVERED
    assert (await client.report_progress(number, accepted)).outcome is Outcome.REPLAYED
    lookup = await client.get_case(number)
    assert lookup.outcome is LookupOutcome.FOUND and lookup.case is not None
    assert lookup.case["progress"] == [accepted]


@pytest.mark.parametrize("base_path", ["/gateway/12315/api", ""])
async def test_every_request_is_signed_over_its_path_relative_to_the_platforms_url(
    http: aiohttp.ClientSession, clock: EpochClock, platform_contract: PlatformContract, base_path: str
) -> None:
    async with platform_under(base_path, platform_contract, clock) as (sim, traffic):
        client = PlatformClient(sim.url, ORG, SECRET, http, clock=clock)
        number = (await client.submit_case(a_case(clock))).platform_case_no
        assert number is not None
        results = [await client.report_progress(number, a_step("accepted", clock)),
                   await client.submit_call_record(a_call_record(clock))]
        lookup = await client.get_case(number)
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2 and lookup.outcome is LookupOutcome.FOUND
    # Each signature, worked out again from the contract's words, covers /v1/... only.
    signed = [ex.path.removeprefix(base_path) for ex in traffic.exchanges]
    assert signed == ["/v1/cases", f"/v1/cases/{number}/progress", "/v1/call-records", f"/v1/cases/{number}"]
    for ex, path in zip(traffic.exchanges, signed, strict=True):
        h = ex.request_headers
        assert h["X-Signature"] == contract_signature(SECRET, ex.method, path, h["X-Timestamp"], h["X-Nonce"],
                                                      ex.request_body or b"")
    assert_clean(traffic.request_violations() + traffic.response_violations())


async def test_a_base_url_with_a_trailing_slash_reaches_the_same_paths(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim
) -> None:
    client = PlatformClient(platform.url + "/", ORG, SECRET, http, clock=clock)
    assert (await client.submit_case(a_case(clock))).outcome is Outcome.DELIVERED


# --------------------------------------------------------------------------- rejected


async def test_an_invalid_case_is_rejected_with_the_platforms_problems(
    client: PlatformClient, clock: EpochClock
) -> None:
    case = a_case(clock, summary="短")
    case["respondent"]["credit_code"] = "91350100M000100Y44"
    result = await client.submit_case(case)
    assert result.outcome is Outcome.REJECTED and result.status == 422 and not result.ok
    assert {(p.field, p.code) for p in result.problems} == {
        ("summary", "too_short"), ("respondent.credit_code", "bad_check_digit")}
    assert all(p.message_zh and p.message_en for p in result.problems)
    assert "invalid" in result.reason


async def test_a_different_case_under_a_used_key_is_rejected_as_a_conflict(
    client: PlatformClient, clock: EpochClock
) -> None:
    case = a_case(clock)
    await client.submit_case(case)
    result = await client.submit_case(dict(case, summary="同一编号，另一件事，应被拒绝。"))
    assert (result.outcome, result.status) == (Outcome.REJECTED, 409)


async def test_a_step_out_of_order_is_rejected_naming_the_step(client: PlatformClient, clock: EpochClock) -> None:
    number = (await client.submit_case(a_case(clock))).platform_case_no
    result = await client.report_progress(number, a_step("closed", clock))
    assert (result.outcome, result.status) == (Outcome.REJECTED, 409)
    assert [(p.field, p.code) for p in result.problems] == [("step", "out_of_order")]


async def test_progress_on_an_unknown_case_is_rejected_and_reading_it_is_not_found(
    client: PlatformClient, clock: EpochClock
) -> None:
    result = await client.report_progress("1231520200101000001", a_step("accepted", clock))
    assert (result.outcome, result.status) == (Outcome.REJECTED, 404)
    assert (await client.get_case("1231520200101000001")).outcome is LookupOutcome.NOT_FOUND


async def test_a_wrong_secret_is_rejected_not_retried(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim
) -> None:
    client = PlatformClient(platform.url, ORG, "not-the-secret", http, clock=clock)
    result = await client.submit_case(a_case(clock))
    assert (result.outcome, result.status) == (Outcome.REJECTED, 401)
    assert result.problems[0].field == "X-Signature"


async def test_a_sender_clock_far_off_is_rejected_as_unauthorized(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim
) -> None:
    client = PlatformClient(platform.url, ORG, SECRET, http, clock=EpochClock(clock.now - 600))
    result = await client.submit_case(a_case(clock))
    assert (result.outcome, result.status, result.problems[0].code) == (Outcome.REJECTED, 401, "stale_timestamp")


# --------------------------------------------------------------------------- retry, fault by fault


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (502, None), (503, 1.0), (429, 1.0), (408, None)])
async def test_each_retryable_failure_is_retry_with_the_wait_the_platform_asked(
    client: PlatformClient, clock: EpochClock, platform: PlatformSim, traffic: TrafficChecker, status: int,
    retry_after: float | None
) -> None:
    faulty(platform, traffic, error_rate=1.0, error_statuses=(status,))
    result = await client.submit_case(a_case(clock))
    assert (result.outcome, result.status, result.retry_after_s) == (Outcome.RETRY, status, retry_after)
    assert not result.ok and platform.cases() == []


async def test_a_connection_dropped_before_the_platform_stored_the_case_is_retry(
    client: PlatformClient, clock: EpochClock, platform: PlatformSim, traffic: TrafficChecker
) -> None:
    faulty(platform, traffic, drop_rate=1.0, drop_after_store_share=0.0)
    result = await client.submit_case(a_case(clock))
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert "connection" in result.reason and platform.cases() == []


async def test_a_connection_dropped_after_the_case_was_stored_is_retry_and_the_resend_a_replay(
        client: PlatformClient, clock: EpochClock, platform: PlatformSim, traffic: TrafficChecker) -> None:
    case = a_case(clock)
    faulty(platform, traffic, drop_rate=1.0, drop_after_store_share=1.0)
    assert (await client.submit_case(case)).outcome is Outcome.RETRY
    assert len(platform.cases()) == 1  # the platform has it although the sender does not know
    platform.set_faults(Faults())
    resend = await client.submit_case(case)
    assert resend.outcome is Outcome.REPLAYED and resend.platform_case_no == platform.cases()[0]["platform_case_no"]


async def test_an_answer_slower_than_the_clients_timeout_is_retry(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim, traffic: TrafficChecker
) -> None:
    faulty(platform, traffic, latency_s=(1.0, 1.0), time_scale=0.5)
    client = PlatformClient(platform.url, ORG, SECRET, http, timeout_s=0.1, clock=clock)
    result = await client.submit_case(a_case(clock))
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")


async def test_an_outage_is_retry_after_what_is_left_of_it(
    client: PlatformClient, clock: EpochClock, platform: PlatformSim
) -> None:
    platform.set_faults(Faults(time_scale=0.01))
    platform.start_outage(600)  # 10 platform minutes are 6 real seconds
    result = await client.submit_case(a_case(clock))
    assert (result.outcome, result.status, result.retry_after_s) == (Outcome.RETRY, 503, 6.0)
    lookup = await client.get_case("1231520200101000001")
    assert (lookup.outcome, lookup.retry_after_s) == (LookupOutcome.RETRY, 6.0)
    clock.advance(6)
    assert (await client.submit_case(a_case(clock))).outcome is Outcome.DELIVERED


async def test_an_outage_that_drops_connections_is_retry(
    client: PlatformClient, clock: EpochClock, platform: PlatformSim
) -> None:
    platform.set_faults(Faults(outage_mode=OutageMode.DROP))
    platform.start_outage(60)
    result = await client.submit_call_record(a_call_record(clock))
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    platform.end_outage()
    assert (await client.submit_call_record(a_call_record(clock))).outcome is Outcome.DELIVERED


async def test_a_platform_that_is_not_there_is_retry(http: aiohttp.ClientSession, clock: EpochClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = PlatformClient(f"http://127.0.0.1:{port}/api", ORG, SECRET, http, clock=clock)
    result = await client.submit_case(a_case(clock))
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert (await client.get_case("1")).outcome is LookupOutcome.RETRY


@pytest.fixture
async def garbled_platform() -> AsyncIterator[str]:
    """A server answering 201 with a body that is not JSON: the platform has the case, but
    the sender cannot read its receipt."""
    async def handler(request: web.Request) -> web.Response:
        status = 200 if request.method == "GET" else 201
        return web.Response(status=status, body=b"<html>stored</html>", content_type="text/html")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/api"
    await runner.cleanup()


async def test_a_receipt_that_cannot_be_read_is_retry_since_a_resend_replays(
    garbled_platform: str, http: aiohttp.ClientSession, clock: EpochClock
) -> None:
    client = PlatformClient(garbled_platform, ORG, SECRET, http, clock=clock)
    result = await client.submit_case(a_case(clock))
    assert (result.outcome, result.status) == (Outcome.RETRY, 201)
    assert (await client.get_case("1")).outcome is LookupOutcome.RETRY


# --------------------------------------------------------------------------- misuse is an error


def test_a_client_is_refused_for_a_bad_url_org_secret_or_timeout(http: aiohttp.ClientSession) -> None:
    for url in ("ftp://platform.example/api", "platform.example/api", "https://platform.example/api?x=1"):
        with pytest.raises(ValueError, match="URL"):
            PlatformClient(url, ORG, SECRET, http)
    with pytest.raises(ValueError, match="organisation code"):
        PlatformClient("https://platform.example/api", "zj330100", SECRET, http)
    with pytest.raises(ValueError, match="secret"):
        PlatformClient("https://platform.example/api", ORG, "", http)
    with pytest.raises(ValueError, match="timeout"):
        PlatformClient("https://platform.example/api", ORG, SECRET, http, timeout_s=0)


async def test_a_case_without_an_id_and_no_key_cannot_be_sent(client: PlatformClient) -> None:
    with pytest.raises(ValueError, match="case_id"):
        await client.submit_case({"summary": "没有编号的案件"})


# --------------------------------------------------------------------------- Retry-After


NOW = 1_795_000_000.0


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 7 ", 7.0), ("0", 0.0), (None, None), ("", None), ("soon", None), ("-5", None),
    ("1.5", None), ("²", None), ("9" * 400, float(MAX_RETRY_AFTER_S)),
])
def test_retry_after_in_seconds(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_as_an_http_date() -> None:
    assert parse_retry_after(email.utils.formatdate(NOW + 90, usegmt=True), NOW) == 90.0
    assert parse_retry_after(email.utils.formatdate(NOW - 90, usegmt=True), NOW) == 0.0  # already past
    assert parse_retry_after("Wed, 31 Feb 2026 07:28:00 GMT", NOW) is None


# --------------------------------------------------------------------------- Backoff


def test_backoff_ceilings_double_from_the_base_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1.0, cap_s=300.0)
    assert [backoff.ceiling_s(n) for n in range(10)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert backoff.ceiling_s(5000) == 300.0


def test_backoff_draws_full_jitter_within_each_ceiling() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0, rng=random.Random(12315))
    for attempt in range(12):
        draws = [backoff.delay_s(attempt) for _ in range(300)]
        ceiling = min(30.0, 0.5 * 2 ** attempt)
        assert all(0.0 <= d <= ceiling for d in draws)
        # Full jitter: spread over the whole range, not bunched at the top.
        assert min(draws) < 0.1 * ceiling and max(draws) > 0.9 * ceiling


def test_retry_after_is_a_floor_never_shortened() -> None:
    backoff = Backoff(base_s=1.0, cap_s=10.0, rng=random.Random(1))
    assert all(backoff.delay_s(0, retry_after_s=120.0) == 120.0 for _ in range(50))
    assert all(backoff.delay_s(3, retry_after_s=float("inf")) <= 8.0 for _ in range(50))


def test_backoff_settings_and_attempts_are_checked() -> None:
    for base, cap in ((0.0, 1.0), (2.0, 1.0), (-1.0, 5.0)):
        with pytest.raises(ValueError):
            Backoff(base_s=base, cap_s=cap)
    with pytest.raises(ValueError):
        Backoff().ceiling_s(-1)


async def test_the_client_speaks_to_a_session_of_its_owners_choosing(platform: PlatformSim, clock: EpochClock) -> None:
    # The delivery workers share one session (one connection pool) among many requests.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2)) as session:
        client = PlatformClient(platform.url, ORG, SECRET, session, clock=clock)
        results = [await client.submit_case(a_case(clock)) for _ in range(5)]
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 5
