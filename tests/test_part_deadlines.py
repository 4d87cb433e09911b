"""Each department's part of a case has the case's one result deadline (000 §十: 20 working days
from the inspection), and a missing part is nudged, escalated and counted against the department
that has not entered it (谁检查、谁录入, 000 §九–十)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.errors import ValidationFailed
from core.evaluation import year_report
from core.inspection import record_inspection_date
from core.models import Case, GroupMember, OutboxMessage
from core.nudges import enqueue_nudges
from core.obligations.due import due_items
from core.progress import task_progress
from core.result_entry import submit_result
from core.summary import scope_summary
from tests.case_factories import ResultFields, World, acting, at_day, build_world

D = dt.date
CLEAN: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}


async def _lead_part_in(ctx: Ctx, session: AsyncSession) -> World:
    """市场监管 entered its part on 3-12 (inspected 3-10: due 4-8); 卫健委's is missing."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN, inspected_on=D(2026, 3, 10))
    await session.commit()
    return w


async def test_only_the_missing_department_is_nudged_for_its_part_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §十 with §九–十: at T-3 the obligation is 卫健委's part alone — its digest, its
    inspector, the case's deadline; once overdue it escalates to 卫健委's leader, not the
    lead's."""
    w = await _lead_part_in(ctx, session)
    [entry] = [o for o in await due_items(ctx, D(2026, 4, 2)) if o.kind == "result_entry"]
    assert (entry.key, entry.department_id, entry.officer_ids) == (
        f"case:{w.case.id}:part:{w.other.id}",
        w.other.id,
        (w.b1.id,),
    )
    assert (entry.due, entry.days_left) == (D(2026, 4, 8), 3)
    assert "县卫生健康委员会部分" in entry.subject

    mark = len(list(await session.scalars(select(OutboxMessage.id))))
    await enqueue_nudges(ctx, D(2026, 4, 2))
    await session.commit()
    sent = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))[mark:]
    assert {
        m.destination.get("officer_id") for m in sent if m.destination["kind"] == "officer"
    } == {w.b1.id}
    assert {
        m.destination["department_id"] for m in sent if m.destination["kind"] == "department"
    } == {w.other.id}

    mark += len(sent)
    await enqueue_nudges(ctx, D(2026, 4, 9))  # overdue
    await session.commit()
    sent = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))[mark:]
    told = {m.destination.get("officer_id") for m in sent if m.destination["kind"] == "officer"}
    assert w.other_leader.id in told and told.isdisjoint({w.a1.id, w.a2.id, w.lead_leader.id})

    await submit_result(acting(ctx, w.b1), w.case.code, **CLEAN)
    await session.commit()
    # 004 第十九条: the lead and the participant each review
    due = await due_items(ctx, D(2026, 4, 9))
    assert [(o.kind, o.department_id) for o in due] == [
        ("review", w.lead.id),
        ("review", w.other.id),
    ]


