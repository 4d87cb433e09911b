"""Provisional deadlines stored while a year without holiday data was counted on weekdays only
(元旦 a working day) are counted again once on upgrade with the fixed-date holidays as rest days
(《全国年节及纪念日放假办法》第二条; 000 §十's 20 working days): core.deadlines.run_upgrade_steps,
the step migration d4b7e19a3c52 leaves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.clock import china_noon
from core.db import make_engine, make_sessionmaker
from core.deadlines import RECOUNT_WEEKDAYS_ONLY, run_upgrade_steps
from core.models import AuditEvent, Case, JointTask, UpgradeStep
from core.schema import upgrade
from tests.case_factories import add_case, at_day, build_world

D = dt.date


async def test_deadlines_stored_on_weekdays_only_are_counted_again_once_000_s10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """Two cases inspected 2026-12-11, 2027's data missing: one stored before the rule changed
    (due 2027-01-08, 元旦 counted as a working day) becomes 2027-01-11 like the other, which
    stays; a reply deadline counted 5 working days from 2026-12-29 on weekdays only (1-5) is
    counted back the same way, not one working day early, and becomes 1-6. Audited; a second
    run changes nothing."""
    w = await build_world(session, window_start=D(2026, 11, 2), window_end=D(2026, 12, 31))
    old = w.case
    new = (await add_case(session, w, 2)).case
    for case, due in ((old, D(2027, 1, 8)), (new, D(2027, 1, 11))):
        case.inspected_on, case.result_due_on, case.result_due_provisional = (
            D(2026, 12, 11),
            due,
            True,
        )
    task = JointTask(
        code="LJ-2026-002",
        year=2026,
        title="校园周边联合抽查",
        lead_department_id=w.lead.id,
        window_start=D(2027, 1, 11),
        window_end=D(2027, 2, 26),
        state="consulting",
        reply_due_on=D(2027, 1, 5),
        reply_due_provisional=True,
        created_at=china_noon(D(2026, 12, 29)),
    )
    session.add_all([task, UpgradeStep(name=RECOUNT_WEEKDAYS_ONLY)])
    await session.commit()
    at_day(ctx, D(2026, 12, 30))

    assert await run_upgrade_steps(ctx) == 2
    await session.commit()
    dues = {i: d for i, d in await session.execute(select(Case.id, Case.result_due_on))}
    assert (dues[old.id], dues[new.id]) == (D(2027, 1, 11), D(2027, 1, 11))
    await session.refresh(task)
    assert (task.reply_due_on, task.reply_due_provisional) == (D(2027, 1, 6), True)
    [event] = await session.scalars(
        select(AuditEvent.data).where(AuditEvent.action == "deadlines.rule_upgraded")
    )
    assert event == {"step": RECOUNT_WEEKDAYS_ONLY, "changes": 2}
    [recount] = await session.scalars(
        select(AuditEvent.data).where(AuditEvent.action == "deadlines.recomputed")
    )
    assert {(c["subject"], c["from"], c["to"]) for c in recount["changes"]} == {
        (f"case:{old.code}", "2027-01-08", "2027-01-11"),
        ("task:LJ-2026-002", "2027-01-05", "2027-01-06"),
    }

    assert await run_upgrade_steps(ctx) == 0  # the step has run: gone
    await session.commit()
    await session.refresh(task)
    assert task.reply_due_on == D(2027, 1, 6)
    assert await session.scalar(select(UpgradeStep.name)) is None


async def test_a_new_database_gets_no_recount_step(tmp_path: Path) -> None:
    """Migration d4b7e19a3c52 leaves the step only where a deadline may have been stored on
    weekdays only: a database created at head has none, so later deadlines, counted with the
    fixed-date holidays, are never counted back as if they were not."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'new.sqlite3'}")
    try:
        await upgrade(engine)
        async with make_sessionmaker(engine)() as session:
            assert await session.scalar(select(UpgradeStep.name)) is None
    finally:
        await engine.dispose()
