"""The noisy-set speech benchmark (bench/speech_noisy.py) sends what Asterisk would send, puts the
speech where it says it does, counts right, and runs end to end through the real receiver,
stream and Korean model."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from bench import speech_noisy as bench
from ivr.speech.engine import SpeechEngine
from ivr.speech.locale import load_speech_pack
from tests.support import line_conditions as lc
from tests.support.speech import load_korean_model

RATE = lc.SAMPLE_RATE


def _vowel(ms: int = 600) -> bench.Utterance:
    """A voice-like sound of ``ms``, loud throughout (no silence of its own)."""
    t = np.arange(RATE * ms // 1000) / RATE
    x = 3000 * sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 8))
    return bench.Utterance("phrases", "민원", "ko+m3", 175, 50, "complaint", x)


def _header(packet: bytes) -> tuple[int, int, int, int, int]:
    return struct.unpack("!BBHII", packet[:12])


# --- RTP -----------------------------------------------------------------------------------------


def test_ulaw_packets_carry_160_bytes_with_sequence_and_8khz_timestamps_advancing_per_packet() -> None:
    sender = bench.RtpSender("ulaw", ssrc=0xCAFE, seq=65534, timestamp=1000)
    payloads = bench.payloads(np.zeros(RATE // 10), "ulaw")  # 100 ms
    assert [len(p) for p in payloads] == [160] * 5
    headers = [_header(sender.packet(p)) for p in payloads]
    assert [h[2] for h in headers] == [65534, 65535, 0, 1, 2]  # wraps as 16 bits do
    assert [h[3] for h in headers] == [1000, 1160, 1320, 1480, 1640]
    assert {h[0] for h in headers} == {0x80} and {h[4] for h in headers} == {0xCAFE}
    assert [h[1] for h in headers] == [0x80, 0, 0, 0, 0]  # payload type 0, the marker on the first only


def test_slin16_packets_carry_640_bytes_of_big_endian_samples_and_16khz_timestamps() -> None:
    sender = bench.RtpSender("slin16", ssrc=7)
    x = np.arange(RATE // 25, dtype=np.float64)  # 40 ms, a ramp
    payloads = bench.payloads(x, "slin16")
    assert [len(p) for p in payloads] == [640, 640]
    assert np.array_equal(np.frombuffer(payloads[1], dtype=">i2"), np.arange(320, 640))
    first, second = _header(sender.packet(payloads[0])), _header(sender.packet(payloads[1]))
    assert first[1] == 0x80 | 118 and second[1] == 118
    assert second[3] - first[3] == 320


def test_a_lost_packet_still_uses_its_sequence_number_and_time() -> None:
    sender = bench.RtpSender("ulaw", ssrc=1)
    sender.packet(b"\xff" * 160)
    sender.skip()
    assert _header(sender.packet(b"\xff" * 160))[2:4] == (2, 320)


def test_a_turn_shorter_than_whole_packets_is_padded_to_the_last_one() -> None:
    assert len(bench.payloads(np.ones(321), "slin16")) == 2
    assert len(bench.payloads(np.ones(321), "ulaw")) == 2


# --- turns -------------------------------------------------------------------------------------


def test_a_clean_turn_is_silence_then_the_speech_from_its_onset_then_silence() -> None:
    speech = _vowel()
    turn = bench.assemble(0, bench.BY_KEY["clean-ulaw"], "main_menu", speech, seed=1)
    assert turn.onset == RATE * bench.LEAD_MS // 1000
    assert not turn.signal[: turn.onset].any()
    assert np.array_equal(turn.signal[turn.onset: turn.onset + len(speech.samples)], speech.samples)
    assert turn.end == turn.onset + len(speech.samples)  # loud to its last frame
    assert len(turn.tail) and not turn.tail.any() and not turn.lost


def test_a_cough_comes_before_the_onset_and_a_pause_between_them() -> None:
    speech = _vowel()
    turn = bench.assemble(0, bench.BY_KEY["cough"], "main_menu", speech, seed=3)
    before = turn.signal[: turn.onset]
    loud = np.flatnonzero(np.abs(before) > 100)
    assert loud.size and loud[0] >= RATE * bench.LEAD_MS // 1000
    assert turn.onset - loud[-1] >= RATE * 0.28  # at least ~300 ms of quiet before the words
    assert np.array_equal(turn.signal[turn.onset: turn.onset + len(speech.samples)], speech.samples)


def test_noise_runs_from_the_start_of_the_turn_and_the_speech_starts_at_the_onset() -> None:
    speech = _vowel()
    turn = bench.assemble(0, bench.BY_KEY["pink-15"], "main_menu", speech, seed=4)
    assert lc.rms(turn.signal[: turn.onset]) > 100
    heard = turn.signal[turn.onset: turn.onset + len(speech.samples)]
    assert np.corrcoef(heard, speech.samples)[0, 1] > 0.95  # 15 dB below the voice
    assert len(turn.tail) and lc.rms(turn.tail) > 100  # and goes on while the menu waits


def test_rtp_stops_with_the_packet_that_carries_the_last_voiced_audio() -> None:
    turn = bench.assemble(0, bench.BY_KEY["rtp-stop"], "main_menu", _vowel(610), seed=5)
    assert len(turn.signal) % bench.PACKET_SAMPLES == 0
    assert turn.end <= len(turn.signal) < turn.end + bench.PACKET_SAMPLES
    assert len(turn.tail) == 0


def test_quiet_clipped_and_lossy_lines_change_only_what_they_say() -> None:
    speech = _vowel()
    quiet = bench.assemble(0, bench.BY_KEY["quiet"], "main_menu", speech, seed=6)
    assert abs(lc.rms(quiet.signal) / lc.rms(bench.assemble(0, bench.BY_KEY["clean-ulaw"], "main_menu", speech,
                                                             seed=6).signal) - 0.1) < 1e-9
    hot = bench.assemble(0, bench.BY_KEY["clipped"], "main_menu", speech, seed=6)
    assert hot.signal.max() == 32767.0
    lossy = bench.assemble(0, bench.BY_KEY["loss"], "main_menu", speech, seed=6)
    packets = len(lossy.signal) // bench.PACKET_SAMPLES + int(bench.CAP_S / bench.PACKET_S) + 1
    assert 0 < len(lossy.lost) < 0.1 * packets
    assert lossy.lost == bench.assemble(0, bench.BY_KEY["loss"], "main_menu", speech, seed=6).lost


# --- the tables ----------------------------------------------------------------------------------


def _heard(outcome: str, *, condition: str = "pink-5", barge: float | None = 200.0,
           decision: float | None = 300.0) -> bench.Heard:
    choice, proposed = {"correct": ("complaint", None), "wrong": ("report", None), "no match": (None, None),
                        "confirm right": (None, "complaint"), "confirm wrong": (None, "report")}[outcome]
    return bench.Heard(0, condition, "phrases", "민원", "ko+m1", 150, 40, "complaint", choice=choice,
                       proposed=proposed, barge_in_ms=barge, decision_ms=decision)


def test_a_conditions_figures_are_shares_of_its_turns_and_targets_are_checked() -> None:
    heard = [_heard("correct"), _heard("correct"), _heard("wrong", decision=500.0),
             _heard("no match", barge=-800.0, decision=9000.0), _heard("correct", condition="clean-ulaw")]
    f = bench.figures(heard, bench.BY_KEY["pink-5"])
    assert (f.turns, f.correct, f.wrong, f.no_match, f.false_barge_in) == (4, 50.0, 25.0, 25.0, 25.0)
    assert f.p50_ms == 500.0 and f.p95_ms == 9000.0
    assert f.missed == ["wrong", "false barge-in", "decision p95"]  # no correct % target at 5 dB
    row = dict(zip(bench.CONDITION_HEADER, bench.condition_rows(heard, [bench.BY_KEY["pink-5"]])[0], strict=True))
    assert row["turns"] == "4" and row["correct %"] == "50.0" and row["wrong choice %"] == "25.0 ✗ (≤ 0)"
    assert row["no match %"] == "25.0" and row["false barge-in %"] == "25.0 ✗ (≤ 2)"
    assert row["decision p95 ms"] == "9000 ✗ (≤ 400)"


def test_a_choice_confirmed_by_the_caller_is_correct_and_asking_about_a_wrong_one_is_no_wrong_choice() -> None:
    heard = [_heard("correct", condition="clean-ulaw"), _heard("confirm right", condition="clean-ulaw"),
             _heard("confirm wrong", condition="clean-ulaw"), _heard("no match", condition="clean-ulaw")]
    f = bench.figures(heard, bench.BY_KEY["clean-ulaw"])
    assert (f.correct, f.confirmed, f.wrong, f.confirm_wrong, f.no_match) == (50.0, 25.0, 0.0, 25.0, 25.0)
    assert f.missed == ["correct"]


def test_a_decision_taken_before_the_speech_ended_is_cut_short_not_fast() -> None:
    heard = [_heard("no match", condition="cough", barge=-500.0, decision=-900.0), _heard("correct", condition="cough")]
    f = bench.figures(heard, bench.BY_KEY["cough"])
    assert f.cut_short == 50.0 and f.p95_ms == 300.0
    assert bench.mark(f.correct, 80.0, at_least=True) == "50.0 ✗ (≥ 80)"


def test_out_of_grammar_accepted_is_counted_per_category_and_overall() -> None:
    def oog(group: str, choice: str | None) -> bench.Heard:
        return bench.Heard(0, "clean-ulaw", group, "x", "ko+f1", 150, 40, None, choice=choice)

    heard = [oog("thanks", "report"), oog("thanks", None), oog("music", None), oog("music", None)]
    heard[1].proposed = "complaint"  # asked "you said complaint?": not taken, but a turn lost
    rows = {r[0]: r for r in bench.oog_rows(heard)}
    assert rows["thanks"][2:] == ["2", "50.0 ✗ (≤ 3)", "report x1", "50.0"]
    assert rows["music"][3] == "0.0 ✓ (≤ 3)"
    assert rows["all"][2:4] == ["4", "25.0 ✗ (≤ 3)"]
    assert bench.figures(heard, bench.BY_KEY["clean-ulaw"]).turns == 0  # not menu turns


def test_a_run_compared_with_another_shows_each_figure_before_and_after() -> None:
    old = [_heard("no match"), _heard("correct")]
    new = [_heard("correct"), _heard("correct")]
    row = bench.compare_rows(old, new, [bench.BY_KEY["pink-5"]])[0]
    assert row[1] == "50.0 -> 100.0 (+50.0)"


# --- end to end ------------------------------------------------------------------------------------


async def test_turns_sent_as_rtp_reach_the_real_model_through_the_receiver_and_stream(tmp_path: Path) -> None:
    said = lc.espeak("민원", "ko", 175, 50, cache=tmp_path)
    phrase = bench.Utterance("phrases", "민원", "ko", 175, 50, "complaint", bench.trimmed(said))
    melody = bench.Utterance("music", "melody", "music", 0, 0, None, lc.music(800, seed=1))
    turns = [bench.assemble(0, bench.BY_KEY["clean-ulaw"], "main_menu", phrase, seed=1),
             bench.assemble(1, bench.BY_KEY["rtp-stop"], "main_menu", phrase, seed=2),
             bench.assemble(2, bench.BY_KEY["clean-slin16"], "main_menu", melody, seed=3)]
    engine = SpeechEngine(load_korean_model(), load_speech_pack("ko-KR"), max_streams=4)
    try:
        heard = await bench.run_turns(engine, turns, callers=3)
    finally:
        await engine.close()
    assert [h.index for h in heard] == [0, 1, 2]
    clean, stopped, music = heard
    # Which choice Vosk makes varies from run to run (its dither); that the words reached it does not.
    assert clean.reason != "timeout" and clean.transcript and not clean.capped
    # Heard after the caller began, decided after they ended: no false barge-in, nothing cut short.
    assert clean.barge_in_ms is not None and clean.barge_in_ms > 0 and not clean.cut_short
    assert stopped.silence_filled > 0 and stopped.decision_ms is not None  # the receiver filled the silence
    assert music.oog and music.outcome in ("no match", "accepted")


def test_a_turn_draws_its_noise_from_what_it_is_not_from_its_place_in_the_run() -> None:
    """``--only`` sends the same audio for its conditions as the whole run did."""
    phrases = [bench.Utterance("phrases", text, "ko+m1", 160, 50, "complaint", _vowel(300).samples)
               for text in ("민원", "환불")]
    babble, pink = bench.BY_KEY["babble-5"], bench.BY_KEY["pink-15"]
    whole = {(t.condition.key, t.utterance.text): t for t in bench.build_turns(phrases, [], "main_menu", [pink, babble],
                                                                                seed=16)}
    alone = bench.build_turns(phrases, [], "main_menu", [babble], seed=16)
    for turn in alone:
        same = whole[(turn.condition.key, turn.utterance.text)]
        assert turn.seed == same.seed and np.array_equal(turn.signal, same.signal)
