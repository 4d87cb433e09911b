"""更换 / 批准 / 不批准 through Dispatcher.handle (001 第十四条, 004 第十三条): a replacement is
asked for, and the department leader approves naming the replacement, or refuses with a reason."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import FixedClock, china_noon
from core.models import GroupMember, Officer, ReplacementRequest
from tests.case_factories import World, build_world
from tests.dispatch_support import (
    LONG_REASON,
    bodies,
    make_dispatcher,
    send,
    text_event,
    told,
    too_long,
)

CASE = "LJ-2026-001-001"


@pytest.fixture
async def w(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    async with sessionmaker() as s:
        world = await build_world(s)
        s.add(Officer(code="A3", name="陈检查", department_id=world.lead.id, roles=["inspector"]))
        await s.commit()
    clock.set(china_noon(dt.date(2026, 3, 5)))
    return world


async def say(sm, clock, code: str, text: str) -> list:
    return await send(sm, make_dispatcher(sm, clock), text_event(code, text))


async def active(sm) -> set[str]:
    async with sm() as s:
        return set(
            await s.scalars(
                select(Officer.code)
                .join(GroupMember, GroupMember.officer_id == Officer.id)
                .where(GroupMember.active.is_(True))
            )
        )


async def test_replacement_needs_the_department_leader_001_art14_004_art13(
    sessionmaker, clock, w
) -> None:
    sm = sessionmaker
    rows = await say(sm, clock, w.a1.code, f"更换 {CASE} A2 长期病假无法到岗")
    assert "已提交更换申请" in bodies(rows)
    asked = [r for r in rows if r.destination.get("officer_id") == w.lead_leader.id]
    assert asked and f"批准 {CASE} A2" in asked[0].message["body"]
    assert await active(sm) == {"A1", "A2", "B1"}  # nothing changes before the approval

    refused = bodies(await say(sm, clock, w.lead_liaison.code, f"批准 {CASE} A2 A3"))
    assert "分管领导" in refused and await active(sm) == {"A1", "A2", "B1"}
    refused = bodies(await say(sm, clock, w.other_leader.code, f"批准 {CASE} A2 A3"))
    assert "分管领导" in refused
    rows = await say(sm, clock, w.lead_leader.code, f"批准 {CASE} A2 A3")
    assert "已批准" in bodies(rows)
    assert await active(sm) == {"A1", "A3", "B1"}
    async with sm() as s:
        req = await s.scalar(select(ReplacementRequest))
        assert req is not None and req.state == "approved"
        assert req.decided_by_id == w.lead_leader.id


async def test_reasons_over_2000_characters_are_refused_storing_nothing_001_art14(
    sessionmaker, clock, w
) -> None:
    """001 第十四条: a 更换's reason, and a leader's 不批准 reason, are written reasons with
    their limit: a longer one is refused saying what to do; nothing is asked or decided."""
    sm = sessionmaker
    text = bodies(await say(sm, clock, w.a1.code, f"更换 {CASE} A2 {LONG_REASON}"))
    assert too_long("更换理由") in text
    async with sm() as s:
        assert await s.scalar(select(ReplacementRequest)) is None
    await say(sm, clock, w.a1.code, f"更换 {CASE} A2 长期病假无法到岗")
    text = bodies(await say(sm, clock, w.lead_leader.code, f"不批准 {CASE} A2 {LONG_REASON}"))
    assert too_long("不批准理由") in text
    async with sm() as s:
        req = await s.scalar(select(ReplacementRequest))
        assert req is not None and (req.state, req.decision_reason) == ("pending", "")
    assert await active(sm) == {"A1", "A2", "B1"}


async def test_a_refusal_carries_its_reason_to_the_requester_004_art13(
    sessionmaker, clock, w
) -> None:
    sm = sessionmaker
    await say(sm, clock, w.a1.code, f"更换 {CASE} A2 长期病假无法到岗")
    text = bodies(await say(sm, clock, w.lead_leader.code, f"不批准 {CASE} A2"))
    assert "用法" in text
    rows = await say(sm, clock, w.lead_leader.code, f"不批准 {CASE} A2 病假一周内结束")
    told = [r for r in rows if r.destination.get("officer_id") == w.a1.id]
    assert told and "病假一周内结束" in told[0].message["body"]
    assert await active(sm) == {"A1", "A2", "B1"}
    again = bodies(await say(sm, clock, w.lead_leader.code, f"批准 {CASE} A2 A3"))
    assert "没有" in again and "待批准的更换申请" in again


async def test_a_replacement_outside_the_department_names_who_may_be_chosen_004_art13(
    sessionmaker, clock, w
) -> None:
    """004 第十三条 (调整更换人员在具备执法资格的其他执法人员中选派): naming an inspector of
    another department is refused with the ones the leader may name, by name and code."""
    sm = sessionmaker
    await say(sm, clock, w.a1.code, f"更换 {CASE} A2 长期病假无法到岗")
    text = bodies(await say(sm, clock, w.lead_leader.code, f"批准 {CASE} A2 B1"))
    assert "王检查不是县市场监督管理局在岗的执法检查人员" in text
    assert "可以指定：陈检查（A3）、吴局外（AX）" in text
    assert f"批准 {CASE} A2 A3" in text
    assert await active(sm) == {"A1", "A2", "B1"}


async def test_the_replaced_inspector_is_told_they_left_the_group_004_art13(
    sessionmaker, clock, w
) -> None:
    """004 第十三条: the inspector a leader's approval replaces is told they are no longer in
    the case's group, by whose decision and why; they used to hear nothing, their assignment
    still listing the case."""
    sm = sessionmaker
    await say(sm, clock, w.a1.code, f"更换 {CASE} A2 借调至市局专项检查")
    rows = await say(sm, clock, w.lead_leader.code, f"批准 {CASE} A2 A3")
    [told] = [r.message["body"] for r in rows if r.destination.get("officer_id") == w.a2.id]
    assert f"您已不在案件 {CASE}（嘉善县某某食品有限公司）的检查组中" in told
    assert f"经{w.lead_leader.name}决定更换，由陈检查接替" in told
    assert "理由：借调至市局专项检查" in told and "我的检查" in told
    mine = bodies(await say(sm, clock, w.a2.code, "我的检查"))
    assert CASE not in mine


async def test_the_messages_name_the_department_whose_leader_decides_001_art14(
    sessionmaker, clock, w
) -> None:
    """001 第十四条 (经本部门相关负责人同意): the inspector's own department decides. A member
    of another department asking, or that department's leader approving, is told which
    department's leader it is — not 本部门, which reads as their own."""
    sm = sessionmaker
    rows = await say(sm, clock, w.b1.code, f"更换 {CASE} A2 长期病假无法到岗")
    reply = told(rows, w.b1)
    assert "县市场监督管理局分管领导" in reply and "本部门" not in reply
    assert "已报县市场监督管理局分管领导决定" in told(rows, w.a1)
    again = bodies(await say(sm, clock, w.b1.code, f"更换 {CASE} A2 仍无法到岗"))
    assert "等待县市场监督管理局分管领导批准" in again
    refused = bodies(await say(sm, clock, w.other_leader.code, f"批准 {CASE} A2 A3"))
    assert "须经县市场监督管理局分管领导" in refused and "本部门" not in refused


