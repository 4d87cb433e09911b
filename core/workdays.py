"""Chinese working days: public holidays and make-up working weekends (调休).

chinese-calendar knows the years it ships with; later years come from holiday data that an
admin loads (`lianjian holidays load FILE`, stored in `holiday_year`). A deadline that touches a
year with no data is computed on weekdays, less the statutory holidays fixed by date, and
marked provisional; it is recomputed once the data arrives.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import cast

import chinese_calendar
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import CHINA_TZ
from core.errors import ValidationFailed, os_reason, toml_position
from core.models import HolidayYear
from core.textfiles import read_text_file

# 国务院《全国年节及纪念日放假办法》第二条 as amended by 国务院令第795号 (in force 2025-01-01):
# the holidays on the same date every year — 元旦 1月1日, 劳动节 5月1日、2日, 国庆节 10月1日至3日.
# A year without data rests on them; 春节, 清明, 端午, 中秋 and the make-up days are not guessed.
FIXED_DATE_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)})
# how a count made without the year's data is described wherever it is shown
PROVISIONAL_COUNT = "暂按周一至周五计算，已扣除元旦、劳动节、国庆节"


@dataclass(frozen=True)
class YearData:
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]  # make-up working days on weekends


def cn_date(day: dt.date) -> str:
    """The one date format users read: 2027年1月11日."""
    return f"{day.year}年{day.month}月{day.day}日"


def cn_datetime(at: dt.datetime) -> str:
    """A moment as users read it, in China time: 2027年1月11日 21:30."""
    local = at.astimezone(CHINA_TZ)
    return f"{cn_date(local.date())} {local:%H:%M}"


@dataclass(frozen=True)
class Deadline:
    day: dt.date
    provisional: bool  # computed without the year's holiday data (PROVISIONAL_COUNT)

    def label(self) -> str:
        text = cn_date(self.day)
        return text + f"（{PROVISIONAL_COUNT}，节假日安排公布后重算）" if self.provisional else text


def deadline_label(day: dt.date | None, provisional: bool = False) -> str:
    """A deadline as every message and page shows it (2027年1月11日, a provisional one saying
    so); the templates' `deadline(day, provisional)`. "—" when there is none yet."""
    return Deadline(day, provisional).label() if day is not None else "—"


@cache
def _package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@cache
def _package_workday(day: dt.date) -> bool:
    # chinese-calendar scans its whole table to validate every date it is asked about; its
    # data never changes while we run, so each answer is kept (a few thousand dates at most)
    return bool(chinese_calendar.is_workday(day))


