"""Shared by stages 4–8, per-target inspection cases: what every stage of a case shares — loading a
case and its task, the group, the departments taking part, who may act, the latest result version,
and the task's stage following its cases. The stages themselves: core.inspection (notice, inspection
date, window), core.result_entry (results), core.review (004 第十九条), core.publication (公示 and
corrections, 004 第二十条), core.referrals (移送), core.documents (通知书, 记录表).

Case and result states and their allowed moves are declared in core/states.py (CASE, RESULT).
Every transition loads its case with a row lock (`get_case(..., for_update=True)`), so two
concurrent reviews or a review racing a resubmission serialise on PostgreSQL and the second one
sees the first one's outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Exists, Select, Table, bindparam, exists, select
from sqlalchemy.orm import defaultload

from core.changes import Ctx, record
from core.clock import CHINA_TZ
from core.codes import TASK_NUMBER, case_number
from core.errors import NotFound, PermissionDenied
from core.messages import OutMessage
from core.models import (
    Case,
    CasePart,
    CaseResult,
    Department,
    GroupMember,
    Invitation,
    Item,
    JointTask,
    Officer,
    TaskItem,
)
from core.render import render
from core.results import (
    Category,
    department_category,
    label,
)
from core.states import (
    TASK,
    CaseState,
    InvitationState,
    PartState,
    ResultState,
    TaskState,
)

# a part_entered case is still open: the missing departments enter theirs (000 §九–十)
OPEN_FOR_ENTRY = (
    CaseState.ASSIGNED,
    CaseState.NOTIFIED,
    CaseState.INSPECTED,
    CaseState.PART_ENTERED,
    CaseState.RETURNED,
)
AFTER_APPROVAL = (CaseState.APPROVED, CaseState.PUBLISHED, CaseState.OBJECTED, CaseState.CORRECTED)


def china_date(at: dt.datetime) -> dt.date:
    return at.astimezone(CHINA_TZ).date()


def message(template: str, title: str, **context: Any) -> OutMessage:
    return OutMessage.md(title, render(f"messages/{template}.md.j2", **context))


# ---------------------------------------------------------------- loading and permissions


async def get_case(ctx: Ctx, case_code: str, *, for_update: bool = False) -> Case:
    """`for_update` locks the row until commit and reloads it, so a transition decides on the
    state as committed by whoever held the lock before (not a stale copy in this ctx.session)."""
    query = select(Case).where(Case.code == case_number(case_code))
    if for_update:
        query = query.with_for_update(of=Case).execution_options(populate_existing=True)
    case = await ctx.session.scalar(query)
    if case is None:
        raise no_case(case_code)
    return case


def no_case(code: str) -> NotFound:
    """A case number that names no case; a task's number, with the commands that take one
    (read from the number alone: it says nothing of whether the task exists)."""
    task = case_number(code)
    if TASK_NUMBER.fullmatch(task):
        return NotFound(
            f"{task} 是任务编号，不是案件号；查看任务请发送“任务 {task}”，检查进度“进度 {task}”，"
            f"检查对象和检查组名单“名单 {task}”；案件号形如 {task}-001"
        )
    return NotFound(f"找不到案件 {code}，请核对案件号（形如 LJ-2026-001-003）")


async def get_task(ctx: Ctx, case: Case) -> JointTask:
    task = await ctx.session.get(JointTask, case.task_id)
    assert task is not None  # foreign key
    return task


# The look-ups every case page and result makes, built once with bound parameters: building a
# statement (and its cache key) cost as much CPU as running a small one (#9).
_ACTIVE = GroupMember.active.is_(True)
_GROUP_ORDER = (GroupMember.is_leader.desc(), GroupMember.id)
# messages to members go by officer id: their platform accounts are not loaded
_MEMBER_OFFICERS = defaultload(GroupMember.officer).raiseload(Officer.accounts)
_ACTIVE_MEMBERS = (
    select(GroupMember)
    .where(GroupMember.case_id == bindparam("case_id"), _ACTIVE)
    .order_by(*_GROUP_ORDER)
    .options(_MEMBER_OFFICERS)
)


def with_group(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """A case look-up (`select(Case, …, GroupMember)`) with the case's active group joined:
    one row per member in `active_members`' order, one row with no member for a case without
    a group; the case and its group in one query."""
    return (
        query.outerjoin(GroupMember, (GroupMember.case_id == Case.id) & _ACTIVE)
        .order_by(*_GROUP_ORDER)
        .options(_MEMBER_OFFICERS)
    )


OWN_PART_IN = CasePart.id.is_not(None)


def per_group_department(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """A count of cases (`select(Department.name, …)`) per active department of each case's
    inspection group, with that department's own part joined where it is entered: 谁检查、谁录入
    (000 §九–十), a department whose part is in (`OWN_PART_IN`) has done its entry, whatever
    the case's other parts."""
    return (
        query.join(GroupMember, (GroupMember.case_id == Case.id) & _ACTIVE)
        .join(Department, Department.id == GroupMember.department_id)
        .outerjoin(
            CasePart,
            (CasePart.case_id == Case.id)
            & (CasePart.department_id == GroupMember.department_id)
            & (CasePart.state == PartState.ENTERED),
        )
    )


