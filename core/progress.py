"""Across stages, the read side of a joint task for the chat handlers: a department's tasks and
invitations, a task's progress, an officer's cases. No writes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from core.cases import (
    OPEN_FOR_ENTRY,
    OWN_PART_IN,
    get_case,
    participating_departments,
    per_group_department,
    require,
    sees_inside,
)
from core.cases import get_task as case_task
from core.changes import Ctx
from core.errors import ValidationFailed
from core.inspection import entry_deadline_sql, result_deadline, window_deadline
from core.jointtask import LISTED_CASES, get_task, no_task, task_invitations, task_items
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
    Referral,
)
from core.result_parts import PartStatus, part_status
from core.states import INVITATION, TASK, InvitationState, PartState, TaskState
from core.timeliness import ReturnedPart, reentry_deadlines, returned_past_deadline
from core.workdays import Deadline

BAR_WIDTH = 10


@dataclass(frozen=True)
class TaskListing:
    task: JointTask
    role: str  # lead | invited
    invitation: Invitation | None


async def tasks_for_department(ctx: Ctx, department_id: int) -> list[TaskListing]:
    """The department's own tasks and its invitations; pending invitations first, then newest."""
    own = await ctx.session.scalars(
        select(JointTask).where(JointTask.lead_department_id == department_id)
    )
    invited = await ctx.session.execute(
        select(JointTask, Invitation)
        .join(Invitation, Invitation.task_id == JointTask.id)
        .where(Invitation.department_id == department_id)
    )
    listing = [TaskListing(t, "lead", None) for t in own]
    listing += [TaskListing(t, "invited", inv) for t, inv in invited]
    listing.sort(key=lambda x: x.task.created_at, reverse=True)
    listing.sort(
        key=lambda x: (
            not (x.invitation is not None and x.invitation.state == InvitationState.PENDING)
        )
    )
    return listing


@dataclass(frozen=True)
class TaskDetail:
    """What `任务 编号` shows. `outside`: the officer's department neither takes part nor was
    invited, so it sees what the public index shows (002 二(六)) and `items` stays empty."""

    task: JointTask
    items: list[Item]
    invitation: Invitation | None
    outside: bool


async def task_detail(ctx: Ctx, code: str, department_id: int) -> TaskDetail:
    """One task for an officer of `department_id`. The task's departments, the departments it
    invited and admins see its items, reply deadline and commitment; any other department sees
    the public index's entry (code, title, lead, window, state), and a draft — not public —
    is as unknown to it as a task that does not exist."""
    task = await get_task(ctx, code)
    invitation = await ctx.session.scalar(
        select(Invitation).where(
            Invitation.task_id == task.id, Invitation.department_id == department_id
        )
    )
    if invitation is not None or await sees_inside(ctx, task):
        return TaskDetail(task, await task_items(ctx, task), invitation, outside=False)
    if task.state == TaskState.DRAFT:
        raise no_task(code)
    return TaskDetail(task, [], None, outside=True)


async def task_progress(ctx: Ctx, code: str) -> dict[str, Any]:
    task = await get_task(ctx, code)
    if not await sees_inside(ctx, task):
        return {
            "code": task.code,
            "title": task.title,
            "state": task.state,
            "state_label": TASK.label(task.state),
            "outside": True,
            "invitations": [],
            "invitation_counts": {},
            "cases": {},
            "case_total": 0,
            "overdue": 0,
            "departments": [],
        }
    invitations = await task_invitations(ctx, task)
    cases = Counter(
        (await ctx.session.execute(select(Case.state).where(Case.task_id == task.id))).scalars()
    )
    cal, today = await ctx.work_calendar(), ctx.clock.today()
    window_due = window_deadline(cal, ctx.rules, task.window_last_day).day
    overdue = await ctx.session.scalar(
        select(func.count())
        .select_from(Case)
        .where(
            Case.task_id == task.id,
            Case.state.in_(OPEN_FOR_ENTRY),
            entry_deadline_sql(window_due) < ctx.clock.today(),
        )
    )
    # a returned part is overdue once its re-entry window has passed, not at the result
    # deadline (core.timeliness); a case is overdue while any part of it is
    returned = await returned_past_deadline(
        ctx.session, cal, ctx.rules, {task.id: task.window_last_day}, today
    )
    overdue = (overdue or 0) - len(
        {r.case_id for r in returned} - {r.case_id for r in returned if r.window.day < today}
    )
    return {
        "code": task.code,
        "title": task.title,
        "state": task.state,
        "state_label": TASK.label(task.state),
        "outside": False,
        "reply_due_on": task.reply_due_on,
        "reply_due_provisional": task.reply_due_provisional,
        "invitations": [
            {
                "department": i.department.name,
                "state": i.state,
                "state_label": INVITATION.label(i.state),
                "reason": i.reason,
            }
            for i in invitations
        ],
        "invitation_counts": dict(Counter(i.state for i in invitations)),
        "cases": dict(cases),
        "case_total": sum(cases.values()),
        "overdue": int(overdue or 0),
        "departments": await _department_bars(ctx, task.id, window_due, returned),
    }


