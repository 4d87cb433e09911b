"""A part entered in time stays in time (001 第十六条(三): results are entered within 20 working
days of the inspection, 未在规定时间内录入数据的，视为未完成检查任务; 004 第二十四条 alike): a
reviewer's return after the deadline (004 第十九条: 退回检查小组重新核实…再次上报审核) does not
make it late. Timeliness is the department's first entry of the case, in the evaluation, the
summary and every message; the re-entry a return asks for has its own short window
(Rules.reentry_workdays after the return, or the case's deadline if later), nudged, never
counted as 逾期录入."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.obligations.due import due_items
from core.progress import task_progress
from core.rules import Rules
from core.summary import chart_data
from tests.case_factories import World, build_world
from tests.dispatch_support import bodies, make_dispatcher, send, text_event

D = dt.date
CASE = "LJ-2026-001-001"
INSPECTED = "2026-03-10"  # results due 2026-04-08 (20 working days, 001 第十六条(三))


async def _say(sm: async_sessionmaker[AsyncSession], clock: FixedClock, who: str, text: str) -> str:
    return bodies(await send(sm, make_dispatcher(sm, clock), text_event(who, text)))


async def _world(sm: async_sessionmaker[AsyncSession]) -> World:
    async with sm() as s:
        return await build_world(s)


async def _returned_after_the_deadline(
    sm: async_sessionmaker[AsyncSession], clock: FixedClock
) -> tuple[World, str, str]:
    """Both parts entered on 3-12 (due 4-08), 市场监管 approves; on 5-11 卫健委 returns its own
    part, its inspector resubmits, 市场监管 returns it again: the world, what the resubmission
    and the second return sent."""
    w = await _world(sm)
    clock.set(china_noon(D(2026, 3, 12)))
    for who in (w.a1, w.b1):
        await _say(sm, clock, who.code, f"提交 {CASE} 未发现问题 {INSPECTED}")
    assert "已审核通过" in await _say(sm, clock, w.lead_liaison.code, f"通过 {CASE}")
    clock.set(china_noon(D(2026, 5, 11)))  # a month after the deadline
    await _say(sm, clock, w.other_liaison.code, f"退回 {CASE} 县卫生健康委员会 缺记录")
    resubmitted = await _say(sm, clock, w.b1.code, f"提交 {CASE} 未发现问题 {INSPECTED}")
    returned = await _say(sm, clock, w.lead_liaison.code, f"退回 {CASE} 县卫生健康委员会 仍缺记录")
    return w, resubmitted, returned


async def test_a_return_after_the_deadline_keeps_an_on_time_part_on_time_001_art16(
    sessionmaker, clock
) -> None:
    """001 第十六条(三), 004 第十九条, 第二十四条 — the tester's sequence through chat: both parts
    entered on 3-12 (due 4-08), 市场监管 approves; on 5-11 卫健委 returns its own part, its
    inspector resubmits, 市场监管 returns it again. No reviewer is told 逾期录入, neither 案件
    nor 我的检查 says 已逾期 inside the re-entry window, and 年度考核 counts both parts 按时录入."""
    w, resubmitted, returned = await _returned_after_the_deadline(sessionmaker, clock)
    assert "结果待审核" in resubmitted
    assert "逾期" not in resubmitted, resubmitted
    assert "逾期" not in returned, returned

    case = await _say(sessionmaker, clock, w.a1.code, f"案件 {CASE}")
    assert "已退回待重新录入" in case and "已逾期" not in case and "逾期" not in case, case
    mine = await _say(sessionmaker, clock, w.b1.code, "我的检查")
    # the re-entry window: 5 working days after the return (Rules.reentry_workdays)
    assert "重新录入期限 2026年5月18日" in mine and "已逾期" not in mine, mine

    report = await _say(sessionmaker, clock, w.lead_leader.code, "年度考核 2026")
    for name in ("县市场监督管理局", "县卫生健康委员会"):
        line = next(x for x in report.split("\n") if f"**{name}**" in x)
        assert "按时录入 1，逾期录入 0，逾期未录入 0" in line, line

    clock.set(china_noon(D(2026, 5, 19)))  # the re-entry window has passed
    mine = await _say(sessionmaker, clock, w.b1.code, "我的检查")
    assert "重新录入期限 2026年5月18日 **已逾期**" in mine, mine
    report = await _say(sessionmaker, clock, w.lead_leader.code, "年度考核 2026")
    line = next(x for x in report.split("\n") if "**县卫生健康委员会**" in x)
    assert "按时录入 1，逾期录入 0，逾期未录入 0" in line, line  # judged by its first entry


async def test_a_part_first_entered_late_stays_late_after_a_return_001_art16(
    sessionmaker, clock
) -> None:
    """001 第十六条(三), 004 第二十四条: 卫健委 first enters after the deadline — the reviewers are
    told 逾期录入 and 年度考核 counts it 逾期录入; a return and an in-window re-entry do not
    make it on time, and 市场监管's on-time part is not called late."""
    w = await _world(sessionmaker)
    clock.set(china_noon(D(2026, 3, 12)))
    await _say(sessionmaker, clock, w.a1.code, f"提交 {CASE} 未发现问题 {INSPECTED}")
    clock.set(china_noon(D(2026, 4, 20)))
    late = await _say(sessionmaker, clock, w.b1.code, f"提交 {CASE} 未发现问题 {INSPECTED}")
    assert "⚠ 逾期录入（期限 2026年4月8日" in late, late
    await _say(sessionmaker, clock, w.lead_liaison.code, f"退回 {CASE} 县卫生健康委员会 缺记录")
    again = await _say(sessionmaker, clock, w.b1.code, f"提交 {CASE} 未发现问题 {INSPECTED}")
    assert "⚠ 逾期录入" in again, again
    case = await _say(sessionmaker, clock, w.a1.code, f"案件 {CASE}")
    assert "县市场监督管理局 已录入（2026年3月12日）" in case, case
    report = await _say(sessionmaker, clock, w.lead_leader.code, "年度考核 2026")
    line = next(x for x in report.split("\n") if "**县卫生健康委员会**" in x)
    assert "按时录入 0，逾期录入 1，逾期未录入 0" in line, line
    line = next(x for x in report.split("\n") if "**县市场监督管理局**" in x)
    assert "按时录入 1，逾期录入 0" in line, line