# Look-ups that return plain columns are built on the tables: a statement naming an ORM
# attribute anywhere (a subquery too) runs through the ORM's compile and result layers, ~30 us
# of CPU more each (#9)
_INVITATION = cast(Table, Invitation.__table__).c
_DEPARTMENT = cast(Table, Department.__table__).c
_OFFICERS = cast(Table, Officer.__table__)
_OFFICER = _OFFICERS.c
_CASE = cast(Table, Case.__table__).c
_ACCEPTED = select(_INVITATION.department_id).where(
    _INVITATION.task_id == bindparam("task_id"), _INVITATION.state == InvitationState.ACCEPTED
)
_IS_PARTICIPATING = (
    Department.id.in_(_ACCEPTED)
    | Department.id.in_(
        select(TaskItem.department_id).where(TaskItem.task_id == bindparam("task_id"))
    )
    | (Department.id == bindparam("lead_id"))
)
_PARTICIPATING = select(Department).where(_IS_PARTICIPATING).order_by(Department.id)
# each participating department with each of its items in the task (None: it checks none)
_PARTICIPATING_ITEMS = (
    select(Department, Item)
    .outerjoin(
        TaskItem,
        (TaskItem.department_id == Department.id) & (TaskItem.task_id == bindparam("task_id")),
    )
    .outerjoin(Item, Item.id == TaskItem.item_id)
    .where(_IS_PARTICIPATING)
    .order_by(Department.id, Item.code)
)
_REVIEWING = (
    select(Department)
    .where(Department.id.in_(_ACCEPTED) | (Department.id == bindparam("lead_id")))
    .order_by(Department.id)
)
_TASK_ITEMS = (
    select(Item, Department)
    .join(TaskItem, TaskItem.item_id == Item.id)
    .join(Department, Department.id == TaskItem.department_id)
    .where(TaskItem.task_id == bindparam("task_id"))
    .order_by(Department.id, Item.code)
)
_MEMBER = (
    select(GroupMember.id)
    .where(
        GroupMember.case_id == bindparam("case_id"),
        GroupMember.officer_id == bindparam("officer_id"),
        GroupMember.active.is_(True),
    )
    .limit(1)
)
_LATEST_RESULT = (
    select(CaseResult)
    .where(CaseResult.case_id == bindparam("case_id"))
    .order_by(CaseResult.version.desc())
    .limit(1)
)


async def active_members(ctx: Ctx, case: Case) -> list[GroupMember]:
    """The case's group (without the officers' platform accounts)."""
    return list(await ctx.session.scalars(_ACTIVE_MEMBERS, {"case_id": case.id}))


async def active_groups(ctx: Ctx, case_ids: Sequence[int]) -> dict[int, list[GroupMember]]:
    """`active_members` of many cases in one query, by case id (a case without a group has no
    entry)."""
    groups: dict[int, list[GroupMember]] = {}
    query = (
        select(GroupMember)
        .where(GroupMember.case_id.in_(case_ids), _ACTIVE)
        .order_by(GroupMember.case_id, *_GROUP_ORDER)
        .options(_MEMBER_OFFICERS)
    )
    for member in await ctx.session.scalars(query):
        groups.setdefault(member.case_id, []).append(member)
    return groups


async def participating_departments(ctx: Ctx, task: JointTask) -> list[Department]:
    """The lead first, then departments that accepted or check items in the task."""
    params = {"task_id": task.id, "lead_id": task.lead_department_id}
    rows = await ctx.session.scalars(_PARTICIPATING, params)
    return sorted(rows, key=lambda d: d.id != task.lead_department_id)


async def sees_inside(ctx: Ctx, task: JointTask) -> bool:
    """Whether the actor may see a task's invitations, cases, groups, inspector draws and
    results before they are published: the system, the office's admin and the task's own
    departments. Everyone else sees what the public side shows (002 二(六): results are made
    public by publication)."""
    actor = ctx.actor
    if actor is None or actor.has_role("admin"):
        return True
    return actor.department_id in {d.id for d in await participating_departments(ctx, task)}


