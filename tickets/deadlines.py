"""Deadlines in working days of China's official calendar.

The time limits come from the SAMR's rules on handling complaints and reports
(市场监督管理投诉举报处理暂行办法, and the 15-day verification of reported leads):

- a complaint or report is accepted or rejected within **7 working days** of its receipt;
- mediation of an accepted complaint ends within **45 working days** of its acceptance;
- a report is verified within **15 working days** of its acceptance.

How a period is counted (the rule of Chinese administrative law, 期间开始之日不计算在内): the
day of the event itself is not counted; counting starts on the next day and only working
days count. The deadline is the N-th working day after the event. Something received on a
Saturday, a holiday, or late on a working day therefore gets the same deadline as something
received on the working day before the next one.

Working days are those of the State Council's yearly schedule: weekdays, minus public
holidays, plus the make-up working days (调休) on weekends. The schedule comes from the
``chinesecalendar`` package (module ``chinese_calendar``), which carries each year once the
State Council has published it, usually in November of the year before. A date in a year the
installed package does not cover raises :class:`CalendarNotPublished`: guessing would give a
wrong legal deadline, so the caller keeps the deadline unset and says why.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

#: Working days to accept or reject a complaint or report, counted from its receipt.
ACCEPT_DAYS = 7
#: Working days to end the mediation of a complaint, counted from its acceptance.
MEDIATION_DAYS = 45
#: Working days to verify a report, counted from its acceptance.
VERIFY_DAYS = 15


class CalendarNotPublished(LookupError):
    """The official schedule of ``year`` is not in the installed calendar data."""

    def __init__(self, year: int, source: str) -> None:
        self.year, self.source = year, source
        super().__init__(f"{year} schedule not yet published in {source}; update the package")


_UNSET_NOTE = re.compile(r"(?P<name>accept_by|finish_by|verify_by) unset: (?P<year>\d{4}) schedule not yet published"
                         r" in (?P<source>.+); update the package")


@dataclass(frozen=True, slots=True)
class UnsetDeadline:
    """Why a deadline of a ticket is unset, as a machine code and its parameters.

    The ticket keeps it as a note in words for the log and the operators
    (``finish_by unset: 2027 schedule not yet published in chinesecalendar 1.11.0; update the
    package``, :meth:`note`); :meth:`read` gives back the code and parameters, which the pages
    translate ("the 2027 holiday calendar is not yet published")."""

    #: ``accept_by``, ``finish_by`` or ``verify_by``.
    deadline: str
    year: int
    #: The calendar data that lacks the year (``chinesecalendar 1.11.0``).
    source: str
    code: str = "calendar_not_published"

    @classmethod
    def of(cls, deadline: str, exc: CalendarNotPublished) -> UnsetDeadline:
        return cls(deadline, exc.year, exc.source)

    def note(self) -> str:
        return f"{self.deadline} unset: {self.year} schedule not yet published in {self.source}; update the package"

    @classmethod
    def read(cls, note: str | None) -> UnsetDeadline | None:
        """The code and parameters of a note :meth:`note` wrote; None for anything else."""
        found = _UNSET_NOTE.fullmatch(note.strip()) if note else None
        if found is None:
            return None
        return cls(found["name"], int(found["year"]), found["source"])

    def params(self) -> dict[str, object]:
        """What a page needs to say it: ``{"deadline": "finish_by", "year": 2027}``."""
        return {"deadline": self.deadline, "year": self.year}


class WorkingCalendar:
    """Which days are working days, and counting them.

    Built from explicit data so that tests can give a calendar of their own;
    :meth:`official` reads the installed ``chinesecalendar`` package.
    """

    def __init__(self, *, holidays: Collection[date], workdays: Collection[date],
                 years: range, source: str) -> None:
        if not years:
            raise ValueError("a working calendar needs at least one year of data")
        #: Weekdays off (public holidays and their bridging days).
        self._holidays = frozenset(holidays)
        #: Weekend days worked (调休 make-up days).
        self._workdays = frozenset(workdays)
        self.years = years
        #: Named in errors and notes, e.g. ``chinesecalendar 1.11.0``.
        self.source = source

    @classmethod
    def official(cls) -> WorkingCalendar:
        """The State Council's schedule as carried by the installed ``chinesecalendar``."""
        import chinese_calendar

        known = chinese_calendar.holidays.keys()
        years = range(min(known).year, max(known).year + 1)
        return cls(holidays=chinese_calendar.holidays.keys(), workdays=chinese_calendar.workdays.keys(),
                   years=years, source=f"chinesecalendar {chinese_calendar.__version__}")

    def is_workday(self, day: date) -> bool:
        if day.year not in self.years:
            raise CalendarNotPublished(day.year, self.source)
        if day in self._workdays:
            return True
        return day.weekday() < 5 and day not in self._holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
        if days < 1:
            raise ValueError(f"a period is at least one working day, got {days}")
        day, counted = start, 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return day

    def accept_by(self, received: date) -> date:
        """Last day to accept or reject a complaint or report received on ``received``."""
        return self.add_working_days(received, ACCEPT_DAYS)

    def mediation_end(self, accepted: date) -> date:
        """Last day of the mediation of a complaint accepted on ``accepted``."""
        return self.add_working_days(accepted, MEDIATION_DAYS)

    def verify_by(self, accepted: date) -> date:
        """Last day to verify a report accepted on ``accepted``."""
        return self.add_working_days(accepted, VERIFY_DAYS)


@cache
def official_calendar() -> WorkingCalendar:
    """The official calendar, built once per process (the package's data never changes while
    it runs)."""
    return WorkingCalendar.official()


def accept_by(received: date) -> date:
    """:meth:`WorkingCalendar.accept_by` on the official calendar."""
    return official_calendar().accept_by(received)


def mediation_end(accepted: date) -> date:
    """:meth:`WorkingCalendar.mediation_end` on the official calendar."""
    return official_calendar().mediation_end(accepted)


def verify_by(accepted: date) -> date:
    """:meth:`WorkingCalendar.verify_by` on the official calendar."""
    return official_calendar().verify_by(accepted)
