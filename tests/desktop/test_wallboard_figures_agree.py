"""The wallboard's live figures (the last 60 minutes, from the queues in Redis) and its day by
hour (from the call records in SQL) count the same calls the same way: an answer at the
jurisdiction of the agent who answered, so a Hangzhou caller answered by a Zhejiang agent after
overflowing is a Zhejiang answer in both, and Hangzhou's two figures no longer disagree."""

from __future__ import annotations

import pytest

from core.settings import Settings
from devtools.pbx_sim.callers import SimCall
from tests.fixtures.waiting import eventually
from tests.support.desktop import Browser, Desk, state_is
from tests.support.jurisdictions import HANGZHOU, ZHEJIANG

pytestmark = pytest.mark.slow


@pytest.fixture
def desk_settings(settings: Settings) -> Settings:
    # A caller nobody in Hangzhou takes overflows to the province after a second.
    return settings.model_copy(update={
        "queues": settings.queues.model_copy(update={
            "ring_timeout_s": 10, "wrap_up_s": 0.5, "overflow_after_s": [1.0], "announce_every_s": 60.0}),
    })


async def agent_at(desk: Desk, agent_id: str, jurisdiction: str) -> Browser:
    desk.pbx.endpoint(f"PJSIP/{agent_id}", mode="manual")
    await desk.users.agent(agent_id=agent_id, jurisdiction=jurisdiction)
    agent = await desk.browser_for(f"agent{agent_id}")
    await agent.ok("POST", "/api/desktop/queues/login")
    return agent


async def answer(desk: Desk, agent: Browser) -> SimCall:
    call = await desk.caller_reaches_menu()
    await eventually(lambda: state_is(agent, "ringing"))
    await agent.ok("POST", "/api/desktop/call/answer")
    await eventually(lambda: state_is(agent, "on_call"))
    return call


def answered_today(board: dict) -> int:
    return sum(hour["answered"] for hour in board["day"])


async def test_hangzhou_answers_and_an_overflowed_call_answered_in_zhejiang_agree_live_and_by_hour(
    desk: Desk,
) -> None:
    desk.parts.wallboard.ttl_s["day"] = 0.0
    hangzhou = await agent_at(desk, "1001", HANGZHOU)
    zhejiang = await agent_at(desk, "2001", ZHEJIANG)
    await desk.users.supervisor(jurisdiction=ZHEJIANG)
    supervisor = await desk.browser_for("supervisor")

    await hangzhou.ok("POST", "/api/desktop/state", {"state": "available"})
    first = await answer(desk, hangzhou)
    await first.hangup()
    await eventually(lambda: state_is(hangzhou, "wrap_up"))
    await hangzhou.ok("POST", "/api/desktop/state", {"state": "break", "reason": "meeting"})
    # Nobody in Hangzhou now: the next Hangzhou caller overflows and a Zhejiang agent answers.
    await zhejiang.ok("POST", "/api/desktop/state", {"state": "available"})
    second = await answer(desk, zhejiang)
    await second.hangup()
    await desk.app.records.flush()

    async def boards() -> tuple[dict, dict] | None:
        city = await supervisor.ok("GET", f"/api/wallboard?jurisdiction={HANGZHOU}")
        province = await supervisor.ok("GET", f"/api/wallboard?jurisdiction={ZHEJIANG}")
        # The live figures come by publication, a moment after the change.
        return (city, province) if answered_today(province) == province["figures"]["answered"] == 2 else None

    city, province = await eventually(boards)
    assert city["figures"]["answered"] == answered_today(city) == 1
    assert province["figures"]["answered"] == answered_today(province) == 2
    # Both callers were Hangzhou's: offered there, whoever answered them.
    assert sum(hour["offered"] for hour in city["day"]) == 2
    assert next(r for r in province["regions"] if r["code"] == HANGZHOU)["figures"]["answered"] == 1
