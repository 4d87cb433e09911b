"""A frozen draw whose beacon is out but which the lead never confirmed (000 二(八): the lead
draws the targets; 000 §五.3: the plan's 抽查时间 is when the inspections are to be done): the
nudge tick reminds the lead department until it is confirmed, a confirmation after the window's
last day is refused until the lead records an extension (延期), and the confirmation names the
drawn targets that were drawn or inspected elsewhere this year after the freeze (000 §五.1:
同一年度内已抽查过的主体), which the committed pool could not leave out."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.scheduler import run_due_jobs_once
from core.changes import Ctx
from core.clock import CHINA_TZ, FixedClock, china_noon
from core.draws import targets
from core.models import Case, Draw, OutboxMessage
from core.states import CaseState
from tests import factories as f
from tests.dispatch_support import chat
from tests.server_helpers import make_services

D = dt.date
SOURCE = "2026年3月3日福彩3D开奖号码"  # published 3-3 21:30; the window is f.WINDOW (3-16 – 6-30)


async def _frozen(sm: async_sessionmaker[AsyncSession], clock: FixedClock) -> tuple[f.World, str]:
    """A task frozen on 2 March with the beacon of 3 March, never confirmed."""
    clock.set(china_noon(D(2026, 3, 2)))
    async with sm() as s, s.begin():
        ctx = Ctx(session=s, clock=clock)
        w = await f.world(s, partners=1, inspectors=3, n_targets=30)
        task = await f.ready_task(ctx, w)
        await targets.freeze_pool(f.as_actor(ctx, w.lead.liaison), task.code, SOURCE)
    return w, task.code


async def test_000_2_8_a_published_beacon_has_the_lead_nudged_daily_to_confirm_the_draw(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """000 二(八): once the beacon is published the draw only waits for the lead's 确认抽取;
    it used to wait in silence (the leaders' summary said 待抽取) until the window had ended.
    From the first working day after the beacon, the nudge tick puts it in the lead
    department's digest, naming its liaison, every working day until it is confirmed."""
    w, code = await _frozen(sessionmaker, clock)
    services = make_services(sessionmaker, clock)
    for day in [D(2026, 3, 2) + dt.timedelta(days=n) for n in range(8)]:  # to Monday 3-9
        clock.set(dt.datetime.combine(day, dt.time(10, 0), CHINA_TZ))
        await run_due_jobs_once(services, clock.now())
    async with sessionmaker() as s:
        rows = (await s.execute(select(OutboxMessage.destination, OutboxMessage.message))).all()
    told = [(dest, msg) for dest, msg in rows if "确认抽取（" in msg.get("body", "")]
    digests = [msg for dest, msg in told if dest["kind"] == "department"]
    assert len(digests) == 4  # 3-4, 3-5, 3-6, 3-9: working days after the beacon
    assert {dest["department_id"] for dest, _ in told if dest["kind"] == "department"} == {
        w.lead.dep.id
    }
    escalated = [dest["officer_id"] for dest, msg in told if msg["title"] == "逾期事项"]
    assert escalated == [w.lead.leader.id] * 3  # overdue from 3-5
    for msg in digests:
        assert w.lead.liaison.id in msg["mention_officer_ids"]
        assert f"确认抽取 {code} 信标值" in msg["body"] and SOURCE in msg["body"]
    await chat(sessionmaker, clock, w.lead.liaison.code, f"确认抽取 {code} 417")
    clock.set(dt.datetime.combine(D(2026, 3, 10), dt.time(10, 0), CHINA_TZ))
    await run_due_jobs_once(services, clock.now())
    async with sessionmaker() as s:
        after = await s.scalars(select(OutboxMessage.message))
        assert sum("确认抽取（" in m.get("body", "") for m in after) == len(told)  # none since


async def test_000_5_3_a_confirmation_after_the_window_is_refused_until_the_lead_extends_it(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """000 §五.3: the plan's 抽查时间 is when the inspections are done. Confirmed after the
    window's last day, the draw locked cases nobody could inspect in time and pushed
    assignments for a window already over; the nudge says to extend first, the confirmation is
    refused with 延期 to do first, and once the lead has extended the window it locks and the
    assignments show the extended window."""
    w, code = await _frozen(sessionmaker, clock)
    lead = w.lead.liaison.code
    clock.set(dt.datetime.combine(D(2026, 7, 2), dt.time(10, 0), CHINA_TZ))  # ended 6-30
    await run_due_jobs_once(make_services(sessionmaker, clock), clock.now())
    async with sessionmaker() as s:
        nudged = [m.get("body", "") for m in await s.scalars(select(OutboxMessage.message))]
    assert any(f"先发送“延期 {code} 截止日期 理由”，再发送“确认抽取" in b for b in nudged)
    refused = await chat(sessionmaker, clock, lead, f"确认抽取 {code} 417")
    assert "2026年6月30日" in refused and f"延期 {code}" in refused
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.state).where(Draw.task_code == code)) == "frozen"
        assert await s.scalar(select(Case.id).limit(1)) is None
    await chat(sessionmaker, clock, lead, f"延期 {code} 7月31日 部分企业停产需顺延检查")
    locked = await chat(sessionmaker, clock, lead, f"确认抽取 {code} 417")
    assert "抽取结果已锁定" in locked
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.state).where(Draw.task_code == code)) == "locked"
        pushed = await s.scalars(select(OutboxMessage.message))
        assert any("2026年3月16日 至 2026年7月31日（已延期）" in m.get("body", "") for m in pushed)


async def test_000_5_1_the_confirmation_names_drawn_targets_inspected_elsewhere_since_the_freeze(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """000 §五.1 (排除同一年度内已抽查过的主体): the pool was committed at the freeze and cannot
    change, so a target another of the department's tasks drew or inspected afterwards may be
    drawn again. The confirmation names each such drawn target to the lead, who decides (replace
    or note it); a target inspected before the freeze was left out of the pool."""
    w, code = await _frozen(sessionmaker, clock)
    async with sessionmaker() as s, s.begin():
        ctx = Ctx(session=s, clock=clock)
        other = await f.draft_task(ctx, w, title="2026年食品安全专项抽查")
        s.add_all(
            Case(
                code=f"{other.code}-{n:03d}",
                task_id=other.id,
                target_id=t.id,
                state=CaseState.INSPECTED,
                inspected_on=D(2026, 3, 3),
            )
            for n, t in enumerate(w.targets, 1)
        )
    clock.set(china_noon(D(2026, 3, 4)))
    reply = await chat(sessionmaker, clock, w.lead.liaison.code, f"确认抽取 {code} 417")
    async with sessionmaker() as s:
        drawn = list(
            await s.scalars(select(Case).where(Case.code.like(f"{code}-%")).order_by(Case.code))
        )
    assert drawn and "冻结后" in reply
    for case in drawn:
        assert f"{case.code} {case.target.name}" in reply
