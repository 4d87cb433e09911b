"""Inspection dates and the result deadline that counts from them: an inspection lies between
the draw's lock and the task window's end (or the extension the lead recorded with a reason,
000 §五.3), never in the future; results are due 20 working days after it (000 §十, 001 第十六条
(三)), and the entry and the leaders' summary judge lateness from the same date."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.clock import CHINA_TZ, china_noon
from core.errors import PermissionDenied, ValidationFailed
from core.inspection import extend_window, record_inspection_date
from core.models import AuditEvent, Draw
from core.result_entry import submit_result
from core.summary import daily_summary
from tests.case_factories import (
    ResultFields,
    acting,
    at_day,
    at_time,
    build_world,
    enter_other_parts,
    snapshot,
)
from tests.dispatch_support import bodies, make_dispatcher, send, text_event

D = dt.date
NO_PROBLEM: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}


async def _lock_draw(session: AsyncSession, task_id: int, task_code: str, on: dt.date) -> None:
    session.add(
        Draw(
            code=f"{task_code}-T1",
            task_id=task_id,
            kind="targets",
            task_code=task_code,
            state="locked",
            commitment="0" * 64,
            pool_hash="0" * 64,
            pool_size=1,
            frozen_at=china_noon(on),
            locked_at=china_noon(on),
        )
    )
    await session.commit()


async def test_an_entry_is_late_from_the_inspection_date_and_the_summary_agrees(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §十: 检查之日起 20 个工作日内录入. Inspected 3-19, entered 5-20: late, though the
    window's own deadline (4-29) would also say so; the summary counts the same case late."""
    w = await build_world(session)  # window 2026-03-02 … 2026-03-31
    at_day(ctx, D(2026, 4, 20))  # inspected 3-19 → due 4-17 (Qingming 4-4…4-6 off)
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(acting(ctx, w.a1), w.case.code, **NO_PROBLEM, inspected_on=D(2026, 3, 19))
    await session.commit()
    submitted = (
        await session.scalars(
            select(AuditEvent.data).where(AuditEvent.action == "case.result.submitted")
        )
    ).one()
    assert (submitted["late"], submitted["result_due_on"]) == (True, "2026-04-17")
    [task] = (await daily_summary(ctx, D(2026, 4, 20))).tasks
    assert (task.late, task.on_time) == (1, 0)


async def test_an_entry_within_20_working_days_of_the_inspection_is_on_time_everywhere(
    ctx: Ctx, session: AsyncSession
) -> None:
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 30))
    await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 27))
    await enter_other_parts(session, w.case.code, w.a2, ctx.clock.now())
    await submit_result(acting(ctx, w.a2), w.case.code, **NO_PROBLEM)
    await session.commit()
    submitted = (
        await session.scalars(
            select(AuditEvent.data).where(AuditEvent.action == "case.result.submitted")
        )
    ).one()
    assert submitted["late"] is False
    [task] = (await daily_summary(ctx, D(2026, 3, 30))).tasks
    assert (task.late, task.on_time) == (0, 1)


async def test_an_inspection_before_the_lock_or_after_the_window_is_refused(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §五.3: inspections happen within the task's time; the list is locked first."""
    w = await build_world(session)
    await _lock_draw(session, w.task.id, w.task.code, D(2026, 3, 5))
    at_day(ctx, D(2026, 4, 20))
    before = await snapshot(session)
    with pytest.raises(ValidationFailed, match="早于检查对象名单锁定之日（2026年3月5日）"):
        await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 4))
    with pytest.raises(
        ValidationFailed, match=r"晚于任务检查时间（至 2026年3月31日）.*延期 LJ-2026-001"
    ):
        await submit_result(
            acting(ctx, w.a1), w.case.code, **NO_PROBLEM, inspected_on=D(2026, 4, 20)
        )
    with pytest.raises(ValidationFailed, match="不能晚于今天"):
        await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 4, 21))
    await session.rollback()
    assert await snapshot(session) == before


