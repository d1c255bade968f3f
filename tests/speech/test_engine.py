"""The speech engine with the real Korean model: slots, streams, events, start-up checks."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import numpy as np
import pytest
import vosk

from ivr.speech.engine import Recognized, SpeechEngine, SpeechStarted
from ivr.speech.grammar import GrammarError
from ivr.speech.locale import MenuPhrases, SpeechPack, load_speech_pack
from ivr.speech.vad import FRAME_BYTES, FRAME_MS
from tests.support import line_conditions as lc
from tests.support.speech import (
    KOREAN_MODEL_DIR,
    PhoneLine,
    frames,
    play,
    silence,
    trimmed,
    utterance,
    voiced_span,
)


@pytest.fixture(scope="module")
def pack() -> SpeechPack:
    return load_speech_pack("ko-KR")


@pytest.fixture
async def engine(korean_model: vosk.Model, pack: SpeechPack) -> AsyncIterator[SpeechEngine]:
    engine = SpeechEngine(korean_model, pack, max_streams=2)
    yield engine
    await engine.close()


def test_when_every_stream_is_busy_open_returns_none(engine: SpeechEngine) -> None:
    first, second = engine.open("main_menu"), engine.open("main_menu")
    assert first is not None and second is not None
    assert (engine.in_use, engine.capacity) == (2, 2)
    assert engine.open("main_menu") is None  # the caller keys instead; nothing is queued
    first.close()
    assert engine.in_use == 1
    assert engine.open("main_menu") is not None


def test_closing_a_stream_twice_frees_its_slot_once(engine: SpeechEngine) -> None:
    stream, other = engine.open("main_menu"), engine.open("main_menu")
    assert stream is not None and other is not None
    stream.close()
    stream.close()
    assert engine.in_use == 1


def test_a_menu_without_a_grammar_is_a_clear_error(engine: SpeechEngine) -> None:
    with pytest.raises(KeyError, match="no speech grammar for menu 'city_menu' in the ko-KR pack; "
                                       "it has city, confirm, main_menu"):
        engine.open("city_menu")


async def test_finish_with_nothing_said_gives_reason_timeout(engine: SpeechEngine) -> None:
    stream = engine.open("main_menu")
    assert stream is not None
    assert await play(stream, frames(silence(1500))) == []
    assert await stream.finish() == Recognized(None, "", 0.0, "timeout")


async def test_a_caller_s_phrase_gives_speech_started_then_recognized_then_nothing_more(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    speech = phone_line.say("사람 연결")
    stream = engine.open("main_menu")
    assert stream is not None
    events = await play(stream, utterance(speech, lead_ms=600, tail_ms=1000))
    started, recognized = events
    assert isinstance(started, SpeechStarted)
    onset_ms = 600 + voiced_span(speech)[0] * FRAME_MS
    assert abs(started.at_ms - onset_ms) <= 2 * FRAME_MS
    assert isinstance(recognized, Recognized)
    assert (recognized.choice, recognized.transcript, recognized.reason) == ("operator", "사람 연결", "match")
    # One utterance per stream: what follows is not listened to.
    assert await play(stream, utterance(speech)) == []
    assert await stream.finish() == recognized


async def test_finish_while_the_caller_is_still_talking_decides_on_what_was_heard(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    stream = engine.open("main_menu")
    assert stream is not None
    events = await play(stream, utterance(trimmed(phone_line.say("환불")), tail_ms=0))
    assert [type(e) for e in events] == [SpeechStarted]  # no end of speech yet
    recognized = await stream.finish()
    assert (recognized.choice, recognized.reason) == ("complaint", "match")


async def test_a_stream_closed_mid_utterance_says_nothing_more(engine: SpeechEngine, phone_line: PhoneLine) -> None:
    stream = engine.open("main_menu")
    assert stream is not None
    chunks = utterance(phone_line.say("담당자 바꿔 주세요"))
    middle = len(chunks) // 2
    assert [type(e) for e in await play(stream, chunks[:middle])] == [SpeechStarted]
    stream.close()
    assert await play(stream, chunks[middle:]) == []
    assert (await stream.finish()).reason == "timeout"
    assert engine.in_use == 0


async def test_a_frame_that_is_not_20_ms_of_16_khz_audio_is_refused(engine: SpeechEngine) -> None:
    stream = engine.open("main_menu")
    assert stream is not None
    with pytest.raises(ValueError, match="640 bytes"):
        await stream.feed(b"\0" * 160)


async def test_a_closed_engine_opens_no_more_streams(korean_model: vosk.Model, pack: SpeechPack) -> None:
    engine = SpeechEngine(korean_model, pack)
    await engine.close()
    assert engine.open("main_menu") is None


async def test_a_grammar_word_missing_from_the_model_vocabulary_is_named_at_start_up(pack: SpeechPack) -> None:
    typo = dataclasses.replace(
        pack, menus={"main_menu": MenuPhrases("main_menu", {"complaint": ("민원", "불만입니다")})}
    )
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    with pytest.raises(GrammarError) as error:
        await SpeechEngine.load(KOREAN_MODEL_DIR, typo)
    ticker.cancel()
    assert str(error.value) == (
        "phrase '불만입니다' of choice 'complaint' in menu main_menu: "
        "word '불만입니다' is not in the model's vocabulary"
    )
    assert ticks > 1  # the model loaded in a thread: the event loop kept running meanwhile


# --- a voice, not the room (issue 16) -------------------------------------------------------


def line_turn(phone_line: PhoneLine, before: np.ndarray, text: str) -> tuple[list[bytes], int]:
    """``before`` (a sound on the line, at 16 kHz), then ``text``, then a second of quiet;
    and the frame where the caller's voice begins."""
    speech = phone_line.say(text)
    lead = phone_line.carry(before)
    return frames(lead + speech + silence(1000)), len(lead) // FRAME_BYTES + voiced_span(speech)[0]


