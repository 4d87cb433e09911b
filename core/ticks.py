"""Scheduler support: a daily tick (nudges, the leaders' summary, warnings) runs once per Chinese
calendar day, and the nudge, summary and plan ticks only on working days (make-up days included).

The claim is a row in `scheduled_run` inserted in the tick's own transaction: if the tick fails,
the rollback removes the claim and the next trigger or start-up tries again; if it commits, a
second process, a restart's catch-up or a coalesced trigger finds the row and skips. See
docs/architecture.md §4 (scheduler).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from core.changes import Ctx
from core.models import ScheduledRun


async def is_working_day(ctx: Ctx, day: dt.date) -> bool:
    return (await ctx.work_calendar()).is_workday(day)


async def ran_daily_tick(ctx: Ctx, job: str, day: dt.date) -> bool:
    """Whether `job` has a committed claim for `day` (a read: the claim still decides)."""
    found = await ctx.session.scalar(
        select(ScheduledRun.job).where(ScheduledRun.job == job, ScheduledRun.day == day)
    )
    return found is not None


async def claim_daily_tick(ctx: Ctx, job: str, day: dt.date) -> bool:
    """True if this caller runs `job` for `day`; False if it already ran (or is running in
    another process, which then holds the row's key until it commits or rolls back)."""
    dialect = ctx.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(ScheduledRun)
        .values(job=job, day=day, ran_at=ctx.clock.now())
        .on_conflict_do_nothing(index_elements=["job", "day"])
        .returning(ScheduledRun.job)
    )
    return (await ctx.session.scalar(stmt)) is not None
