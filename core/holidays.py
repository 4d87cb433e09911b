"""Loading a year's official holiday arrangement, and telling admins when it is missing."""

from __future__ import annotations

from core.changes import Ctx, record
from core.deadlines import recompute_provisional
from core.messages import Destination, OutMessage
from core.models import HolidayYear
from core.outbox import enqueue
from core.workdays import PROVISIONAL_COUNT, HolidayFile


async def has_holiday_year(ctx: Ctx, year: int) -> bool:
    return await ctx.session.get(HolidayYear, year) is not None


async def load_holiday_year(ctx: Ctx, hf: HolidayFile) -> int:
    """Store (or replace) the year's data, then recompute provisional deadlines; returns how
    many deadlines changed."""
    row = await ctx.session.get(HolidayYear, hf.year)
    replaced = row is not None
    if row is None:
        row = HolidayYear(year=hf.year, loaded_at=ctx.clock.now())
        ctx.session.add(row)
    row.holidays = sorted(d.isoformat() for d in hf.holidays)
    row.workdays = sorted(d.isoformat() for d in hf.workdays)
    row.source, row.loaded_at = hf.source, ctx.clock.now()
    await ctx.session.flush()
    await record(
        ctx,
        "holidays.loaded",
        f"holidays:{hf.year}",
        {
            "year": hf.year,
            "holidays": len(hf.holidays),
            "workdays": len(hf.workdays),
            "source": hf.source,
            "replaced": replaced,
        },
    )
    ctx.calendar = None  # the next work_calendar() call reloads with this year
    return await recompute_provisional(ctx)


async def holiday_warning(ctx: Ctx) -> str | None:
    """For admins: the arrangement of the year under way, or from 1 November of the next, is
    not loaded yet (a read: the daily tick's, before its claim, and the setup check's)."""
    missing = (await ctx.work_calendar()).missing_years(ctx.clock.today())
    if not missing:
        return None
    years = "、".join(str(year) for year in missing)
    return (
        f"尚未导入 {years} 年节假日安排。涉及 {years} 年的期限和逾期天数{PROVISIONAL_COUNT}"
        "（1月1日、5月1日至2日、10月1日至3日），春节、清明节、端午节、中秋节和调休上班日未计，"
        f"并标注“暂按周一至周五计算”。国务院办公厅发布 {years} 年部分节假日安排的通知后，"
        f"请管理员用 `lianjian holidays load 文件` 导入，系统将自动重算这些期限。"
    )


async def queue_holiday_warning(ctx: Ctx, text: str | None) -> None:
    """The daily tick's write, in its claim's transaction: the office hears the warning on a
    working day, at most once a calendar week (a daily repeat of the same words was noise)."""
    today = ctx.clock.today()
    if not text or not (await ctx.work_calendar()).is_workday(today):
        return
    year, week, _ = today.isocalendar()
    await enqueue(
        ctx.session,
        Destination.office(),
        OutMessage.md("节假日数据提醒", text),
        now=ctx.clock.now(),
        key=f"holiday-warning:{year}-W{week:02d}",
    )