@dataclass
class WorkCalendar:
    extra: Mapping[int, YearData] = field(default_factory=dict)
    # the rest days of a year without data: FIXED_DATE_HOLIDAYS; none (weekdays only) to count
    # back a deadline stored before they were (core.deadlines.WEEKDAYS_ONLY)
    fallback_rest: frozenset[tuple[int, int]] = FIXED_DATE_HOLIDAYS
    # (start, end) -> working days between: nudges ask it for every open case, mostly the same
    _between: dict[tuple[dt.date, dt.date], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _added: dict[tuple[dt.date, int], Deadline] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def knows(self, year: int) -> bool:
        return year in self.extra or _package_knows(year)

    def is_workday(self, day: dt.date) -> bool:
        data = self.extra.get(day.year)
        if data is not None:
            if day in data.workdays:
                return True
            return day not in data.holidays and day.weekday() < 5
        if _package_knows(day.year):
            return _package_workday(day)
        # provisional (the caller marks the result): weekdays, less the fixed-date holidays
        return day.weekday() < 5 and (day.month, day.day) not in self.fallback_rest

    def add_workdays(self, start: dt.date, n: int) -> Deadline:
        """The n-th working day strictly after `start` (2025-09-30 + 20 = 2025-11-04)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        if (start, n) not in self._added:  # a task's window deadline, asked per open case
            self._added[start, n] = self._add_workdays(start, n)
        return self._added[start, n]

    def _add_workdays(self, start: dt.date, n: int) -> Deadline:
        day, left, provisional = start, n, not self.knows(start.year)
        while left > 0:
            day += dt.timedelta(days=1)
            provisional |= not self.knows(day.year)
            if self.is_workday(day):
                left -= 1
        return Deadline(day, provisional)

    def workday_before(self, day: dt.date) -> Deadline | None:
        """When `day` is a rest day, the last working day before it (provisional while either
        year lacks holiday data); None for a working day."""
        if self.is_workday(day):
            return None
        before = day - dt.timedelta(days=1)
        while not self.is_workday(before):
            before -= dt.timedelta(days=1)
        return Deadline(before, not (self.knows(day.year) and self.knows(before.year)))

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in (start, end]; negative when end is before start."""
        if end < start:
            return -self.workdays_between(end, start)
        if (start, end) not in self._between:
            self._between[start, end] = sum(
                1
                for i in range(1, (end - start).days + 1)
                if self.is_workday(start + dt.timedelta(days=i))
            )
        return self._between[start, end]

    def missing_years(self, today: dt.date) -> list[int]:
        """The years whose holiday data is missing and already counted in: the year under way,
        and from 1 November the next one (deadlines cross into it)."""
        soon = (today.year, today.year + 1) if today.month >= 11 else (today.year,)
        return [year for year in soon if not self.knows(year)]


# the stored years as plain columns: no ORM rows to build on every transaction that asks
_YEARS = cast(Table, HolidayYear.__table__).c  # on the table: no ORM layers (#9)
_HOLIDAY_YEARS = select(_YEARS.year, _YEARS.holidays, _YEARS.workdays).order_by(_YEARS.year)
StoredYears = tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...]


async def load_calendar(session: AsyncSession) -> WorkCalendar:
    """The calendar with the stored holiday years, read in this transaction: a holiday file
    another process has just loaded counts at once. The calendar built from the same rows is
    kept (`_calendar`), with the deadlines it has already worked out."""
    rows = await session.execute(_HOLIDAY_YEARS)
    return _calendar(tuple((year, tuple(off), tuple(on)) for year, off, on in rows))


@lru_cache(maxsize=8)
def _calendar(years: StoredYears) -> WorkCalendar:
    return WorkCalendar(
        {
            year: YearData(
                frozenset(map(dt.date.fromisoformat, holidays)),
                frozenset(map(dt.date.fromisoformat, workdays)),
            )
            for year, holidays, workdays in years
        }
    )


def _expand(entries: object, year: int, key: str) -> list[dt.date]:
    """Dates or inclusive ranges 'YYYY-MM-DD..YYYY-MM-DD', all inside `year`."""
    what = f"{HOLIDAY_KEYS[key]}（{key}）"
    example = f'"{year}-01-01" 或 "{year}-01-01..{year}-01-03"'
    if not isinstance(entries, list):
        raise ValidationFailed(f"{what}应为日期列表，如 [{example.replace(' 或 ', ', ')}]")
    days: list[dt.date] = []
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, str | dt.date):  # a TOML bare date is a date already
            raise ValidationFailed(
                f"{what}第 {n} 项写成了{_shape(entry)}，应为一个日期或起止范围，如 {example}"
            )
        first, _, last = str(entry).partition("..")
        try:
            a = dt.date.fromisoformat(first.strip())
            b = dt.date.fromisoformat(last.strip()) if last else a
        except ValueError as err:
            raise ValidationFailed(
                f"{what}中的日期“{entry}”格式不对，应为 YYYY-MM-DD 或 YYYY-MM-DD..YYYY-MM-DD"
            ) from err
        if b < a or a.year != year or b.year != year:
            raise ValidationFailed(f"{what}中的“{entry}”不在 {year} 年内或起止颠倒")
        days.extend(a + dt.timedelta(days=i) for i in range((b - a).days + 1))
    return days