async def test_a_cough_before_the_phrase_does_not_end_the_turn_the_phrase_is_heard(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    cough = np.concatenate([np.zeros(8000), lc.cough(seed=3), np.zeros(6400)])  # 400 ms later, the caller
    chunks, onset = line_turn(phone_line, cough, "사람 연결")
    stream = engine.open("main_menu")
    assert stream is not None
    started, recognized = await play(stream, chunks)
    assert isinstance(started, SpeechStarted) and started.at_ms >= (onset - 3) * FRAME_MS  # not on the cough
    assert isinstance(recognized, Recognized)
    assert (recognized.choice, recognized.transcript) == ("operator", "사람 연결")


async def test_a_caller_who_speaks_as_the_menu_starts_listening_is_recognized_on_a_noisy_line(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    # The start is found after the word (see the detector's tests): its audio, kept from the
    # stream's first frame, still reaches the recognizer whole.
    stream = engine.open("main_menu", can_ask=True)
    assert stream is not None
    events = await play(stream, frames(phone_line.say_over_noise("환불", 15.0, lead_ms=0)))
    assert [type(e) for e in events] == [SpeechStarted, Recognized]
    assert events[0].at_ms <= (voiced_span(phone_line.say("환불"))[0] + 2) * FRAME_MS
    assert (events[1].proposed, events[1].transcript) == ("complaint", "환불")


async def test_a_phrase_on_a_line_20_db_down_is_recognized(engine: SpeechEngine, phone_line: PhoneLine) -> None:
    speech = np.frombuffer(phone_line.say("환불"), dtype="<i2").astype(np.float64)
    stream = engine.open("main_menu")
    assert stream is not None
    events = await play(stream, utterance(phone_line.carry(lc.level_db(speech, -20.0))))
    assert [type(e) for e in events] == [SpeechStarted, Recognized]
    assert (events[1].choice, events[1].transcript) == ("complaint", "환불")


async def test_on_a_noisy_line_a_choice_heard_clearly_is_asked_about_not_taken(
    korean_model: vosk.Model, pack: SpeechPack, phone_line: PhoneLine
) -> None:
    # 환불 is taken at once on a clean line and on a quiet one (above). With pink noise at 15 dB
    # SNR Vosk is as sure of it, and was as sure of wrong choices on such lines: the caller is asked.
    noisy = phone_line.say_over_noise("환불", 15.0, lead_ms=600)
    heard = {}
    # 0: the line's noise is never a reason to ask; a menu that cannot ask (the city question)
    # takes what it heard.
    for confirm_below_db, can_ask in ((30.0, True), (0.0, True), (30.0, False)):
        engine = SpeechEngine(korean_model, pack, confirm_below_db=confirm_below_db)
        stream = engine.open("main_menu", can_ask=can_ask)
        assert stream is not None
        decided = [e for e in await play(stream, frames(noisy)) if isinstance(e, Recognized)]
        heard[confirm_below_db, can_ask] = (decided[0].choice, decided[0].proposed, decided[0].reason)
        await engine.close()
    assert heard == {(30.0, True): (None, "complaint", "confirm"), (0.0, True): ("complaint", None, "match"),
                     (30.0, False): ("complaint", None, "match")}


async def test_a_short_word_in_babble_looking_as_steady_as_a_hum_is_asked_about_not_dropped(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    # Babble at 15 dB SNR hides the rise and fall of "이" under the floor: what the detector
    # sees of it keeps one level, as a hum does. Vosk hears the word, and on a noisy line the
    # caller is asked about it (it was dropped as a burst and the turn ran out unheard).
    speech = np.frombuffer(phone_line.say("이", "ko+f5"), dtype="<i2").astype(np.float64)
    turn = np.concatenate([np.zeros(16000), speech, np.zeros(16000)])
    noisy = phone_line.carry(lc.mix_at_snr(turn, lc.babble(len(turn), seed=1), 15.0))
    stream = engine.open("main_menu", can_ask=True)
    assert stream is not None
    events = await play(stream, frames(noisy))
    assert [type(e) for e in events] == [SpeechStarted, Recognized]
    assert (events[1].proposed, events[1].transcript, stream.bursts) == ("report", "이", 0)


def test_a_negative_level_to_ask_below_is_refused(korean_model: vosk.Model, pack: SpeechPack) -> None:
    with pytest.raises(ValueError, match="confirm_below_db"):
        SpeechEngine(korean_model, pack, confirm_below_db=-1.0)


async def test_babble_at_5_db_and_music_alone_never_stop_the_prompt(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    for room in (lc.babble(16000 * 3, seed=4, level=2000.0), lc.music(3000, seed=2)):
        stream = engine.open("main_menu")
        assert stream is not None
        assert await play(stream, frames(phone_line.carry(room))) == []
        assert (await stream.finish()).reason == "timeout"
        stream.close()

