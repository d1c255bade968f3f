"""Deadlines in working days of the official 2026 schedule (State Council, as carried by
chinesecalendar). The expected dates below were counted by hand on that schedule:

- Spring Festival: 15-23 February off; Saturday 14 and Saturday 28 February worked.
- Mid-Autumn: 25-27 September off. National Day: 1-7 October off; Sunday 20 September
  and Saturday 10 October worked.
"""

from __future__ import annotations

from datetime import date

import chinese_calendar
import pytest

from tickets.deadlines import CalendarNotPublished, WorkingCalendar, accept_by, mediation_end, verify_by


@pytest.fixture(scope="module")
def official() -> WorkingCalendar:
    return WorkingCalendar.official()


def test_the_package_carries_the_2026_schedule_the_expectations_were_counted_on() -> None:
    assert all(date(2026, 10, d) in chinese_calendar.holidays for d in range(1, 8))
    assert all(date(2026, 9, d) in chinese_calendar.holidays for d in (25, 26, 27))
    assert {date(2026, 9, 20), date(2026, 10, 10), date(2026, 2, 14), date(2026, 2, 28)} <= set(
        chinese_calendar.workdays)


def test_acceptance_across_national_day_skips_the_holiday_and_counts_the_make_up_saturday() -> None:
    # Received Mon 28 Sep: Tue 29 (1), Wed 30 (2), 1-7 Oct off, Thu 8 (3), Fri 9 (4),
    # Sat 10 make-up (5), Sun 11 off, Mon 12 (6), Tue 13 (7).
    assert accept_by(date(2026, 9, 28)) == date(2026, 10, 13)


def test_the_day_of_receipt_never_counts_even_when_it_is_a_working_day() -> None:
    # Received Wed 30 Sep: Thu 8 (1), Fri 9 (2), Sat 10 (3), Mon 12 (4) ... Thu 15 (7).
    assert accept_by(date(2026, 9, 30)) == date(2026, 10, 15)


def test_a_matter_received_on_a_holiday_counts_from_the_first_working_day_after_it() -> None:
    assert accept_by(date(2026, 10, 3)) == date(2026, 10, 15)


def test_a_deadline_can_fall_on_a_make_up_saturday() -> None:
    # Received Thu 12 Feb: Fri 13 (1), Sat 14 make-up (2), 15-23 off, Tue 24 (3) ... Fri 27 (6),
    # Sat 28 make-up (7).
    assert accept_by(date(2026, 2, 12)) == date(2026, 2, 28)


def test_mediation_ends_45_working_days_after_acceptance() -> None:
    # From Mon 28 Sep: 29, 30 Sep (2); 8, 9, 10 Oct (5); then nine full weeks Mon 12 Oct to
    # Fri 4 Dec, 40 more (45).
    assert mediation_end(date(2026, 9, 28)) == date(2026, 12, 4)


def test_a_report_is_verified_within_15_working_days_of_acceptance() -> None:
    # 29, 30 Sep (2); 8, 9, 10 Oct (5); 12-16 Oct (10); 19-23 Oct (15).
    assert verify_by(date(2026, 9, 28)) == date(2026, 10, 23)


def test_a_period_running_into_an_unpublished_year_names_the_year_and_the_package(
        official: WorkingCalendar) -> None:
    last = official.years[-1]
    with pytest.raises(CalendarNotPublished) as caught:
        official.accept_by(date(last, 12, 28))
    assert caught.value.year == last + 1
    assert str(caught.value) == (f"{last + 1} schedule not yet published in chinesecalendar "
                                 f"{chinese_calendar.__version__}; update the package")


def test_a_date_before_the_data_is_refused_too_rather_than_guessed(official: WorkingCalendar) -> None:
    with pytest.raises(CalendarNotPublished) as caught:
        official.is_workday(date(official.years[0] - 1, 6, 1))
    assert caught.value.year == official.years[0] - 1


def test_a_calendar_of_ones_own_data_counts_its_make_up_days_and_holidays() -> None:
    cal = WorkingCalendar(holidays={date(2030, 1, 1)}, workdays={date(2029, 12, 29)},
                          years=range(2029, 2031), source="test data")
    # Fri 28 Dec 2029 -> Sat 29 make-up (1), Mon 31 (2), Tue 1 Jan off, Wed 2 (3).
    assert cal.add_working_days(date(2029, 12, 28), 3) == date(2030, 1, 2)
    with pytest.raises(ValueError, match="at least one working day"):
        cal.add_working_days(date(2030, 1, 2), 0)
