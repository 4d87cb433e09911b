"""Daily summary for leaders: tasks, invitations, cases, timeliness, objections, dead letters."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import OPEN_FOR_ENTRY, china_date, message, result_deadline
from core.changes import Ctx, Notice, record
from core.messages import Destination, OutMessage
from core.models import (
    Case,
    CaseResult,
    Department,
    Invitation,
    JointTask,
    Objection,
    Officer,
    OutboxMessage,
)
from core.rules import Rules
from core.states import (
    CASE,
    TASK,
    TASKS_IN_PROGRESS,
    CaseState,
    InvitationState,
    ObjectionState,
    OutboxState,
)
from core.workdays import WorkCalendar


@dataclass
class TaskSummary:
    code: str
    title: str
    state: str
    accepted: int = 0
    pending: int = 0
    declined: list[tuple[str, str]] = field(default_factory=list)  # (department, reason)
    cases_by_state: dict[str, int] = field(default_factory=dict)
    on_time: int = 0  # first submission by the deadline
    late: int = 0  # first submission after it (rule 7: counts as not completed)
    overdue: int = 0  # nothing submitted and the deadline has passed
    returned: int = 0  # currently returned to the group
    objections_open: int = 0

    @property
    def state_label(self) -> str:
        return TASK.label(self.state)

    def case_states(self) -> list[tuple[str, int]]:
        return [(CASE.label(s), self.cases_by_state[s])
                for s in CaseState if s in self.cases_by_state]


@dataclass
class Summary:
    day: dt.date
    department_name: str  # "全部部门" when not filtered
    tasks: list[TaskSummary]
    dead_letters: int


async def _invitations(session: AsyncSession, ts: TaskSummary, task: JointTask) -> None:
    for inv in await session.scalars(select(Invitation).where(Invitation.task_id == task.id)
                                     .order_by(Invitation.id)):
        if inv.state == InvitationState.ACCEPTED:
            ts.accepted += 1
        elif inv.state == InvitationState.DECLINED:
            ts.declined.append((inv.department.name, inv.reason))
        elif inv.state == InvitationState.PENDING:
            ts.pending += 1


async def _cases(session: AsyncSession, cal: WorkCalendar, rules: Rules, today: dt.date,
                 ts: TaskSummary, task: JointTask) -> None:
    cases = list(await session.scalars(select(Case).where(Case.task_id == task.id)))
    ts.cases_by_state = dict(Counter(c.state for c in cases))
    first_entries = dict((await session.execute(
        select(CaseResult.case_id, func.min(CaseResult.entered_at))
        .where(CaseResult.case_id.in_([c.id for c in cases]))
        .group_by(CaseResult.case_id))).all())
    for case in cases:
        due = result_deadline(cal, rules, case, task).day
        first = first_entries.get(case.id)
        if first is None:
            if case.state in OPEN_FOR_ENTRY and today > due:
                ts.overdue += 1
        elif china_date(first) <= due:
            ts.on_time += 1
        else:
            ts.late += 1
    ts.returned = ts.cases_by_state.get(CaseState.RETURNED, 0)
    ts.objections_open = await session.scalar(
        select(func.count(Objection.id)).join(Case, Case.id == Objection.case_id)
        .where(Case.task_id == task.id, Objection.state != ObjectionState.REPLIED)) or 0


async def daily_summary(session: AsyncSession, cal: WorkCalendar, today: dt.date,
                        department_id: int | None = None, *,
                        rules: Rules | None = None) -> Summary:
    """Tasks in progress (where the department leads or is invited, when given)."""
    rules = rules or Rules.model_validate({})  # the defaults (Rules() trips mypy without the pydantic plugin)
    query = select(JointTask).where(JointTask.state.in_(TASKS_IN_PROGRESS))
    name = "全部部门"
    if department_id is not None:
        invited = select(Invitation.task_id).where(Invitation.department_id == department_id)
        query = query.where(or_(JointTask.lead_department_id == department_id,
                                JointTask.id.in_(invited)))
        department = await session.get(Department, department_id)
        name = department.name if department else name
    tasks = []
    for task in await session.scalars(query.order_by(JointTask.code)):
        ts = TaskSummary(task.code, task.title, task.state)
        await _invitations(session, ts, task)
        await _cases(session, cal, rules, today, ts, task)
        tasks.append(ts)
    dead = await session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.state == OutboxState.DEAD)) or 0
    return Summary(today, name, tasks, dead)


def summary_message(summary: Summary) -> OutMessage:
    return message("summary_daily", f"双随机联合抽查日报 {summary.day.isoformat()}",
                   s=summary)


async def enqueue_daily_summaries(ctx: Ctx, today: dt.date) -> int:
    """One summary per active leader per day (idempotent); returns how many were queued."""
    leaders = [o for o in await ctx.session.scalars(
        select(Officer).where(Officer.active.is_(True)).order_by(Officer.id))
        if o.has_role("leader")]
    keys = {o.id: f"summary:{o.id}:{today.isoformat()}" for o in leaders}
    done = set(await ctx.session.scalars(select(OutboxMessage.idempotency_key).where(
        OutboxMessage.idempotency_key.in_(list(keys.values())))))
    cal = await ctx.work_calendar()
    by_department: dict[int, OutMessage] = {}
    notices = []
    for leader in leaders:
        if keys[leader.id] in done:
            continue
        if leader.department_id not in by_department:
            summary = await daily_summary(ctx.session, cal, today, leader.department_id,
                                          rules=ctx.rules)
            by_department[leader.department_id] = summary_message(summary)
        notices.append(Notice(Destination.officer(leader.id), by_department[leader.department_id],
                              keys[leader.id]))
    if notices:
        await record(ctx, "summary.queued", f"summary:{today.isoformat()}",
                     {"leaders": [n.dest.officer_id for n in notices]}, notices)
    return len(notices)
