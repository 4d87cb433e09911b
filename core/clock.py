"""The only place that reads the wall clock. Everything else gets a Clock."""

from __future__ import annotations

import datetime as dt
import re
from typing import Protocol

from core.errors import ValidationFailed

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Aware datetime in UTC."""

    def today(self) -> dt.date:
        """Calendar date in China (deadlines are Chinese dates)."""


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        return self.now().astimezone(CHINA_TZ).date()


class FixedClock:
    """A clock for tests and the demo; `advance` moves it forward."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        return self._at

    def today(self) -> dt.date:
        return self._at.astimezone(CHINA_TZ).date()

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta

    def set(self, at: dt.datetime) -> None:
        self._at = at.astimezone(dt.UTC)


def china_noon(day: dt.date) -> dt.datetime:
    """A stable instant on a Chinese calendar day (handy for tests and the demo)."""
    return dt.datetime.combine(day, dt.time(12, 0), CHINA_TZ).astimezone(dt.UTC)


def china_midnight(day: dt.date) -> dt.datetime:
    """The instant a Chinese calendar day begins, in UTC (for "entered before day X" queries)."""
    return dt.datetime.combine(day, dt.time(0, 0), CHINA_TZ).astimezone(dt.UTC)


FIRST_YEAR = 2000  # no joint inspection under these rules predates it


def parse_year(text: str, today: dt.date) -> int:
    """A plan, report or export year as typed ("2026", in chat also "2026年"): from 2000 up to
    next year (a plan is drawn up in advance). The refusal says what to write."""
    digits = text.strip().removesuffix("年")
    if not re.fullmatch(r"-?[0-9]+", digits):
        raise ValidationFailed(f"年度“{text}”应为整数，如 {today.year}")
    year, last = int(digits), today.year + 1
    if not FIRST_YEAR <= year <= last:
        raise ValidationFailed(
            f"年度“{text}”不在 {FIRST_YEAR}–{last} 年之间，请写其间的年份，如 {today.year}"
        )
    return year