async def _nothing_entered(ctx: Ctx, session: AsyncSession) -> World:
    """Inspected 3-10 (due 4-8) by 市场监管's 张、李 and 卫健委's 王; no part entered."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 10))
    await session.commit()
    return w


async def test_each_department_owes_its_part_before_any_is_entered_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """谁检查、谁录入 (000 §九–十): before anything is entered, each department of the group owes
    its own part — 卫健委's is 卫健委's, with its inspector and the case's deadline — not one
    obligation of the whole group filed under the lead (which left 卫健委 unchased while the
    leaders' summary counted the case against it)."""
    w = await _nothing_entered(ctx, session)
    entries = [o for o in await due_items(ctx, D(2026, 4, 2)) if o.kind == "result_entry"]
    assert [(o.key, o.department_id, set(o.officer_ids), o.due) for o in entries] == [
        (f"case:{w.case.id}:part:{w.lead.id}", w.lead.id, {w.a1.id, w.a2.id}, D(2026, 4, 8)),
        (f"case:{w.case.id}:part:{w.other.id}", w.other.id, {w.b1.id}, D(2026, 4, 8)),
    ]
    assert "县卫生健康委员会部分" in entries[1].subject


async def test_an_overdue_case_with_nothing_entered_escalates_to_every_departments_leader_000_s10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §十 with §九–十: overdue with no part entered, the nudge tick reminds each
    department's chat of its own part and reports it to each department's leader — the
    escalation the leaders' summary (逾期未录入（按部门）) promises — not the lead's alone."""
    w = await _nothing_entered(ctx, session)
    await enqueue_nudges(ctx, D(2026, 4, 9))
    await session.commit()
    sent = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    digests = {
        m.destination["department_id"]: m.message["body"]
        for m in sent
        if (m.idempotency_key or "").startswith("nudge:department:")
    }
    assert set(digests) == {w.lead.id, w.other.id}
    assert "县卫生健康委员会部分" in digests[w.other.id]
    escalated = {
        m.destination["officer_id"]
        for m in sent
        if (m.idempotency_key or "").startswith("nudge:leader:")
    }
    assert escalated == {w.lead_leader.id, w.other_leader.id}


async def test_summary_progress_case_and_year_report_name_the_missing_part_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §十 (late entry counts as not done, 001 第十六条(三)): past the deadline the leaders'
    summary counts the case as not entered and names 卫健委 as overdue, not 市场监管; 进度
    shows 市场监管's bar full and 卫健委's part overdue; the year report says the same per
    department."""
    w = await _lead_part_in(ctx, session)
    at_day(ctx, D(2026, 4, 9))
    scoped = await scope_summary(ctx, D(2026, 4, 9))
    [task] = scoped.summary.tasks
    assert (task.on_time, task.late, task.overdue) == (0, 0, 1)
    assert scoped.chart.overdue_by_department() == [("县卫生健康委员会", 1)]
    body = scoped.message().body
    assert "- 县卫生健康委员会：1 件" in body and "- 县市场监督管理局" not in body

    progress = await task_progress(acting(ctx, w.lead_liaison), w.task.code)
    bars = {d["department"]: (d["done"], d["total"], d["overdue"]) for d in progress["departments"]}
    assert bars == {"县市场监督管理局": (1, 1, 0), "县卫生健康委员会": (0, 1, 1)}

    report = {r.code: r for r in (await year_report(ctx, 2026)).departments}
    assert (report["SJ"].on_time, report["SJ"].missing) == (1, 0)
    assert (report["WJ"].on_time, report["WJ"].missing) == (0, 1)


async def test_a_late_part_cannot_move_the_joint_inspection_date_004_art14_19(
    ctx: Ctx, session: AsyncSession
) -> None:
    """004 第十四条 (对同一被检查对象要一次性完成联合清单中所有内容的检查) and 第十九条 (检查结果
    作出后 20 个工作日内录入): a joint inspection is one visit. 卫健委, entering late with
    another date, is refused, naming the date and 市场监管 whose part stands on it; the case
    keeps 3-10 and its deadline 4-8. Entered without a date, the part counts as late. A late
    date used to move the case's date and deadline and erase the overdue record."""
    w = await _lead_part_in(ctx, session)
    case_id, code = w.case.id, w.case.code
    at_day(ctx, D(2026, 4, 20))
    with pytest.raises(ValidationFailed) as refused:
        await submit_result(acting(ctx, w.b1), code, **CLEAN, inspected_on=D(2026, 3, 20))
    assert "2026年3月10日" in refused.value.message
    assert "县市场监督管理局" in refused.value.message and "004 第十四条" in refused.value.message
    await session.rollback()

    await submit_result(acting(ctx, w.b1), code, **CLEAN, inspected_on=D(2026, 3, 10))
    await session.commit()
    case = await session.scalar(select(Case).where(Case.id == case_id))
    assert case is not None and (case.inspected_on, case.result_due_on) == (
        D(2026, 3, 10),
        D(2026, 4, 8),
    )
    report = {r.code: r for r in (await year_report(ctx, 2026)).departments}
    assert (report["WJ"].on_time, report["WJ"].late) == (0, 1)
    [task] = (await scope_summary(ctx, D(2026, 4, 20))).summary.tasks
    assert (task.on_time, task.late) == (0, 1)


async def test_a_department_that_left_the_group_has_no_bar_in_progress_or_the_summary_chart(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §九–十 (谁检查、谁录入): the per-department bars count the departments the case's
    active group has; 卫健委's inspector taken off the group takes its bar with him."""
    w = await _lead_part_in(ctx, session)
    [member] = await session.scalars(
        select(GroupMember).where(
            GroupMember.case_id == w.case.id, GroupMember.officer_id == w.b1.id
        )
    )
    member.active = False
    await session.commit()
    at_day(ctx, D(2026, 4, 9))
    assert (await scope_summary(ctx, D(2026, 4, 9))).chart.overdue_by_department() == []
    progress = await task_progress(acting(ctx, w.lead_liaison), w.task.code)
    bars = {d["department"]: (d["done"], d["total"], d["overdue"]) for d in progress["departments"]}
    assert bars == {"县市场监督管理局": (1, 1, 0)}
