"""The lead's extension of a task's inspection window (000 §五.3: 检查时间…确需延长的) moves
everything counted from the window's end: the window shown, and the result deadline of every
case not yet inspected (000 §十: 检查活动完成后20个工作日内录入) with its nudges, overdue
reports and summaries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pages import routes
from bot.pages.links import page_link
from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.evaluation import year_report
from core.holidays import load_holiday_year
from core.inspection import extend_window, window_deadline
from core.models import AuditEvent, Case, JointTask
from core.obligations.due import due_items
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from core.states import CaseState
from core.summary import daily_summary
from core.workdays import HolidayFile
from tests.case_factories import World, acting, at_day, build_world, enter_other_parts
from tests.dispatch_support import LONG_REASON, audit_rows, chat, too_long
from tests.server_helpers import make_services, page_text, pages_app

D = dt.date
WINDOW_DUE = D(2026, 4, 29)  # 20 working days after the window's end 3-31 (Qingming 4-4…4-6 off)
EXTENDED_DUE = D(2026, 6, 1)  # 20 after 4-30: 劳动节 5-1…5-5 off, 5-9 worked


async def _locked_world(sm: async_sessionmaker[AsyncSession]) -> World:
    """One case not yet inspected, its result due from the window's end as the lock stored it."""
    async with sm() as s:
        w = await build_world(s)
        case = await s.get(Case, w.case.id)
        assert case is not None
        case.result_due_on = WINDOW_DUE
        await s.commit()
    return w


