"""Faults on purpose: what the stand-in does to requests, how its time compresses, how it is
driven from outside, and the promise that matters: a sender that retries until delivered
ends with every case stored exactly once, whatever was lost on the way."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devtools.platform_sim import Faults, OutageMode, PlatformSim, SimStats
from devtools.platform_sim.faults import FaultInjector, FaultKind, retry_after_header
from devtools.platform_sim.ratelimit import TokenBucket
from national.client import Backoff, DeliveryResult, Outcome, PlatformClient
from tests.support.clock import EpochClock
from tests.support.documents import ORG, SECRET, a_case
from tests.support.national import PlatformContract, TrafficChecker, assert_clean, post_case

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- exactly once


async def deliver(client: PlatformClient, case: dict[str, Any], backoff: Backoff) -> tuple[DeliveryResult, int]:
    """Send until delivered or replayed, as a delivery worker does; returns the last result
    and how many attempts it took. The test compresses time: it waits at most 20 ms, even
    when the platform's Retry-After (never below 1 s) asks for more."""
    for attempt in range(100):
        result = await client.submit_case(case)
        if result.ok:
            return result, attempt + 1
        assert result.outcome is Outcome.RETRY, result
        await asyncio.sleep(min(backoff.delay_s(attempt, result.retry_after_s), 0.02))
    raise AssertionError(f"case {case['case_id']} not delivered in 100 attempts")


async def test_with_errors_and_drops_after_storing_every_case_is_stored_exactly_once(
        platform_contract: PlatformContract, http: aiohttp.ClientSession) -> None:
    traffic = TrafficChecker(platform_contract, extra_statuses=frozenset({500, 502, 408}))
    faults = Faults(error_rate=0.3, drop_rate=0.2, drop_after_store_share=0.5, seed=12315)
    sim = PlatformSim(orgs={ORG: SECRET}, faults=faults, observer=traffic)
    await sim.start()
    try:
        client = PlatformClient(sim.url, ORG, SECRET, http, timeout_s=5.0)
        backoff = Backoff(base_s=0.001, cap_s=0.01)
        cases = [a_case() for _ in range(200)]
        limit = asyncio.Semaphore(32)

        async def one(case: dict[str, Any]) -> tuple[DeliveryResult, int]:
            async with limit:
                return await deliver(client, case, backoff)

        results = await asyncio.gather(*(one(case) for case in cases))
    finally:
        await sim.stop()

    stored = {("case", ORG, case["case_id"]) for case in cases}
    assert set(sim.stats.store_counts) == stored
    assert sim.stats.duplicates() == [] and set(sim.stats.store_counts.values()) == {1}
    assert len(sim.cases()) == 200 and sim.stats.stored == 200
    # Every sender learnt the number the platform gave its case, replay or not.
    numbers = {c["case_id"]: c["platform_case_no"] for c in sim.cases()}
    assert all(r.platform_case_no == numbers[c["case_id"]] for (r, _), c in zip(results, cases, strict=True))
    # And the faults did happen, including the nasty kind: stored, then the answer lost.
    injected = sim.stats.faults_injected
    assert injected["drop_after_store"] > 5 and injected["drop_before_store"] > 5
    assert sum(n for kind, n in injected.items() if kind.startswith("error_")) > 30
    replays = Counter(r.outcome for r, _ in results)[Outcome.REPLAYED]
    assert replays >= 5 and sim.stats.replayed >= replays
    assert max(attempts for _, attempts in results) > 2
    assert_clean(traffic.response_violations())
    assert_clean(traffic.request_violations())


# --------------------------------------------------------------------------- where faults strike


async def test_an_outage_answers_before_authentication(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim
) -> None:
    platform.start_outage(60)
    status, headers, body = await post_case(http, platform.url, a_case(clock), clock=clock, secret="wrong")
    assert (status, body["code"], headers["Retry-After"]) == (503, "maintenance", "60")
    assert platform.stats.unauthorized == 0 and platform.stats.faults_injected["outage"] == 1


async def test_a_failure_at_the_gateway_spends_no_nonce(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim, traffic: TrafficChecker
) -> None:
    traffic.extra_statuses = frozenset({500})
    case = a_case(clock)
    platform.set_faults(Faults(error_rate=1.0, error_statuses=(500,)))
    nonce = "gateway-nonce-0123456789"
    assert (await post_case(http, platform.url, case, clock=clock, nonce=nonce))[0] == 500
    platform.set_faults(Faults())
    assert (await post_case(http, platform.url, case, clock=clock, nonce=nonce))[0] == 201


async def test_an_outage_ends_by_itself_on_the_platforms_clock_or_when_ended(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim
) -> None:
    platform.start_outage(30)
    clock.advance(29)
    assert (await post_case(http, platform.url, a_case(clock), clock=clock))[1]["Retry-After"] == "1"
    clock.advance(1)
    assert (await post_case(http, platform.url, a_case(clock), clock=clock))[0] == 201
    platform.start_outage(3600)
    platform.end_outage()
    assert (await post_case(http, platform.url, a_case(clock), clock=clock))[0] == 201


