"""What sipp writes about a run, read back: its statistics file (``-trace_stat``) and its
response times (``-trace_rtt``), for the benchmarks that drive a real Asterisk with sipp.

sipp writes both as ``;``-separated text with a header line. The statistics file gets a row
every ``-fd`` period and a last one when sipp ends; its ``(C)`` columns are cumulative. The
response-time file has one row per measured time: ``Date_ms;response_time_ms;rtd_no``, in
whole milliseconds. Finer set-up times come from the message trace (``-trace_msg``): every
message sent or received, under a line of dashes with the time to the microsecond.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime


def last_stats(text: str, delimiter: str = ";") -> dict[str, str]:
    """The last complete row of a ``-trace_stat`` file, by column name (empty if none yet)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    header = [name.strip() for name in lines[0].rstrip(delimiter).split(delimiter)]
    for line in reversed(lines[1:]):
        cells = [cell.strip() for cell in line.rstrip(delimiter).split(delimiter)]
        if len(cells) >= len(header):  # a row sipp is still writing is shorter
            return dict(zip(header, cells, strict=False))
    return {}


def counter(stats: dict[str, str], name: str) -> int:
    """A cumulative counter of a statistics row: ``counter(row, "SuccessfulCall")`` reads
    ``SuccessfulCall(C)``; 0 when the column is missing or empty."""
    value = stats.get(f"{name}(C)", stats.get(name, ""))
    try:
        return int(float(value))
    except ValueError:
        return 0


def response_times_ms(text: str, rtd: int = 1) -> list[float]:
    """Every response time (ms) of timer ``rtd`` in a ``-trace_rtt`` file, in file order."""
    times: list[float] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split(";")]
        if len(cells) < 3:
            continue
        try:
            value, number = float(cells[1]), int(cells[2])
        except ValueError:
            continue  # the header, or a line cut short
        if number == rtd:
            times.append(value)
    return times


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile by nearest rank (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


_BLOCK = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(.*?)(?=^-{20,} \d{4}-|\Z)", re.M | re.S)


def _header(message: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.+?)\s*$", message, re.M | re.I)
    return m.group(1) if m else ""


def setup_times_ms(trace: str) -> list[float]:
    """Per call of a ``-trace_msg`` log, from the INVITE sent to the 200 OK received for it
    (ms, to the microsecond); calls never answered are left out."""
    invited: dict[str, datetime] = {}
    times: list[float] = []
    for m in _BLOCK.finditer(trace):
        when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
        direction, _, message = m.group(2).partition("\n")
        message = message.lstrip("\n")
        first = message.split("\n", 1)[0]
        call_id = _header(message, "Call-ID")
        if "sent" in direction and first.startswith("INVITE ") and call_id not in invited:
            invited[call_id] = when
        elif ("received" in direction and first.startswith("SIP/2.0 200") and call_id in invited
              and _header(message, "CSeq").endswith("INVITE")):
            times.append((when - invited.pop(call_id)).total_seconds() * 1000)
    return times
