"""A small inspection world built straight from the models (independent of the stage services)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.models import (
    AuditEvent,
    Case,
    CasePart,
    CaseResult,
    Department,
    GroupMember,
    Invitation,
    Item,
    JointTask,
    Objection,
    Officer,
    OutboxMessage,
    Target,
    TaskItem,
)
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from core.states import PartState
from tests.factories import group_members


class ResultFields(TypedDict):
    """The conclusion every result needs (result_entry.submit_result, publication.correct_result),
    spelled once per test module and unpacked next to the other keyword arguments."""

    codes: list[str]
    methods: list[str]
    followups: list[str]


@dataclass
class World:
    lead: Department  # 市场监管局 (market regulator)
    other: Department  # 卫健委, a participant
    a1: Officer  # lead inspector, group leader
    a2: Officer
    b1: Officer  # participant's inspector
    lead_liaison: Officer
    lead_leader: Officer
    other_liaison: Officer
    other_leader: Officer
    outsider: Officer  # an inspector of the lead department not in the group
    target: Target
    items: list[Item]
    task: JointTask
    case: Case


def _officer(code: str, name: str, dept: Department, *roles: str) -> Officer:
    return Officer(
        code=code, name=name, department_id=dept.id, roles=list(roles), cert_no=f"ZF{code}"
    )


async def build_world(
    session: AsyncSession,
    *,
    window_start: dt.date = dt.date(2026, 3, 2),
    window_end: dt.date = dt.date(2026, 3, 31),
    case_no: int = 1,
    task_state: str = "inspecting",
) -> World:
    lead = Department(
        code="SJ", name="县市场监督管理局", short_name="市场监管", is_market_regulator=True
    )
    other = Department(code="WJ", name="县卫生健康委员会")
    session.add_all([lead, other])
    await session.flush()
    people = [
        _officer("A1", "张检查", lead, "inspector"),
        _officer("A2", "李检查", lead, "inspector"),
        _officer("B1", "王检查", other, "inspector"),
        _officer("AL", "赵联络", lead, "liaison"),
        _officer("AD", "钱领导", lead, "leader"),
        _officer("BL", "孙联络", other, "liaison"),
        _officer("BD", "周领导", other, "leader"),
        _officer("AX", "吴局外", lead, "inspector"),
    ]
    session.add_all(people)
    target = Target(
        uscc="91330424MA28AQAQXU", name="嘉善县某某食品有限公司", address="某某镇某某路 1 号"
    )
    items = [
        Item(department_id=lead.id, code="SJ-01", name="企业公示信息检查", category="key"),
        Item(department_id=other.id, code="WJ-01", name="公共场所卫生检查"),
    ]
    session.add_all([target, *items])
    await session.flush()
    task = JointTask(
        code="LJ-2026-001",
        year=window_start.year,
        title="公共场所联合抽查",
        lead_department_id=lead.id,
        window_start=window_start,
        window_end=window_end,
        state=task_state,
        created_at=china_noon(window_start),
    )
    session.add(task)
    await session.flush()
    session.add_all(
        [TaskItem(task_id=task.id, item_id=i.id, department_id=i.department_id) for i in items]
    )
    session.add(Invitation(task_id=task.id, department_id=other.id, state="accepted"))
    case = Case(code=f"{task.code}-{case_no:03d}", task_id=task.id, target_id=target.id)
    session.add(case)
    await session.flush()
    a1, a2, b1, lead_liaison, lead_leader, other_liaison, other_leader, outsider = people
    session.add_all(group_members(case.id, (a1, a2, b1)))
    await session.commit()
    return World(
        lead,
        other,
        a1,
        a2,
        b1,
        lead_liaison,
        lead_leader,
        other_liaison,
        other_leader,
        outsider,
        target=target,
        items=items,
        task=task,
        case=case,
    )


async def add_case(
    session: AsyncSession,
    w: World,
    n: int,
    *,
    uscc: str = "",
    name: str = "",
    group: tuple[Officer, ...] = (),
) -> World:
    """The world with another target and case of its task (`{task}-{n:03d}`), its group
    `group` (the world's 张检查, 李检查, 王检查 when empty), the first leading."""
    await session.refresh(w.task)  # it may have been expired (a savepoint undone)
    target = Target(uscc=uscc or f"91330424MA28AQ{n:04d}", name=name or f"嘉善县第{n}食品有限公司")
    session.add(target)
    await session.flush()
    case = Case(code=f"{w.task.code}-{n:03d}", task_id=w.task.id, target_id=target.id)
    session.add(case)
    await session.flush()
    session.add_all(group_members(case.id, group or (w.a1, w.a2, w.b1)))
    await session.commit()
    return dataclasses.replace(w, case=case, target=target)


def acting(ctx: Ctx, officer: Officer | None) -> Ctx:
    return dataclasses.replace(ctx, actor=officer)


def at_time(ctx: Ctx, when: dt.datetime) -> None:
    """Move the tests' clock (a FixedClock; the type says only Clock) to `when`."""
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.set(when)


def at_day(ctx: Ctx, day: dt.date) -> None:
    at_time(ctx, china_noon(day))


async def snapshot(session: AsyncSession) -> tuple[object, ...]:
    """Row counts and states that a refused operation must leave as they were."""

    async def count(model: type) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    states = tuple((await session.scalars(select(Case.state).order_by(Case.id))).all())
    results = tuple(
        tuple(r)
        for r in (
            await session.execute(
                select(CaseResult.version, CaseResult.state).order_by(CaseResult.id)
            )
        ).all()
    )
    return (
        states,
        results,
        await count(Objection),
        await count(AuditEvent),
        await count(OutboxMessage),
    )


async def enter_other_parts(
    session: AsyncSession, case_code: str, but: Officer, at: dt.datetime
) -> None:
    """谁检查、谁录入 (000 §九–十): every department with items in the case's task, except
    `but`'s, has entered its part (CasePart rows straight from the models, by one of its group
    members), so `but`'s next entry completes the case and sends it to review — the setup of a
    test about review or what follows it, which would otherwise stop at 部分录入. `at`: when
    they were entered (the test's clock)."""
    case = await session.scalar(select(Case).where(Case.code == case_code))
    assert case is not None
    version = 1 + int(
        await session.scalar(
            select(func.coalesce(func.max(CaseResult.version), 0)).where(
                CaseResult.case_id == case.id
            )
        )
        or 0
    )
    members = await session.execute(
        select(GroupMember.department_id, func.min(GroupMember.officer_id))
        .where(
            GroupMember.case_id == case.id,
            GroupMember.active.is_(True),
            GroupMember.department_id != but.department_id,
            GroupMember.department_id.in_(
                select(TaskItem.department_id).where(TaskItem.task_id == case.task_id)
            ),
        )
        .group_by(GroupMember.department_id)
    )
    parts = {
        p.department_id: p
        for p in await session.scalars(select(CasePart).where(CasePart.case_id == case.id))
    }
    for department_id, officer_id in members.all():
        part = parts.get(department_id)
        if part is None:
            part = CasePart(case_id=case.id, department_id=department_id)
            session.add(part)
        part.state, part.version = PartState.ENTERED, version
        part.entered_by_id, part.entered_at = officer_id, at
    await session.flush()


async def other_department_finds_a_problem(ctx: Ctx, w: World) -> None:
    """卫健委's inspector enters its part: a problem found in its own item (2026-03-10)."""
    await submit_result(
        acting(ctx, w.b1),
        w.case.code,
        codes=["E"],
        methods=["实地检查"],
        followups=["责令改正并跟踪"],
        inspected_on=dt.date(2026, 3, 10),
        item_results=[{"item_id": w.items[1].id, "codes": ["E"], "problems": "健康证过期"}],
    )


async def approved_world(ctx: Ctx, session: AsyncSession, rules: Rules) -> tuple[Ctx, World]:
    """A world whose case both departments entered (a clean result, 2026-03-10) and both
    reviewers approved on 2026-03-12, under `rules` (rules.auto_publish: published at once);
    the ctx with those rules, committed."""
    ctx = dataclasses.replace(ctx, rules=rules)
    w = await build_world(session)
    at_day(ctx, dt.date(2026, 3, 12))
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(
        acting(ctx, w.a1),
        w.case.code,
        codes=["1"],
        methods=["实地检查"],
        followups=["无需后续处置"],
        inspected_on=dt.date(2026, 3, 10),
    )
    await review_result(acting(ctx, w.lead_liaison), w.case.code, True)
    await review_result(acting(ctx, w.other_liaison), w.case.code, True)
    await session.commit()
    await session.refresh(w.case)
    return ctx, w
