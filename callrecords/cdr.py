"""Asterisk's CDRs of the calls the application never sees, read as call records.

While the application is down, Stasis() fails and the dialplan serves callers itself (the
fallback queue); numbers that are not ours never reach Stasis at all; a new call the application
turns away under overload is sent to the dialplan's busy message at once, with no flow and
no record of ours (``[hotline-shed]``). Asterisk's CDR is then
the only trace of the call. ``dialplans/extensions.conf`` marks those calls with CDR
variables and ``dialplans/cdr_custom.conf`` writes every CDR as one CSV line of the layout
below; this module reads those lines and turns the marked ones into call-record rows.

Facts of Asterisk 22 this relies on (read in its source, seen on a real 22.10.1):

* CDRs are posted by one thread, a call's CDRs together, when its channel ends: the lines
  of one call are consecutive in the file.
* A call served in the fallback has one line per party B it met (each agent the queue rang),
  all with the caller's ``uniqueid``; variables set on the caller are on each of them (the
  last one carries those set last, like the queue's status).
* Agents' legs have CDRs of their own (another ``uniqueid``) without our variables.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.vocabulary import LINE_OF_NUMBER

#: The layout's name: the first field of each line (a literal in cdr_custom.conf).
LAYOUT = "hotline-cdr-1"
#: The fields of cdr_custom.conf's ``fields=``, in order. Change both together, and give a
#: changed layout a new name: lines of another layout are never misread.
CDR_FIELDS = (
    "layout", "uniqueid", "linkedid", "sequence", "start", "answer", "end", "disposition", "src", "dst",
    "dcontext", "channel", "dstchannel", "lastapp", "hotline_path", "hotline_number", "hotline_line",
    "hotline_area", "hotline_queued", "hotline_answered", "hotline_queue_status",
)

#: ``hotline_path`` of a call served by the dialplan's fallback queue (the application down).
FALLBACK = "fallback"
#: ``hotline_path`` of a call to a number that is not ours.
INVALID = "invalid"
#: ``hotline_path`` of a new call the application turned away under overload (``[hotline-shed]``):
#: its record's outcome, which the platform calls ``overflowed`` (callrecords/payload.py).
SHED = "shed"
#: ``business_line`` of the record of a call to a number that is not ours.
INVALID_LINE = "invalid_number"

#: Call ids of imported calls are derived from Asterisk's uniqueid, so that a call imported
#: twice (a file read again, a rotated copy) is the same record: never two.
CDR_CALL_NAMESPACE = uuid.UUID("5f3c8a52-2f0e-4d3b-9d0c-3c1d8e6f7a10")

#: Column widths of call_records (callrecords/models.py) that CDR values must fit.
_NUMBER_MAX, _PHONE_MAX, _AGENT_MAX, _CAUSE_MAX, _CHANNEL_MAX = 8, 32, 32, 64, 64


class CdrLineError(ValueError):
    """A line that is not a CDR of our layout."""


def epoch(text: str) -> datetime | None:
    """``1796507064.413900`` (cdr_custom's ``start(double)``, or ``${EPOCH}``) as an aware UTC
    time; Asterisk writes 0 for a time that never came (a CDR never answered)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CdrLineError(f"{text!r} is not a time in seconds since the epoch") from None
    return datetime.fromtimestamp(value, UTC) if value > 0 else None


@dataclass(frozen=True, slots=True)
class CdrLine:
    """One CDR as cdr_custom.conf writes it (the fields we use)."""

    uniqueid: str
    linkedid: str
    sequence: int
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    disposition: str
    src: str
    dst: str
    dstchannel: str
    #: Our marks (empty on the CDRs of calls the application served itself).
    path: str
    number: str
    line: str
    area: str
    queued: datetime | None
    answered: datetime | None
    queue_status: str

    @classmethod
    def parse(cls, fields: list[str]) -> CdrLine:
        if not fields or fields[0] != LAYOUT:
            raise CdrLineError(f"not a line of layout {LAYOUT} (first field {fields[0] if fields else ''!r})")
        if len(fields) != len(CDR_FIELDS):
            raise CdrLineError(f"{len(fields)} fields, layout {LAYOUT} has {len(CDR_FIELDS)}")
        f = dict(zip(CDR_FIELDS, fields, strict=True))
        if not f["uniqueid"]:
            raise CdrLineError("no uniqueid")
        try:
            sequence = int(f["sequence"] or 0)
        except ValueError:
            raise CdrLineError(f"sequence {f['sequence']!r} is not a number") from None
        return cls(
            uniqueid=f["uniqueid"], linkedid=f["linkedid"], sequence=sequence,
            start=epoch(f["start"]), answer=epoch(f["answer"]), end=epoch(f["end"]),
            disposition=f["disposition"], src=f["src"], dst=f["dst"], dstchannel=f["dstchannel"],
            path=f["hotline_path"], number=f["hotline_number"], line=f["hotline_line"], area=f["hotline_area"],
            queued=epoch(f["hotline_queued"]), answered=epoch(f["hotline_answered"]),
            queue_status=f["hotline_queue_status"],
        )

    @property
    def marked(self) -> bool:
        """A CDR of a call our dialplan served itself (not one the application saw)."""
        return bool(self.path)


# --------------------------------------------------------------------------- reading lines


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One complete line of the file and where it lies (byte offsets)."""

    start: int
    end: int
    text: str


def complete_records(data: bytes, base: int = 0) -> Iterator[RawRecord]:
    """The complete lines in ``data`` (which starts at file offset ``base``).

    A line ends at a newline outside quotes: cdr_custom quotes a field holding a newline and
    doubles the quotes inside fields, so an even count of quotes so far means "outside". An
    unfinished last line (Asterisk still writing it) is left for the next read.
    """
    start = 0
    quotes = 0
    pos = 0
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            return
        quotes += data.count(b'"', pos, newline)
        pos = newline + 1
        if quotes % 2:
            continue  # a newline inside a quoted field
        raw = data[start:newline].rstrip(b"\r")
        # Undecodable bytes (a caller name in another charset) must not stop the import.
        yield RawRecord(base + start, base + pos, raw.decode("utf-8", errors="replace"))
        start, quotes = pos, 0


def parse_record(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if len(rows) != 1:
        raise CdrLineError("not exactly one CSV record")
    return rows[0]


# --------------------------------------------------------------------------- one call


def call_id_for(uniqueid: str) -> str:
    return str(uuid.uuid5(CDR_CALL_NAMESPACE, uniqueid))


def agent_endpoint(dstchannel: str) -> str:
    """``PJSIP/1001-0000002a`` -> ``PJSIP/1001`` (the channel's name without its counter)."""
    name, sep, _counter = dstchannel.rpartition("-")
    return name if sep and name else dstchannel


@dataclass(frozen=True, slots=True)
class CdrCall:
    """The CDR lines of one call (the caller's channel), in file order."""

    lines: tuple[CdrLine, ...]

    @property
    def uniqueid(self) -> str:
        return self.lines[0].uniqueid

    @property
    def call_id(self) -> str:
        return call_id_for(self.uniqueid)

    def _first(self, attr: str) -> Any:
        return next((getattr(line, attr) for line in self.lines if getattr(line, attr)), None)

    def _last(self, attr: str) -> Any:
        return next((getattr(line, attr) for line in reversed(self.lines) if getattr(line, attr)), None)

    @property
    def path(self) -> str:
        return self._first("path") or ""

    @property
    def deliverable(self) -> bool:
        """Owed to the national platform: a call to one of the five hotline numbers (the
        platform's CallRecord knows no other number; a number that is not ours is kept here)."""
        return self.path in (FALLBACK, SHED) and self._first("number") in LINE_OF_NUMBER

    def answering_agent(self) -> str | None:
        """The endpoint of the agent who answered (the line that carries the answer time)."""
        line = next((ln for ln in self.lines if ln.answered is not None and ln.dstchannel), None)
        return agent_endpoint(line.dstchannel) if line else None

    def record(self, agent_ids: Mapping[str, str]) -> dict[str, Any]:
        """The call-record row (callrecords/models.py) of this call.

        ``agent_ids`` maps agents' endpoints (``PJSIP/1001``) to our agent ids; an endpoint no
        account has is named by itself (``1001``), as the platform needs someone who answered.
        """
        starts = [ln.start for ln in self.lines if ln.start is not None]
        ends = [ln.end for ln in self.lines if ln.end is not None]
        if not starts:
            raise CdrLineError(f"the CDRs of {self.uniqueid} have no start time")
        started = min(starts)
        ended = max(ends + starts)
        # ${EPOCH} has whole seconds: keep each time between its neighbours, as the platform
        # requires (started <= queued <= answered <= ended).
        queued = _between(self._first("queued"), started, ended)
        answered = _between(self._first("answered"), queued or started, ended)
        path = self.path
        number = self._first("number") or self._first("dst") or ""
        area = self._first("area") or None
        endpoint = self.answering_agent() if answered else None
        agent_id = (agent_ids.get(endpoint) or endpoint.rpartition("/")[2]) if endpoint else None
        outcome, cause = self._outcome(path, number, area, answered, queued, endpoint)
        caller: str | None = self._first("src")
        return {
            "call_id": self.call_id,
            "channel_id": self.uniqueid[:_CHANNEL_MAX],
            "hotline_number": number[:_NUMBER_MAX],
            "business_line": INVALID_LINE if path == INVALID else (self._first("line") or ""),
            "area_code": area,
            "caller_phone": caller[:_PHONE_MAX] if caller else None,
            "started_at": started,
            "queued_at": queued,
            "answered_at": answered if agent_id else None,
            "ended_at": ended,
            "menu_path": [],
            "choice": None,
            "recognized_by": "none",
            "transcript": None,
            "confidence": None,
            "outcome": outcome,
            "state": "ended",
            "agent_id": agent_id[:_AGENT_MAX] if agent_id else None,
            "jurisdiction": None,
            "hangup_cause": cause[:_CAUSE_MAX],
        }

    def _outcome(self, path: str, number: str, area: str | None, answered: datetime | None,
                 queued: datetime | None, endpoint: str | None) -> tuple[str, str]:
        """The platform outcome and our hang-up cause text."""
        if path == INVALID:
            return "failed", f"invalid number {area or ''}{number}"
        if path == SHED:
            return SHED, "overload: turned away with the busy message"
        if answered is not None and endpoint:
            return "answered", f"dialplan fallback: answered by {endpoint}"
        status = self._last("queue_status")
        if status:
            # TIMEOUT, JOINEMPTY, LEAVEEMPTY, FULL, ...: the fallback queue could not serve them.
            return "failed", f"dialplan fallback: queue {status}"
        if queued is not None:
            return "abandoned_in_queue", "dialplan fallback: caller hung up while queued"
        return "abandoned_in_menu", "dialplan fallback: caller hung up before the queue"


def _between(moment: datetime | None, low: datetime, high: datetime) -> datetime | None:
    if moment is None:
        return None
    return min(max(moment, low), high)
