"""Cron ticks: nudges, daily summaries, invitation expiry and the holiday-data warning, on
Chinese wall-clock times (APScheduler, `[scheduler] timezone`).

Every job runs in its own session and commits. A daily job reads first (what is due, what to
draw, what to delete), then claims (job, day) in core (`core.ticks`) and writes in the claim's
transaction, so the cron trigger, the catch-up run at start-up and a second `serve` process run
it once a day between them, and a failure after the claim takes the claim with it (see
run_job); nudges, summaries and plan reminders run on working days only. The demo clock's
moves run each passed day's jobs at their times (run_passed_days). The core functions are
imported inside the jobs so the server starts even while one is missing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.services import Services
from core.changes import Ctx
from core.clock import FixedClock
from core.ticks import claim_daily_tick, is_working_day, ran_daily_tick

log = logging.getLogger(__name__)

JobFn = Callable[[Ctx], Awaitable[None]]
T = TypeVar("T")
# A daily job's reads, before its claim: what they found, as the writes to run after the claim
ReadsFirst = Callable[[Ctx], Awaitable[JobFn]]


def _writes(write: Callable[[Ctx, T], Awaitable[object]], found: T) -> JobFn:
    """`write` with what a job's reads found, to run in the claim's transaction."""

    async def run(ctx: Ctx) -> None:
        await write(ctx, found)

    return run


async def nudges(ctx: Ctx) -> JobFn:
    """What is due for whom and the digests; then their audit events and messages."""
    from core.nudges import plan_nudges, queue_nudges

    return _writes(queue_nudges, await plan_nudges(ctx, ctx.clock.today()))


async def summaries(ctx: Ctx) -> JobFn:
    """The leaders' summaries read and drawn; then the charts stored and the messages queued."""
    from core.summary import draw_daily_summaries, queue_daily_summaries

    return _writes(queue_daily_summaries, await draw_daily_summaries(ctx, ctx.clock.today()))


async def invitation_expiry(ctx: Ctx) -> None:
    from core.consultation.expiry import expire_invitations

    await expire_invitations(ctx)


async def holiday_warning(ctx: Ctx) -> JobFn:
    """Whether holiday data is missing; then the office's warning, on a working day, weekly."""
    from core.holidays import holiday_warning as warning_text
    from core.holidays import queue_holiday_warning

    return _writes(queue_holiday_warning, await warning_text(ctx))


def housekeeping(services: Services) -> ReadsFirst:
    """Daily clean-up: summary charts past `image_retention_days` that no queued message and
    no still-valid link needs are found, then deleted and audited (core.images)."""
    from bot.pages.links import PAGES

    keep_days = services.settings.scheduler.image_retention_days

    async def reads(ctx: Ctx) -> JobFn:
        from core.images import delete_pruned, prunable

        found = await prunable(ctx, keep_days=keep_days, links_valid_for=PAGES["image"][1])
        return _writes(delete_pruned, found)

    return reads


async def plan_reminders(ctx: Ctx) -> JobFn:
    """The plan notices due; then their audit events and messages."""
    from core.plan import due_plan_reminders, queue_plan_reminders

    return _writes(queue_plan_reminders, await due_plan_reminders(ctx))


@dataclass(frozen=True)
class Job:
    name: str
    fn: JobFn | None  # an interval job: its one transaction, no claim
    at: str | None  # "HH:MM" daily; None = every `every_minutes`
    every_minutes: int = 0
    workdays_only: bool = False  # nudges, summaries, plan: not on holidays, yes on make-up days
    reads: ReadsFirst | None = None  # a daily job: reads before the claim, writes after it

    def due(self, local_now: dt.datetime) -> bool:
        """For the catch-up run: has today's run time passed (interval jobs: always)?"""
        if self.at is None:
            return True
        return local_now.time() >= self.time_of_day()

    def time_of_day(self) -> dt.time:
        """A daily job's run time (`at`)."""
        hour, minute = (int(x) for x in (self.at or "").split(":"))
        return dt.time(hour, minute)

    def trigger(self, tz: ZoneInfo) -> CronTrigger:
        if self.at is None:
            return CronTrigger(minute=f"*/{self.every_minutes}", timezone=tz)
        at = self.time_of_day()
        return CronTrigger(hour=at.hour, minute=at.minute, timezone=tz)


def jobs(services: Services) -> list[Job]:
    cfg = services.settings.scheduler
    return [
        Job("nudges", None, cfg.nudge_time, workdays_only=True, reads=nudges),
        Job("summaries", None, cfg.summary_time, workdays_only=True, reads=summaries),
        Job("invitation_expiry", invitation_expiry, None, cfg.invitation_expiry_minutes),
        Job("holiday_warning", None, cfg.holiday_warning_time, reads=holiday_warning),
        Job(
            "plan_reminders",
            None,
            cfg.holiday_warning_time,
            workdays_only=True,
            reads=plan_reminders,
        ),
        Job("housekeeping", None, cfg.housekeeping_time, reads=housekeeping(services)),
    ]


