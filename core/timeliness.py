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
from collections.abc import Collection

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import china_date
from core.models import CasePart, CaseResult, Officer, Review
from core.rules import Rules
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
