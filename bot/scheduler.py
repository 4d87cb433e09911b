"""Cron ticks (design §2, last paragraph): nudges, daily summaries, invitation expiry and the
holiday-data warning, on Chinese wall-clock times.

Every job runs in its own session and commits; the idempotency keys live in core, so two
`serve` processes, a restart, or the catch-up run at start-up never send anything twice. The
core functions are imported inside the jobs so the server starts even while one is missing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.services import Services
from core.changes import Ctx
from core.messages import Destination, OutMessage
from core.outbox import enqueue

log = logging.getLogger(__name__)

JobFn = Callable[[Ctx], Awaitable[None]]


async def nudges(ctx: Ctx) -> None:
    from core.obligations import enqueue_nudges

    await enqueue_nudges(ctx, ctx.clock.today())


async def summaries(ctx: Ctx) -> None:
    from core.summary import enqueue_daily_summaries

    await enqueue_daily_summaries(ctx, ctx.clock.today())


async def invitation_expiry(ctx: Ctx) -> None:
    from core.tasks import expire_invitations

    await expire_invitations(ctx)


async def holiday_warning(ctx: Ctx) -> None:
    """core.holidays.holiday_warning says whether next year's holiday data is missing; the
    office hears it at most once a day."""
    from core.holidays import holiday_warning as warning_text

    text = await warning_text(ctx)
    if text:
        await enqueue(ctx.session, Destination.office(), OutMessage.md("节假日数据提醒", text),
                      now=ctx.clock.now(), key=f"holiday-warning:{ctx.clock.today().isoformat()}")


@dataclass(frozen=True)
class Job:
    name: str
    fn: JobFn
    at: str | None  # "HH:MM" daily; None = every `every_minutes`
    every_minutes: int = 0

    def due(self, local_now: dt.datetime) -> bool:
        """For the catch-up run: has today's run time passed (interval jobs: always)?"""
        if self.at is None:
            return True
        hour, minute = (int(x) for x in self.at.split(":"))
        return (local_now.hour, local_now.minute) >= (hour, minute)

    def trigger(self, tz: ZoneInfo) -> CronTrigger:
        if self.at is None:
            return CronTrigger(minute=f"*/{self.every_minutes}", timezone=tz)
        hour, minute = self.at.split(":")
        return CronTrigger(hour=int(hour), minute=int(minute), timezone=tz)


def jobs(services: Services) -> list[Job]:
    cfg = services.settings.scheduler
    return [
        Job("nudges", nudges, cfg.nudge_time),
        Job("summaries", summaries, cfg.summary_time),
        Job("invitation_expiry", invitation_expiry, None, cfg.invitation_expiry_minutes),
        Job("holiday_warning", holiday_warning, cfg.holiday_warning_time),
    ]


async def run_job(services: Services, job: Job) -> bool:
    """One job in its own transaction; failures are logged, never raised (the next tick or
    the next start-up tries again)."""
    try:
        async with services.sessionmaker() as session:
            ctx = Ctx(session=session, clock=services.clock, rules=services.rules,
                      actor_label="system:scheduler")
            await job.fn(ctx)
            await session.commit()
    except Exception:
        log.exception("scheduled job %s failed", job.name)
        return False
    return True


async def run_due_jobs_once(services: Services, now: dt.datetime) -> dict[str, bool]:
    """Run every job whose time today has passed (used at start-up to catch up, and by
    tests). Returns job name → succeeded."""
    local = now.astimezone(ZoneInfo(services.settings.scheduler.timezone))
    return {job.name: await run_job(services, job) for job in jobs(services) if job.due(local)}


def start_scheduler(services: Services) -> AsyncIOScheduler:
    """Must be called with the event loop running (APScheduler binds to it)."""
    tz = ZoneInfo(services.settings.scheduler.timezone)
    scheduler = AsyncIOScheduler(timezone=tz)
    for job in jobs(services):
        scheduler.add_job(run_job, job.trigger(tz), args=(services, job), id=job.name, name=job.name,
                          coalesce=True, max_instances=1, misfire_grace_time=3600)
    scheduler.start()
    return scheduler
