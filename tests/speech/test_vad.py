"""End-point detection on phone-line audio: when a caller starts and stops talking."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.vad import CONFIRMED, ENDED, FRAME_BYTES, FRAME_MS, STARTED, EndpointDetector
from tests.support.speech import PhoneLine, frames, noise, silence, trimmed, voiced_span

SENTENCE = "민원 접수를 하고 싶습니다"


def push_all(detector: EndpointDetector, chunks: list[bytes]) -> list[tuple[int, str]]:
    return [(i, e) for i, frame in enumerate(chunks) if (e := detector.push(frame)) not in (None, CONFIRMED)]


def test_speech_starts_within_a_few_frames_of_the_caller_s_voice(phone_line: PhoneLine) -> None:
    speech = phone_line.say(SENTENCE)
    lead = 25  # frames of silence before the voice (500 ms)
    onset = lead + voiced_span(speech)[0]
    detector = EndpointDetector()
    (said_at, event), *_ = push_all(detector, frames(silence(lead * FRAME_MS) + speech))
    assert event == STARTED
    # The start is placed where the voice began, and said as soon as six voiced frames
    # (120 ms) are in: quick barge-in, yet past webrtcvad's transients (next tests).
    assert detector.start_frame is not None and abs(detector.start_frame - onset) <= 2
    assert said_at <= onset + 6 + 2


@pytest.mark.parametrize("rms", [10, 100, 1000])
def test_steady_line_noise_from_the_first_frame_does_not_start_speech(phone_line: PhoneLine, rms: int) -> None:
    # webrtcvad calls the first frames of any new sound voice while it adapts.
    assert push_all(EndpointDetector(), frames(phone_line.carry(noise(3000, rms)))) == []


def test_clicks_on_the_line_do_not_start_speech(phone_line: PhoneLine) -> None:
    clicks = np.zeros(16000 * 3)
    clicks[::1600] = 20000  # ten a second
    assert push_all(EndpointDetector(), frames(phone_line.carry(clicks))) == []


def test_speech_ends_only_after_the_configured_silence(phone_line: PhoneLine) -> None:
    speech = phone_line.say(SENTENCE)
    voice_end = voiced_span(speech, rms=100)[1]
    detector = EndpointDetector(end_silence_ms=200)
    events = push_all(detector, frames(speech + silence(2000)))
    assert [e for _, e in events] == [STARTED, ENDED]
    ended_at = events[1][0]
    silent_frames = 200 // FRAME_MS
    # At least the configured silence after the voice; webrtcvad's own hang-over (about
    # 100 ms) comes on top, but the end is never held back much longer.
    assert voice_end + silent_frames <= ended_at <= voice_end + silent_frames + 10


def test_a_short_pause_between_words_does_not_end_the_utterance(phone_line: PhoneLine) -> None:
    first, second = (trimmed(phone_line.say(w)) for w in ("담당자", "바꿔 주세요"))
    events = push_all(EndpointDetector(), frames(first + silence(200) + second + silence(1000)))
    assert [e for _, e in events] == [STARTED, ENDED]
    assert events[1][0] * FRAME_BYTES > len(first) + len(second)  # after the second word


def test_silence_alone_never_starts_speech(phone_line: PhoneLine) -> None:
    quiet = silence(2000) + phone_line.carry(noise(3000, 30))  # digital silence, then hiss
    assert push_all(EndpointDetector(), frames(quiet)) == []


def test_start_and_end_are_each_reported_once_per_detector(phone_line: PhoneLine) -> None:
    speech = phone_line.say(SENTENCE)
    events = push_all(EndpointDetector(), frames(speech + silence(1000) + speech + silence(1000)))
    assert [e for _, e in events] == [STARTED, ENDED]


def test_a_caller_who_never_pauses_is_cut_off_at_the_utterance_cap(phone_line: PhoneLine) -> None:
    talk = phone_line.say("안녕하세요 저는 어제 산 우유가 상해서 전화를 드렸는데요 환불을 받고 싶어요")
    detector = EndpointDetector(max_utterance_s=1.0)
    events = push_all(detector, frames(talk))
    assert [e for _, e in events] == [STARTED, ENDED]
    started, ended = events[0][0], events[1][0]
    assert detector.start_frame is not None
    assert ended - detector.start_frame + 1 == 1000 // FRAME_MS
    assert started < ended


def test_a_frame_that_is_not_20_ms_of_16_khz_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="640 bytes"):
        EndpointDetector().push(b"\0" * 320)


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="aggressiveness"):
        EndpointDetector(aggressiveness=4)
    with pytest.raises(ValueError, match="end_silence_ms"):
        EndpointDetector(end_silence_ms=0)
