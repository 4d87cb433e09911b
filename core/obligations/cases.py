"""Across stages 4–6: a case's open obligations — its result entry (each missing department's
part where the task has several, 谁检查、谁录入, 000 §九–十; else the whole group's) and its review
(each reviewing department whose approval is missing, 004 第十九条) —
read through the due-date indexes, as plain columns, so a tick over a county's year stays cheap.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    and_,
    not_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import OPEN_FOR_ENTRY, china_date
from core.clock import china_midnight
from core.inspection import entry_deadline, window_deadline
from core.links import page_ref
from core.models import (
    Case,
    CasePart,
    CaseResult,
    Department,
    JointTask,
    Review,
    Target,
    TaskItem,
)
from core.obligations.model import Obligation, People, make
from core.obligations.rows import CASE, INVITATION, MEMBER, RESULT, REVIEW, TARGET, TASK
from core.rules import Rules
from core.states import TASKS_IN_PROGRESS, CaseState, InvitationState, PartState, ResultState
from core.timeliness import reentry_deadlines
from core.workdays import Deadline, WorkCalendar


class _Task(NamedTuple):
    """What the tick needs of a task in progress (a Core row, not a JointTask)."""

    id: int
    lead_department_id: int
    window_last_day: dt.date


def _falls_due_by(
    cal: WorkCalendar, rules: Rules, tasks: dict[int, _Task], horizon: dt.date
) -> CompoundSelect[int]:
    """The ids of the cases whose entry or review can be due by `horizon` (a superset for
    reviews: their due day comes after the submission), so a tick reads the few due soon,
    not every open case: those of each kind found through its own index (deadline, task,
    submitted result)."""
    window_due = [
        tid
        for tid, t in tasks.items()
        if window_deadline(cal, rules, t.window_last_day).day <= horizon
    ]
    # entry_deadline: the stored deadline, else (none stored) the task window's
    stored = CASE.result_due_on.is_not(None)
    submitted_by = (
        select(RESULT.case_id)
        .join(Case.__table__, CASE.id == RESULT.case_id)
        .where(
            RESULT.state == ResultState.SUBMITTED,
            RESULT.entered_at < china_midnight(horizon + dt.timedelta(days=1)),
            CASE.state == CaseState.SUBMITTED,
        )
    )
    return union_all(
        select(CASE.id).where(
            CASE.result_due_on <= horizon, CASE.state.in_(OPEN_FOR_ENTRY), stored
        ),
        select(CASE.id).where(
            CASE.task_id.in_(window_due), CASE.state.in_(OPEN_FOR_ENTRY), not_(stored)
        ),
        submitted_by,
    )


async def entries_and_reviews(
    session: AsyncSession,
    cal: WorkCalendar,
    rules: Rules,
    today: dt.date,
    people: People,
    horizon: dt.date | None,
) -> list[Obligation]:
    tasks = {
        row[0]: _Task(*row)
        for row in await session.execute(
            select(TASK.id, TASK.lead_department_id, JointTask.window_last_day).where(
                TASK.state.in_(TASKS_IN_PROGRESS)
            )
        )
    }
    # Core columns, not Case objects nor ORM rows: a tick reads thousands of them
    ids: Select[int] | CompoundSelect[int]
    if horizon is None:
        open_cases: ColumnElement[bool] = and_(
            CASE.task_id.in_(list(tasks)),
            CASE.state.in_((*OPEN_FOR_ENTRY, CaseState.SUBMITTED)),
        )
        ids = select(CASE.id).where(open_cases)
    else:  # the task filter in Python: in SQL it would steer SQLite to the task_id index
        ids = _falls_due_by(cal, rules, tasks, horizon)
        open_cases = CASE.id.in_(ids)
    query = (
        select(
            CASE.id,
            CASE.code,
            # the stored text: compared with CaseState (a str enum), no enum made per row
            type_coerce(CASE.state, String),
            CASE.task_id,
            CASE.result_due_on,
            CASE.result_due_provisional,
            TARGET.name,
        )
        .join_from(Case.__table__, Target.__table__, TARGET.id == CASE.target_id)
        .where(open_cases)
        .order_by(CASE.id)
    )
    rows = [r for r in (await session.execute(query)).all() if r[3] in tasks]
    members = await _members(session, ids)
    entered = await _entered_parts(
        session, [r[0] for r in rows if r[2] in (CaseState.PART_ENTERED, CaseState.RETURNED)]
    )
    with_parts = await _part_departments(
        session, list({r[3] for r in rows if r[2] != CaseState.SUBMITTED})
    )
    submitted = [r for r in rows if r[2] == CaseState.SUBMITTED]
    reviewed = await _submitted_on(session, [r[0] for r in submitted], today)
    approved = await _approved_by(session, [r[0] for r in submitted])
    reviewers = await _reviewers(
        session, tasks, {r[3] for r in submitted}, rules.review_requires_participants
    )
    # a returned part is owed by its re-entry window, not the (maybe long past) result deadline
    # (core.timeliness): read for the cases a return left open, few on any day
    windows = await reentry_deadlines(
        session,
        cal,
        rules,
        {
            r[0]: entry_deadline(cal, rules, tasks[r[3]].window_last_day, r[4], r[5])
            for r in rows
            if r[0] in entered or r[2] == CaseState.RETURNED
        },
    )
    found: list[Obligation] = []
    # a deadline is shared by many cases (a due day; an undated case's task window): each
    # one's Deadline and working days left once, keyed by what entry_deadline reads of a case
    deadlines: dict[tuple[object, ...], tuple[Deadline, int]] = {}
    for case_id, code, state, task_id, due_on, provisional, target in rows:
        task, subject = tasks[task_id], f"{code} {target}"
        if state == CaseState.SUBMITTED:
            # 004 第十九条: each reviewing department whose approval is still missing owes
            # the review, nudged and escalated to its own leaders; one that approved is done
            review_due = review_due_on(cal, rules, reviewed[case_id])
            for department_id in reviewers[task_id]:
                if department_id in approved[case_id]:
                    continue
                found.append(
                    make(
                        cal,
                        today,
                        f"review:{case_id}:department:{department_id}",
                        "review",
                        subject,
                        department_id,
                        people.staff(department_id),
                        review_due,
                        page_ref("review", f"case:{case_id}"),
                    )
                )
            continue
        group = members[case_id]
        known = deadlines.get(key := (task_id, due_on, provisional))
        if known is None:
            due = entry_deadline(cal, rules, task.window_last_day, due_on, provisional)
            known = deadlines[key] = (due, cal.workdays_between(today, due.day))
        due, left = known
        page = page_ref("result", f"case:{case_id}")
        # 谁检查、谁录入 (000 §九–十): each department with items and members in the group
        # enters its own part — from the start, not only once some part is in, each one still
        # to enter it is nudged for it, with the case's one deadline, and escalated to its own
        # leaders, as the leaders' summary counts it (core.cases.per_group_department)
        in_group = {d for _, d in group}
        parts = [(d, name) for d, name in with_parts[task_id] if d in in_group]
        if case_id in entered or len(parts) > 1:
            for department_id, name in parts:
                if department_id in entered.get(case_id, ()):
                    continue
                found.append(
                    make(
                        cal,
                        today,
                        f"case:{case_id}:part:{department_id}",
                        "result_entry",
                        f"{subject}（{name}部分）",
                        department_id,
                        [officer for officer, d in group if d == department_id],
                        windows.get((case_id, department_id), due),
                        page,
                    )
                )
            continue
        if windows and (window := _lone_window(windows, case_id)) is not None:
            due, left = window, cal.workdays_between(today, window.day)
        found.append(  # as make() does, with the deadline's days left known
            Obligation(
                f"case:{case_id}",
                "result_entry",
                subject,
                group[0][1] if group else task.lead_department_id,
                tuple([officer for officer, _ in group]),
                due.day,
                due.provisional,
                left,
                page,
            )
        )
    return found


def _lone_window(windows: dict[tuple[int, int], Deadline], case_id: int) -> Deadline | None:
    """The re-entry window of a case whose one part was returned, if it was."""
    return next((w for (c, _), w in windows.items() if c == case_id), None)


async def _entered_parts(session: AsyncSession, case_ids: list[int]) -> dict[int, set[int]]:
    """The departments whose part of each case is entered (cases with none are left out)."""
    found: dict[int, set[int]] = defaultdict(set)
    if not case_ids:
        return found  # the usual day: no statement for nothing
    for case_id, department_id in await session.execute(
        select(CasePart.case_id, CasePart.department_id).where(
            CasePart.case_id.in_(case_ids), CasePart.state == PartState.ENTERED
        )
    ):
        found[case_id].add(department_id)
    return found


async def _part_departments(
    session: AsyncSession, task_ids: list[int]
) -> dict[int, list[tuple[int, str]]]:
    """Per task, the departments with items in it (each enters its part): (id, name)."""
    found: dict[int, list[tuple[int, str]]] = defaultdict(list)
    if not task_ids:
        return found
    for task_id, department_id, name in await session.execute(
        select(TaskItem.task_id, Department.id, Department.name)
        .join(Department, Department.id == TaskItem.department_id)
        .where(TaskItem.task_id.in_(task_ids))
        .distinct()
        .order_by(TaskItem.task_id, Department.id)
    ):
        found[task_id].append((department_id, name))
    return found


async def _members(
    session: AsyncSession, case_ids: Select[int] | CompoundSelect[int]
) -> dict[int, list[tuple[int, int]]]:
    """The active group of each case `case_ids` selects, leader first: (officer,
    department); the cases as a subquery rather than thousands of ids bound one by one."""
    members: dict[int, list[tuple[int, int]]] = defaultdict(list)
    rows = await session.execute(
        select(MEMBER.case_id, MEMBER.officer_id, MEMBER.department_id)
        .where(MEMBER.active.is_(True), MEMBER.case_id.in_(case_ids))
        .order_by(MEMBER.is_leader.desc(), MEMBER.id)
    )
    for case_id, officer_id, department_id in rows.all():
        members[case_id].append((officer_id, department_id))
    return members


def review_due_on(cal: WorkCalendar, rules: Rules, submitted_on: dt.date) -> Deadline:
    """Our turnaround for 审核 (not in the seeds: Rules.review_workdays) from the submission."""
    return cal.add_workdays(submitted_on, rules.review_workdays)


async def overdue_reviews(
    session: AsyncSession, cal: WorkCalendar, rules: Rules, today: dt.date, task: JointTask
) -> dict[int, list[int]]:
    """The task's results under review past their turnaround: per case, the reviewing
    departments whose approval is still missing (the review obligations overdue today)."""
    case_ids = list(
        await session.scalars(
            select(CASE.id).where(CASE.task_id == task.id, CASE.state == CaseState.SUBMITTED)
        )
    )
    if not case_ids:
        return {}
    submitted = await _submitted_on(session, case_ids, today)
    approved = await _approved_by(session, case_ids)
    tasks = {task.id: _Task(task.id, task.lead_department_id, task.window_last_day)}
    reviewers = await _reviewers(session, tasks, {task.id}, rules.review_requires_participants)
    return {
        case_id: [d for d in reviewers[task.id] if d not in approved[case_id]]
        for case_id in case_ids
        if today > review_due_on(cal, rules, submitted[case_id]).day
    }


async def _reviewers(
    session: AsyncSession, tasks: dict[int, _Task], task_ids: set[int], participants: bool
) -> dict[int, list[int]]:
    """Per task, the departments whose approval a version needs, lead first (004 第十九条, as
    core.cases.reviewing_departments): the lead, and with `participants` (Rules.
    review_requires_participants) every department that accepted the invitation."""
    found = {task_id: [tasks[task_id].lead_department_id] for task_id in task_ids}
    if not participants or not task_ids:
        return found
    for task_id, department_id in await session.execute(
        select(INVITATION.task_id, INVITATION.department_id)
        .where(INVITATION.task_id.in_(task_ids), INVITATION.state == InvitationState.ACCEPTED)
        .order_by(INVITATION.task_id, INVITATION.department_id)
    ):
        if department_id not in found[task_id]:
            found[task_id].append(department_id)
    return found


async def _approved_by(session: AsyncSession, case_ids: list[int]) -> dict[int, set[int]]:
    """The departments that approved each case's result awaiting review."""
    found: dict[int, set[int]] = defaultdict(set)
    if not case_ids:
        return found
    for case_id, department_id in await session.execute(
        select(RESULT.case_id, REVIEW.department_id)
        .join_from(Review.__table__, CaseResult.__table__, RESULT.id == REVIEW.result_id)
        .where(
            RESULT.case_id.in_(case_ids),
            RESULT.state == ResultState.SUBMITTED,
            REVIEW.decision == "approve",
        )
    ):
        found[case_id].add(department_id)
    return found


async def _submitted_on(
    session: AsyncSession, case_ids: list[int], today: dt.date
) -> dict[int, dt.date]:
    """The China day each case's result awaiting review was submitted (review counts from
    it), all in one query."""
    found = dict.fromkeys(case_ids, today)
    if not case_ids:
        return found
    for case_id, entered in await session.execute(
        select(CaseResult.case_id, CaseResult.entered_at).where(
            CaseResult.case_id.in_(case_ids), CaseResult.state == ResultState.SUBMITTED
        )
    ):
        found[case_id] = china_date(entered)
    return found
