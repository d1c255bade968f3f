"""What Asterisk's own log says about each call, read back for the real-switch benchmark.

The benchmark gives its Asterisk a log file of verbose level 3 (``verbose(3)`` in logger.conf)
with the project's millisecond time stamps (``dateformat=%F %T.%3q``). Two kinds of lines are
read, written the same way whoever drives the channel, the dialplan or an ARI application:

    [2026-12-06 06:30:00.123] VERBOSE[4242][C-00000001] pbx.c: Executing [057112315@from-pstn:1]
        Set("PJSIP/carrier-00000001", "HOTLINE_AREA=") in new stack
    [2026-12-06 06:30:00.131] VERBOSE[4243][C-00000001] file.c: <PJSIP/carrier-00000001>
        Playing 'hotline/welcome-general.slin' (language 'zh_CN')

(each on one line; ``Playing`` is written by ``ast_streamfile()``, which Playback(),
Background() and ARI's ``/play`` all go through). Channel names are unique for the life of an
Asterisk process, so a channel's lines are found by its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

#: The time stamp of a line; the rest of the line after it.
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\]\s*(.*)$")
_EXECUTING = re.compile(r"Executing \[[^@\]]*@([^:\]]+):(\d+)\] \w+\(\"([^\"]+)\"")
_PLAYING = re.compile(r"<([^>]+)> Playing '")


def _lines(log: str) -> Iterator[tuple[datetime, str]]:
    for line in log.splitlines():
        m = _STAMP.match(line)
        if m is not None:
            yield datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f"), m.group(2)


def first_audio_ms(log: str, entry: str = "from-pstn") -> list[float]:
    """Per caller, from the channel's arrival (its first dialplan step in context ``entry``,
    the carrier's calls' first context) to the first sound file it was played (ms), in order
    of arrival. Callers that heard no prompt are left out; so are channels that began
    elsewhere (agents' legs, helper channels)."""
    arrived: dict[str, datetime] = {}
    times: dict[str, float] = {}
    for when, text in _lines(log):
        if (m := _EXECUTING.search(text)) is not None:
            context, priority, channel = m.groups()
            if context == entry and priority == "1" and channel not in arrived:
                arrived[channel] = when
        elif (m := _PLAYING.search(text)) is not None:
            channel = m.group(1)
            if channel in arrived and channel not in times:
                times[channel] = (when - arrived[channel]).total_seconds() * 1000
    return [times[c] for c in arrived if c in times]


def channels_entering(log: str, context: str) -> set[str]:
    """The channels that ran any step of ``context`` (e.g. the callers the application turned
    away by continuing them into ``hotline-shed``)."""
    found: set[str] = set()
    for _, text in _lines(log):
        m = _EXECUTING.search(text)
        if m is not None and m.group(1) == context:
            found.add(m.group(3))
    return found


_JOINED = re.compile(r"Channel (\S+) joined '")


def channels_joining(log: str, kind: str) -> set[str]:
    """The channels whose name starts with ``kind`` (``UnicastRTP/``: the audio sent to the
    application's speech recognizer; ``Recorder/``: a bridge's recording) that joined a
    bridge: evidence that speech listened and recordings ran."""
    return {m.group(1) for _, text in _lines(log) if (m := _JOINED.search(text)) and m.group(1).startswith(kind)}
