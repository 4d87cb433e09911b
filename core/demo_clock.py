"""The demo clock (`serve --demo` only): real time plus an offset that the simulator's 快进
control moves forward, so a newcomer can confirm a draw after its beacon is published and see
deadlines and nudges come due in one sitting.

It never goes back. Every move is an audited change, and the offset is read back from the
newest such event at start-up, so a restart does not return the demo to an earlier day.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.changes import Ctx, record
from core.clock import CHINA_TZ, Clock
from core.draws.beacon import beacon_day, beacon_ready_at
from core.errors import ValidationFailed
from core.models import AuditEvent, Draw
from core.states import DrawState

ACTION = "demo.clock_advanced"
MAX_WORKDAYS = 60


class DemoClock:
    """A Clock: the base clock's time plus a forward offset."""

    def __init__(self, base: Clock) -> None:
        self.base = base
        self.offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return self.base.now() + self.offset

    def today(self) -> dt.date:
        return self.now().astimezone(CHINA_TZ).date()

    def move_to(self, at: dt.datetime) -> None:
        self.offset = max(self.offset, at - self.base.now())


async def restore_offset(ctx: Ctx, clock: DemoClock) -> None:
    offset_s = await ctx.session.scalar(
        select(AuditEvent.data["offset_s"].as_float())
        .where(AuditEvent.action == ACTION)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    if offset_s is not None:
        clock.offset = dt.timedelta(seconds=offset_s)


async def after_beacon(ctx: Ctx) -> dt.datetime:
    """Just after the public beacon of the newest frozen draw is published."""
    source = await ctx.session.scalar(
        select(Draw.beacon_source)
        .where(Draw.state == DrawState.FROZEN, Draw.uses_beacon)
        .order_by(Draw.id.desc())
        .limit(1)
    )
    day = beacon_day(source or "")
    if day is None:
        raise ValidationFailed("没有等待公开信标的抽取：请先让牵头部门发送“抽取 任务编号”")
    return beacon_ready_at(day, ctx.rules) + dt.timedelta(minutes=1)


async def after_workdays(ctx: Ctx, n: int) -> dt.datetime:
    """The same time of day, n working days later (holidays and make-up days counted)."""
    if not 1 <= n <= MAX_WORKDAYS:
        raise ValidationFailed(f"快进的工作日数应在 1 到 {MAX_WORKDAYS} 之间")
    now = ctx.clock.now().astimezone(CHINA_TZ)
    day = (await ctx.work_calendar()).add_workdays(now.date(), n).day
    return dt.datetime.combine(day, now.timetz())


async def record_advance(ctx: Ctx, clock: DemoClock, to: dt.datetime, why: str) -> None:
    """Audit a move to `to`; the caller moves the clock once this transaction commits."""
    now = clock.now()
    if to <= now:
        raise ValidationFailed("演示时钟只能向后快进：那个时间已经过去了")
    offset = clock.offset + (to - now)
    await record(
        ctx,
        ACTION,
        "demo:clock",
        {
            "from": now.isoformat(),
            "to": to.isoformat(),
            "why": why,
            "offset_s": offset.total_seconds(),
        },
    )
