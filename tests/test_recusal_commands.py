"""回避 → 批准 / 不批准 through Dispatcher.handle: a recusal is for a conflict of interest with
the target (000 §八: 与被抽查对象有利害关系应依法回避), and like any change of a drawn inspector
it takes effect only once the officer's department leader agrees (001 第十四条: 经本部门相关负责人
同意); approved, the next inspector in draw order replaces the officer, refused, the officer
stays and is told why."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import FixedClock, china_noon
from core.models import AuditEvent, Case, GroupMember, Officer, OutboxMessage
from tests import factories as f
from tests.dispatch_support import (
    bodies,
    make_dispatcher,
    ready_world,
    send,
    text_event,
    told,
)

BEACON_OUT = china_noon(dt.date(2026, 3, 4))  # the default beacon is 3 March's 福彩3D
REASON = "本人配偶在该企业任职"


class Scene:
    def __init__(self, w: f.World, case: Case, member: Officer, group: list[Officer]) -> None:
        self.w, self.case, self.member, self.group = w, case, member, group
        self.leader = w.partners[0].leader


@pytest.fixture
async def scene(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Scene:
    """A locked draw; the first case's partner inspector is the one asking to recuse."""
    w, code = await ready_world(sessionmaker, clock, inspectors=3, n_targets=40)
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"抽取 {code}"))
    clock.set(BEACON_OUT)
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 417"))
    async with sessionmaker() as s:
        case = await s.scalar(select(Case).order_by(Case.code).limit(1))
        assert case is not None
        group = list(
            await s.scalars(
                select(Officer)
                .join(GroupMember, GroupMember.officer_id == Officer.id)
                .where(GroupMember.case_id == case.id)
            )
        )
    member = next(o for o in group if o.department_id == w.partners[0].dep.id)
    return Scene(w, case, member, group)


async def say(sm, clock, code: str, text: str) -> list[OutboxMessage]:
    return await send(sm, make_dispatcher(sm, clock), text_event(code, text))


async def in_group(sm, case: Case) -> set[str]:
    async with sm() as s:
        return set(
            await s.scalars(
                select(Officer.code)
                .join(GroupMember, GroupMember.officer_id == Officer.id)
                .where(GroupMember.case_id == case.id, GroupMember.active.is_(True))
            )
        )


async def actions(sm) -> list[str]:
    async with sm() as s:
        return list(
            await s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.like("case.%"))
                .order_by(AuditEvent.id)
            )
        )


async def test_recusal_waits_for_the_department_leader_000_conflict_001_art14(
    sessionmaker, clock, scene
) -> None:
    """001 第十四条: a drawn inspector changes only with the department leader's consent — 回避
    included; until then the group stands. Everyone concerned hears of the request: the leader
    with the reason, the rest of the group without it (often personal)."""
    sm, s = sessionmaker, scene
    before = await in_group(sm, s.case)
    rows = await say(sm, clock, s.member.code, f"回避 {s.case.code} {REASON}")
    assert "已提交回避申请" in told(rows, s.member) and "批准前检查组不变" in told(rows, s.member)
    asked = told(rows, s.leader)
    assert REASON in asked and f"批准 {s.case.code} {s.member.code}" in asked
    assert "利害关系" in asked  # the leader weighs whether the reason is one (000 §八)
    others = [o for o in s.group if o.id != s.member.id]
    for o in others:
        assert f"{s.member.name}申请回避" in told(rows, o) and REASON not in told(rows, o)
    assert await in_group(sm, s.case) == before
    assert await actions(sm) == ["case.recusal.requested"]

    again = bodies(await say(sm, clock, s.member.code, f"回避 {s.case.code} {REASON}"))
    assert "正在等待" in again and "分管领导批准" in again
    refused = bodies(
        await say(sm, clock, s.w.lead.leader.code, f"批准 {s.case.code} {s.member.code}")
    )
    assert "分管领导" in refused and await in_group(sm, s.case) == before
    named = bodies(
        await say(sm, clock, s.leader.code, f"批准 {s.case.code} {s.member.code} {s.member.code}")
    )
    assert "按抽取顺序" in named and await in_group(sm, s.case) == before

    rows = await say(sm, clock, s.leader.code, f"批准 {s.case.code} {s.member.code}")
    assert "回避申请已批准" in told(rows, s.leader)
    after = await in_group(sm, s.case)
    [newcomer] = after - before
    assert after == before - {s.member.code} | {newcomer}
    assert newcomer in {o.code for o in s.w.partners[0].inspectors}
    assert f"您已不在案件 {s.case.code}" in told(rows, s.member)  # and why, by whose approval
    assert f"经{s.leader.name}批准回避" in told(rows, s.member)
    # sent again, it says when the officer left and who took over, not "not in the group"
    again = bodies(await say(sm, clock, s.member.code, f"回避 {s.case.code} {REASON}"))
    assert f"您已于 2026年3月4日 12:00 回避，不在案件 {s.case.code} 的检查组中" in again
    assert f"（{newcomer}）接替，无须再申请" in again and "您不在" not in again
    assert await actions(sm) == [
        "case.recusal.requested",
        "case.recusal",
        "case.recusal.approved",
    ]


