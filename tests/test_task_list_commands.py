"""名单 编号 [页码] through Dispatcher.handle: the task's targets and groups the lock and matching
messages point to ("见任务名单"), for the task's departments; any other department sees what
the public side shows (002 二(六): before publication a task's cases and groups are its
departments'). With it: the inspector draw named so it can be verified, a verification saying
what changed in the groups since, and the hints for a task number missing or given to 案件."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.models import Case, GroupMember, Officer
from core.rules import Rules
from tests import factories as f
from tests.dispatch_support import chat, make_dispatcher, send, text_event

BEACON_OUT = china_noon(dt.date(2026, 3, 4))  # the default beacon is 3 March's 福彩3D
RULE_10PCT = {"strata": [{"name": "全部", "ratio": "0.10"}]}  # 250 targets: 25 cases


@dataclass
class Scene:
    w: f.World
    code: str
    outsider: f.Dept
    locked: str  # what the lock and matching told the lead department's liaison


@pytest.fixture
async def scene(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Scene:
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=3, n_targets=250)
        task = await f.ready_task(Ctx(session=s, clock=clock, rules=Rules()), w, rule=RULE_10PCT)
        outsider = await f.dept(s)
        code = task.code
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"抽取 {code}"))
    clock.set(BEACON_OUT)
    rows = await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 417"))
    return Scene(w, code, outsider, "\n".join(r.message.get("body", "") for r in rows))


async def _cases(sm: async_sessionmaker[AsyncSession]) -> list[Case]:
    async with sm() as s:
        return list(await s.scalars(select(Case).order_by(Case.code)))


async def test_lock_and_matching_messages_point_to_the_list_command(sessionmaker, scene) -> None:
    """ "见任务名单" named nothing a user could open: the messages now name the command."""
    assert "见任务名单" not in scene.locked
    assert "另有 5 户" in scene.locked and f"名单 {scene.code}" in scene.locked
    assert f"{scene.code}-I1" in scene.locked  # the inspector draw, to verify it
    assert f"验证 {scene.code}-I1" in scene.locked


async def test_list_pages_through_every_target_and_its_group(sessionmaker, clock, scene) -> None:
    cases = await _cases(sessionmaker)
    assert len(cases) == 25
    first = await chat(sessionmaker, clock, scene.w.partners[0].liaison.code, f"名单 {scene.code}")
    assert "第 1/2 页" in first and f"名单 {scene.code} 2" in first
    assert cases[0].code in first and cases[19].code in first and cases[20].code not in first
    async with sessionmaker() as s:
        members = list(
            await s.scalars(
                select(Officer)
                .join(GroupMember, GroupMember.officer_id == Officer.id)
                .where(GroupMember.case_id == cases[0].id)
            )
        )
    assert members and all(m.name in first for m in members)
    second = await chat(
        sessionmaker, clock, scene.w.lead.inspectors[0].code, f"名单 {scene.code} 2"
    )
    assert "第 2/2 页" in second and cases[24].code in second and cases[0].code not in second
    assert cases[24].target.name in second
    beyond = await chat(sessionmaker, clock, scene.w.lead.liaison.code, f"名单 {scene.code} 3")
    assert "共 2 页" in beyond and cases[0].code not in beyond


async def test_list_for_another_department_is_the_public_view_002_2_6(
    sessionmaker, clock, scene
) -> None:
    """002 二(六): before publication a task's targets and groups are its departments' only."""
    cases = await _cases(sessionmaker)
    seen = await chat(sessionmaker, clock, scene.outsider.liaison.code, f"名单 {scene.code}")
    assert "本部门未参加该任务" in seen
    assert not any(c.code in seen or c.target.name in seen for c in cases)


async def test_list_of_an_unknown_task_and_of_a_task_not_drawn(sessionmaker, clock, scene) -> None:
    unknown = await chat(sessionmaker, clock, scene.w.lead.liaison.code, "名单 LJ-2099-999")
    assert "未找到任务 LJ-2099-999" in unknown
    async with sessionmaker() as s, s.begin():
        task = await f.ready_task(Ctx(session=s, clock=clock, rules=Rules()), scene.w)
        fresh = task.code
    empty = await chat(sessionmaker, clock, scene.w.lead.liaison.code, f"名单 {fresh}")
    assert "尚未锁定抽取结果" in empty


async def test_verify_of_the_inspector_draw_says_the_groups_changed_since(
    sessionmaker, clock, scene
) -> None:
    """The recomputation checks the draw as locked; a later approved 回避 (000 §八, 001 第十四条)
    changed a group, which the verification says, lest "一致" be read as "the groups now"."""
    draw = f"{scene.code}-I1"
    before = await chat(sessionmaker, clock, scene.w.lead.liaison.code, f"验证 {draw}")
    assert "与锁定结果一致" in before and "变动" not in before
    case = (await _cases(sessionmaker))[0]
    async with sessionmaker() as s:
        member = await s.scalar(
            select(Officer)
            .join(GroupMember, GroupMember.officer_id == Officer.id)
            .where(
                GroupMember.case_id == case.id,
                Officer.department_id == scene.w.partners[0].dep.id,
            )
        )
    assert member is not None
    await chat(sessionmaker, clock, member.code, f"回避 {case.code} 本人配偶在该企业任职")
    leader = scene.w.partners[0].leader.code
    approved = await chat(sessionmaker, clock, leader, f"批准 {case.code} {member.code}")
    assert "回避申请已批准" in approved
    after = await chat(sessionmaker, clock, scene.w.lead.liaison.code, f"验证 {draw}")
    assert "与锁定结果一致" in after
    assert "锁定后检查组成员变动 1 人次（回避 1 人次）" in after


async def test_withdraw_without_a_task_number_shows_the_form(sessionmaker, clock, scene) -> None:
    said = await chat(
        sessionmaker, clock, scene.w.lead.liaison.code, "撤销 任务文件重复执行需要撤销"
    )
    assert "未找到任务" not in said
    assert "请先写任务编号" in said and "撤销 LJ-2026-004" in said  # the usage's example


async def test_case_given_a_task_number_points_to_the_task_commands(
    sessionmaker, clock, scene
) -> None:
    said = await chat(sessionmaker, clock, scene.w.lead.liaison.code, f"案件 {scene.code}")
    assert "是任务编号" in said
    assert f"任务 {scene.code}" in said and f"进度 {scene.code}" in said
    assert f"名单 {scene.code}" in said