async def test_a_returned_part_is_nudged_against_its_re_entry_window_004_art19(
    sessionmaker, clock
) -> None:
    """004 第十九条 (退回…再次上报审核), 001 第十六条(三): after the return on 5-11 卫健委's
    part is owed by 5-18 (reentry_workdays), not overdue since 4-08 — no escalation to its
    leader before the window has passed; the progress bars and the leaders' chart agree."""
    w, _, _ = await _returned_after_the_deadline(sessionmaker, clock)
    async with sessionmaker() as s:
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        [entry] = [o for o in await due_items(ctx, D(2026, 5, 11)) if o.kind == "result_entry"]
        assert (entry.department_id, entry.due, entry.days_left) == (w.other.id, D(2026, 5, 18), 5)
        progress = await task_progress(ctx, w.task.code)
        assert progress["overdue"] == 0 and all(d["overdue"] == 0 for d in progress["departments"])
        assert (await chart_data(ctx, D(2026, 5, 11))).overdue_by_department() == []

        [entry] = [o for o in await due_items(ctx, D(2026, 5, 19)) if o.kind == "result_entry"]
        assert entry.overdue
        assert (await chart_data(ctx, D(2026, 5, 19))).overdue_by_department() == [
            ("县卫生健康委员会", 1)
        ]


async def test_after_a_whole_return_the_waiting_part_is_told_its_re_entry_window_004_art19(
    sessionmaker, clock
) -> None:
    """004 第十九条, 001 第十六条(三): the whole result returned on 5-11 (past the 4-08
    deadline); 市场监管 re-enters, and 卫健委's inspector is told its part is due by 5-18 (the
    re-entry window), not that the deadline passed a month ago."""
    w = await _world(sessionmaker)
    clock.set(china_noon(D(2026, 3, 12)))
    for who in (w.a1, w.b1):
        await _say(sessionmaker, clock, who.code, f"提交 {CASE} 未发现问题 {INSPECTED}")
    clock.set(china_noon(D(2026, 5, 11)))
    await _say(sessionmaker, clock, w.lead_liaison.code, f"退回 {CASE} 缺少现场照片")
    rows = await send(
        sessionmaker,
        make_dispatcher(sessionmaker, clock),
        text_event(w.a1.code, f"提交 {CASE} 未发现问题 {INSPECTED}"),
    )
    waiting = bodies([r for r in rows if r.destination.get("officer_id") == w.b1.id])
    assert "结果录入期限：2026年5月18日。" in waiting and "已逾期" not in waiting, waiting