async def test_latency_delays_the_answer_by_the_scaled_time(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim
) -> None:
    # 20 s of platform time at 1/100: 0.2 s here.
    faults = Faults(latency_s=(20.0, 20.0), time_scale=0.01)
    assert FaultInjector(faults, clock).latency_real_s() == pytest.approx(0.2)
    platform.set_faults(faults)
    started = time.monotonic()
    # Unscaled, the answer would take 20 s: the bound turns that (or a hang) into a failure.
    status, _, _ = await asyncio.wait_for(post_case(http, platform.url, a_case(clock), clock=clock), 10)
    assert status == 201
    assert time.monotonic() - started >= 0.2  # held back the scaled latency, no less
    assert platform.stats.faults_injected["latency"] == 1


# --------------------------------------------------------------------------- compressed time


@pytest.mark.parametrize(("outage_s", "scale", "header"), [
    (600, 1.0, "600"), (600, 0.01, "6"), (600, 0.001, "1"), (520, 0.01, "6"), (1, 0.5, "1"),
])
def test_retry_after_speaks_real_seconds_rounded_up_and_never_below_1(outage_s: float, scale: float,
                                                                       header: str) -> None:
    clock = EpochClock(1_000.0)
    injector = FaultInjector(Faults(time_scale=scale), clock)
    injector.start_outage(outage_s)
    strike = injector.decide()
    assert strike is not None and strike.kind is FaultKind.OUTAGE and strike.status == 503
    assert retry_after_header(strike.retry_after_real_s or 0) == header


def test_a_compressed_outage_lasts_its_scaled_time() -> None:
    clock = EpochClock(1_000.0)
    injector = FaultInjector(Faults(time_scale=0.01), clock)
    injector.start_outage(600)
    clock.advance(5.9)
    assert injector.decide() is not None
    clock.advance(0.1)
    assert injector.decide() is None and injector.outage_remaining_real_s() == 0.0


def test_a_dropping_outage_strikes_without_a_status() -> None:
    injector = FaultInjector(Faults(outage_mode=OutageMode.DROP), EpochClock())
    injector.start_outage(10)
    strike = injector.decide()
    assert strike is not None and strike.kind is FaultKind.OUTAGE and strike.status is None


def test_the_same_seed_gives_the_same_faults() -> None:
    faults = Faults(error_rate=0.3, drop_rate=0.2, latency_s=(0.0, 1.0), seed=7)
    runs = []
    for _ in range(2):
        injector = FaultInjector(faults, EpochClock())
        runs.append([(injector.latency_real_s(), injector.decide()) for _ in range(200)])
    assert runs[0] == runs[1]
    kinds = Counter(strike.kind if strike else None for _, strike in runs[0])
    assert kinds[FaultKind.ERROR] > 30 and kinds[FaultKind.DROP_AFTER] > 5 and kinds[FaultKind.DROP_BEFORE] > 5


