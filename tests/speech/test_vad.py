"""End-point detection on phone-line audio: when a caller starts and stops talking, and that it
is the caller (a voice) and not the room (noise, babble, a cough, music, a hum)."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.codec import FilledSilence
from ivr.speech.vad import CONFIRMED, ENDED, FRAME_BYTES, FRAME_MS, STARTED, EndpointDetector
from tests.support import line_conditions as lc
from tests.support.speech import PhoneLine, frames, noise, silence, trimmed, voiced_span

SENTENCE = "민원 접수를 하고 싶습니다"


def push_all(detector: EndpointDetector, chunks: list[bytes]) -> list[tuple[int, str]]:
    """(frame index, event) of the start and end (confirmation is tested on its own)."""
    return [(i, e) for i, e in every_event(detector, chunks) if e != CONFIRMED]


def every_event(detector: EndpointDetector, chunks: list[bytes]) -> list[tuple[int, str]]:
    return [(i, e) for i, frame in enumerate(chunks) if (e := detector.push(frame)) is not None]


def signal(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def turn(phone_line: PhoneLine, text: str, lead_ms: int = 1000) -> tuple[np.ndarray, int]:
    """A caller quiet for ``lead_ms``, then ``text``, then quiet 500 ms; and the voice's first frame."""
    speech = phone_line.say(text)
    onset = lead_ms // FRAME_MS + voiced_span(speech)[0]
    lead, tail = np.zeros(16 * lead_ms), np.zeros(16 * 500)
    return np.concatenate([lead, signal(speech), tail]), onset


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


def test_noise_right_after_the_last_word_does_not_hold_the_turn_open(phone_line: PhoneLine) -> None:
    # A door or a passing car after the caller's last word: webrtcvad calls it a voice for
    # as long as it lasts, the voice model does not; the end comes as it does in silence.
    speech = phone_line.say(SENTENCE)
    voice_end = voiced_span(speech, rms=100)[1]
    after = phone_line.carry(noise(2000, rms=1000))
    detector = EndpointDetector(end_silence_ms=200, no_word_timeout_s=30, max_utterance_s=30)
    events = push_all(detector, frames(speech + after + silence(1000)))
    assert [e for _, e in events] == [STARTED, ENDED]
    assert detector.end_reason == "silence"
    assert events[1][0] <= voice_end + 200 // FRAME_MS + 5  # not 2 s later, when the noise ends


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
    events = push_all(detector, frames(silence(500) + talk))
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


@pytest.mark.parametrize(("noise_kind", "snr_db"), [("pink", 5.0), ("babble", 5.0), ("babble", 15.0)])
def test_noise_on_the_line_does_not_start_speech_before_the_caller_speaks(
    phone_line: PhoneLine, noise_kind: str, snr_db: float
) -> None:
    clean, onset = turn(phone_line, SENTENCE)
    room = lc.pink_noise(len(clean), seed=3) if noise_kind == "pink" else lc.babble(len(clean), seed=2)
    events = every_event(EndpointDetector(), frames(phone_line.carry(lc.mix_at_snr(clean, room, snr_db))))
    assert [e for e in events if e[0] < onset] == []  # the prompt plays on while nobody talks


def test_babble_from_the_first_frame_does_not_start_speech_before_the_caller(phone_line: PhoneLine) -> None:
    # With the floor held from the first frames (a voice might be starting), this draw of
    # babble started and confirmed a voice right after the learning, 700 ms before the caller.
    clean, onset = turn(phone_line, SENTENCE)
    noisy = lc.mix_at_snr(clean, lc.babble(len(clean), seed=7), 5.0)
    events = every_event(EndpointDetector(), frames(phone_line.carry(noisy)))
    assert [e for e in events if e[0] < onset] == []


@pytest.mark.parametrize("gap_at_ms", [0, 600])
def test_silence_the_receiver_fills_in_does_not_teach_the_line_s_floor(phone_line: PhoneLine, gap_at_ms: int) -> None:
    # RTP that starts late (or pauses) is filled with digital silence by the receiver; a floor
    # learnt from it sat 50 dB under the babble, whose next loud moment cut the prompt off
    # (the noisy set: every false barge-in at 5 dB was a turn with filled silence).
    clean, onset = turn(phone_line, SENTENCE)
    line = frames(phone_line.carry(lc.mix_at_snr(clean, lc.babble(len(clean), seed=2), 5.0)))
    at, gap = gap_at_ms // FRAME_MS, 400 // FRAME_MS
    chunks = [*line[:at], *(FilledSilence(f) for f in frames(silence(400))), *line[at:]]
    events = every_event(EndpointDetector(), chunks)
    assert [e for e in events if e[0] < onset + gap] == []


def test_a_caller_who_speaks_from_the_first_frame_over_street_noise_is_heard_from_the_first_syllable(
    phone_line: PhoneLine,
) -> None:
    # Their voice is all the line the detector learns from at first, so it is not heard
    # against it; when they stop, the floor shows, and the first frames are judged again.
    pcm = phone_line.say_over_noise("민원", 15.0, lead_ms=0)
    onset = voiced_span(phone_line.say("민원"))[0]
    detector = EndpointDetector()
    events = push_all(detector, frames(pcm))
    assert [e for _, e in events] == [STARTED, ENDED]
    assert detector.start_frame is not None and detector.start_frame <= onset + 2