async def test_deciding_without_the_role_is_refused_for_the_role_first_001_art14(
    sessionmaker, clock, w
) -> None:
    """001 第十四条 (经本部门相关负责人同意): an inspector, or another department's leader,
    sending 批准 or 不批准 is told whose leader decides — before, with nothing pending, they read
    that there was no request to decide, as if they might decide one."""
    sm = sessionmaker
    for who in (w.a1, w.other_leader):
        for text in (f"批准 {CASE} A2 A3", f"不批准 {CASE} A2 病假一周内结束"):
            refused = bodies(await say(sm, clock, who.code, text))
            assert "须经县市场监督管理局分管领导（或管理员）决定" in refused, refused
            assert "待批准" not in refused
    nothing = bodies(await say(sm, clock, w.lead_leader.code, f"批准 {CASE} A2 A3"))
    assert "没有" in nothing and "待批准的更换申请" in nothing


async def test_a_replacement_that_could_never_be_approved_is_refused_when_asked_004_art13(
    sessionmaker, clock, w
) -> None:
    """A 更换 only before the inspection started (004 第十三条): once a department's part is
    entered the request was accepted and the leader told, only for 批准 to refuse it. It is now
    refused at once with the words 批准 would use, and nobody is asked."""
    sm = sessionmaker
    entered = bodies(await say(sm, clock, w.b1.code, f"提交 {CASE} 未发现问题 3月5日"))
    assert "已录入" in entered or "已提交" in entered, entered
    rows = await say(sm, clock, w.a1.code, f"更换 {CASE} A2 出差公干无法到岗")
    said = bodies(rows)
    assert f"案件 {CASE} 已开始检查或已录入结果，不能再更换人员" in said
    assert "已提交更换申请" not in said
    assert not [r for r in rows if r.destination.get("officer_id") == w.lead_leader.id]
    async with sm() as s:
        assert await s.scalar(select(ReplacementRequest)) is None
    assert await active(sm) == {"A1", "A2", "B1"}
