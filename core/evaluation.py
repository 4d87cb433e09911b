"""The yearly evaluation (考核) of member departments: who did their part.

000 §十三 puts each department's joint inspections into its yearly assessment; 004 第七条 asks
every department to lead or join at least one joint task a year; 004 第二十四条 counts a result
not entered in time as a task not completed. Per department and year: tasks led and joined,
invitations declined (with the written reasons) or left unanswered, cases its officers were
assigned to, results on time / late / missing / not yet due, returns, objections and
corrections.

A case counts for every department with an active officer in its inspection group, once in one
of four columns that add up to its cases: its part entered on time or late (by its first entry),
or not entered (never) and overdue (逾期未录入, the daily summary's count) or not yet due
(未到期). A part a reviewer returned keeps its first entry's column (core.timeliness: 001
第十六条(三) judges the entry, not a re-entry the review asked for). A return counts for the
parts it reopened; a correction for the department that made it; an objection for the case's
lead department, which receives and re-checks it (004 第二十条).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from core.cases import OPEN_FOR_ENTRY, china_date
from core.changes import Ctx
from core.department_names import county_departments
from core.exports import yes_no
from core.inspection import result_deadline
from core.models import (
    AuditEvent,
    Case,
    CasePart,
    CaseResult,
    Department,
    GroupMember,
    Invitation,
    JointTask,
    Objection,
    Officer,
)
from core.review import reopened_codes
from core.states import InvitationState, PartState, ResultState, TaskState
from core.timeliness import entered_late, first_entries
from core.workdays import cn_date


@dataclass
class DepartmentYear:
    code: str
    name: str
    led: list[str] = field(default_factory=list)  # task codes
    joined: list[str] = field(default_factory=list)
    declined: list[tuple[str, str]] = field(default_factory=list)  # (task code, reason)
    unanswered: list[str] = field(default_factory=list)
    cases: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0  # 逾期未录入: the part is not in and its deadline has passed
    not_due: int = 0  # 未到期: not in yet, still within its deadline
    returns: int = 0
    objections: int = 0
    corrections: int = 0

    @property
    def took_part(self) -> bool:
        """004 第七条: led or joined at least one joint task this year."""
        return bool(self.led or self.joined)


# whose column an objection and a correction fall in, said wherever the counts are shown
COUNTS_NOTE = "异议计入案件所属任务的牵头部门（受理并复查，004 第二十条）；更正计入作出更正的部门"


@dataclass
class YearReport:
    year: int
    as_of: dt.date
    departments: list[DepartmentYear]
    note: str = COUNTS_NOTE

    @property
    def absent(self) -> list[DepartmentYear]:
        return [d for d in self.departments if not d.took_part]


async def year_report(ctx: Ctx, year: int) -> YearReport:
    session = ctx.session
    today = ctx.clock.today()
    rows = {d.id: DepartmentYear(d.code, d.name) for d in await county_departments(session)}
    tasks = {
        t.id: t
        for t in await session.scalars(
            select(JointTask)
            .where(
                JointTask.year == year,
                JointTask.state.not_in([TaskState.DRAFT, TaskState.WITHDRAWN]),
            )
            .order_by(JointTask.code)
        )
    }
    for task in tasks.values():
        rows[task.lead_department_id].led.append(task.code)
    for inv in await session.scalars(select(Invitation).where(Invitation.task_id.in_(list(tasks)))):
        task, row = tasks[inv.task_id], rows[inv.department_id]
        overdue = task.reply_due_on is not None and task.reply_due_on < today
        if inv.state == InvitationState.ACCEPTED:
            row.joined.append(task.code)
        elif inv.state == InvitationState.DECLINED:
            row.declined.append((task.code, inv.reason))
        elif inv.state == InvitationState.EXPIRED or (
            inv.state == InvitationState.PENDING and overdue
        ):
            row.unanswered.append(task.code)
    await _case_counts(ctx, tasks, rows, today)
    return YearReport(year, today, list(rows.values()))


async def _case_counts(
    ctx: Ctx, tasks: dict[int, JointTask], rows: dict[int, DepartmentYear], today: dt.date
) -> None:
    session = ctx.session
    cases = list(await session.scalars(select(Case).where(Case.task_id.in_(list(tasks)))))
    ids = [c.id for c in cases]
    groups: dict[int, set[int]] = defaultdict(set)
    # the departments the daily summary counts: those with an active inspector in the group
    for case_id, dept_id in await session.execute(
        select(GroupMember.case_id, GroupMember.department_id).where(
            GroupMember.case_id.in_(ids), GroupMember.active.is_(True)
        )
    ):
        groups[case_id].add(dept_id)
    parts_in = {
        (case_id, dept_id)
        for case_id, dept_id in await session.execute(
            select(CasePart.case_id, CasePart.department_id).where(
                CasePart.case_id.in_(ids), CasePart.state == PartState.ENTERED
            )
        )
    }
    # a complete result's first entry (not a first part, 000 §九–十) …
    first = dict(
        (
            await session.execute(
                select(CaseResult.case_id, func.min(CaseResult.entered_at))
                .where(CaseResult.case_id.in_(ids), CaseResult.state != ResultState.PART_ENTERED)
                .group_by(CaseResult.case_id)
            )
        ).all()
    )
    # … and, for each department, when it first entered its own part (谁检查、谁录入): what
    # judges it, however often a reviewer returned it since (core.timeliness)
    own_first = await first_entries(session, ids)
    # a correction is the correcting department's (its own part, or the lead's for the whole
    # case, 004 第三条, 第二十条): counted for the department of whoever entered it
    corrections = _counts(
        await session.execute(
            select(Officer.department_id, func.count())
            .select_from(CaseResult)
            .join(Officer, Officer.id == CaseResult.entered_by_id)
            .where(CaseResult.case_id.in_(ids), CaseResult.is_correction.is_(True))
            .group_by(Officer.department_id)
        )
    )
    returns = await _part_returns(ctx, cases)
    objections = _counts(
        await session.execute(
            select(Objection.case_id, func.count())
            .where(Objection.case_id.in_(ids))
            .group_by(Objection.case_id)
        )
    )
    cal = await ctx.work_calendar()
    for case in cases:
        due = result_deadline(cal, ctx.rules, case, tasks[case.task_id]).day
        for dept_id in groups[case.id]:
            own = own_first.get((case.id, dept_id))
            pending = case.state in OPEN_FOR_ENTRY and (case.id, dept_id) not in parts_in
            if own is None and not pending and (complete := first.get(case.id)) is not None:
                own = china_date(complete)  # a part in, yet no entry of its own officers'
            row = rows[dept_id]
            row.cases += 1
            if own is None and pending and today > due:
                row.missing += 1
            elif own is None:
                row.not_due += 1
            elif entered_late(own, due):
                row.late += 1
            else:
                row.on_time += 1
            row.returns += returns[case.id, dept_id]
        # the lead (发起部门) receives and re-checks an objection (004 第二十条)
        rows[tasks[case.task_id].lead_department_id].objections += objections.get(case.id, 0)
    for dept_id, n in corrections.items():
        rows[dept_id].corrections += n


async def _part_returns(ctx: Ctx, cases: list[Case]) -> Counter[tuple[int, int]]:
    """(case id, department id) -> how often a return reopened that department's part: the
    audit of each 退回 names the parts it reopened (core.review), one or all of them."""
    by_subject = {f"case:{c.code}": c.id for c in cases}
    dept_ids = {
        code: dept_id
        for code, dept_id in await ctx.session.execute(select(Department.code, Department.id))
    }
    found: Counter[tuple[int, int]] = Counter()
    for subject, data in await ctx.session.execute(
        select(AuditEvent.subject, AuditEvent.data).where(
            AuditEvent.action == "case.result.reviewed", AuditEvent.subject.in_(list(by_subject))
        )
    ):
        for code in reopened_codes(data):
            found[by_subject[subject], dept_ids[code]] += 1
    return found


def _counts(rows: Iterable[Any]) -> dict[int, int]:
    return {int(k): int(v) for k, v in rows}


# ---------------------------------------------------------------- XLSX

SUMMARY_HEADER = [
    "部门编码",
    "部门",
    "牵头任务数",
    "参与任务数",
    "拒绝邀请数",
    "未答复邀请数",
    "参加检查户数",
    "按时录入",
    "逾期录入",
    "逾期未录入",
    "未到期",
    "被退回次数",
    "异议数",
    "更正数",
    "是否至少发起或参与一次（004 第七条）",
]


def write_report(report: YearReport, path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has one sheet
    ws.title = f"{report.year}年度考核"
    ws.append(
        [
            f"{report.year} 年度部门联合“双随机、一公开”抽查考核统计"
            f"（截至 {cn_date(report.as_of)}）。{report.note}"
        ]
    )
    ws.append(SUMMARY_HEADER)
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for d in report.departments:
        ws.append(
            [
                d.code,
                d.name,
                len(d.led),
                len(d.joined),
                len(d.declined),
                len(d.unanswered),
                d.cases,
                d.on_time,
                d.late,
                d.missing,
                d.not_due,
                d.returns,
                d.objections,
                d.corrections,
                yes_no(d.took_part),
            ]
        )
    if report.absent:
        ws.append([])
        ws.append(["未发起也未参与联合抽查的部门：" + "、".join(d.name for d in report.absent)])
    details = wb.create_sheet("拒绝与未答复")
    details.append(["部门", "任务编号", "情况", "书面理由"])
    for d in report.departments:
        for code, reason in d.declined:
            details.append([d.name, code, "拒绝", reason])
        for code in d.unanswered:
            details.append([d.name, code, "逾期未答复", ""])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