async def test_the_lead_extends_the_window_with_a_reason_and_later_dates_are_accepted(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §五.3: only the lead extends, in writing; participants are told."""
    w = await build_world(session)
    code, case_code = w.task.code, w.case.code
    at_day(ctx, D(2026, 4, 20))
    with pytest.raises(PermissionDenied):
        await extend_window(
            acting(ctx, w.other_liaison), code, D(2026, 4, 30), "部分企业停产，需顺延检查时间"
        )
    with pytest.raises(ValidationFailed, match="延期理由"):
        await extend_window(acting(ctx, w.lead_liaison), code, D(2026, 4, 30), "顺延")
    with pytest.raises(ValidationFailed, match="标点、空格不计"):  # no reason in writing
        await extend_window(acting(ctx, w.lead_liaison), code, D(2026, 4, 30), "。" * 12)
    await extend_window(
        acting(ctx, w.lead_liaison), code, D(2026, 4, 30), "部分企业停产，需顺延检查时间"
    )
    await session.commit()
    due = await record_inspection_date(acting(ctx, w.a1), case_code, D(2026, 4, 20))
    await session.commit()
    assert due.day == D(2026, 5, 20)  # 20 working days after 4-20: 劳动节 5-1…5-5 off, 5-9 worked
    event = (
        await session.scalars(
            select(AuditEvent.data).where(AuditEvent.action == "task.window_extended")
        )
    ).one()
    assert event["to"] == "2026-04-30" and "停产" in event["reason"]


@pytest.mark.parametrize(
    ("entered_china", "late"),
    [(dt.datetime(2026, 4, 17, 23, 30), False), (dt.datetime(2026, 4, 18, 0, 30), True)],
)
async def test_the_summary_judges_an_entry_by_its_china_day(
    ctx: Ctx, session: AsyncSession, entered_china: dt.datetime, late: bool
) -> None:
    """000 §十: due 4-17 (inspected 3-19). At 00:30 on 4-18 in China it is still 4-17 in UTC,
    where the database keeps times: the summary's count must still say late."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 20))
    await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 19))
    at_time(ctx, entered_china.replace(tzinfo=CHINA_TZ))
    await enter_other_parts(session, w.case.code, w.a2, ctx.clock.now())
    await submit_result(acting(ctx, w.a2), w.case.code, **NO_PROBLEM)
    await session.commit()
    [task] = (await daily_summary(ctx, D(2026, 4, 20))).tasks
    assert (task.late, task.on_time) == (int(late), int(not late))


async def test_a_refused_date_without_its_year_says_the_year_it_was_read_in(
    sessionmaker, clock
) -> None:
    """000 §五.3 (inspections within the window): on 3 December `检查 … 12月20日` was refused as
    before the window with no word that 12月20日 was read as last year's; the refusal names
    the date read, for 检查 and for 提交 alike."""
    async with sessionmaker() as s:
        w = await build_world(s, window_start=D(2026, 12, 1), window_end=D(2026, 12, 31))
    clock.set(china_noon(D(2026, 12, 3)))
    d = make_dispatcher(sessionmaker, clock)
    for typed in (f"检查 {w.case.code} 12月20日", f"提交 {w.case.code} 未发现问题 12月20日"):
        text = bodies(await send(sessionmaker, d, text_event(w.a1.code, typed)))
        assert text.startswith("检查日期早于任务检查时间（2026年12月1日 至 2026年12月31日）"), text
        assert "（“12月20日”未写年份，按 2025年12月20日 理解；" in text


async def test_words_after_the_date_of_a_result_are_named_not_the_date(sessionmaker, clock) -> None:
    """`提交 … 未发现问题 2026-03-04 多余` called the date an unknown result: the reply says the
    date goes last and names the words after it as not understood."""
    async with sessionmaker() as s:
        w = await build_world(s)
    clock.set(china_noon(D(2026, 3, 5)))
    d = make_dispatcher(sessionmaker, clock)
    typed = f"提交 {w.case.code} 未发现问题 2026-03-04 多余"
    text = bodies(await send(sessionmaker, d, text_event(w.a1.code, typed)))
    assert text.startswith("检查日期“2026-03-04”须写在最后，其后的“多余”无法识别"), text
    assert f"例如：提交 {w.case.code} 未发现问题 2026-03-04" in text


async def test_a_date_before_the_window_says_when_to_inspect_and_what_to_do_000_s5_3(
    sessionmaker, clock
) -> None:
    """000 §五.3 (inspections within the window): `提交 … 今天` on 2 December, the window
    starting the 15th, said only that the date was early. The refusal names the window and the
    next step: inspect within it, record the visit with 检查 on the day, ask the lead to start
    earlier."""
    async with sessionmaker() as s:
        w = await build_world(s, window_start=D(2026, 12, 15), window_end=D(2026, 12, 31))
    clock.set(china_noon(D(2026, 12, 2)))
    d = make_dispatcher(sessionmaker, clock)
    typed = f"提交 {w.case.code} 未发现问题 今天"
    text = bodies(await send(sessionmaker, d, text_event(w.a1.code, typed)))
    assert "检查日期早于任务检查时间（2026年12月15日 至 2026年12月31日）" in text, text
    assert f"检查当天发送“检查 {w.case.code} 检查日期”登记" in text, text
    assert "请联系牵头部门" in text, text
