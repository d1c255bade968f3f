"""What the side-by-side benchmark reports from its steps (bench/side_by_side.py): held or not
when callers are turned away on purpose, the first-audio columns and ratios, where shedding
began. Built from made-up steps: no Asterisk, no sipp."""

from __future__ import annotations

import argparse

from bench.side_by_side import Step, iter_steps, merged, parse_args, report, steps_table, until_quiet
from tests.support.clock import EpochClock


def step(path: str, rate: float, *, calls: int = 100, connected: int = 100, turned_away: int = 0, failed: int = 0,
         left: int = 0, first_audio: float = 20.0, setup: float = 2.0) -> Step:
    return Step(path, rate, calls=calls, failed=failed, connected=connected, turned_away=turned_away, left=left,
                setup_ms=[setup] * calls, first_audio_ms=[first_audio] * calls,
                cpu_ms={"asterisk": 60.0, "app": 15.0 if path != "dialplan" else 0.0, "redis": 1.0, "database": 0.0,
                        "platform": 4.0 if path == "ari-full" else 0.0})


def args(*extra: str) -> argparse.Namespace:
    return parse_args(["--rates", "1,2", *extra])


def column(table: str, name: str, row: int) -> str:
    lines = table.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    cells = [c.strip() for c in lines[2 + row].strip("|").split("|")]
    return cells[header.index(name)]


def test_a_caller_turned_away_on_purpose_is_neither_failed_nor_unconnected_and_the_step_is_held() -> None:
    shed = step("ari", 10, connected=80, turned_away=20)
    assert shed.unconnected == 0 and shed.held
    dropped = step("ari", 10, connected=80, turned_away=15)
    assert dropped.unconnected == 5 and not dropped.held
    assert not step("ari", 10, failed=1).held
    assert not step("ari", 10, left=2).held


def test_the_steps_table_has_first_audio_turned_away_and_the_platform_apart_from_the_total() -> None:
    text = steps_table([step("ari-full", 2, connected=90, turned_away=10, first_audio=35.0),
                        step("dialplan", 2, first_audio=12.0)], "sqlite")
    assert column(text, "first audio p50 ms", 0) == "35.0" and column(text, "first audio p50 ms", 1) == "12.0"
    assert column(text, "turned away", 0) == "10" and column(text, "not connected", 0) == "0"
    assert column(text, "held", 0) == "yes"
    # The national platform's stand-in is not ours: its own column, not in the total.
    assert column(text, "platform stand-in ms/call", 0) == "4.00"
    assert column(text, "total ms/call", 0) == "76.0"
    assert column(text, "platform stand-in ms/call", 1) == "–" and column(text, "app ms/call", 1) == "–"


def test_the_ratios_compare_the_ari_row_with_the_dialplan_at_the_same_rate_first_audio_included() -> None:
    steps = [step("ari", 1, first_audio=30.0), step("ari-full", 1, first_audio=45.0),
             step("dialplan", 1, first_audio=15.0)]
    ratios = report(steps, args()).split("\n\n")[1]
    assert column(ratios, "first audio p50 ari/dialplan", 0) == "2.00"
    assert column(ratios, "whole system CPU ari/dialplan", 0) == "1.25"
    # The full row's callers stay longer in the menus (speech listens there): no ratio of theirs.
    assert len(ratios.splitlines()) == 3


def test_the_report_says_where_shedding_began_and_what_each_path_held() -> None:
    steps = [step("ari", 1), step("dialplan", 1),
             step("ari", 2, connected=150, turned_away=50, calls=200), step("dialplan", 2, calls=200, connected=200)]
    text = report(steps, args("--paths", "ari,dialplan"))
    assert "Highest load held: ari 2 calls/s (the highest tried); dialplan 2 calls/s (the highest tried)." in text
    assert "Shedding: ari began turning callers away at 2 calls/s (50 of 200)." in text
    quiet = report([step("ari", 1), step("dialplan", 1)], args("--paths", "ari,dialplan"))
    assert "Shedding: ari turned no caller away." in quiet


