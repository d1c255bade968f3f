"""Reading Asterisk's verbose log (tests/support/asterisk_log.py) as the side-by-side benchmark
does: each caller's time to first audio, the callers turned away, what joined bridges."""

from __future__ import annotations

from pathlib import Path

from tests.support.asterisk_log import channels_entering, channels_joining, first_audio_ms


def line(when: str, text: str, source: str = "pbx.c") -> str:
    return f"[2026-12-06 {when}] VERBOSE[4242][C-00000001] {source}: {text}\n"


def executing(when: str, where: str, channel: str, app: str = "Set", args: str = '"X=1"') -> str:
    return line(when, f'Executing [{where}] {app}("{channel}", {args}) in new stack')


def playing(when: str, channel: str, sound: str = "hotline/welcome-general") -> str:
    return line(when, f"<{channel}> Playing '{sound}.slin' (language 'zh_CN')", "file.c")


CALLER_A, CALLER_B, AGENT = "PJSIP/carrier-00000001", "PJSIP/carrier-00000002", "PJSIP/2001-00000003"


def test_first_audio_runs_from_a_callers_first_dialplan_step_to_its_first_prompt() -> None:
    log = "".join([
        executing("06:30:00.100", "057112315@from-pstn:1", CALLER_A),
        executing("06:30:00.101", "057112315@from-pstn:2", CALLER_A, "Goto", '"hotline-numbers,12315,1"'),
        executing("06:30:00.102", "12315@hotline-stasis:1", CALLER_A),
        executing("06:30:00.150", "99912315@from-pstn:1", CALLER_B, "Goto", '"bench-app-queue,s,1"'),
        line("06:30:00.160", f"{CALLER_A} Audio is at 127.0.0.1:40000", "res_rtp_asterisk.c"),
        playing("06:30:00.162", CALLER_B),
        playing("06:30:00.131", CALLER_A),
        playing("06:30:02.000", CALLER_A, "hotline/main-menu"),  # only the first prompt counts
    ])
    assert [round(t, 3) for t in first_audio_ms(log)] == [31.0, 12.0]  # in order of arrival


def test_channels_that_did_not_arrive_from_the_carrier_or_heard_nothing_have_no_first_audio() -> None:
    log = "".join([
        playing("06:30:00.000", AGENT),  # an agent's leg: no dialplan entry from the carrier
        executing("06:30:00.100", "s@hotline-fallback-answered:1", AGENT),
        playing("06:30:00.120", AGENT),
        executing("06:30:01.000", "057112315@from-pstn:1", CALLER_A),  # hung up before any prompt
        line("06:30:01.500", "Spawn extension (from-pstn, 057112315, 1) exited non-zero", "pbx.c"),
        "a line without a time stamp <PJSIP/carrier-00000001> Playing 'x.slin'\n",
    ])
    assert first_audio_ms(log) == []


def test_a_caller_counts_from_its_first_arrival_even_when_the_step_starts_mid_call() -> None:
    # A log read from a step's offset may begin after a channel's arrival: the prompt played
    # later is not taken for that channel's first.
    log = playing("06:30:00.050", CALLER_A) + executing("06:30:00.100", "057112315@from-pstn:1", CALLER_B)
    assert first_audio_ms(log) == []


def test_callers_turned_away_are_the_distinct_channels_that_entered_the_shedding_context() -> None:
    log = "".join([
        executing("06:31:00.000", "057112315@from-pstn:1", CALLER_A),
        executing("06:31:00.002", "12315@hotline-stasis:3", CALLER_A, "Stasis", '"hotline,12315,general,0571"'),
        # The application continued the caller into hotline-shed: a busy message, then the hang-up.
        executing("06:31:00.040", "s@hotline-shed:1", CALLER_A, "Playback", '"hotline/busy"'),
        executing("06:31:03.000", "s@hotline-shed:2", CALLER_A, "Hangup", '""'),
        executing("06:31:00.500", "057112315@from-pstn:1", CALLER_B),
        executing("06:31:00.502", "12315@hotline-stasis:3", CALLER_B, "Stasis", '"hotline,12315,general,0571"'),
        # Another context whose name begins the same is not shedding.
        executing("06:31:00.600", "s@hotline-shed-test:1", AGENT),
    ])
    assert channels_entering(log, "hotline-shed") == {CALLER_A}
    assert channels_entering(log, "hotline-stasis") == {CALLER_A, CALLER_B}
    assert channels_entering("", "hotline-shed") == set()


def test_a_turned_away_caller_heard_its_busy_message_as_its_first_audio() -> None:
    log = "".join([
        executing("06:31:00.000", "057112315@from-pstn:1", CALLER_A),
        executing("06:31:00.040", "s@hotline-shed:1", CALLER_A, "Playback", '"hotline/busy"'),
        playing("06:31:00.045", CALLER_A, "hotline/busy"),
    ])
    assert first_audio_ms(log) == [45.0]


def test_the_speech_streams_and_recorders_are_the_channels_of_that_kind_that_joined_a_bridge() -> None:
    joined = "Channel {} joined 'simple_bridge' stasis-bridge <0bd7e2b9-6d2c-4b8f-a1d4-7b0f1a5e9c33>"
    log = "".join([
        line("06:32:00.000", joined.format("UnicastRTP/127.0.0.1:41000-0x7f0000000001"), "bridge_channel.c"),
        line("06:32:00.001", joined.format("PJSIP/carrier-00000001"), "bridge_channel.c"),
        line("06:32:05.000", joined.format("Recorder/ARI-00000004"), "bridge_channel.c"),
        line("06:32:05.100", joined.format("Recorder/ARI-00000004"), "bridge_channel.c"),  # again: one
        line("06:32:06.000", joined.format("UnicastRTP/127.0.0.1:41002-0x7f0000000002"), "bridge_channel.c"),
    ])
    assert len(channels_joining(log, "UnicastRTP/")) == 2
    assert channels_joining(log, "Recorder/") == {"Recorder/ARI-00000004"}


#: Two callers of a real run (Asterisk 22.10.1, bench/side_by_side.py with [overload] max_calls
#: 10, ari at 1 call/s): carrier-00000011 taken (welcome, then an agent), carrier-00000013
#: turned away into hotline-shed (busy message, Hangup(17)).
CAPTURED = (Path(__file__).parent / "data" / "asterisk-shed-excerpt.log").read_text(encoding="utf-8")


def test_on_a_captured_log_the_caller_turned_away_is_counted_and_both_callers_heard_a_prompt_in_milliseconds() -> None:
    assert channels_entering(CAPTURED, "hotline-shed") == {"PJSIP/carrier-00000013"}
    # 00:00.689 -> 00:00.693 (the welcome, after the application's round trip) and
    # 00:01.689 -> 00:01.696 (the busy message, after the round trip and the continue).
    assert first_audio_ms(CAPTURED) == [4.0, 7.0]
