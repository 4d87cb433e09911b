"""The scheduler's ticks over weeks of the Chinese calendar: nudges and the leaders' summary go
out on working days only (make-up weekend days included), once a day, whether the tick comes
from the cron trigger, a restart's catch-up or a second process."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import chinese_calendar
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from bot.scheduler import jobs, run_due_jobs_once, run_job
from bot.services import Services
from core import charts, holidays, images, plan
from core import nudges as nudges_module
from core.clock import CHINA_TZ, FixedClock
from core.models import AuditEvent, OutboxMessage, ScheduledRun
from core.obligations.due import due_items
from core.obligations.model import Obligation
from core.summary import ChartData
from tests.case_factories import build_world
from tests.server_helpers import make_services

INSPECTED = dt.date(2026, 9, 7)
WALK = (dt.date(2026, 9, 19), dt.date(2026, 10, 16))  # Mid-Autumn, National Day, 2 make-up days


def _at_ten(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10, 0), CHINA_TZ)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def _after_workdays(day: dt.date, n: int) -> dt.date:
    """Counted straight from chinese-calendar, independently of core.workdays."""
    while n:
        day += dt.timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


async def _world_with_due_result(sessionmaker: async_sessionmaker[AsyncSession]) -> dt.date:
    async with sessionmaker() as session:
        w = await build_world(
            session, window_start=dt.date(2026, 9, 1), window_end=dt.date(2026, 9, 30)
        )
        due = _after_workdays(INSPECTED, 20)  # 000 §十: 20 working days after the inspection
        w.case.inspected_on, w.case.result_due_on, w.case.result_due_provisional = (
            INSPECTED,
            due,
            False,
        )
        await session.commit()
    return due


async def _days_of(
    session: AsyncSession, column: InstrumentedAttribute[str], like: str
) -> list[dt.date]:
    keys = await session.scalars(select(column).where(column.like(like)))
    return sorted({dt.date.fromisoformat(k.split(":")[-1][:10]) for k in keys})


async def test_ticks_walk_the_working_calendar_and_run_once_a_day(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Nudges at T-3/T-1/T-0 and every working day overdue (000 §十, design deadlines); the
    leaders' daily summary (003 附件1 一(五)) on working days; nothing on 国庆 or 中秋, both on the
    make-up days 2026-09-20 (Sunday) and 2026-10-10 (Saturday)."""
    due = await _world_with_due_result(sessionmaker)
    clock = FixedClock(_at_ten(WALK[0]))
    services = make_services(sessionmaker, clock)
    for day in _days(*WALK):
        clock.set(_at_ten(day))
        await run_due_jobs_once(services, clock.now())
        await run_due_jobs_once(services, clock.now())  # a restart's catch-up the same day

    workdays = [d for d in _days(*WALK) if chinese_calendar.is_workday(d)]
    assert dt.date(2026, 9, 20) in workdays and dt.date(2026, 10, 10) in workdays
    before = [d for d in workdays if d <= due]
    expected_nudges = sorted({before[-4], before[-2], due} | {d for d in workdays if d > due})
    async with sessionmaker() as session:
        summary_keys = list(
            await session.scalars(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.idempotency_key.like("summary:%")
                )
            )
        )
        nudge_subjects = list(
            await session.scalars(
                select(AuditEvent.subject).where(AuditEvent.action == "nudge.digest")
            )
        )
    summary_days = [
        dt.date.fromisoformat(k.rsplit(":", 1)[1]) for k in summary_keys if k is not None
    ]
    assert sorted(set(summary_days)) == workdays
    assert len(summary_days) == 2 * len(workdays)  # two leaders, once a day each
    nudge_days = [dt.date.fromisoformat(s.split(":")[1]) for s in nudge_subjects]
    assert sorted(set(nudge_days)) == expected_nudges
    # one digest a day for each of the two departments, each for its own part (000 §九–十)
    assert len(nudge_days) == 2 * len(set(nudge_days))