@dataclass(frozen=True)
class RosterEntry:
    case: Case
    members: list[GroupMember]  # the active group, its leader first; empty before matching


@dataclass(frozen=True)
class TaskRoster:
    """One page of `名单 编号`: the task's targets with their groups, the list the lock and
    matching messages point to. `outside`: the officer's department neither takes part nor
    is an admin's, so it sees what the public side shows (002 二(六)) and `entries` is empty."""

    task: JointTask
    outside: bool
    entries: list[RosterEntry]
    total: int
    page: int
    pages: int


async def task_roster(ctx: Ctx, code: str, page: int) -> TaskRoster:
    """Page `page` (from 1) of the task's cases by case number, LISTED_CASES a page, each with
    its active group. A page past the last is refused, naming how many there are."""
    task = await get_task(ctx, code)
    if not await sees_inside(ctx, task):
        if task.state == TaskState.DRAFT:
            raise no_task(code)
        return TaskRoster(task, True, [], 0, 1, 1)
    total = int(
        await ctx.session.scalar(
            select(func.count()).select_from(Case).where(Case.task_id == task.id)
        )
        or 0
    )
    pages = max(1, -(-total // LISTED_CASES))
    if not 1 <= page <= pages:
        if pages == 1:
            raise ValidationFailed(f"{task.code} 的任务名单只有 1 页，请发送“名单 {task.code}”")
        raise ValidationFailed(
            f"{task.code} 的任务名单共 {pages} 页，请发送“名单 {task.code} 页码”（1 至 {pages}）"
        )
    cases = list(
        await ctx.session.scalars(
            select(Case)
            .where(Case.task_id == task.id)
            .order_by(Case.code)
            .offset((page - 1) * LISTED_CASES)
            .limit(LISTED_CASES)
        )
    )
    members = await ctx.session.scalars(
        select(GroupMember)
        .where(GroupMember.case_id.in_([c.id for c in cases]), GroupMember.active.is_(True))
        .order_by(GroupMember.is_leader.desc(), GroupMember.id)
    )
    groups: dict[int, list[GroupMember]] = {c.id: [] for c in cases}
    for m in members:
        groups[m.case_id].append(m)
    entries = [RosterEntry(c, groups[c.id]) for c in cases]
    return TaskRoster(task, False, entries, total, page, pages)


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """A text bar every chat platform shows alike (no images, no markdown): ``▓▓▓░░ 3/5``."""
    filled = round(width * done / total) if total else 0
    return f"{'▓' * filled}{'░' * (width - filled)} {done}/{total}"


async def _department_bars(
    ctx: Ctx, task_id: int, window_due: dt.date, returned: list[ReturnedPart]
) -> list[dict[str, Any]]:
    """Per department with active inspectors in the task: cases whose result it has entered —
    the case is no longer open for entry, or its own part is in (谁检查、谁录入, 000 §九–十) —
    out of its cases, as a bar; and how many of its parts are overdue (past the case's result
    deadline and not entered; a `returned` part past its re-entry window)."""
    past_due = entry_deadline_sql(window_due) < ctx.clock.today()
    rows = await ctx.session.execute(
        per_group_department(
            select(
                Department.name,
                Case.state,
                OWN_PART_IN,
                past_due,
                func.count(func.distinct(Case.id)),
            )
        )
        .where(Case.task_id == task_id)
        .group_by(Department.name, Case.state, OWN_PART_IN, past_due)
    )
    totals: Counter[str] = Counter()
    done: Counter[str] = Counter()
    late: Counter[str] = Counter()
    for name, state, entered, overdue, n in rows:
        totals[name] += n
        if state not in OPEN_FOR_ENTRY or entered:
            done[name] += n
        elif overdue:
            late[name] += n
    late.subtract(r.department for r in returned if r.window.day >= ctx.clock.today())
    return [
        {
            "department": name,
            "done": done[name],
            "total": total,
            "bar": progress_bar(done[name], total),
            "overdue": late[name],
        }
        for name, total in sorted(totals.items())
    ]


async def parts_entered_by(ctx: Ctx, case_ids: list[int], department_id: int) -> set[int]:
    """Of the cases, those whose part the department has entered (谁检查、谁录入, 000 §九–十)."""
    return set(
        await ctx.session.scalars(
            select(CasePart.case_id).where(
                CasePart.case_id.in_(case_ids),
                CasePart.department_id == department_id,
                CasePart.state == PartState.ENTERED,
            )
        )
    )


@dataclass(frozen=True)
class OwedEntry:
    """What 我的检查 says of a case open for entry: by when the department's part is due, and
    whether that is a returned part's re-entry window (core.timeliness)."""

    due: Deadline
    reentry: bool


async def owed_entries(ctx: Ctx, cases: list[Case], department_id: int) -> dict[int, OwedEntry]:
    """Of the cases open for entry with a result deadline, by case id: when the department's
    part is due — the case's deadline, or, returned by a reviewer, its re-entry window, so a
    part entered in time is not called 已逾期 for a return after the deadline (001 第十六条(三))."""
    open_cases = [c for c in cases if c.state in OPEN_FOR_ENTRY and c.result_due_on is not None]
    if not open_cases:
        return {}
    cal = await ctx.work_calendar()
    dues = {c.id: result_deadline(cal, ctx.rules, c, await case_task(ctx, c)) for c in open_cases}
    windows = await reentry_deadlines(ctx.session, cal, ctx.rules, dues)
    found = {}
    for case_id, due in dues.items():
        window = windows.get((case_id, department_id))
        found[case_id] = OwedEntry(due, False) if window is None else OwedEntry(window, True)
    return found


async def cases_for_officer(ctx: Ctx, officer_id: int) -> list[Case]:
    """Cases where the officer is an active group member, by code."""
    return list(
        await ctx.session.scalars(
            select(Case)
            .join(GroupMember, GroupMember.case_id == Case.id)
            .where(GroupMember.officer_id == officer_id, GroupMember.active.is_(True))
            .order_by(Case.code)
        )
    )


async def awaiting_extension(ctx: Ctx, cases: list[Case], today: dt.date) -> dict[int, JointTask]:
    """The task of each case open for entry and not yet inspected whose window has ended, by
    case id: a visit now needs the lead's 延期 first (000 §五.3; `检查` refuses a later date)."""
    waiting = [c for c in cases if c.state in OPEN_FOR_ENTRY and c.inspected_on is None]
    if not waiting:
        return {}
    tasks = {
        t.id: t
        for t in await ctx.session.scalars(
            select(JointTask).where(JointTask.id.in_({c.task_id for c in waiting}))
        )
    }
    return {c.id: tasks[c.task_id] for c in waiting if tasks[c.task_id].window_last_day < today}


@dataclass(frozen=True)
class CaseView:
    """Everything `案件 案件号` shows: the case, its task, group, results, objections, history."""

    case: Case
    task: JointTask
    members: list[GroupMember]
    departments: list[str]
    results: list[CaseResult]
    objections: list[Objection]
    referrals: list[Referral]
    history: list[AuditEvent]
    parts: list[PartStatus]  # each department's part (谁检查、谁录入, 000 §九–十)


HISTORY_SHOWN = 15


async def case_view(ctx: Ctx, code: str) -> CaseView:
    """One case for the people of the task's departments (lead and participants) and admins;
    others are refused (the case names the target and the inspectors)."""
    case = await get_case(ctx, code)
    task = await case_task(ctx, case)
    departments = await participating_departments(ctx, task)
    actor = ctx.actor
    require(
        actor is None
        or actor.has_role("admin")
        or actor.department_id in {d.id for d in departments},
        "只有牵头部门、参与部门的人员可以查看该案件",
        "case.view",
        f"case:{case.code}",
    )
    members = list(
        await ctx.session.scalars(
            select(GroupMember)
            .where(GroupMember.case_id == case.id)
            .order_by(GroupMember.active.desc(), GroupMember.id)
        )
    )
    results = list(
        await ctx.session.scalars(
            select(CaseResult).where(CaseResult.case_id == case.id).order_by(CaseResult.version)
        )
    )
    objections = list(
        await ctx.session.scalars(
            select(Objection).where(Objection.case_id == case.id).order_by(Objection.id)
        )
    )
    referrals = list(
        await ctx.session.scalars(
            select(Referral).where(Referral.case_id == case.id).order_by(Referral.id)
        )
    )
    subjects = [f"case:{case.code}", *(f"objection:{o.id}" for o in objections)]
    history = list(
        await ctx.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject.in_(subjects))
            .order_by(AuditEvent.id.desc())
            .limit(HISTORY_SHOWN)
        )
    )
    return CaseView(
        case,
        task,
        members,
        [d.name for d in departments],
        results,
        objections,
        referrals,
        history[::-1],
        await part_status(ctx, case, task),
    )