async def test_000_5_3_an_extension_moves_the_window_shown_and_undated_result_deadlines(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """000 §五.3 and §十: after 延期 the task shows the new window, the case not yet inspected is
    due 20 working days after it, and nothing is overdue before then (nudges, summary)."""
    w = await _locked_world(sessionmaker)
    clock.set(china_noon(D(2026, 3, 30)))
    reply = await chat(
        sessionmaker, clock, w.lead_liaison.code, "延期 LJ-2026-001 4月30日 部分企业停产需顺延检查"
    )
    assert "检查截止日延至 **2026年4月30日**" in reply
    assert "结果录入期限相应顺延至 2026年6月1日" in reply  # the participants' notice
    for who in (w.a1, w.outsider):
        shown = await chat(sessionmaker, clock, who.code, "任务 LJ-2026-001")
        assert "检查时间：2026年3月2日 至 2026年4月30日" in shown
    shown = await chat(sessionmaker, clock, w.a1.code, "案件 LJ-2026-001-001")
    assert "结果录入期限：2026年6月1日" in shown
    async with sessionmaker() as s:
        event = (
            await s.scalars(
                select(AuditEvent.data).where(AuditEvent.action == "task.window_extended")
            )
        ).one()
        assert event["result_due_on"] == EXTENDED_DUE.isoformat()
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        after_old_due = D(2026, 5, 6)
        entries = [o for o in await due_items(ctx, after_old_due) if o.kind == "result_entry"]
        assert {(o.due, o.overdue) for o in entries} == {(EXTENDED_DUE, False)}
        [task] = (await daily_summary(ctx, after_old_due)).tasks
        assert task.overdue == 0


async def test_000_5_3_an_extension_reason_over_2000_characters_is_refused_storing_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """000 §五.3: 延期's reason is a written reason, checked as every other (at most 2,000
    characters): a longer one is refused saying what to do, the window stays."""
    w = await _locked_world(sessionmaker)
    clock.set(china_noon(D(2026, 3, 30)))
    reply = await chat(
        sessionmaker, clock, w.lead_liaison.code, f"延期 LJ-2026-001 4月30日 {LONG_REASON}"
    )
    assert too_long("延期理由") in reply
    assert await audit_rows(sessionmaker, "task.window_extended") == []
    async with sessionmaker() as s:
        task = await s.get(JointTask, w.task.id)
        assert task is not None and task.window_extended_to is None
        assert task.window_extension_reason == ""
        case = await s.get(Case, w.case.id)
        assert case is not None and case.result_due_on == WINDOW_DUE


async def test_000_10_004_18_an_extension_leaves_the_deadline_of_a_result_already_in(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """000 §十: only a case still open for entry is due from the window's end. One whose result
    went in without a visit (注销, 004 第十八条: no inspection date) and was published keeps
    the deadline it was entered against: 延期 neither rewrites it nor makes a late entry on
    time."""
    w = await _locked_world(sessionmaker)
    clock.set(china_noon(D(2026, 3, 30)))
    async with sessionmaker() as s:
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        await enter_other_parts(s, w.case.code, w.a1, clock.now())
        await submit_result(
            acting(ctx, w.a1), w.case.code, codes=["9"], methods=[], followups=["无需后续处置"]
        )
        for reviewer in (w.other_liaison, w.lead_liaison):
            await review_result(acting(ctx, reviewer), w.case.code, True)
        await s.commit()
    await chat(
        sessionmaker, clock, w.lead_liaison.code, "延期 LJ-2026-001 4月30日 部分企业停产需顺延检查"
    )
    async with sessionmaker() as s:
        case = await s.get(Case, w.case.id)
        assert case is not None
        assert (case.state, case.inspected_on) == (CaseState.PUBLISHED, None)
        assert case.result_due_on == WINDOW_DUE


async def test_000_5_3_002_2_6_the_result_form_and_public_index_show_the_extended_window(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, aiohttp_client
) -> None:
    """000 §五.3, 002 二(六): after 延期 the result form the group fills in and the public task
    information show the window to its new last day, saying it was extended — not the window
    first planned while chat's 任务 shows the new one."""
    w = await _locked_world(sessionmaker)
    clock.set(china_noon(D(2026, 3, 30)))
    await chat(
        sessionmaker, clock, w.lead_liaison.code, "延期 LJ-2026-001 4月30日 部分企业停产需顺延检查"
    )
    services = make_services(sessionmaker, clock)
    client = await aiohttp_client(pages_app(services, routes(services)))
    links = {
        "/h5/result": page_link(services, w.a1.id, "result", f"case:{w.case.id}"),
        "/h5/documents": page_link(services, w.a1.id, "documents", f"task:{w.task.code}"),
    }
    shown = {
        page: await (await client.get(link.replace("http://127.0.0.1:8080", ""))).text()
        for page, link in links.items()
    }
    shown["/public/"] = await (await client.get("/public/", params={"year": "2026"})).text()

    for page, html in shown.items():
        text = page_text(html)
        assert "2026年3月2日 至 2026年4月30日（已延期）" in text, page
        assert "2026年3月31日" not in text, page


# A window ending mid-December 2026: its result deadlines fall in 2027, provisional (weekdays
# less 元旦) until that year's holidays are loaded, when recompute_provisional counts them again.
DEC_WINDOW = (D(2026, 12, 1), D(2026, 12, 15))
DEC_DUE = D(2027, 1, 13)  # 20 working days after 12-15, provisional
DEC_EXTENDED_TO = D(2026, 12, 31)
DEC_EXTENDED_DUE = D(2027, 1, 29)  # 20 working days after 12-31, provisional
# a test arrangement with Saturday 1-9 a make-up working day: each deadline one day earlier
HOLIDAYS_2027 = HolidayFile(
    2027, holidays=[D(2027, 1, 1)], workdays=[D(2027, 1, 9)], source="测试用节假日安排"
)


async def _december_world(ctx: Ctx) -> World:
    w = await build_world(ctx.session, window_start=DEC_WINDOW[0], window_end=DEC_WINDOW[1])
    due = window_deadline(await ctx.work_calendar(), ctx.rules, DEC_WINDOW[1])
    assert (due.day, due.provisional) == (DEC_DUE, True)
    w.case.result_due_on, w.case.result_due_provisional = due.day, due.provisional
    await ctx.session.commit()
    return w


async def _enter_situation(ctx: Ctx, w: World, day: dt.date) -> None:
    """注销 (code 9): a result without a visit, so no inspection date (004 第十八条)."""
    at_day(ctx, day)
    await enter_other_parts(ctx.session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(
        acting(ctx, w.a1), w.case.code, codes=["9"], methods=[], followups=["无需后续处置"]
    )
    await ctx.session.commit()


async def _counted(ctx: Ctx, w: World, day: dt.date) -> dict[str, tuple[int, int]]:
    """On time / late as the leaders' summary and the year report (each department) count it."""
    at_day(ctx, day)
    [task] = (await daily_summary(ctx, day)).tasks
    report = await year_report(ctx, 2026)
    rows = {d.code: (d.on_time, d.late) for d in report.departments}
    return {"summary": (task.on_time, task.late), "SJ": rows["SJ"], "WJ": rows["WJ"]}


async def _extend(ctx: Ctx, w: World, day: dt.date, to: dt.date) -> None:
    """The lead extends the window on `day` to `to` (000 §五.3); the case is read again."""
    at_day(ctx, day)
    await extend_window(acting(ctx, w.lead_liaison), w.task.code, to, "部分企业停产需顺延检查")
    await ctx.session.commit()
    await ctx.session.refresh(w.case)


async def _late_before_and_after_recount(ctx: Ctx, w: World, day: dt.date) -> None:
    """Late in the summary and the year report, and still late once 2027's holidays are loaded
    and its deadline is counted again from the window it was entered against (12-15: 12 working
    days in December, 1-1 off, then 1-4 … 1-8, the make-up 1-9, 1-11, 1-12), not from the
    extended one."""
    late = {"summary": (0, 1), "SJ": (0, 1), "WJ": (0, 1)}
    assert await _counted(ctx, w, day) == late
    await load_holiday_year(ctx, HOLIDAYS_2027)
    await ctx.session.commit()
    await ctx.session.refresh(w.case)
    assert (w.case.result_due_on, w.case.result_due_provisional) == (D(2027, 1, 12), False)
    assert await _counted(ctx, w, day) == late


@pytest.mark.parametrize(
    ("entered_on", "on_time"),
    [(D(2027, 1, 20), True), (D(2027, 2, 1), False)],
    ids=["inside-extended-deadline", "after-extended-deadline"],
)
async def test_000_10_001_16_3_a_result_without_a_visit_counts_by_the_extended_deadline(
    ctx: Ctx, entered_on: dt.date, on_time: bool
) -> None:
    """000 §十 (检查活动完成后20个工作日内…录入) and 001 第十六条(三) (检查结束之日起20个工作日内
    录入…未在规定时间内录入数据的，视为未完成检查任务), the window extended under 000 §五.3: a
    case with no inspection date (注销, 004 第十八条) is due 20 working days after the window's
    last day as extended. Entered after the first window's deadline but inside the extended
    one it is on time — in the leaders' summary, the year report (年度考核) and after
    recompute_provisional counts the 2027 deadlines again; entered after the extended
    deadline it is late in all three."""
    w = await _december_world(ctx)
    await _extend(ctx, w, D(2026, 12, 14), DEC_EXTENDED_TO)
    assert w.case.result_due_on == DEC_EXTENDED_DUE
    await _enter_situation(ctx, w, entered_on)
    expected = (1, 0) if on_time else (0, 1)
    counted = await _counted(ctx, w, D(2027, 2, 3))
    assert counted == {"summary": expected, "SJ": expected, "WJ": expected}
    await load_holiday_year(ctx, HOLIDAYS_2027)
    await ctx.session.commit()
    await ctx.session.refresh(w.case)
    # 1-1 off, 1-9 worked: 20 working days after 12-31 end on 1-28
    assert (w.case.result_due_on, w.case.result_due_provisional) == (D(2027, 1, 28), False)
    assert await _counted(ctx, w, D(2027, 2, 3)) == counted


async def test_000_10_001_16_3_an_extension_after_a_late_result_without_a_visit_leaves_it_late(
    ctx: Ctx,
) -> None:
    """000 §十, 001 第十六条(三): a result entered without a visit (注销) after its deadline is
    late (视为未完成检查任务). A later 延期 (000 §五.3) for the cases still open neither makes
    it on time in the leaders' summary and the year report, nor does recompute_provisional
    count its deadline from the extended window: it is counted again from the window it was
    entered against."""
    w = await _december_world(ctx)
    await _enter_situation(ctx, w, D(2027, 1, 14))
    await _extend(ctx, w, D(2027, 1, 15), D(2027, 1, 22))
    await _late_before_and_after_recount(ctx, w, D(2027, 1, 18))


async def test_000_5_3_004_18_an_extension_after_a_late_result_was_returned_leaves_it_late(
    ctx: Ctx,
) -> None:
    """000 §五.3, 000 §十, 004 第十八条: a 注销 entered without a visit after its deadline is
    late; returned by review (审核退回, open for entry again), a later 延期 for the cases not
    yet entered does not move its deadline — the summary and the year report count its first
    entry, and would call it on time against the extended window. Re-entered, it stays late;
    recompute_provisional counts it again from the window it was entered against."""
    w = await _december_world(ctx)
    await _enter_situation(ctx, w, D(2027, 1, 14))
    at_day(ctx, D(2027, 1, 15))
    await review_result(acting(ctx, w.lead_liaison), w.case.code, False, "注销证明材料未上传")
    await _extend(ctx, w, D(2027, 1, 15), D(2027, 1, 22))
    assert (w.case.state, w.case.result_due_on) == (CaseState.RETURNED, DEC_DUE)
    await _enter_situation(ctx, w, D(2027, 1, 18))
    await _late_before_and_after_recount(ctx, w, D(2027, 1, 19))


async def test_000_5_3_004_18_an_extension_after_a_late_part_without_a_visit_leaves_it_late(
    ctx: Ctx,
) -> None:
    """000 §五.3, 004 第十八条, 谁检查、谁录入: a department's part (注销) entered without a
    visit after the deadline is late for that department in the year report, though the case
    is still 部分录入 (open for entry) when the lead extends the window: 延期 does not move the
    deadline of a case with an entry in."""
    w = await _december_world(ctx)
    at_day(ctx, D(2027, 1, 14))
    await submit_result(
        acting(ctx, w.a1), w.case.code, codes=["9"], methods=[], followups=["无需后续处置"]
    )
    await _extend(ctx, w, D(2027, 1, 15), D(2027, 1, 22))
    assert (w.case.state, w.case.result_due_on) == (CaseState.PART_ENTERED, DEC_DUE)
    at_day(ctx, D(2027, 1, 19))
    report = await year_report(ctx, 2026)
    [sj] = [d for d in report.departments if d.code == "SJ"]
    assert (sj.on_time, sj.late) == (0, 1)


async def test_000_5_3_my_cases_say_a_visit_after_the_window_needs_its_extension(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """000 §五.3: after the window's last day `我的检查` still said 待检查 with the result deadline
    and no word that a visit now needs the lead's 延期 first (检查 and the result form refuse
    a later date, saying so); it says it for a case not yet inspected until the window is
    extended."""
    w = await _locked_world(sessionmaker)
    hint = "检查时间已于2026年3月31日结束，实地检查须牵头部门先发送“延期 LJ-2026-001 截止日期 理由”"
    clock.set(china_noon(D(2026, 3, 31)))
    assert hint not in await chat(sessionmaker, clock, w.a1.code, "我的检查")
    clock.set(china_noon(D(2026, 4, 1)))
    assert hint in await chat(sessionmaker, clock, w.a1.code, "我的检查")
    await chat(
        sessionmaker, clock, w.lead_liaison.code, "延期 LJ-2026-001 4月30日 部分企业停产需顺延检查"
    )
    assert "实地检查须牵头部门" not in await chat(sessionmaker, clock, w.a1.code, "我的检查")


async def test_000_5_3_an_extension_ending_on_a_rest_day_says_so_and_names_the_working_day(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """000 §五.3: a window may end on a rest day (a visit may be made then), but 延期 to one
    said nothing of it; the reply says the day is a rest day and names the last working day
    before it. A working day gets no such word."""
    w = await _locked_world(sessionmaker)
    clock.set(china_noon(D(2026, 3, 30)))
    reply = await chat(
        sessionmaker, clock, w.lead_liaison.code, "延期 LJ-2026-001 4月30日 部分企业停产需顺延检查"
    )
    assert "检查截止日延至 **2026年4月30日**" in reply and "休息日" not in reply, reply
    reply = await chat(
        sessionmaker, clock, w.lead_liaison.code, "延期 LJ-2026-001 5月2日 部分企业停产需顺延检查"
    )
    assert "检查截止日延至 **2026年5月2日**" in reply, reply
    assert "2026年5月2日是休息日" in reply and "最后一个工作日是 2026年4月30日" in reply, reply