def test_a_caller_found_afterwards_after_rtp_that_began_late_starts_on_the_line_not_on_made_up_silence(
    phone_line: PhoneLine,
) -> None:
    # RTP began 60 ms late (the receiver filled the gap) and the caller spoke from its first
    # packet; judged again, their start was moved back into the made-up silence (frame 1).
    speech = signal(trimmed(phone_line.say("일 번")))
    clean = np.concatenate([speech, np.zeros(16000)])
    line = frames(phone_line.carry(lc.mix_at_snr(clean, lc.pink_noise(len(clean), seed=1), 15.0)))
    detector = EndpointDetector()
    events = push_all(detector, [*(FilledSilence(f) for f in frames(silence(60))), *line])
    assert [e for _, e in events] == [STARTED, ENDED]
    assert detector.start_frame == 3


def test_a_caller_found_afterwards_who_had_stopped_is_decided_at_once(phone_line: PhoneLine) -> None:
    # Their silence showed the floor; the voice, judged against it, ended 200 ms and more
    # before: waiting for the noise's next lull only delays the decision (at 5 dB of babble
    # by 0.5-1 s).
    pcm = phone_line.say_over_noise("민원", 15.0, lead_ms=0)
    detector = EndpointDetector()
    (found, started), (ended, end) = push_all(detector, frames(pcm))
    assert (started, end, detector.end_reason) == (STARTED, ENDED, "silence")
    assert ended == found + 1


def test_at_15_db_of_babble_the_caller_is_still_heard_from_start_to_end(phone_line: PhoneLine) -> None:
    clean, onset = turn(phone_line, SENTENCE)
    noisy = lc.mix_at_snr(clean, lc.babble(len(clean), seed=2), 15.0)
    events = every_event(EndpointDetector(), frames(phone_line.carry(noisy)))
    assert [e for _, e in events][:3] == [STARTED, CONFIRMED, ENDED]
    voice_end = len(clean) // 320 - 500 // FRAME_MS
    assert onset <= events[1][0] <= onset + 15 and voice_end <= events[2][0] <= voice_end + 20


@pytest.mark.parametrize("sound", ["music", "cough", "click"])
def test_music_a_cough_or_a_click_is_never_confirmed_as_a_voice(phone_line: PhoneLine, sound: str) -> None:
    clip = {"music": lambda: lc.music(3000, seed=1), "cough": lambda: lc.cough(seed=1), "click": lc.click}[sound]()
    events = every_event(EndpointDetector(), frames(phone_line.carry(np.concatenate([np.zeros(8000), clip]))))
    assert CONFIRMED not in [e for _, e in events]


def test_a_hum_is_a_steady_sound_never_confirmed_as_speech(phone_line: PhoneLine) -> None:
    detector = EndpointDetector()
    events = every_event(detector, frames(silence(500) + phone_line.carry(lc.hum(2000, 150.0))))
    assert CONFIRMED not in [e for _, e in events]
    assert detector.started and detector.steady  # the stream drops such an utterance as no speech


def test_a_caller_s_voice_is_confirmed_within_a_few_syllables(phone_line: PhoneLine) -> None:
    clean, onset = turn(phone_line, SENTENCE)
    detector = EndpointDetector()
    events = every_event(detector, frames(phone_line.carry(clean)))
    assert [e for _, e in events] == [STARTED, CONFIRMED, ENDED]
    # Eight frames of voice whose level rose and fell: the prompt stops about 200 ms in.
    assert onset + 8 <= events[1][0] <= onset + 15 and not detector.steady


def test_a_word_from_the_recognizer_confirms_a_voice_at_once(phone_line: PhoneLine) -> None:
    detector = EndpointDetector()
    chunks = frames(silence(500) + phone_line.say(SENTENCE))
    events = every_event(detector, chunks[:25 + 8])
    assert [e for _, e in events] == [STARTED]
    assert detector.word_heard() and detector.confirmed
    assert not detector.word_heard()  # confirmed once


def test_a_quiet_line_20_db_down_starts_as_a_normal_one_does(phone_line: PhoneLine) -> None:
    clean, onset = turn(phone_line, SENTENCE)
    events = every_event(EndpointDetector(), frames(phone_line.carry(lc.level_db(clean, -20.0))))
    assert [e for _, e in events] == [STARTED, CONFIRMED, ENDED]
    assert abs(events[0][0] - onset) <= 10


def test_an_utterance_without_a_word_for_the_no_word_timeout_ends(phone_line: PhoneLine) -> None:
    talk = phone_line.say("안녕하세요 저는 어제 산 우유가 상해서 전화를 드렸는데요 환불을 받고 싶어요")
    detector = EndpointDetector(no_word_timeout_s=1.0)
    events = push_all(detector, frames(silence(500) + talk))
    assert [e for _, e in events] == [STARTED, ENDED] and detector.end_reason == "no_word"
    assert detector.start_frame is not None and events[1][0] - detector.start_frame == 1000 // FRAME_MS


def test_after_a_burst_the_detector_listens_again_and_hears_the_caller(phone_line: PhoneLine) -> None:
    before = phone_line.carry(np.concatenate([np.zeros(8000), lc.cough(seed=2), np.zeros(8000)]))
    detector = EndpointDetector()
    chunks = frames(before + phone_line.say(SENTENCE))
    events = []
    for i, frame in enumerate(chunks):
        event = detector.push(frame)
        if event == ENDED and not detector.confirmed:
            detector.listen_again()  # what the stream does with a burst
        if event is not None:
            events.append((i, event))
    assert [e for _, e in events][-3:] == [STARTED, CONFIRMED, ENDED]
    assert detector.start_frame is not None and detector.start_frame >= len(before) // FRAME_BYTES  # the caller