async def reviewing_departments(ctx: Ctx, task: JointTask) -> list[Department]:
    """Who must approve a version (004 第十九条): the lead and every department that accepted."""
    params = {"task_id": task.id, "lead_id": task.lead_department_id}
    rows = await ctx.session.scalars(_REVIEWING, params)
    return sorted(rows, key=lambda d: d.id != task.lead_department_id)


async def task_items(ctx: Ctx, task: JointTask) -> list[tuple[Item, Department]]:
    """The task's items with the department checking each, by department then item code."""
    rows = await ctx.session.execute(_TASK_ITEMS, {"task_id": task.id})
    return [(item, department) for item, department in rows.all()]


async def departments_and_items(
    ctx: Ctx, task: JointTask
) -> tuple[list[Department], list[tuple[Item, Department]]]:
    """`participating_departments` and `task_items` in one query."""
    params = {"task_id": task.id, "lead_id": task.lead_department_id}
    rows = (await ctx.session.execute(_PARTICIPATING_ITEMS, params)).all()
    departments = sorted(
        dict.fromkeys(d for d, _ in rows), key=lambda d: d.id != task.lead_department_id
    )
    return departments, [(item, d) for d, item in rows if item is not None]


def department_categories(departments: Sequence[Department]) -> list[Category]:
    return [
        department_category(d.code, d.short_name or d.name)
        for d in departments
        if not d.is_market_regulator
    ]


def is_staff(officer: Officer | None, department_ids: Sequence[int]) -> bool:
    """A liaison or leader of one of the departments."""
    return (
        officer is not None
        and officer.department_id in department_ids
        and (officer.has_role("liaison") or officer.has_role("leader"))
    )


def require(allowed: bool, message_text: str, action: str, subject: str) -> None:
    """PermissionDenied carries action and subject so the caller audits the refusal."""
    if not allowed:
        raise PermissionDenied(message_text, action=f"{action}.denied", subject=subject)


async def is_member(ctx: Ctx, case: Case, officer: Officer | None) -> bool:
    """Whether the officer is an active member of the case's group (one indexed look-up, not
    the whole group with its officers)."""
    if officer is None:
        return False
    found = await ctx.session.scalar(_MEMBER, {"case_id": case.id, "officer_id": officer.id})
    return found is not None


async def require_member(
    ctx: Ctx, case: Case, action: str, group: Sequence[GroupMember] | None = None
) -> Officer:
    """The actor, if a member of the case's group; `group`: its active members when the
    caller has them loaded already (no look-up)."""
    actor = ctx.actor
    member = (
        await is_member(ctx, case, actor)
        if group is None
        else actor is not None and any(m.officer_id == actor.id for m in group)
    )
    require(
        member,
        "只有本案检查组成员可以提交结果"
        if action == "case.result.submit"
        else "只有本案检查组成员可以办理此事项",
        action,
        f"case:{case.code}",
    )
    assert actor is not None
    return actor


async def latest_result(
    ctx: Ctx, case: Case, state: ResultState | None = None
) -> CaseResult | None:
    query = _LATEST_RESULT if state is None else _LATEST_RESULT.where(CaseResult.state == state)
    return await ctx.session.scalar(query, {"case_id": case.id})


# Task stage follows its cases: every case has a result → reviewing; all published → published.
PUBLIC = frozenset({CaseState.PUBLISHED, CaseState.OBJECTED, CaseState.CORRECTED})
_RESULT_IN = frozenset({CaseState.SUBMITTED, CaseState.APPROVED, CaseState.RETURNED, *PUBLIC})


def _some_case(*where: ColumnElement[bool]) -> Exists:
    return exists().where(_CASE.task_id == bindparam("task_id"), *where)


# whether the task has cases, one short of a result, one not yet public: each probe stops at
# its first row, where the distinct states of every case read them all (#9: the slowest
# statement of a result's entry on a task of a thousand cases)
_REACHED = (
    _some_case(),
    _some_case(_CASE.state.not_in(_RESULT_IN)),
    _some_case(_CASE.state.not_in(PUBLIC)),
)
_CASES_REACHED = select(*_REACHED)


@dataclass(frozen=True)
class CasesReached:
    """Where a task's cases stand, what `advance_task` decides on."""

    any_case: bool
    short_of_result: bool  # a case without a result yet
    short_of_public: bool  # a case whose result is not public yet


