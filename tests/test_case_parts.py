"""谁检查、谁录入 (000 §九–十): each department with items in the task enters its own part of a
case's result; the case is 部分录入 until every part is in, and only then reviewed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.errors import InvalidTransition, ValidationFailed
from core.models import AuditEvent, CasePart, CaseResult, OutboxMessage, TaskItem
from core.publication import correct_result
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from tests.case_factories import (
    ResultFields,
    acting,
    approved_world,
    at_day,
    build_world,
    other_department_finds_a_problem,
    snapshot,
)

D = dt.date
CLEAN: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}


async def _outbox(session: AsyncSession) -> list[OutboxMessage]:
    return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _to_officers(rows: list[OutboxMessage]) -> dict[int, str]:
    return {
        r.destination["officer_id"]: r.message["body"]
        for r in rows
        if r.destination["kind"] == "officer"
    }


async def test_a_first_part_leaves_the_case_part_entered_and_tells_the_missing_department_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §九–十: the lead's inspector enters the lead's part; the case and the stored version
    are 部分录入, 卫健委's inspector alone is told which items wait for them (with the result
    deadline counted from the inspection date, 000 §十), and no reviewer is asked yet."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    v1 = await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN, inspected_on=D(2026, 3, 10))
    await session.commit()
    await session.refresh(w.case)
    assert (w.case.state, v1.state, v1.version) == ("part_entered", "part_entered", 1)
    parts = list(await session.scalars(select(CasePart)))
    assert [(p.department_id, p.state, p.version, p.entered_by_id) for p in parts] == [
        (w.lead.id, "entered", 1, w.a1.id)
    ]
    told = _to_officers(await _outbox(session))
    assert set(told) == {w.b1.id}
    assert "待县卫生健康委员会录入本部门检查结果" in told[w.b1.id]
    assert "公共场所卫生检查" in told[w.b1.id] and "2026年4月8日" in told[w.b1.id]
    assert not [m for m in await _outbox(session) if m.destination["kind"] == "department"]
    event = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "case.result.part_entered")
    )
    assert event is not None and event.data["missing"] == ["WJ"]
    assert event.data["department_id"] == w.lead.id and event.data["late"] is False
    await session.refresh(w.task)
    assert w.task.state == "inspecting"  # no case has a complete result yet

    v2 = await submit_result(acting(ctx, w.b1), w.case.code, **CLEAN)
    await session.commit()
    await session.refresh(w.case)
    assert (w.case.state, v2.state, v2.version) == ("submitted", "submitted", 2)
    assert v2.inspected_on == D(2026, 3, 10)  # one visit, one inspection date
    review_asked = [
        m
        for m in await _outbox(session)
        if m.destination["kind"] == "department" and "结果待审核" in m.message["title"]
    ]
    assert {m.destination["department_id"] for m in review_asked} == {w.lead.id, w.other.id}
    await session.refresh(w.task)
    assert w.task.state == "reviewing"


async def test_a_department_may_enter_its_part_again_while_another_is_missing_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §九–十: a second entry by the same department keeps the case 部分录入 and still waits
    for the other department; it does not complete the case."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN, inspected_on=D(2026, 3, 10))
    again = await submit_result(acting(ctx, w.a2), w.case.code, **CLEAN, remarks="补充")
    await session.commit()
    await session.refresh(w.case)
    assert (w.case.state, again.state, again.version) == ("part_entered", "part_entered", 2)
    (part,) = await session.scalars(select(CasePart))
    assert (part.version, part.entered_by_id) == (2, w.a2.id)


async def test_the_same_remark_from_two_departments_is_each_departments_004_art3(
    ctx: Ctx, session: AsyncSession
) -> None:
    """004 第三条 (谁检查、谁录入、谁负责): two departments writing the same 备注 each keep
    it under their own name in the case's result, as the 检查记录表 prints it; one was
    dropped."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    day, said = D(2026, 3, 10), "当事人拒绝签字"
    await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN, inspected_on=day, remarks=said)
    result = await submit_result(
        acting(ctx, w.b1), w.case.code, **CLEAN, inspected_on=day, remarks=said
    )
    assert result.remarks == f"{w.lead.name}、{w.other.name}：当事人拒绝签字"


async def test_review_is_refused_while_a_part_is_missing_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §九–十, 004 第十九条: neither 通过 nor 退回 while the case is 部分录入; the refusal
    names the missing department and nothing changes."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await submit_result(acting(ctx, w.b1), w.case.code, **CLEAN, inspected_on=D(2026, 3, 10))
    await session.commit()
    before = await snapshot(session)
    for reviewer, approve in ((w.lead_liaison, True), (w.other_leader, False)):
        with pytest.raises(
            InvalidTransition, match="尚有县市场监督管理局未录入本部门检查事项的结果（部分录入）"
        ):
            await review_result(acting(ctx, reviewer), w.case.code, approve, reason="缺签名")
    await session.rollback()
    assert await snapshot(session) == before


