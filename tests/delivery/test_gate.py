"""The sender's gate in Redis, as every delivery process sees it: a pause only ever grows, a
halt is shared and lifted once, probes are rationed per configuration, and two gates of the
same sender (two processes) are one gate."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from core.settings import PlatformSettings
from delivery.gate import Halt, RedisGate, Turn, fingerprint
from tests.support.documents import ORG, SECRET

SETTINGS = PlatformSettings(url="http://127.0.0.1:9/api", org_code=ORG, secret=SECRET)


def a_halt(status: int = 401, config: str = "c1") -> Halt:
    return Halt(status=status, reason="unauthorized bad signature", fix="check the secret",
                since="2026-12-06T01:00:00+00:00", config=config, document="case x")


async def test_a_pause_set_by_one_process_holds_for_another_and_is_never_shortened(
    redis: Redis, redis_prefix: str
) -> None:
    one, other = RedisGate(redis, redis_prefix, SETTINGS), RedisGate(redis, redis_prefix, SETTINGS)
    assert (await other.state())[0] == 0
    await one.pause(5.0)
    await other.pause(1.0)  # a shorter Retry-After later does not undo the longer one
    left, halt = await other.state()
    assert 4.0 < left <= 5.001 and halt is None
    turn, wait = await other.turn(max_wait_s=1.0)
    assert turn is Turn.LATER and wait > 1.0  # longer than the caller may hold its rows


async def test_a_turn_waits_out_a_short_pause_then_goes(redis: Redis, redis_prefix: str) -> None:
    gate = RedisGate(redis, redis_prefix, SETTINGS)
    await gate.pause(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await gate.turn(max_wait_s=1.0) == (Turn.GO, 0.0)
    assert loop.time() - started >= 0.2  # not a request before the moment said
    assert (await gate.state())[0] == 0


async def test_a_halt_stops_everyone_but_a_probe_and_is_lifted_once(redis: Redis, redis_prefix: str) -> None:
    one, other = RedisGate(redis, redis_prefix, SETTINGS), RedisGate(redis, redis_prefix, SETTINGS)
    assert await one.halt(a_halt()) is None  # this one began it
    assert await other.halt(a_halt()) == a_halt()  # the other sees it was there already
    assert (await other.state())[1] == a_halt()
    assert (await other.turn(max_wait_s=1.0))[0] is Turn.HALTED
    assert (await other.turn(max_wait_s=1.0, probe=True))[0] is Turn.GO
    assert await other.resume() == a_halt()
    assert await one.resume() is None
    assert (await one.state())[1] is None


async def test_probes_are_rationed_per_configuration(redis: Redis, redis_prefix: str) -> None:
    one, other = RedisGate(redis, redis_prefix, SETTINGS), RedisGate(redis, redis_prefix, SETTINGS)
    assert await one.take_probe("c1", 60.0)
    assert not await other.take_probe("c1", 60.0)  # one probe a minute for this configuration
    assert await other.take_probe("c2", 60.0)  # a corrected configuration is tried at once


def test_the_configuration_fingerprint_changes_with_url_organisation_or_secret_and_hides_the_secret() -> None:
    base = fingerprint(SETTINGS)
    assert SECRET not in base
    for change in ({"url": "http://127.0.0.1:9/v2"}, {"org_code": "ZJ330101"}, {"secret": "another"}):
        assert fingerprint(SETTINGS.model_copy(update=change)) != base