_DEPARTMENTS_AND_STAFF = (
    select(_DEPARTMENT.id, _OFFICER.id, _OFFICER.roles, *_REACHED)
    .outerjoin(_OFFICERS, (_OFFICER.department_id == _DEPARTMENT.id) & _OFFICER.active.is_(True))
    .order_by(_DEPARTMENT.id, _OFFICER.id)
)
_REVIEWERS_AND_STAFF = {
    True: _DEPARTMENTS_AND_STAFF.where(
        _DEPARTMENT.id.in_(_ACCEPTED) | (_DEPARTMENT.id == bindparam("lead_id"))
    ),
    False: _DEPARTMENTS_AND_STAFF.where(_DEPARTMENT.id == bindparam("lead_id")),
}


async def reviewers_and_staff(
    ctx: Ctx, task: JointTask, *, participants: bool
) -> tuple[list[int], list[int], CasesReached | None]:
    """Who is told of a version to review, in one query: the reviewing departments' ids (the
    lead first; `participants`: with every department that accepted, as
    `reviewing_departments`, else the lead alone) and their active liaisons' and leaders' ids
    by officer id: each of them gets the review page privately (a group copy of the notice
    carries no signed link). Ids and roles only: no officer rows with their accounts. Third,
    where the task's cases stand after this transaction's changes (`cases_reached`, None if
    no department came back), read by the same statement for `advance_task`."""
    lead = task.lead_department_id
    query = _REVIEWERS_AND_STAFF[participants]
    await ctx.session.flush()  # the probes read the cases as this transaction leaves them
    rows = (await ctx.session.execute(query, {"task_id": task.id, "lead_id": lead})).all()
    departments = sorted(dict.fromkeys(row[0] for row in rows), key=lambda d: d != lead)
    staff = sorted(
        row[1] for row in rows if row[1] is not None and {"liaison", "leader"} & set(row[2] or ())
    )
    reached = CasesReached(*(bool(probe) for probe in rows[0][3:])) if rows else None
    return departments, staff, reached


async def result_labels(
    ctx: Ctx,
    task: JointTask,
    result: CaseResult,
    departments: Sequence[Department] | None = None,
) -> list[str]:
    """The result's categories in words; `departments`: the task's participating departments
    if the caller has them already."""
    if departments is None:
        departments = await participating_departments(ctx, task)
    extra = department_categories(departments)
    return [label(c, extra) for c in result.codes]


async def staff_case(ctx: Ctx, case_code: str, verb: str, action: str) -> tuple[Case, JointTask]:
    """The case, locked, for a step only the lead's or a participant's staff may take."""
    case = await get_case(ctx, case_code, for_update=True)
    task = await get_task(ctx, case)
    departments = [d.id for d in await participating_departments(ctx, task)]
    require_staff(ctx, departments, verb, action, case)
    return case, task


def require_staff(
    ctx: Ctx, department_ids: Sequence[int], verb: str, action: str, case: Case
) -> Officer:
    """The actor, if a liaison or leader of one of the task's participating departments."""
    require(
        is_staff(ctx.actor, department_ids),
        f"只有牵头部门或参与部门的联络员、分管领导可以{verb}结果",
        action,
        f"case:{case.code}",
    )
    assert ctx.actor is not None  # staff checked above
    return ctx.actor


async def require_lead_staff(ctx: Ctx, task: JointTask, action: str, subject: str) -> None:
    """The lead department's liaison or leader; the system (scheduler, CLI) may act too."""
    require(
        ctx.actor is None or is_staff(ctx.actor, [task.lead_department_id]),
        "只有牵头部门的联络员、分管领导可以办理此事项",
        action,
        subject,
    )


async def cases_reached(ctx: Ctx, task: JointTask) -> CasesReached:
    """Where the task's cases stand, as this transaction leaves them."""
    await ctx.session.flush()
    row = (await ctx.session.execute(_CASES_REACHED, {"task_id": task.id})).one()
    return CasesReached(*(bool(probe) for probe in row))


async def advance_task(ctx: Ctx, task: JointTask, reached: CasesReached | None = None) -> None:
    """Move the task to the stage its cases have reached (audited once per move); `reached`:
    where they stand if the caller has read it after its last change to them."""
    if task.state not in (TaskState.INSPECTING, TaskState.REVIEWING):
        return
    if reached is None:
        reached = await cases_reached(ctx, task)
    if not reached.any_case:
        return
    stage = (
        TaskState.PUBLISHED
        if not reached.short_of_public
        else TaskState.REVIEWING
        if not reached.short_of_result
        else task.state
    )
    if stage != task.state:
        before = task.state
        TASK.move(task, TaskState(stage))
        await record(ctx, "task.stage", f"task:{task.code}", {"from": before, "to": stage})
