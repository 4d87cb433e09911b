import datetime as dt
import json
import re
from types import SimpleNamespace

import pytest

from core.errors import ValidationFailed
from core.models import HolidayYear
from core.render import render, templates_dir
from core.workdays import (
    Deadline,
    WorkCalendar,
    YearData,
    deadline_label,
    load_calendar,
    parse_holiday_file,
)

D = dt.date
cal = WorkCalendar()


def test_period_counts_from_the_day_after():
    # docs/domain.md: 2025-09-30 + 20 working days = 2025-11-04 (National Day week skipped)
    assert cal.add_workdays(D(2025, 9, 30), 20).day == D(2025, 11, 4)
    assert not cal.add_workdays(D(2025, 9, 30), 20).provisional


def test_make_up_weekend_is_a_workday():
    assert cal.is_workday(D(2025, 9, 28))  # Sunday, make-up working day before National Day
    assert not cal.is_workday(D(2025, 10, 3))  # Friday, holiday
    # 9-28 (Sun), 9-29, 9-30, 10-9, 10-10, 10-11 (Sat), 10-13; a weekday-only count gives 11
    assert cal.workdays_between(D(2025, 9, 26), D(2025, 10, 13)) == 7


def test_deadline_reaching_an_unknown_year_is_provisional():
    dl = cal.add_workdays(D(2026, 12, 10), 20)
    assert dl.provisional and dl.day.year == 2027
    assert "暂按" in dl.label()


def test_loaded_year_makes_it_final_and_honours_holidays():
    # a test arrangement: 1-4 off too, Saturday 1-9 a make-up working day
    data = YearData(
        holidays=frozenset({D(2027, 1, 1), D(2027, 1, 4)}), workdays=frozenset({D(2027, 1, 9)})
    )
    loaded = WorkCalendar({2027: data})
    provisional = cal.add_workdays(D(2026, 12, 28), 8)
    final = loaded.add_workdays(D(2026, 12, 28), 8)
    assert provisional.provisional and not final.provisional
    # 12-29,30,31, (1-1 元旦 either way), 1-4 … 1-8 vs 1-5 … 1-8 and the make-up 1-9
    assert provisional.day == D(2027, 1, 8) and final.day == D(2027, 1, 9)
    assert loaded.is_workday(D(2027, 1, 9))  # Saturday make-up day


@pytest.mark.parametrize(
    "day",
    [D(2027, 1, 1), D(2028, 5, 1), D(2028, 5, 2), D(2027, 10, 1), D(2028, 10, 2), D(2028, 10, 3)],
)
def test_a_year_without_data_still_rests_on_the_fixed_date_statutory_holidays(day):
    """国务院《全国年节及纪念日放假办法》(as amended by 国务院令第795号, in force 2025-01-01):
    元旦 1月1日, 劳动节 5月1日、2日, 国庆节 10月1日至3日 fall on the same dates every year, so
    the weekday count of a year whose arrangement is not loaded rests on them too (each of
    these is a Monday to Friday); the deadline stays provisional."""
    assert not cal.knows(day.year) and day.weekday() < 5
    assert not cal.is_workday(day)
    assert cal.add_workdays(day - dt.timedelta(days=1), 1).day > day
    assert cal.add_workdays(day - dt.timedelta(days=1), 1).provisional


def test_a_year_without_data_does_not_guess_the_lunar_holidays():
    """春节, 清明, 端午 and 中秋 move with the lunar calendar and the make-up days with each
    year's notice: a year without data counts them as the weekdays they are, provisionally."""
    assert cal.is_workday(D(2027, 2, 8))  # 2027's 春节 falls on a Monday; not guessed
    assert cal.is_workday(D(2028, 5, 3))  # a Wednesday: only 5月1日、2日 are fixed
    assert cal.is_workday(D(2027, 10, 4))  # Monday after 国庆's three fixed days


def test_missing_years_warning_the_year_under_way_and_the_next_from_november():
    assert cal.missing_years(D(2026, 10, 31)) == []
    assert cal.missing_years(D(2026, 11, 1)) == [2027]
    assert cal.missing_years(D(2027, 1, 1)) == [2027]
    assert cal.missing_years(D(2027, 11, 1)) == [2027, 2028]


def test_holiday_file_ranges_and_errors(tmp_path):
    p = tmp_path / "2027.json"
    p.write_text(
        json.dumps(
            {
                "year": 2027,
                "holidays": ["2027-02-05..2027-02-07"],
                "workdays": ["2027-02-14"],
                "source": "通知",
            }
        ),
        "utf-8",
    )
    hf = parse_holiday_file(p)
    assert hf.holidays == [D(2027, 2, 5), D(2027, 2, 6), D(2027, 2, 7)]
    p.write_text(json.dumps({"year": 2027, "workdays": ["2027-02-15"]}), "utf-8")
    with pytest.raises(ValidationFailed, match="不是周末"):
        parse_holiday_file(p)
    p.write_text(json.dumps({"year": 2027, "holidays": ["2026-12-31"]}), "utf-8")
    with pytest.raises(ValidationFailed, match="不在 2027 年内"):
        parse_holiday_file(p)


def test_every_deadline_reads_in_one_chinese_format() -> None:
    """A provisional deadline reads the same in every reply and page (2027年1月11日 plus the
    reason), not "2027-01-11（暂定）" in one and "暂估" in another."""
    due = dt.date(2027, 1, 11)
    label = Deadline(due, True).label()
    assert label == (
        "2027年1月11日（暂按周一至周五计算，已扣除元旦、劳动节、国庆节，节假日安排公布后重算）"
    )
    case = SimpleNamespace(code="LJ-2027-001-001", target=SimpleNamespace(name="某某公司"))
    objection = SimpleNamespace(
        received_on=dt.date(2026, 12, 10), recheck_due_on=due, recheck_due_provisional=True
    )
    filed = render("messages/cmd_objection_filed.md.j2", case=case, objection=objection)
    assert f"**{label}** 前" in filed and "2027-01-11" not in filed
    assert deadline_label(None, True) == "—"
    assert deadline_label(due) == "2027年1月11日"
    # no template formats a deadline by hand any more: each goes through deadline()
    for path in templates_dir().rglob("*.*"):
        if path.suffix in (".j2", ".html"):
            source = path.read_text("utf-8")
            assert not re.search(r"_due_on(\.isoformat\(\)| \| cn_date)", source), path.name
            assert "暂定" not in source and "暂估" not in source, path.name


async def test_a_holiday_year_loaded_elsewhere_counts_in_the_next_transaction(sessionmaker, clock):
    """The calendar is kept per set of stored years, not per process: a year another process
    (`lianjian holidays load`) has just stored counts in the next transaction here."""
    day = D(2099, 6, 1)  # a Monday of a year chinese-calendar does not know
    async with sessionmaker() as session:
        before = await load_calendar(session)
    async with sessionmaker() as session, session.begin():
        session.add(
            HolidayYear(year=2099, holidays=[day.isoformat()], workdays=[], loaded_at=clock.now())
        )
    async with sessionmaker() as session:
        after = await load_calendar(session)
        again = await load_calendar(session)
    assert before.is_workday(day) and not after.is_workday(day)
    assert again is after  # the same rows: the calendar, and the deadlines it worked out, kept