async def test_two_schedulers_catching_up_at_once_run_each_tick_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _world_with_due_result(sessionmaker)
    day = dt.date(2026, 10, 9)
    first = make_services(sessionmaker, FixedClock(_at_ten(day)))
    second = make_services(sessionmaker, FixedClock(_at_ten(day)))
    ran = await asyncio.gather(
        run_due_jobs_once(first, _at_ten(day)), run_due_jobs_once(second, _at_ten(day))
    )
    daily = ("nudges", "summaries", "holiday_warning", "plan_reminders", "housekeeping")
    assert all(sum(job in r for r in ran) == 1 for job in daily), ran
    async with sessionmaker() as session:
        runs = await session.scalar(select(func.count()).select_from(ScheduledRun))
        summaries = await session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.idempotency_key.like("summary:%")
            )
        )
    assert runs == 5 and summaries == 2


async def test_a_holiday_tick_is_skipped_without_a_claim(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _world_with_due_result(sessionmaker)
    holiday = dt.date(2026, 10, 2)
    services = make_services(sessionmaker, FixedClock(_at_ten(holiday)))
    assert set(await run_due_jobs_once(services, _at_ten(holiday))) == {
        "invitation_expiry",
        "holiday_warning",
        "housekeeping",
    }
    async with sessionmaker() as session:
        jobs = set(await session.scalars(select(ScheduledRun.job)))
    assert jobs == {"holiday_warning", "housekeeping"}


async def test_new_years_day_of_a_year_without_data_gets_no_summary_nor_nudges(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """2027's arrangement not loaded: 1月1日 (a Friday) is still 元旦, a rest day fixed by
    《全国年节及纪念日放假办法》, so no leaders' summary nor nudges are sent that day."""
    await _world_with_due_result(sessionmaker)
    new_year = dt.date(2027, 1, 1)
    services = make_services(sessionmaker, FixedClock(_at_ten(new_year)))
    ran = set(await run_due_jobs_once(services, _at_ten(new_year)))
    assert ran.isdisjoint({"nudges", "summaries", "plan_reminders"})
    assert "holiday_warning" in ran  # the office is still told 2027 is missing


async def _another_writer_commits_meanwhile(
    services: Services,
    name: str,
    day: dt.date,
    started: Awaitable[bool],
    release: Callable[[], None],
) -> bool | None:
    """Runs the job `name`; once `started` (the job is paused inside its reads), another
    writer must commit within 3 s (it waits for SQLite's write lock if the job holds it);
    then `release` lets the job go on. Returns what the job returned."""
    [job] = [j for j in jobs(services) if j.name == name]
    tick = asyncio.create_task(run_job(services, job))
    try:
        assert await started
        async with services.sessionmaker() as session:
            session.add(ScheduledRun(job="another-writer", day=day, ran_at=_at_ten(day)))
            await asyncio.wait_for(session.commit(), 3)
    finally:
        release()
    return await tick


async def test_the_summary_charts_are_drawn_before_the_tick_takes_the_write_lock(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has one writer, and every callback's ack is a write: the summary tick's claim
    used to open its write transaction before a second or more of queries and chart drawing,
    so acks waited behind the charts (issue 11's soak: ack p99 1.2 s with the start-up
    catch-up). While the charts are drawn, another writer commits at once."""
    await _world_with_due_result(sessionmaker)
    day = dt.date(2026, 10, 9)
    services = make_services(sessionmaker, FixedClock(_at_ten(day)))
    drawing, release = threading.Event(), threading.Event()
    draw = charts.render_charts

    def paused(data: list[ChartData]) -> list[bytes | None]:
        drawing.set()
        release.wait(20)
        return draw(data)

    monkeypatch.setattr(charts, "render_charts", paused)
    tick = await _another_writer_commits_meanwhile(
        services, "summaries", day, asyncio.to_thread(drawing.wait, 20), release.set
    )
    assert tick is True
    async with sessionmaker() as session:
        queued = await session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.idempotency_key.like("summary:%")
            )
        )
    assert queued == 2  # the two leaders, after the drawing


async def test_the_nudge_tick_reads_before_it_takes_the_write_lock(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nudge tick's claim, like the summaries', used to open its write transaction before
    it read what is due for whom across the open cases (bench/ticks.py: 0.05–0.4 s at a county's
    year), so every callback's ack waited behind those reads. While the tick reads, another
    writer commits at once; then the tick claims and queues its digest, once."""
    due = await _world_with_due_result(sessionmaker)
    services = make_services(sessionmaker, FixedClock(_at_ten(due)))
    reading, release = asyncio.Event(), asyncio.Event()
    found = due_items

    async def paused(*args: Any, **kwargs: Any) -> list[Obligation]:
        items = await found(*args, **kwargs)
        reading.set()
        await asyncio.wait_for(release.wait(), 20)
        return items

    monkeypatch.setattr(nudges_module, "due_items", paused)
    tick = await _another_writer_commits_meanwhile(
        services, "nudges", due, asyncio.wait_for(reading.wait(), 20), release.set
    )
    assert tick is True
    [job] = [j for j in jobs(services) if j.name == "nudges"]
    assert await run_job(services, job) is None  # claimed: the same day's second run skips
    async with sessionmaker() as session:
        digests = list(
            await session.scalars(
                select(AuditEvent.subject).where(AuditEvent.action == "nudge.digest")
            )
        )
        runs = list(await session.scalars(select(ScheduledRun.job)))
    # one digest for each department's part (000 §九–十), both in the one run
    assert len(digests) == 2
    assert all(d.startswith(f"nudge:{due.isoformat()}:department:") for d in digests)
    assert sorted(runs) == ["another-writer", "nudges"]


@dataclass(frozen=True)
class OtherTick:
    """One of the other daily ticks: the read it does before its claim, the write after it,
    and what the write leaves for the day (an outbox key's start or an audit action)."""

    name: str
    module: object
    read: str
    write: str
    mark: str


@pytest.fixture(
    params=[
        OtherTick(
            "holiday_warning",
            holidays,
            "holiday_warning",
            "queue_holiday_warning",
            "holiday-warning:",
        ),
        OtherTick(
            "plan_reminders", plan, "due_plan_reminders", "queue_plan_reminders", "plan-missing:"
        ),
        OtherTick("housekeeping", images, "prunable", "delete_pruned", "images.pruned"),
    ],
    ids=lambda tick: tick.name,
)
def other_tick(request: pytest.FixtureRequest) -> OtherTick:
    tick: OtherTick = request.param
    return tick


NOVEMBER = dt.date(2026, 11, 2)  # a Monday: next year's holidays missing, no plan for the year


async def _day_of_other_ticks(sessionmaker: async_sessionmaker[AsyncSession]) -> Services:
    """Each of the other ticks has work on NOVEMBER: the warning, the missing plan's notice,
    and a chart stored long ago to prune."""
    async with sessionmaker() as session:
        png = b"\x89PNG\r\n\x1a\n" + b"chart"
        await images.store(session, png, now=_at_ten(NOVEMBER) - dt.timedelta(days=100))
        await session.commit()
    return make_services(sessionmaker, FixedClock(_at_ten(NOVEMBER)))


async def _work_done(sessionmaker: async_sessionmaker[AsyncSession], mark: str) -> int:
    async with sessionmaker() as session:
        queued = await session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.idempotency_key.startswith(mark)
            )
        )
        audited = await session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == mark)
        )
    return int(queued or 0) + int(audited or 0)


