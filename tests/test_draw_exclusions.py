"""What a task draw leaves out because of earlier inspections and their published results, and
what the frozen message says about it (000 §五.1, 001 第十四条, 004 第八条 and 第二十三条;
docs/domain.md rule 3). Driven through Dispatcher.handle, as chat does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.draws.pool import decode_pool
from core.models import Case, CaseResult, DrawPool, Officer, Target
from core.rules import Rules
from tests import factories as f
from tests.dispatch_support import bodies, make_dispatcher, send, text_event
from tests.test_pool import _past_task

BEACON_OUT = china_noon(dt.date(2026, 3, 4))  # the default beacon, 3 March's 福彩3D, is out


async def _ready(
    sm: async_sessionmaker[AsyncSession], clock: FixedClock, w: f.World
) -> tuple[str, str]:
    """A ready 2026 task of the world; (task code, lead liaison's code)."""
    async with sm() as s, s.begin():
        task = await f.ready_task(Ctx(session=s, clock=clock, rules=Rules()), w)
        return task.code, w.lead.liaison.code


async def _freeze(
    sm: async_sessionmaker[AsyncSession], clock: FixedClock, w: f.World
) -> tuple[str, str, set[str]]:
    """抽取 the task in chat: (task code, the frozen message, the frozen pool's ids)."""
    code, lead = await _ready(sm, clock, w)
    reply = bodies(await send(sm, make_dispatcher(sm, clock), text_event(lead, f"抽取 {code}")))
    async with sm() as s:
        pool = {i for i, _ in decode_pool(await s.scalar(select(DrawPool.data)) or b"")}
    return code, reply, pool


def _usccs(targets: Sequence[Target]) -> set[str]:
    return {t.uscc for t in targets}


async def test_inspected_this_year_under_last_years_task_is_not_drawn_again(
    sessionmaker, clock
) -> None:
    """000 §五.1, 004 第八条 and 第二十三条: a target inspected on 2026-01-20 is not drawn by a
    2026 task, though the task it was inspected under is 2025's; one inspected in December 2025
    is. The message counts the exclusion, and the draw still verifies."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=3, n_targets=10)
        this_year, last_year = await f.targets(s, 3), await f.targets(s, 2)
        await _past_task(s, w.lead.dep.id, 2025, this_year, inspected_on=dt.date(2026, 1, 20))
        await _past_task(s, w.lead.dep.id, 2025, last_year, inspected_on=dt.date(2025, 12, 10))
    code, reply, pool = await _freeze(sessionmaker, clock, w)
    assert "本年度已被本部门检查：3 户" in reply
    assert not pool & _usccs(this_year) and _usccs(last_year) <= pool and len(pool) == 12
    d = make_dispatcher(sessionmaker, clock)
    clock.set(BEACON_OUT)
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 4 1 7"))
    check = bodies(await send(sessionmaker, d, text_event(w.lead.liaison.code, f"验证 {code}")))
    assert "✓ 抽取范围哈希" in check and "✗" not in check


async def test_the_frozen_message_claims_no_exclusion_that_removed_nothing(
    sessionmaker, clock
) -> None:
    """Nobody was inspected this year: the message says nothing was excluded, and does not
    say that the targets inspected this year were."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=3, n_targets=10)
    _, reply, pool = await _freeze(sessionmaker, clock, w)
    assert len(pool) == 10 and "已排除：\n- 无" in reply
    assert "已检查" not in reply and "均已排除" not in reply


async def _published(
    session: AsyncSession, case: Case, by: Officer, codes: list[str], state: str = "published"
) -> None:
    """A result version of the case carrying `codes`, in `state`."""
    version = 1 + len(
        list(await session.scalars(select(CaseResult.id).where(CaseResult.case_id == case.id)))
    )
    at = dt.datetime(2025, 6, 20, tzinfo=dt.UTC)
    session.add(
        CaseResult(
            case_id=case.id,
            version=version,
            state=state,
            codes=codes,
            inspected_on=case.inspected_on,
            entered_by_id=by.id,
            entered_at=at,
            published_at=at if state != "submitted" else None,
        )
    )
    await session.flush()


async def test_a_published_deregistration_takes_the_target_out_of_later_draws(
    sessionmaker, clock
) -> None:
    """docs/domain.md rule 3 (deregistered / revoked targets are out of scope; 004 第十八条
    results formed from the status): a published result 注销 or 被吊销 keeps the target out of a
    later year's draw though the library still says 存续; a 注销 corrected away, or not yet
    published, does not."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=3, n_targets=10)
        ended, kept = await f.targets(s, 2), await f.targets(s, 2)
        cases = await _past_task(
            s, w.lead.dep.id, 2025, ended + kept, inspected_on=dt.date(2025, 6, 10)
        )
        by = w.lead.inspectors[0]
        await _published(s, cases[0], by, ["9"])
        await _published(s, cases[1], by, ["10"])
        await _published(s, cases[2], by, ["9"], state="superseded")
        await _published(s, cases[2], by, ["1"])
        await _published(s, cases[3], by, ["9"], state="submitted")
    _, reply, pool = await _freeze(sessionmaker, clock, w)
    assert "已注销/吊销/撤销/迁出：2 户" in reply
    assert not pool & _usccs(ended) and _usccs(kept) <= pool and len(pool) == 12
