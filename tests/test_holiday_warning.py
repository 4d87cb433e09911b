"""A year without holiday data counts weekdays only (docs/architecture.md §4): the office is
warned while the current year's arrangement is missing (and next year's from 1 November), and
an overdue count made on weekdays only says so. Results are due 20 *working* days after the
inspection (000 §十), so a count that takes 元旦 or 春节 for working days must not pass for
a final one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.holidays import holiday_warning, queue_holiday_warning
from core.inspection import record_inspection_date
from core.models import OutboxMessage
from core.nudges import enqueue_nudges
from tests import factories as f
from tests.case_factories import acting, at_day, build_world
from tests.dispatch_support import bodies, make_dispatcher, send, text_event

D = dt.date


async def _office_messages(session: AsyncSession) -> list[str]:
    rows = await session.scalars(
        select(OutboxMessage.message).where(OutboxMessage.dest_key == "office")
    )
    return [m["body"] for m in rows]


async def test_the_current_years_missing_holidays_are_warned_after_new_year(
    ctx: Ctx, session: AsyncSession
) -> None:
    """From 1 January the year under way is the one counted: its data missing is warned daily
    (it was warned only for next year, from 1 November, and went silent at New Year)."""
    at_day(ctx, D(2027, 1, 4))
    await queue_holiday_warning(ctx, await holiday_warning(ctx))
    await session.commit()
    [body] = await _office_messages(session)
    assert "尚未导入 2027 年节假日安排" in body
    at_day(ctx, D(2027, 11, 2))  # both the year under way and the next are missing
    warning = await holiday_warning(ctx)
    assert warning is not None and "尚未导入 2027、2028 年节假日安排" in warning


async def test_setup_check_names_the_current_year_without_holidays(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    async with sessionmaker() as s:
        admin = await f.officer(s, await f.department(s, "县市场监督管理局", code="SJ"), "admin")
        await s.commit()
    clock.set(china_noon(D(2027, 1, 4)))
    rows = await send(
        sessionmaker, make_dispatcher(sessionmaker, clock), text_event(admin.code, "检查配置")
    )
    assert "尚未导入 2027 年节假日安排" in bodies(rows)


async def test_000_10_an_overdue_count_on_weekdays_only_says_so(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §十 counts working days: due 2026-12-29 (2026 known), on 2027-01-05 the overdue days
    are counted provisionally while 2027 is missing — 元旦 (1月1日, fixed by 《全国年节及纪念日
    放假办法》) a rest day all the same: 12-30, 12-31, 1-4, 1-5 —; the leader's report, the
    department's digest and the inspectors' own list say the count is provisional."""
    w = await build_world(session, window_start=D(2026, 11, 2), window_end=D(2026, 12, 31))
    at_day(ctx, D(2026, 12, 1))
    due = await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 12, 1))
    assert (due.day, due.provisional) == (D(2026, 12, 29), False)
    await session.commit()
    await enqueue_nudges(ctx, D(2027, 1, 5))
    await session.commit()
    sent = [m["body"] for m in await session.scalars(select(OutboxMessage.message))]
    overdue = [b for b in sent if "逾期 4 个工作日" in b]
    # each department's digest and leader's report (its own part, 000 §九–十), and the three
    # inspectors' lists
    assert len(overdue) == 7
    note = "2027 年节假日安排尚未导入，逾期天数暂按周一至周五计算，已扣除元旦、劳动节、国庆节"
    assert all(note in b for b in overdue)


async def test_the_warning_is_sent_on_working_days_at_most_once_a_week(
    ctx: Ctx, session: AsyncSession
) -> None:
    """The daily tick warned every calendar day, weekends included (155 identical messages over
    one winter): the office hears it on the first working day it is due, then once a week."""
    sent = []
    day = D(2026, 12, 5)  # a Saturday; 2027's data is missing since 1 November
    while day <= D(2027, 1, 10):
        at_day(ctx, day)
        before = len(await _office_messages(session))
        await queue_holiday_warning(ctx, await holiday_warning(ctx))
        await session.commit()
        if len(await _office_messages(session)) > before:
            sent.append(day)
        day += dt.timedelta(days=1)
    assert sent == [
        D(2026, 12, 7),
        D(2026, 12, 14),
        D(2026, 12, 21),
        D(2026, 12, 28),
        D(2027, 1, 4),
    ]