async def test_the_other_daily_ticks_read_before_they_take_the_write_lock(
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    other_tick: OtherTick,
) -> None:
    """The holiday warning, the plan reminders (003 三(七), 004 第七条) and the housekeeping
    claimed their day before they read, as the nudges did (#11): while each reads, another
    writer commits at once; then it claims and writes, once a day."""
    services = await _day_of_other_ticks(sessionmaker)
    reading, release = asyncio.Event(), asyncio.Event()
    found = getattr(other_tick.module, other_tick.read)

    async def paused(*args: Any, **kwargs: Any) -> object:
        result = await found(*args, **kwargs)
        reading.set()
        await asyncio.wait_for(release.wait(), 20)
        return result

    monkeypatch.setattr(other_tick.module, other_tick.read, paused)
    tick = await _another_writer_commits_meanwhile(
        services, other_tick.name, NOVEMBER, asyncio.wait_for(reading.wait(), 20), release.set
    )
    assert tick is True
    [job] = [j for j in jobs(services) if j.name == other_tick.name]
    assert await run_job(services, job) is None  # claimed: the same day's second run skips
    async with sessionmaker() as session:
        runs = list(await session.scalars(select(ScheduledRun.job)))
    assert sorted(runs) == sorted(["another-writer", other_tick.name])
    assert await _work_done(sessionmaker, other_tick.mark) == 1


