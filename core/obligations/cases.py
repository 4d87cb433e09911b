"""Across stages 4–6: a case's open obligations — its result entry (the whole group's, or, once
some parts are in, each missing department's part: 谁检查、谁录入, 000 §九–十) and its review —
read through the due-date indexes, as plain columns, so a tick over a county's year stays cheap.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import ColumnElement, and_, not_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import OPEN_FOR_ENTRY, china_date
from core.clock import china_midnight
from core.inspection import entry_deadline
from core.links import page_ref
from core.models import (
    Case,
    CasePart,
    CaseResult,
    Department,
    GroupMember,
    JointTask,
    Target,
    TaskItem,
)
from core.obligations.model import Obligation, People, make
from core.rules import Rules
from core.states import TASKS_IN_PROGRESS, CaseState, PartState, ResultState
from core.workdays import WorkCalendar


def _falls_due_by(
    cal: WorkCalendar, rules: Rules, tasks: dict[int, JointTask], horizon: dt.date
) -> ColumnElement[bool]:
    """Cases whose entry or review can be due by `horizon` (a superset for reviews: their due
    day comes after the submission), so a tick reads the few due soon, not every open case:
    the ids of each kind found through its own index (deadline, task, submitted result)."""
    window_due = [
        tid
        for tid, t in tasks.items()
        if cal.add_workdays(t.window_end, rules.result_entry_workdays).day <= horizon
    ]
    has_date = and_(Case.inspected_on.is_not(None), Case.result_due_on.is_not(None))
    submitted_by = (
        select(CaseResult.case_id)
        .join(Case, Case.id == CaseResult.case_id)
        .where(
            CaseResult.state == ResultState.SUBMITTED,
            CaseResult.entered_at < china_midnight(horizon + dt.timedelta(days=1)),
            Case.state == CaseState.SUBMITTED,
        )
    )
    return Case.id.in_(
        union_all(
            select(Case.id).where(
                Case.result_due_on <= horizon, Case.state.in_(OPEN_FOR_ENTRY), has_date
            ),
            select(Case.id).where(
                Case.task_id.in_(window_due), Case.state.in_(OPEN_FOR_ENTRY), not_(has_date)
            ),
            submitted_by,
        )
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
        t.id: t
        for t in await session.scalars(
            select(JointTask).where(JointTask.state.in_(TASKS_IN_PROGRESS))
        )
    }
    # plain columns, not Case objects: a tick reads thousands of them
    query = select(
        Case.id,
        Case.code,
        Case.state,
        Case.task_id,
        Case.inspected_on,
        Case.result_due_on,
        Case.result_due_provisional,
        Target.name,
    ).join(Target, Target.id == Case.target_id)
    if horizon is None:
        query = query.where(
            Case.task_id.in_(list(tasks)),
            Case.state.in_((*OPEN_FOR_ENTRY, CaseState.SUBMITTED)),
        )
    else:  # the task filter in Python: in SQL it would steer SQLite to the task_id index
        query = query.where(_falls_due_by(cal, rules, tasks, horizon))
    rows = [r for r in (await session.execute(query.order_by(Case.id))).all() if r[3] in tasks]
    members = await _members(session, [r[0] for r in rows])
    entered = await _entered_parts(
        session, [r[0] for r in rows if r[2] in (CaseState.PART_ENTERED, CaseState.RETURNED)]
    )
    with_parts = await _part_departments(session, list({r[3] for r in rows if r[0] in entered}))
    reviewed = await _submitted_on(
        session, [r[0] for r in rows if r[2] == CaseState.SUBMITTED], today
    )
    found: list[Obligation] = []
    for case_id, code, state, task_id, inspected_on, due_on, provisional, target in rows:
        task, subject = tasks[task_id], f"{code} {target}"
        if state == CaseState.SUBMITTED:
            lead = task.lead_department_id
            found.append(
                make(
                    cal,
                    today,
                    f"review:{case_id}",
                    "review",
                    subject,
                    lead,
                    people.staff(lead),
                    cal.add_workdays(reviewed[case_id], rules.review_workdays),
                    page_ref("review", f"case:{case_id}"),
                )
            )
            continue
        group = members[case_id]
        due = entry_deadline(cal, rules, task, inspected_on, due_on, provisional)
        page = page_ref("result", f"case:{case_id}")
        if case_id in entered:
            # 谁检查、谁录入 (000 §九–十): some parts are in; each missing department is nudged
            # for its own part, with the case's one deadline, and escalated to its own leaders
            for department_id, name in with_parts[task_id]:
                if department_id in entered[case_id]:
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
                        due,
                        page,
                    )
                )
            continue
        found.append(
            make(
                cal,
                today,
                f"case:{case_id}",
                "result_entry",
                subject,
                group[0][1] if group else task.lead_department_id,
                [officer for officer, _ in group],
                due,
                page,
            )
        )
    return found


async def _entered_parts(session: AsyncSession, case_ids: list[int]) -> dict[int, set[int]]:
    """The departments whose part of each case is entered (cases with none are left out)."""
    found: dict[int, set[int]] = defaultdict(set)
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
    for task_id, department_id, name in await session.execute(
        select(TaskItem.task_id, Department.id, Department.name)
        .join(Department, Department.id == TaskItem.department_id)
        .where(TaskItem.task_id.in_(task_ids))
        .distinct()
        .order_by(TaskItem.task_id, Department.id)
    ):
        found[task_id].append((department_id, name))
    return found


async def _members(session: AsyncSession, case_ids: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Each case's active group, leader first: (officer, department)."""
    members: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for case_id, officer_id, department_id in await session.execute(
        select(GroupMember.case_id, GroupMember.officer_id, GroupMember.department_id)
        .where(GroupMember.active.is_(True), GroupMember.case_id.in_(case_ids))
        .order_by(GroupMember.is_leader.desc(), GroupMember.id)
    ):
        members[case_id].append((officer_id, department_id))
    return members


async def _submitted_on(
    session: AsyncSession, case_ids: list[int], today: dt.date
) -> dict[int, dt.date]:
    """The China day each case's result awaiting review was submitted (review counts from
    it), all in one query."""
    found = dict.fromkeys(case_ids, today)
    for case_id, entered in await session.execute(
        select(CaseResult.case_id, CaseResult.entered_at).where(
            CaseResult.case_id.in_(case_ids), CaseResult.state == ResultState.SUBMITTED
        )
    ):
        found[case_id] = china_date(entered)
    return found
