"""Stages 4–5: whether a department's part of a case was entered in time — the one rule the
entry and review messages, 案件, the result form, 我的检查 and 年度考核 read.

Results are entered within 20 working days of the inspection (000 §十, 001 第十六条(三), 004
第十九条); 未在规定时间内录入数据的，视为未完成检查任务 (001 第十六条(三), 004 第二十四条). A part
is judged by its department's first entry of the case (谁检查、谁录入): a reviewer's return
(004 第十九条: 退回检查小组重新核实…再次上报审核) after the deadline does not make a part that
was in on time late, nor a part first entered late on time. The re-entry a return asks for is
not an entry against the 20 days: it has its own short window for nudges and the 已逾期 mark,
`Rules.reentry_workdays` working days after the return, or the case's deadline if that is later
(docs/domain.md, rule 8).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import OPEN_FOR_ENTRY, china_date
from core.inspection import entry_deadline
from core.models import Case, CasePart, CaseResult, Department, GroupMember, Officer, Review
from core.rules import Rules
from core.states import PartState
from core.workdays import Deadline, WorkCalendar


async def first_entries(
    session: AsyncSession, case_ids: Collection[int]
) -> dict[tuple[int, int], dt.date]:
    """(case id, department id) -> the China day the department first entered its part of the
    case: its officers' first version that is not a correction, or its part's entry if earlier
    (a part carried over without a version of its own)."""
    ids = list(case_ids)
    versions = select(
        CaseResult.case_id, Officer.department_id, CaseResult.entered_at.label("at")
    ).join(Officer, Officer.id == CaseResult.entered_by_id)
    entries = union_all(
        versions.where(CaseResult.case_id.in_(ids), CaseResult.is_correction.is_(False)),
        select(CasePart.case_id, CasePart.department_id, CasePart.entered_at).where(
            CasePart.case_id.in_(ids)
        ),
    ).subquery()
    rows = await session.execute(
        select(entries.c.case_id, entries.c.department_id, func.min(entries.c.at)).group_by(
            entries.c.case_id, entries.c.department_id
        )
    )
    return {(case_id, dept_id): china_date(at) for case_id, dept_id, at in rows}


async def last_returns(session: AsyncSession, case_ids: Collection[int]) -> dict[int, dt.date]:
    """Case id -> the China day of its latest return (退回) by a reviewer."""
    rows = await session.execute(
        select(CaseResult.case_id, func.max(Review.created_at))
        .join(Review, Review.result_id == CaseResult.id)
        .where(CaseResult.case_id.in_(list(case_ids)), Review.decision == "return")
        .group_by(CaseResult.case_id)
    )
    return {case_id: china_date(at) for case_id, at in rows}


def entered_late(first_entered_on: dt.date, due: dt.date) -> bool:
    """A part counts as 逾期录入 (未按时完成, 001 第十六条(三)) when its department's first entry
    of the case came after the case's result deadline; never by a re-entry after a return."""
    return first_entered_on > due


def owed_by(
    cal: WorkCalendar,
    rules: Rules,
    due: Deadline,
    first_entered_on: dt.date | None,
    returned_on: dt.date | None,
) -> Deadline:
    """When a part not in now is due: the case's result deadline, or, for a part entered before
    and returned since, its re-entry window — `reentry_workdays` after the return, or the case's
    deadline if later (a return well before the deadline takes nothing from the 20 days)."""
    if first_entered_on is None or returned_on is None:
        return due
    window = cal.add_workdays(returned_on, rules.reentry_workdays)
    return window if window.day > due.day else due


async def reentry_deadlines(
    session: AsyncSession, cal: WorkCalendar, rules: Rules, dues: Mapping[int, Deadline]
) -> dict[tuple[int, int], Deadline]:
    """(case id, department id) -> when each returned part of the cases (result deadlines
    `dues`, by case id) is to be re-entered (`owed_by`)."""
    if not dues:
        return {}  # the usual day: no statement for nothing
    returned = (
        await session.execute(
            select(CasePart.case_id, CasePart.department_id).where(
                CasePart.case_id.in_(list(dues)), CasePart.state == PartState.RETURNED
            )
        )
    ).all()
    if not returned:
        return {}
    cases = {case_id for case_id, _ in returned}
    firsts, returned_on = await first_entries(session, cases), await last_returns(session, cases)
    return {
        (c, d): owed_by(cal, rules, dues[c], firsts.get((c, d)), returned_on.get(c))
        for c, d in returned
    }


@dataclass(frozen=True)
class ReturnedPart:
    """A returned part of a case open for entry past its result deadline, of a department in
    the case's active group: what a count by the case's deadline alone calls overdue."""

    task_id: int
    case_id: int
    department: str  # its name, as the per-department counts key it
    window: Deadline  # when it is to be re-entered (`owed_by`)


async def returned_past_deadline(
    session: AsyncSession,
    cal: WorkCalendar,
    rules: Rules,
    window_last_days: Mapping[int, dt.date],
    today: dt.date,
) -> list[ReturnedPart]:
    """The returned parts of the tasks' (`window_last_days`, by task id) open cases whose result
    deadline has passed, with their re-entry windows: the counts of what is overdue (进度, the
    leaders' chart) take those whose window has not passed off."""
    found = []
    for task_id, last_day in window_last_days.items():
        window_due = cal.add_workdays(last_day, rules.result_entry_workdays).day
        rows = (
            await session.execute(
                select(Case.id, Case.result_due_on, Case.result_due_provisional, Department)
                .join(CasePart, CasePart.case_id == Case.id)
                .join(Department, Department.id == CasePart.department_id)
                .join(
                    GroupMember,
                    (GroupMember.case_id == Case.id)
                    & (GroupMember.department_id == CasePart.department_id)
                    & GroupMember.active.is_(True),
                )
                .where(
                    Case.task_id == task_id,
                    Case.state.in_(OPEN_FOR_ENTRY),
                    CasePart.state == PartState.RETURNED,
                    func.coalesce(Case.result_due_on, window_due) < today,
                )
                .distinct()
            )
        ).all()
        if not rows:
            continue
        dues = {
            case_id: entry_deadline(cal, rules, last_day, due_on, provisional)
            for case_id, due_on, provisional, _ in rows
        }
        windows = await reentry_deadlines(session, cal, rules, dues)
        found += [
            ReturnedPart(task_id, case_id, d.name, windows[case_id, d.id])
            for case_id, _, _, d in rows
        ]
    return found
