"""检查 案件号 日期 — the group records the day it went on site, and the 20 working days for the
result count from it (000 §十, 001 第十六条(三)); 延期 任务编号 日期 理由 — the lead extends the
inspection window with a written reason (000 §五.3)."""

from __future__ import annotations

from core.inspection import extend_window, record_inspection_date
from handlers.base import Args, HandlerCtx, UsageError
from handlers.results import day_named, read_as


async def inspected(ctx: HandlerCtx, args: Args) -> None:
    code, words = args.code(0), args.words
    if code is None or len(words) < 2:
        raise UsageError
    day = day_named(words[1], ctx.clock.today())
    with read_as(words[1], day):
        due = await record_inspection_date(ctx.core, code, day)
    await ctx.say("cmd_inspected.md.j2", case_code=code, inspected_on=day, due=due.label())


async def extend(ctx: HandlerCtx, args: Args) -> None:
    code, words, reason = args.code(0), args.words, args.rest_after(2)
    if code is None or len(words) < 2 or not reason:
        raise UsageError
    # a day to come: 今天/昨天 are no extension, 1月15日 typed in December is next January
    to = day_named(
        words[1], ctx.clock.today(), "延期后的截止日期", "4月30日、04-30、2026-04-30", ahead=True
    )
    task = await extend_window(ctx.core, code, to, reason)
    # a window may end on a rest day (a visit then is allowed): said, not refused
    before = (await ctx.core.work_calendar()).workday_before(to)
    await ctx.say("cmd_window_extended.md.j2", task=task, before=before)