def test_random_429_and_503_carry_the_scaled_retry_after_and_the_others_none() -> None:
    injector = FaultInjector(Faults(error_rate=1.0, retry_after_s=300, time_scale=0.01, seed=1), EpochClock())
    waits = {s.status: s.retry_after_real_s for s in (injector.decide() for _ in range(100)) if s}
    assert waits == {500: None, 502: None, 503: 3.0, 429: 3.0, 408: None}


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(("settings", "words"), [
    ({"error_rate": 1.5}, "error_rate must be between 0 and 1"),
    ({"error_rate": 0.6, "drop_rate": 0.6}, "must not exceed 1"),
    ({"latency_s": (2.0, 1.0)}, "latency_s must be a range"),
    ({"error_statuses": (404,)}, "error_statuses may only be"),
    ({"error_statuses": ()}, "at least one status"),
    ({"time_scale": 0.0}, "time_scale must be a positive number"),
    ({"retry_after_s": float("inf")}, "retry_after_s"),
])
def test_impossible_fault_settings_are_refused_with_the_reason(settings: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        Faults(**settings)


def test_fault_settings_read_from_json_and_back() -> None:
    faults = Faults.from_json({"error_rate": 0.25, "error_statuses": [503, 429], "latency_s": [0.1, 0.3],
                               "outage_mode": "drop", "time_scale": 0.01, "seed": None})
    assert Faults.from_json(faults.to_json()) == faults
    assert Faults.from_json({"latency_s": 0.5}).latency_s == (0.5, 0.5)
    for doc, words in (({"eror_rate": 0.1}, "unknown fault settings ['eror_rate']"),
                       ({"error_rate": "0.1"}, "error_rate must be a number"),
                       ({"outage_mode": "502"}, "outage_mode must be one of"),
                       ({"seed": 1.5}, "seed must be an integer")):
        with pytest.raises(ValueError, match=re.escape(words)):
            Faults.from_json(doc)


def test_the_rate_limit_is_a_token_bucket_of_one_seconds_burst() -> None:
    clock = EpochClock(0.0)
    bucket = TokenBucket(4, clock)
    assert [bucket.take() for _ in range(5)] == [0.0, 0.0, 0.0, 0.0, 0.25]
    clock.advance(0.25)
    assert bucket.take() == 0.0 and bucket.take() == 0.25
    with pytest.raises(ValueError):
        TokenBucket(0, clock)


# --------------------------------------------------------------------------- driven from outside


async def test_the_control_api_sets_faults_starts_outages_and_shows_what_was_stored(
    http: aiohttp.ClientSession, clock: EpochClock, platform: PlatformSim, traffic: TrafficChecker
) -> None:
    traffic.extra_statuses = frozenset({502})
    control = platform.root_url + "/sim"
    async with http.put(f"{control}/faults", json={"error_rate": 1.0, "error_statuses": [502]}) as resp:
        assert resp.status == 200 and (await resp.json())["faults"]["error_rate"] == 1.0
    assert (await post_case(http, platform.url, a_case(clock), clock=clock))[0] == 502
    async with http.put(f"{control}/faults", json={"time_scale": 0.01, "outage_s": 600}) as resp:
        assert (await resp.json())["outage_remaining_s"] == pytest.approx(6.0)
    assert (await post_case(http, platform.url, a_case(clock), clock=clock))[1]["Retry-After"] == "6"
    async with http.put(f"{control}/faults", json={"outage_s": 0}) as resp:
        assert (await resp.json())["outage_remaining_s"] == 0
    case = a_case(clock)
    assert (await post_case(http, platform.url, case, clock=clock))[0] == 201
    async with http.get(f"{control}/cases") as resp:
        assert [c["case_id"] for c in await resp.json()] == [case["case_id"]]
    async with http.get(f"{control}/stats") as resp:
        stats = await resp.json()
    assert stats["stored"] == 1 and stats["faults_injected"] == {"error_502": 1, "outage": 1}
    assert stats["duplicates"] == [] and stats["distinct_stored"] == 1 and stats["cases"] == 1


@pytest.mark.parametrize(("body", "words"), [
    (b"{", "not JSON"), (b"[]", "JSON object"), (b'{"drop_rate": 2}', "drop_rate must be between 0 and 1"),
    (b'{"outage_s": -1}', "outage_s must be a number"), (b'{"outage_s": "long"}', "outage_s must be a number"),
])
async def test_the_control_api_refuses_bad_settings_clearly(
    http: aiohttp.ClientSession, platform: PlatformSim, body: bytes, words: str
) -> None:
    async with http.put(platform.root_url + "/sim/faults", data=body) as resp:
        assert resp.status == 400 and words in (await resp.json())["message"]
    assert platform.faults == Faults()


def test_the_stand_in_refuses_impossible_settings() -> None:
    with pytest.raises(ValueError, match="at least one organisation"):
        PlatformSim(orgs={})
    with pytest.raises(ValueError, match="organisation code"):
        PlatformSim(orgs={"zj": "x"})
    with pytest.raises(ValueError, match="empty secret"):
        PlatformSim(orgs={ORG: ""})
    for base in ("api", "/api/", "/sim", "/a pi", "/api//v1", "/%61pi"):
        with pytest.raises(ValueError, match="base_path"):
            PlatformSim(orgs={ORG: SECRET}, base_path=base)


def platform_sim_process() -> subprocess.Popen[str]:
    """``python -m devtools platform-sim`` started (Popen returns at once: nothing waits here)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "devtools", "platform-sim", "--port", "0", "--org", f"{ORG}={SECRET}"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_hotline_platform_sim_runs_on_its_own_and_stops_on_sigterm(http: aiohttp.ClientSession) -> None:
    proc = platform_sim_process()
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)  # type: ignore[union-attr]
        url = re.search(r"contract at (\S+),", line)
        assert url, line + proc.stderr.read()  # type: ignore[union-attr]
        client = PlatformClient(url.group(1), ORG, SECRET, http)
        assert (await client.submit_case(a_case())).outcome is Outcome.DELIVERED
        async with http.get(url.group(1).removesuffix("/api") + "/sim/stats") as resp:
            assert (await resp.json())["stored"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)  # also closes the pipes
    assert proc.returncode == 0


async def test_a_bad_command_line_says_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.platform_sim.__main__ import main
    with pytest.raises(SystemExit) as exited:
        main(["--org", "ZJ330100"])
    assert exited.value.code == 2 and "expected CODE=SECRET" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--error-rate", "2"])
    assert "error_rate must be between 0 and 1" in capsys.readouterr().err


def test_a_document_stored_twice_shows_up_as_a_duplicate() -> None:
    # The stand-in never does this; the counter must still say so if it ever did.
    stats = SimStats()
    stats.count_stored("case", ORG, "A1B2C3D4-0000-4000-8000-000000000000")
    assert stats.duplicates() == [] and stats.to_json()["distinct_stored"] == 1
    stats.count_stored("case", ORG, "a1b2c3d4-0000-4000-8000-000000000000")
    assert stats.duplicates() == [("case", ORG, "a1b2c3d4-0000-4000-8000-000000000000")]
    assert stats.to_json()["duplicates"] == [f"case/{ORG}/a1b2c3d4-0000-4000-8000-000000000000"]