async def _its_day(ctx: Ctx, job: Job) -> bool:
    """Daily jobs run once per day (some only on working days); this read spares a job's
    reads when it already ran, the claim after them decides."""
    if job.at is None:
        return True
    today = ctx.clock.today()
    if job.workdays_only and not await is_working_day(ctx, today):
        return False
    return not await ran_daily_tick(ctx, job.name, today)


async def run_job(services: Services, job: Job) -> bool | None:
    """One job in its own transaction: True when it ran, None when it was not its day or it
    already ran today, False when it failed (logged, never raised: the next tick or the next
    start-up tries again, since the failed transaction took its claim with it).

    The claim is a write: on SQLite it takes the one write lock until commit, and every
    callback's ack waits behind it. So a daily job does its `reads` first (the summaries: a
    second or more of queries and chart drawing; the nudges: what is due for whom across the
    open cases, and the digests; the plan reminders, the holiday warning, the pictures to
    prune) and ends that read transaction, then claims and writes what they found; two
    processes may both read, but only the claim's winner writes."""
    try:
        async with services.sessionmaker() as session:
            ctx = Ctx(
                session=session,
                clock=services.clock,
                rules=services.rules,
                actor_label="system:scheduler",
            )
            if not await _its_day(ctx, job):
                return None
            write = job.fn
            if job.reads is not None:
                write = await job.reads(ctx)
                await session.rollback()  # the claim starts a new transaction: no stale reads
            if job.at is not None and not await claim_daily_tick(ctx, job.name, ctx.clock.today()):
                return None
            assert write is not None  # a Job has fn or reads
            await write(ctx)
            await session.commit()
    except Exception:
        log.exception("scheduled job %s failed", job.name)
        return False
    return True


async def run_due_jobs_once(services: Services, now: dt.datetime) -> dict[str, bool]:
    """Run every job whose time today has passed and that has not run today (used at start-up
    to catch up, and by tests). Returns job name → succeeded, for the jobs that ran."""
    local = now.astimezone(ZoneInfo(services.settings.scheduler.timezone))
    ran = {job.name: await run_job(services, job) for job in jobs(services) if job.due(local)}
    return {name: ok for name, ok in ran.items() if ok is not None}


def _passed_runs(
    services: Services, since: dt.datetime, until: dt.datetime
) -> list[tuple[dt.datetime, Job]]:
    """Each daily job at each of its run times in (since, until], in order."""
    tz = ZoneInfo(services.settings.scheduler.timezone)
    first, last = since.astimezone(tz).date(), until.astimezone(tz).date()
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    daily = [job for job in jobs(services) if job.at is not None]
    runs = [(dt.datetime.combine(day, job.time_of_day(), tz), job) for day in days for job in daily]
    return sorted(((at, job) for at, job in runs if since < at <= until), key=lambda run: run[0])


async def run_passed_days(services: Services, since: dt.datetime, until: dt.datetime) -> None:
    """The demo clock's move from `since` to `until`: each daily job runs at each of its times
    the move passed, in order, with the interval jobs just before (an invitation past its
    reply day expires before that day's nudges), as a server running through those days
    would have. Each run's claim keeps a day from running twice."""
    if not services.settings.scheduler.enabled:
        return
    interval = [job for job in jobs(services) if job.at is None]
    for at, job in _passed_runs(services, since, until):
        then = dataclasses.replace(services, clock=FixedClock(at))
        for each in (*interval, job):
            await run_job(then, each)


class Jobs:
    """The scheduler's trigger runs each job here, in a task of our own: APScheduler's
    shutdown cancels the coroutines it started, and a job cancelled in the middle of its
    transaction left its connection to the pool mid-reset (a CancelledError traceback in the
    log at every SIGTERM that met a tick). `stop` ends the triggers, then lets a running job
    finish and commit."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.scheduler: AsyncIOScheduler | None = None
        self.running: set[asyncio.Task[bool | None]] = set()

    async def fire(self, job: Job) -> bool | None:
        task = asyncio.create_task(run_job(self.services, job), name=f"lianjian-job-{job.name}")
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        return await asyncio.shield(task)

    def start(self) -> None:
        """Must be called with the event loop running (APScheduler binds to it)."""
        tz = ZoneInfo(self.services.settings.scheduler.timezone)
        self.scheduler = AsyncIOScheduler(timezone=tz)
        for job in jobs(self.services):
            self.scheduler.add_job(
                self.fire,
                job.trigger(tz),
                args=(job,),
                id=job.name,
                name=job.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=3600,
            )
        self.scheduler.start()

    async def stop(self, grace_s: float) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if not self.running:
            return
        _, late = await asyncio.wait(set(self.running), timeout=grace_s)
        for task in late:
            log.warning("scheduled job %s did not finish within %ss", task.get_name(), grace_s)
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