def _shape(value: object) -> str:
    """What an entry that is no date was written as, in words (not a Python repr)."""
    if isinstance(value, dict):
        return f"含 {'、'.join(map(str, value))} 的表" if value else "空表"
    if isinstance(value, list):
        return "列表"
    return "数字" if isinstance(value, int | float) else "其他内容"


@dataclass(frozen=True)
class HolidayFile:
    year: int
    holidays: list[dt.date]
    workdays: list[dt.date]
    source: str


HOLIDAY_FILE_FORMAT = (
    "应为 TOML（.toml）或 JSON（.json）文本文件，如 year = 2027、"
    'holidays = ["2027-01-01", "2027-02-05..2027-02-11"]、workdays = ["2027-02-14"]'
    "（lianjian template holidays -o 节假日.toml 生成示例）"
)
HOLIDAY_KEYS = {
    "year": "年度",
    "holidays": "放假日期",
    "workdays": "调休上班日期",
    "source": "通知名称",
}
ALLOW_EMPTY = "--allow-empty"


class NoHolidays(ValidationFailed):
    """A holiday file without holidays. `problem` is the message without its advice, for a
    caller where --allow-empty is no option (a file the configuration names)."""

    def __init__(self, problem: str, advice: str) -> None:
        super().__init__(f"{problem}；{advice}")
        self.problem = problem


def parse_holiday_file(path: Path, *, allow_empty: bool = False) -> HolidayFile:
    """TOML or JSON: year = 2027, holidays = ["2027-01-01", "2027-02-05..2027-02-11"],
    workdays = ["2027-02-14"], source = "国务院办公厅关于2027年部分节假日安排的通知". A file
    without holidays is refused unless `allow_empty`: every year has public holidays, so it is
    most likely a misspelled key, and loading it would clear the missing-holidays warning."""
    try:
        text = read_text_file(path, "节假日文件", f"节假日文件{HOLIDAY_FILE_FORMAT}")
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        if not isinstance(raw, dict):
            raise TypeError(raw)
        _check_keys(path, raw)
        year = int(raw["year"])
    except OSError as err:
        raise ValidationFailed(f"无法读取节假日文件 {path}：{os_reason(err)}") from err
    except (ValueError, KeyError, TypeError) as err:
        where = toml_position(err) if isinstance(err, ValueError) else ""
        raise ValidationFailed(
            f"节假日文件 {path.name} {where}格式不对：{HOLIDAY_FILE_FORMAT}"
        ) from err
    holidays = _expand(raw.get("holidays", []), year, "holidays")
    workdays = _expand(raw.get("workdays", []), year, "workdays")
    if clash := set(holidays) & set(workdays):
        raise ValidationFailed(f"同一天既是放假又是上班：{sorted(clash)[0]}")
    if bad := [d for d in workdays if d.weekday() < 5]:
        raise ValidationFailed(f"调休上班日 {bad[0]} 不是周末")
    if not holidays and not allow_empty:
        raise NoHolidays(
            f"节假日文件 {path.name} 没有放假日期（holidays）：每年都有法定节假日，请检查是否漏写"
            f"或写错了键名",
            f"确实要载入没有放假日期的 {year} 年，请加 {ALLOW_EMPTY}",
        )
    return HolidayFile(year, holidays, workdays, str(raw.get("source", "")))


def _check_keys(path: Path, raw: Mapping[str, object]) -> None:
    """A misspelled key (holiday for holidays) is refused with the nearest known one: read as
    missing, it loaded a year without holidays."""
    for key in raw:
        if key not in HOLIDAY_KEYS:
            close = difflib.get_close_matches(key, HOLIDAY_KEYS, 1, 0.6)
            guess = f"是否应为“{close[0]}”（{HOLIDAY_KEYS[close[0]]}）？" if close else ""
            raise ValidationFailed(
                f"节假日文件 {path.name} 中的键“{key}”无法识别，{guess}"
                f"可用的键：{'、'.join(HOLIDAY_KEYS)}"
            )