async def test_a_tick_failing_after_its_claim_leaves_the_day_to_the_next_trigger(
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    other_tick: OtherTick,
) -> None:
    """The claim and the writes commit together: a crash between them takes the claim with
    it, so the day's work is not lost; the next trigger (or start-up) does it."""
    services = await _day_of_other_ticks(sessionmaker)
    [job] = [j for j in jobs(services) if j.name == other_tick.name]

    async def crashed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died after the claim")

    with monkeypatch.context() as patched:
        patched.setattr(other_tick.module, other_tick.write, crashed)
        assert await run_job(services, job) is False
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ScheduledRun)) == 0
    assert await _work_done(sessionmaker, other_tick.mark) == 0
    assert await run_job(services, job) is True
    assert await _work_done(sessionmaker, other_tick.mark) == 1


async def test_a_window_ending_with_targets_not_visited_is_told_once_to_the_lead_and_group(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """000 §五.3: inspections take place within the task's window (or the extension the lead
    records with a reason). A window that ended with a case never inspected left the task
    检查中 in silence until the result deadline's nudge: the first working day's nudge tick
    after it (here after National Day) tells the lead's liaison, listing the cases, and each
    member of the groups concerned — once, not every day after."""
    async with sessionmaker() as session:
        w = await build_world(
            session, window_start=dt.date(2026, 9, 1), window_end=dt.date(2026, 9, 30)
        )
        told_to = {w.lead_liaison.id, w.a1.id, w.a2.id, w.b1.id}
        code, target = w.case.code, w.target.name
    walk = _days(dt.date(2026, 9, 28), dt.date(2026, 10, 16))
    clock = FixedClock(_at_ten(walk[0]))
    services = make_services(sessionmaker, clock)
    for day in walk:
        clock.set(_at_ten(day))
        await run_due_jobs_once(services, clock.now())
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(OutboxMessage.destination, OutboxMessage.message, OutboxMessage.created_at)
            )
        ).all()
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "task.window_ended")
            )
        )
    ended = [(dest, msg, at) for dest, msg, at in rows if "检查时间已结束" in msg["title"]]
    after = [d for d in walk if d > w.task.window_end]
    first_workday = next(d for d in after if chinese_calendar.is_workday(d))
    assert {dest["officer_id"] for dest, _, _ in ended} == told_to
    assert len(ended) == len(told_to)  # once each, not every working day after
    assert {at.astimezone(CHINA_TZ).date() for _, _, at in ended} == {first_workday}
    assert all(code in msg["body"] and target in msg["body"] for _, msg, _ in ended)
    assert all(f"延期 {w.task.code}" in msg["body"] for _, msg, _ in ended)
    assert [(e.subject, e.data["uninspected"]) for e in events] == [(f"task:{w.task.code}", [code])]
