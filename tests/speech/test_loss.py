"""A phone line that loses packets, or stops sending, still gets the caller's choice.

Speech from espeak-ng through the 8 kHz μ-law line, sent as RTP packets to the jitter buffer
(or over UDP to the receiver) with some of them left out, then the frames it plays out into a
SpeechStream with the real Korean model: nothing faked but the network.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import numpy as np
import pytest
import vosk

from ivr.speech import codec
from ivr.speech.engine import Recognized, SpeechEngine
from ivr.speech.locale import load_speech_pack
from ivr.speech.rtp import FRAME_S, JitterBuffer, RtpReceiver
from tests.support.speech import PhoneLine, frames, silence, voiced_span

PACK = load_speech_pack("ko-KR")
LEAD_MS, TAIL_MS = 600, 1000
LEAD = LEAD_MS // 20  # packets before the speech
SSRC = 0x12315


def ulaw_packets(pcm: bytes) -> list[bytes]:
    """16 kHz line audio as Asterisk's externalMedia sends it in ``ulaw``: one packet per 20 ms."""
    payload = codec.ulaw_encode(codec.downsample_16k_to_8k(codec.pcm_from_bytes(pcm)))
    header = struct.Struct("!BBHII")
    return [header.pack(0x80, 0, (4000 + i) & 0xFFFF, 160 * i, SSRC) + payload[160 * i:160 * (i + 1)]
            for i in range(len(payload) // 160)]


def turn(phone_line: PhoneLine, phrase: str) -> tuple[list[bytes], tuple[int, int]]:
    """A caller's turn as packets, and the packet indexes where the speech is."""
    spoken = phone_line.say(phrase)
    first, last = voiced_span(spoken)
    pcm = b"".join(frames(silence(LEAD_MS) + spoken + silence(TAIL_MS)))
    return ulaw_packets(pcm), (LEAD + first, LEAD + last)


def played_out(packets: list[bytes], lost: set[int]) -> list[bytes]:
    """The frames the jitter buffer plays when ``lost`` packets never come (one every 20 ms)."""
    jb = JitterBuffer("ulaw")
    out: list[bytes] = []
    for i, packet in enumerate(packets):
        now = i * FRAME_S
        if i not in lost:
            jb.push(packet, now)
        out += jb.pop_ready(now)
    out += jb.pop_ready(len(packets) * FRAME_S + 1.0)
    assert jb.stats.lost == len(lost)
    return out


@pytest.fixture
async def engine(korean_model: vosk.Model) -> AsyncIterator[SpeechEngine]:
    engine = SpeechEngine(korean_model, PACK)
    yield engine
    await engine.close()


async def decide(engine: SpeechEngine, fed: list[bytes]) -> Recognized:
    stream = engine.open("main_menu")
    assert stream is not None
    try:
        for frame in fed:
            for event in await stream.feed(frame):
                if isinstance(event, Recognized):
                    return event
        return await stream.finish()
    finally:
        stream.close()


PHRASES = [("환불", "complaint"), ("도움말", "consultation"), ("사람 연결", "operator")]


@pytest.mark.parametrize(("phrase", "choice"), PHRASES, ids=[c for _, c in PHRASES])
async def test_a_phrase_still_gets_its_choice_when_3_percent_of_the_packets_are_lost_inside_the_words(
    engine: SpeechEngine, phone_line: PhoneLine, phrase: str, choice: str
) -> None:
    packets, (first, last) = turn(phone_line, phrase)
    # 3 % of the turn's packets, every one of them inside the speech, spread over it.
    count = max(1, round(0.03 * len(packets)))
    lost = {int(i) for i in np.linspace(first + 2, last - 2, count)}
    heard = await decide(engine, played_out(packets, lost))
    # Its choice, at once or asked about: 환불 can come out as 민원, which ko-KR always confirms.
    assert (heard.choice or heard.proposed) == choice and heard.reason in {"match", "confirm"}


def middle_of_the_word(phone_line: PhoneLine, phrase: str, burst: int) -> list[bytes]:
    packets, (first, last) = turn(phone_line, phrase)
    middle = (first + last) // 2
    return played_out(packets, set(range(middle, middle + burst)))


async def test_two_packets_lost_in_the_middle_of_a_word_do_not_split_it(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    heard = await decide(engine, middle_of_the_word(phone_line, "도움말", 2))
    # The word whole; ko-KR always asks about it (a hummed tune comes out as 도움말 too).
    assert (heard.proposed, heard.transcript, heard.reason) == ("consultation", "도움말", "confirm")


async def test_a_longer_burst_of_loss_in_a_word_never_sends_the_caller_down_another_branch(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    # 60 ms: concealment fades out over it, so the word may be lost (no match, or a question
    # to confirm), but the hole is never taken for another menu choice.
    heard = await decide(engine, middle_of_the_word(phone_line, "도움말", 3))
    assert heard.choice in (None, "consultation")


async def test_a_caller_whose_rtp_stops_right_after_speaking_is_still_decided(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    packets, (_, last) = turn(phone_line, "사람 연결")
    receiver = await RtpReceiver.open("ulaw")
    stream = engine.open("main_menu")
    assert stream is not None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for packet in packets[:last + 1]:  # the last voiced packet, then nothing: no BYE either
                sock.sendto(packet, receiver.address)
        decided: list[Recognized] = []
        async with asyncio.timeout(10):
            async for frame in receiver.frames():
                decided += [e for e in await stream.feed(frame) if isinstance(e, Recognized)]
                if decided:
                    break
        assert (decided[0].choice, decided[0].reason) == ("operator", "match")
        assert receiver.stats.silence_filled > 0  # the end of speech was heard in silence we made
    finally:
        stream.close()
        receiver.close()