async def test_a_refused_recusal_keeps_the_officer_and_says_why_001_art14(
    sessionmaker, clock, scene
) -> None:
    sm, s = sessionmaker, scene
    before = await in_group(sm, s.case)
    await say(sm, clock, s.member.code, f"回避 {s.case.code} {REASON}")
    why = "配偶已于去年离职，不存在利害关系"
    rows = await say(sm, clock, s.leader.code, f"不批准 {s.case.code} {s.member.code} {why}")
    assert "回避申请不批准" in told(rows, s.leader)
    assert why in told(rows, s.member) and "仍在检查组" in told(rows, s.member)
    for o in s.group:
        if o.id != s.member.id:
            assert "仍在检查组" in told(rows, o) and why not in told(rows, o)
    assert await in_group(sm, s.case) == before
    assert await actions(sm) == ["case.recusal.requested", "case.recusal.refused"]


async def test_a_refused_replacement_is_not_undone_by_a_recusal_000_conflict_001_art14(
    sessionmaker, clock, scene
) -> None:
    """The testers' way round a refusal: 更换 refused, then 回避 with the same reason. The hint
    after the refusal offers 回避 only for a conflict of interest (000 §八), and a 回避 still
    waits for the leader (001 第十四条)."""
    sm, s = sessionmaker, scene
    before = await in_group(sm, s.case)
    await say(sm, clock, s.member.code, f"更换 {s.case.code} {s.member.code} 病假无法到岗")
    rows = await say(
        sm, clock, s.leader.code, f"不批准 {s.case.code} {s.member.code} 病假一周内结束"
    )
    hint = told(rows, s.member)
    assert "病假一周内结束" in hint and "与检查对象有利害关系" in hint
    await say(sm, clock, s.member.code, f"回避 {s.case.code} 病假一周内结束不了")
    assert await in_group(sm, s.case) == before


async def test_a_recusal_reason_names_the_interest_000_conflict(sessionmaker, clock, scene) -> None:
    sm, s = sessionmaker, scene
    text = bodies(await say(sm, clock, s.member.code, f"回避 {s.case.code} 近亲"))
    assert "回避理由至少需要 4 个字" in text and "利害关系" in text
    assert await actions(sm) == []


async def test_a_recusal_reason_over_200_characters_is_refused_000_conflict(
    sessionmaker, clock, scene
) -> None:
    """000 §八: approved, the recusal's reason is the conflict of interest's (利害关系, at most
    200 characters, its column), so a longer one is refused when asked, never cut; nothing is
    asked."""
    sm, s = sessionmaker, scene
    text = bodies(await say(sm, clock, s.member.code, f"回避 {s.case.code} {'因' * 201}"))
    assert "回避理由不能超过 200 个字，现有 201 个字，请删减到 200 个字以内" in text
    assert await actions(sm) == []


async def test_a_recused_officer_cannot_be_named_back_by_a_replacement_000_s8_001_art14(
    sessionmaker, clock, scene
) -> None:
    """The tester's steps: 回避 approved, the successor's 更换 asked, the leader names the recused
    officer. 000 §八 (与被抽查对象有利害关系应依法回避): refused, the officer not offered among
    whom the leader may name (004 第十三条), and the group keeps the successor."""
    sm, s = sessionmaker, scene
    await say(sm, clock, s.member.code, f"回避 {s.case.code} {REASON}")
    await say(sm, clock, s.leader.code, f"批准 {s.case.code} {s.member.code}")
    [newcomer] = await in_group(sm, s.case) - {o.code for o in s.group}
    asker = s.w.partners[0].liaison.code
    await say(sm, clock, asker, f"更换 {s.case.code} {newcomer} 临时抽调参加专项行动")
    text = bodies(
        await say(sm, clock, s.leader.code, f"批准 {s.case.code} {newcomer} {s.member.code}")
    )
    assert f"{s.member.name}与该检查对象有利害关系，须回避" in text
    assert "可以指定：" in text and s.member.code not in text.split("可以指定：", 1)[1]
    assert s.member.code not in await in_group(sm, s.case)
    assert newcomer in await in_group(sm, s.case)


async def test_the_case_history_names_the_recusal_reason_to_the_officers_department_only(
    sessionmaker, clock, scene
) -> None:
    """`案件`'s history tells every department that the officer recused and who took over, but
    the reason (a conflict of interest, often personal) only to the officer's department and
    the office, as the group was told without it (001 第十四条: 经本部门相关负责人同意). A
    recusal asked by the officer names them once: 申请回避（X）, not 申请回避：X（X）."""
    sm, s = sessionmaker, scene
    await say(sm, clock, s.member.code, f"回避 {s.case.code} {REASON}")
    await say(sm, clock, s.leader.code, f"批准 {s.case.code} {s.member.code}")
    lead = bodies(await say(sm, clock, s.w.lead.liaison.code, f"案件 {s.case.code}"))
    assert f"申请回避（{s.member.name}）" in lead and f"回避：{s.member.name}，由" in lead
    assert REASON not in lead
    own = bodies(await say(sm, clock, s.w.partners[0].liaison.code, f"案件 {s.case.code}"))
    assert f"申请回避（{s.member.name}）：{REASON}" in own
