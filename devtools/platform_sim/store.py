"""What the stand-in has accepted, in memory: cases with their progress, call records, and
the remembered answers that make re-sends replays.

Idempotency is per (organisation, key): two centres may use the same UUID without meeting.
Keys are UUIDs, compared in lower case ("A1..." and "a1..." are the same UUID). "The same
body" means the same JSON document (key order and spacing do not matter; ``1`` and ``1.0``
or ``true`` and ``1`` do) with its times compared as instants (``10:15:00+08:00`` and
``02:15:00Z`` are one time, written in two offsets), decided only when a key comes back, so
the first delivery pays nothing for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.vocabulary import CHINA_TZ
from national.contract import format_datetime, with_instants

#: The platform's case numbers: this prefix, the day (China time), a sequence of the day.
CASE_NO_PREFIX = "12315"
CASE_NO_SEQUENCE_DIGITS = 6


def canonical(doc: Any) -> str:
    """One text per JSON document, for "same body" decisions."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def same_document(a: Any, b: Any, times: Sequence[str] = ()) -> bool:
    """Whether ``a`` and ``b`` are one document; ``times`` names their date-time fields,
    compared as the instants they name rather than as text."""
    return canonical(with_instants(a, times)) == canonical(with_instants(b, times))


@dataclass
class Step:
    """A recorded progress step and the answer it got."""

    doc: dict[str, Any]
    answer: dict[str, Any]


@dataclass
class StoredCase:
    org: str
    platform_case_no: str
    case: dict[str, Any]
    receipt: dict[str, Any]
    #: Steps by ``step_id`` (lower case), in the order they were recorded.
    steps: dict[str, Step] = field(default_factory=dict)

    def step_names(self) -> list[str]:
        return [step.doc["step"] for step in self.steps.values()]

    def view(self) -> dict[str, Any]:
        """``GET /v1/cases/{no}``: the case as stored, its number and its progress."""
        return {**self.case, "platform_case_no": self.platform_case_no,
                "progress": [step.doc for step in self.steps.values()]}


@dataclass
class StoredCallRecord:
    org: str
    record: dict[str, Any]
    answer: dict[str, Any]


class PlatformStore:
    def __init__(self) -> None:
        self._cases_by_key: dict[tuple[str, str], StoredCase] = {}
        self._cases_by_no: dict[str, StoredCase] = {}
        self._call_records: dict[tuple[str, str], StoredCallRecord] = {}
        self._day = ""
        self._sequence = 0

    # ----------------------------------------------------------------- cases

    def case_by_key(self, org: str, key: str) -> StoredCase | None:
        return self._cases_by_key.get((org, key.lower()))

    def case_by_no(self, org: str, platform_case_no: str) -> StoredCase | None:
        """The case with that number, if it belongs to ``org``: another centre's case is
        as unknown to a sender as a case that does not exist."""
        stored = self._cases_by_no.get(platform_case_no)
        return stored if stored is not None and stored.org == org else None

    def add_case(self, org: str, key: str, case: dict[str, Any], now: float) -> StoredCase:
        moment = datetime.fromtimestamp(now, CHINA_TZ)
        number = self._next_case_no(moment)
        receipt = {"platform_case_no": number, "received_at": format_datetime(moment)}
        stored = StoredCase(org, number, case, receipt)
        self._cases_by_key[(org, key.lower())] = stored
        self._cases_by_no[number] = stored
        return stored

    def _next_case_no(self, moment: datetime) -> str:
        day = moment.strftime("%Y%m%d")
        if day != self._day:
            self._day, self._sequence = day, 0
        self._sequence += 1
        # Past 999,999 cases in a day the number grows a digit rather than repeating one:
        # a duplicate case number would be far worse than a longer one.
        return f"{CASE_NO_PREFIX}{day}{self._sequence:0{CASE_NO_SEQUENCE_DIGITS}d}"

    @staticmethod
    def add_step(stored: StoredCase, step: dict[str, Any], now: float) -> dict[str, Any]:
        answer = {"platform_case_no": stored.platform_case_no, "step_id": step["step_id"],
                  "step": step["step"],
                  "received_at": format_datetime(datetime.fromtimestamp(now, CHINA_TZ))}
        stored.steps[step["step_id"].lower()] = Step(step, answer)
        return answer

    # ----------------------------------------------------------------- call records

    def call_record_by_key(self, org: str, key: str) -> StoredCallRecord | None:
        return self._call_records.get((org, key.lower()))

    def add_call_record(self, org: str, key: str, record: dict[str, Any], now: float) -> StoredCallRecord:
        answer = {"call_id": record["call_id"],
                  "received_at": format_datetime(datetime.fromtimestamp(now, CHINA_TZ))}
        stored = StoredCallRecord(org, record, answer)
        self._call_records[(org, key.lower())] = stored
        return stored

    # ----------------------------------------------------------------- inspection

    def cases(self) -> list[dict[str, Any]]:
        """Every stored case as ``GET /v1/cases/{no}`` shows it, plus its ``org`` and receipt."""
        return [{**stored.view(), "org": stored.org, "receipt": stored.receipt}
                for stored in self._cases_by_no.values()]

    def call_records(self) -> list[dict[str, Any]]:
        return [{**stored.record, "org": stored.org} for stored in self._call_records.values()]

    def __len__(self) -> int:
        return len(self._cases_by_no)
