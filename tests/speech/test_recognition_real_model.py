"""What callers say over a phone line, recognized by the real Korean model.

Audio: espeak-ng's Korean voice, 8 kHz G.711 μ-law and back, 16 kHz frames into a
SpeechStream: VAD, Vosk with the menu grammar, the decision. Nothing is faked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
import vosk

from ivr.speech.engine import Recognized, SpeechEngine
from ivr.speech.locale import load_speech_pack
from tests.support.speech import PhoneLine, noise, play, tone, utterance

PACK = load_speech_pack("ko-KR")
PHRASES = [(p, c) for c, phrases in PACK.menus["main_menu"].choices.items() for p in phrases]


@pytest.fixture
async def engine(korean_model: vosk.Model) -> AsyncIterator[SpeechEngine]:
    engine = SpeechEngine(korean_model, PACK)
    yield engine
    await engine.close()


async def hear(engine: SpeechEngine, pcm: bytes) -> Recognized:
    """One caller's turn in the main menu: what the IVR is told."""
    stream = engine.open("main_menu")
    assert stream is not None
    try:
        events = await play(stream, utterance(pcm))
        decided = [e for e in events if isinstance(e, Recognized)]
        return decided[0] if decided else await stream.finish()
    finally:
        stream.close()


async def test_a_caller_who_says_the_refund_phrase_over_a_phone_line_is_recognized_as_complaint(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    heard = await hear(engine, phone_line.say("환불"))
    assert (heard.choice, heard.transcript, heard.reason) == ("complaint", "환불", "match")
    assert 0.3 <= heard.confidence <= 1.0


async def test_a_caller_who_says_the_complaint_word_is_asked_to_confirm_it_as_the_pack_says(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    # 민원 is the pack's confirm_always: 위반 (report) comes out as 민원 with no competitor.
    heard = await hear(engine, phone_line.say("민원"))
    assert (heard.choice, heard.proposed, heard.transcript, heard.reason) == (None, "complaint", "민원", "confirm")


@pytest.mark.parametrize(
    ("phrase", "choice"), PHRASES, ids=[f"{c}-{i}" for i, (_, c) in enumerate(PHRASES)]
)
async def test_a_caller_who_says_a_menu_phrase_over_a_phone_line_gets_its_choice(
    engine: SpeechEngine, phone_line: PhoneLine, phrase: str, choice: str
) -> None:
    heard = await hear(engine, phone_line.say(phrase))
    # Its choice at once, or asked about ("you said ...?") where another meaning came close
    # or the pack always asks (민원).
    assert (heard.choice or heard.proposed, heard.transcript) == (choice, phrase)


def line_signal(phone_line: PhoneLine, kind: str) -> bytes:
    if kind == "tone":
        return phone_line.carry(tone(440, 1500))
    if kind == "hiss":
        return phone_line.carry(noise(1500, 3000))
    # Three callers talking at once.
    voices = [np.frombuffer(phone_line.say(t), dtype="<i2").astype(np.float64)
              for t in ("택배가 아직 도착하지 않았어요", "제 이름은 김철수입니다", "지금 몇 시예요")]
    mixed = sum(np.pad(v, (0, max(map(len, voices)) - len(v))) for v in voices) / 2
    return np.clip(mixed, -32768, 32767).astype("<i2").tobytes()


@pytest.mark.parametrize(
    ("voice", "said"),
    [
        ("ko", "은행 계좌를 만들고 싶어요"),
        ("ko", "여보세요 잘 안 들려요"),
        ("ko", "택배가 아직 도착하지 않았어요"),
        ("ko", "지금 몇 시예요"),
        ("en", "I need help with my order"),
        ("en", "hello, I would like to speak to someone"),
        ("cmn-latn-pinyin", "ni hao, wo xiang wen yi xia"),
        ("signal", "tone"),
        ("signal", "hiss"),
        ("signal", "babble"),
    ],
    ids=["ko-bank", "ko-hello", "ko-parcel", "ko-time", "en-order", "en-someone", "zh-question",
         "tone", "hiss", "babble"],
)
async def test_out_of_grammar_speech_is_no_match_not_a_confident_wrong_choice(
    engine: SpeechEngine, phone_line: PhoneLine, voice: str, said: str
) -> None:
    audio = line_signal(phone_line, said) if voice == "signal" else phone_line.say(said, voice)
    heard = await hear(engine, audio)
    assert heard.choice is None, f"{said!r} was taken for {heard.choice} ({heard.transcript!r})"
    # A tone or hiss is no voice to the detector: the caller said nothing (timeout).
    assert heard.reason == ("timeout" if said in ("tone", "hiss") else "no_match")