async def test_a_return_reopens_every_part_unless_it_names_one_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """004 第十九条 with 000 §九–十: a return without a department reopens every part and tells
    every member; one naming a department reopens its part only and tells its inspectors; an
    unknown department is refused with the departments that may be named."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN, inspected_on=D(2026, 3, 10))
    await submit_result(acting(ctx, w.b1), w.case.code, **CLEAN)
    lead = acting(ctx, w.lead_liaison)
    with pytest.raises(ValidationFailed, match="可退回给：县市场监督管理局、县卫生健康委员会"):
        await review_result(lead, w.case.code, False, "缺签名", department="县公安局")
    await session.commit()
    mark = len(await _outbox(session))
    await review_result(lead, w.case.code, False, "缺卫生检测记录", department="WJ")
    await session.commit()
    told = _to_officers((await _outbox(session))[mark:])
    assert set(told) == {w.b1.id} and "退回县卫生健康委员会录入的部分" in told[w.b1.id]
    states = dict((await session.execute(select(CasePart.department_id, CasePart.state))).all())
    assert states == {w.lead.id: "entered", w.other.id: "returned"}
    back = await submit_result(acting(ctx, w.b1), w.case.code, **CLEAN)
    assert back.state == "submitted"  # the lead's part stood

    mark = len(await _outbox(session))
    await review_result(lead, w.case.code, False, "检查结论与记录不符")
    await session.commit()
    assert set(_to_officers((await _outbox(session))[mark:])) == {w.a1.id, w.a2.id, w.b1.id}
    states = dict((await session.execute(select(CasePart.department_id, CasePart.state))).all())
    assert states == {w.lead.id: "returned", w.other.id: "returned"}
    partial = await submit_result(acting(ctx, w.b1), w.case.code, **CLEAN)
    assert partial.state == "part_entered"


async def test_a_task_with_one_departments_items_goes_to_review_at_once_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §九–十: when only the lead's items are checked, its part is the whole result."""
    w = await build_world(session)
    await session.execute(delete(TaskItem).where(TaskItem.department_id == w.other.id))
    await session.commit()
    at_day(ctx, D(2026, 3, 12))
    result = await submit_result(
        acting(ctx, w.a1), w.case.code, **CLEAN, inspected_on=D(2026, 3, 10)
    )
    await session.commit()
    await session.refresh(w.case)
    assert (w.case.state, result.state) == ("submitted", "submitted")


@pytest.mark.parametrize("auto_publish", [True, False])
async def test_the_groups_approval_message_says_whether_it_was_published_004_art19(
    ctx: Ctx, session: AsyncSession, auto_publish: bool
) -> None:
    """004 第十九条 (审核通过后…自动公示): with rules.auto_publish the group hears that the
    result was approved and published at once, not that it waits for publication."""
    _, w = await approved_world(ctx, session, Rules(auto_publish=auto_publish))
    approved = [
        m.message["body"]
        for m in await _outbox(session)
        if m.destination.get("officer_id") == w.a1.id and "审核通过" in m.message["title"]
    ]
    assert len(approved) == 1
    if auto_publish:
        assert "并已随即公示" in approved[0] and "等待公示" not in approved[0]
    else:
        assert "等待公示" in approved[0] and "已随即公示" not in approved[0]
    versions = list(await session.scalars(select(CaseResult.state)))
    assert versions == ["published" if auto_publish else "approved"]


async def test_another_departments_finding_rules_out_no_problem_and_says_whose_000_s9_10(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §九–十: the case's conclusion covers every department's items. After 卫健委 found a
    problem in its own item, 市场监管's quick 未发现问题 (no items, as the chat sends it) is
    refused naming 卫健委's item and pointing to the form; nothing is stored."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await other_department_finds_a_problem(ctx, w)
    await session.commit()
    before = await snapshot(session)
    with pytest.raises(ValidationFailed) as err:
        await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN)
    assert str(err.value) == (
        "县卫生健康委员会录入的“公共场所卫生检查”已发现问题或情况，案件结论不能为“未发现问题”；"
        "请在结果填报表单中录入本部门事项（案件结论按各部门事项合并）"
    )
    await session.rollback()
    assert await snapshot(session) == before


async def test_a_result_entered_in_parts_and_after_a_return_is_still_the_first_edition_004_art20(
    ctx: Ctx, session: AsyncSession
) -> None:
    """第 N 版 counts the corrections of a published result (004 第二十条), not the entries that
    made it up: two departments' parts, a return of one and its re-entry were announced as
    第 2 and 第 3 版; all are 第 1 版 (the stored versions still count every entry), and the
    correction after publication is 第 2 版."""
    ctx = dataclasses.replace(ctx, rules=Rules(auto_publish=True))
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    lead = acting(ctx, w.lead_liaison)
    await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN, inspected_on=D(2026, 3, 10))
    await submit_result(acting(ctx, w.b1), w.case.code, **CLEAN)
    await review_result(lead, w.case.code, False, "缺卫生检测记录", department="WJ")
    final = await submit_result(acting(ctx, w.b1), w.case.code, **CLEAN)
    await review_result(lead, w.case.code, True)
    await review_result(acting(ctx, w.other_liaison), w.case.code, True)
    await session.commit()
    assert (final.version, final.edition, final.state) == (3, 1, "published")
    said = [
        n for m in await _outbox(session) for n in re.findall(r"第 (\d+) 版", m.message["body"])
    ]
    assert said and set(said) == {"1"}

    mark = len(await _outbox(session))
    corrected = await correct_result(lead, w.case.code, reason="检查结论录入有误", **CLEAN)
    await session.commit()
    assert (corrected.version, corrected.edition) == (4, 2)
    bodies = [m.message["body"] for m in (await _outbox(session))[mark:]]
    assert bodies and all("第 1 版已由第 2 版取代" in body for body in bodies)
