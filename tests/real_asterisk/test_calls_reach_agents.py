"""On a real Asterisk 22: a caller chooses by DTMF, waits with music, an agent's desk phone
rings and answers, both hear each other in a recorded bridge, and the call record reaches the
outbox for the platform. Nothing is left up afterwards (the fixture checks)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from core.db import sessionmaker
from delivery.models import OutboxRow
from devtools import audio
from devtools.asterisk import AsteriskInstance
from devtools.sip_phone import linear_to_ulaw
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from pbx_config.moh import piece
from queues.engine import Agent, AgentState
from tests.fixtures.real_asterisk import (
    dial,
    eventually_one_channel,
    eventually_state,
    phones,
    prompt_sounds,
)
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.slow

HANGZHOU = "330100"


async def agent_ready(app: Application, agent_id: str) -> None:
    await app.queues.login(Agent(agent_id, HANGZHOU, frozenset({"general"}), frozenset({"zh-CN"}), f"PJSIP/{agent_id}"))
    await app.queues.available(agent_id)


async def test_a_caller_reaches_an_agent_on_a_desk_phone_talks_is_recorded_and_the_record_is_owed_to_the_platform(
    real_asterisk: AsteriskInstance, real_app: Application, prompts: PromptCatalogue
) -> None:
    async with phones(real_asterisk, "1001") as (carrier, desk):
        await agent_ready(real_app, "1001")
        call = await dial(carrier, "057112315")
        channel = await eventually_one_channel(real_asterisk)
        await asyncio.sleep(1.0)
        call.dtmf("1")  # a complaint, keyed during the welcome
        agent_call = await asyncio.wait_for(desk["1001"].incoming.get(), 15)
        await agent_call.wait_answered()

        async def bridged() -> bool:
            return any(len(b["channels"]) == 2 for b in real_asterisk.bridges())

        await eventually(bridged, timeout=10)
        # Each side hears the other: a tone from the agent reaches the caller.
        heard_before = len(call.rtp.received)
        agent_call.rtp.play(linear_to_ulaw(audio.tone(1000, 1.0)))
        await asyncio.sleep(1.5)
        from_agent = audio.pcm(audio_bytes(call, heard_before))
        assert audio.loud_seconds(from_agent) > 0.6

        state = await eventually_state(real_app, channel)
        assert state.agent_id == "1001" and state.jurisdiction == HANGZHOU
        assert (await real_app.queue_engine.agent("1001"))["state"] == AgentState.ON_CALL
        await call.hang_up()
        await agent_call.wait_ended(10)  # the agent's leg goes with the caller

    async def recorded():  # type: ignore[no-untyped-def]
        await real_app.records.flush()
        record = await real_app.call_records.by_channel(channel)
        return record if record is not None and record.recording_state == "recorded" else None

    record = await eventually(recorded, timeout=15)
    assert record.outcome == "answered" and record.agent_id == "1001" and record.ended_at is not None
    assert record.business_line == "general" and record.jurisdiction == HANGZHOU
    stored = list(real_app.settings.recordings.root.rglob("*.wav"))  # type: ignore[union-attr]
    assert len(stored) == 1 and stored[0].stat().st_size > 8000
    async with sessionmaker(real_app.engine)() as db:
        rows = (await db.scalars(select(OutboxRow).where(OutboxRow.kind == "call_record"))).all()
    assert [r.key for r in rows] == [record.call_id]

    async def wrapped_up() -> bool:
        return (await real_app.queue_engine.agent("1001"))["state"] == AgentState.AVAILABLE

    await eventually(wrapped_up, timeout=5)


def audio_bytes(call, start: int) -> bytes:  # type: ignore[no-untyped-def]
    from devtools.sip_phone import ulaw_to_linear

    return ulaw_to_linear(bytes(call.rtp.received[start:]))


async def test_a_waiting_caller_hears_the_hotline_music_not_silence(
    real_asterisk: AsteriskInstance, real_app: Application, prompts: PromptCatalogue
) -> None:
    async with phones(real_asterisk) as (carrier, _):
        # An agent logged in but on a break: the level is staffed, the caller waits there.
        await real_app.queues.login(Agent("1002", HANGZHOU, frozenset({"general"}), frozenset({"zh-CN"}), "PJSIP/1002"))
        await real_app.queue_engine.set_break("1002", "meeting")
        call = await dial(carrier, "057112315")
        await asyncio.sleep(0.5)
        call.dtmf("1")
        channel = await eventually_one_channel(real_asterisk)

        async def waiting() -> bool:
            state = await real_app.ivr.svc.store.load(channel)
            return state is not None and state.state == "in_queue"

        await eventually(waiting, timeout=15)
        queued = prompt_sounds(prompts, "queued")
        start = len(call.rtp.received)

        async def some_music() -> bool:
            return len(call.rtp.received) - start >= 8000 * 10

        await eventually(some_music, timeout=20)
        await call.hang_up()
    heard = audio.pcm(call.rtp.pcm())
    assert audio.find(queued["queued"], heard) is not None, "the caller was not told they are queued"
    # After the "you are queued" notice (a few seconds), the music.
    after = audio.pcm(audio_bytes(call, start))[-8000 * 4:]
    music = [audio.pcm(piece(name)) for name in ("hotline-1", "hotline-2")]
    assert any(audio.find(m, after, seconds=0.3, threshold=0.7) is not None for m in music), \
        "what the waiting caller heard is not the hotline's music"
    assert audio.loud_seconds(after) > 3.0  # of 4 s: music, not silence


async def test_a_menu_reprompts_after_silence_and_after_a_wrong_key_then_takes_a_choice(
    real_asterisk: AsteriskInstance, real_app: Application, prompts: PromptCatalogue
) -> None:
    async with phones(real_asterisk) as (carrier, _):
        call = await dial(carrier, "12315")
        channel = await eventually_one_channel(real_asterisk)

        async def path_has(entry: str):  # type: ignore[no-untyped-def]
            async def check() -> bool:
                state = await real_app.ivr.svc.store.load(channel)
                return state is not None and entry in state.menu_path
            await eventually(check, timeout=40)

        await path_has("main_menu:timeout")  # said nothing: "no input", the menu again
        await asyncio.sleep(4.0)  # "no input" heard to its end
        call.dtmf("9")
        await path_has("main_menu:9:no_match")
        await asyncio.sleep(3.0)  # "no match" heard to its end
        call.dtmf("3")
        await path_has("main_menu:3:consultation")
        await call.hang_up()
    # Both prompts open with the same words ("对不起，"): each is looked for by its second half,
    # where they differ, or the opening of one may be found where the other was said.
    endings = {name: sound[len(sound) // 2:] for name, sound in prompt_sounds(prompts, "no_input", "no_match").items()}
    heard = audio.heard_in_order(endings, audio.pcm(call.rtp.pcm()))
    assert [h.name for h in heard] == ["no_input", "no_match"]