def test_the_paths_are_chosen_by_name_and_all_three_run_by_default() -> None:
    assert parse_args([]).paths == ["ari", "ari-full", "dialplan"]
    assert parse_args(["--paths", "dialplan,ari-full"]).paths == ["dialplan", "ari-full"]
    assert parse_args([]).first_audio and not parse_args(["--no-first-audio"]).first_audio


def test_rounds_are_reported_together_weighted_by_their_calls_with_each_rounds_ratio_beside() -> None:
    first, second = step("ari", 1, calls=60, connected=60), step("ari", 1, calls=40, connected=40)
    second.cpu_ms["app"] = 5.0
    plan = [step("dialplan", 1, calls=60, connected=60), step("dialplan", 1, calls=40, connected=40)]
    ari, dialplan = merged([first, plan[0], second, plan[1]])
    assert (ari.calls, ari.connected, len(ari.setup_ms), len(ari.rounds)) == (100, 100, 100, 2)
    assert ari.per_call("app") == 11.0  # (15 x 60 + 5 x 40) / 100
    ratios = report([ari, dialplan], args("--rounds", "2")).split("\n\n")[1]
    assert column(ratios, "whole system CPU ari/dialplan", 0) == "1.18 (1.25, 1.08)"  # 72 / 61
    assert parse_args(["--rounds", "2"]).rounds == 2


def test_the_application_is_set_against_the_thinnest_ari_application_serving_the_same_calls() -> None:
    thin = step("floor", 1)
    thin.cpu_ms["app"] = 6.0
    parts = report([step("ari", 1), thin, step("dialplan", 1)], args("--paths", "ari,floor,dialplan")).split("\n\n")
    floor = parts[2]
    assert column(floor, "app ms/call ari", 0) == "15.0" and column(floor, "app ms/call floor", 0) == "6.0"
    assert column(floor, "ari above the floor ms/call", 0) == "9.0"
    assert column(floor, "whole system CPU ari/floor", 0) == "1.13"  # 76 / 67
    assert column(floor, "whole system CPU floor/dialplan", 0) == "1.10"  # 67 / 61
    assert "floor turned" not in parts[3]  # it sheds nothing on purpose: no shedding line for it


def test_every_other_round_runs_the_paths_in_reverse_so_a_steady_drift_cancels_out() -> None:
    order = list(iter_steps(parse_args(["--rates", "1,5", "--rounds", "3", "--paths", "ari,dialplan"])))
    assert order == [("ari", 1), ("dialplan", 1), ("dialplan", 1), ("ari", 1), ("ari", 1), ("dialplan", 1),
                     ("ari", 5), ("dialplan", 5), ("dialplan", 5), ("ari", 5), ("ari", 5), ("dialplan", 5)]


def test_the_full_rows_deliveries_are_counted_once_they_have_been_quiet_for_the_writers_pause() -> None:
    # Records gathered 4 s by the writer arrive at the platform in bursts after the channels
    # are gone: the count is taken once nothing has arrived for longer than that pause.
    clock = EpochClock(0.0)  # moved by the code under test's sleeps
    arrivals = {1.0: 50, 4.5: 58, 5.0: 60}

    def stored() -> int:
        return max((n for t, n in arrivals.items() if t <= clock.now), default=40)

    assert until_quiet(stored, quiet_s=6.0, timeout=30.0, clock=clock, sleep=clock.advance) == 60
    assert 11.0 <= clock.now <= 11.5


def test_a_count_that_never_settles_is_read_at_the_timeout() -> None:
    clock = EpochClock(0.0)  # moved by the code under test's sleeps
    assert until_quiet(lambda: int(clock.now * 10), quiet_s=6.0, timeout=10.0, clock=clock, sleep=clock.advance) >= 100
    assert clock.now == 10.0
