"""Reading sipp's statistics and response-time files (tests/support/sipp.py), as the real-switch
benchmark does."""

from __future__ import annotations

import math

from tests.support.sipp import counter, last_stats, percentile, response_times_ms, setup_times_ms

STATS = (
    "StartTime;LastResetTime;CurrentTime;TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);"
    "FailedCall(P);FailedCall(C);\n"
    "2026-12-06 04:30:00.000000;2026-12-06 04:30:00.000000;2026-12-06 04:30:01.000000;3;3;0;0;0;0;\n"
    "2026-12-06 04:30:00.000000;2026-12-06 04:30:01.000000;2026-12-06 04:30:02.000000;10;4;5;6;0;1;\n"
    "2026-12-06 04:30:00.000000;2026-12-06 04:30:02.000000;2026-12-06 04:30:0"  # still being written
)


def test_the_last_complete_row_of_the_statistics_is_read_by_column_name() -> None:
    row = last_stats(STATS)
    assert row["TotalCallCreated"] == "10" and row["CurrentCall"] == "4"
    assert counter(row, "SuccessfulCall") == 6  # the cumulative column, not the period's
    assert counter(row, "FailedCall") == 1
    assert counter(row, "TotalCallCreated") == 10
    assert counter(row, "NoSuchColumn") == 0


def test_a_statistics_file_without_rows_reads_as_nothing() -> None:
    assert last_stats("") == {}
    assert last_stats(STATS.splitlines()[0] + "\n") == {}


def test_response_times_are_those_of_the_timer_asked_for() -> None:
    text = ("Date_ms;response_time_ms;rtd_no\n1796500000000.5;3.25;1\n1796500000001.0;12.5;2\n"
            "1796500000002;1.75;1\n17965")
    assert response_times_ms(text) == [3.25, 1.75]
    assert response_times_ms(text, rtd=2) == [12.5]


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))


DASHES = "-" * 47


def block(when: str, direction: str, message: str) -> str:
    return f"{DASHES} 2026-12-06 {when}\nUDP message {direction}:\n\n{message}\n\n"


def sip(first: str, call_id: str, cseq: str) -> str:
    return f"{first}\nVia: SIP/2.0/UDP 127.0.0.2:5060\nCall-ID: {call_id}\nCSeq: {cseq}\nContent-Length: 0\n"


def test_set_up_times_run_from_each_invite_sent_to_its_200_ok_to_the_microsecond() -> None:
    trace = "".join([
        block("04:30:00.000100", "sent (581 bytes)", sip("INVITE sip:12315@127.0.0.1 SIP/2.0", "a", "1 INVITE")),
        block("04:30:00.000500", "sent (581 bytes)", sip("INVITE sip:12315@127.0.0.1 SIP/2.0", "b", "1 INVITE")),
        block("04:30:00.001000", "received [278] bytes :", sip("SIP/2.0 100 Trying", "a", "1 INVITE")),
        # A retransmitted INVITE does not restart the clock.
        block("04:30:00.500100", "sent (581 bytes)", sip("INVITE sip:12315@127.0.0.1 SIP/2.0", "a", "1 INVITE")),
        block("04:30:00.503350", "received [700] bytes :", sip("SIP/2.0 200 OK", "a", "1 INVITE")),
        block("04:30:01.000000", "received [300] bytes :", sip("SIP/2.0 200 OK", "b", "2 BYE")),
        block("04:30:01.001750", "received [700] bytes :", sip("SIP/2.0 200 OK", "b", "1 INVITE")),
        block("04:30:02.000000", "received [700] bytes :", sip("SIP/2.0 200 OK", "a", "1 INVITE")),  # again
        block("04:30:03.000000", "sent (581 bytes)", sip("INVITE sip:12315@127.0.0.1 SIP/2.0", "c", "1 INVITE")),
    ])
    assert [round(t, 3) for t in setup_times_ms(trace)] == [503.25, 1001.25]
