"""Across stages: which obligations are open — what is due or overdue, for whom and by when
(docs/architecture.md §4): invitation replies, result entries, reviews, objection steps,
publications and referral acknowledgements. core.nudges turns them into reminders.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, not_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import OPEN_FOR_ENTRY, china_date
from core.changes import Ctx
from core.clock import china_midnight
from core.inspection import entry_deadline
from core.links import page_ref
from core.models import (
    Case,
    CasePart,
    CaseResult,
    Department,
    GroupMember,
    Invitation,
    JointTask,
    Objection,
    Officer,
    Referral,
    Review,
    Target,
    TaskItem,
)
from core.referrals import referral_deadline
from core.rules import Rules
from core.states import (
    TASKS_IN_PROGRESS,
    CaseState,
    InvitationState,
    ObjectionState,
    PartState,
    ResultState,
    TaskState,
)
from core.workdays import Deadline, WorkCalendar

KIND_LABELS = {
    "invitation_reply": "答复联合抽查邀请",
    "result_entry": "录入检查结果",
    "review": "审核检查结果",
    "objection_recheck": "异议复查",
    "objection_correction": "更正公示结果",
    "objection_reply": "答复异议",
    "publication": "公示检查结果",
    "referral_ack": "签收移送线索",
}


@dataclass(frozen=True)
class Obligation:
    key: str  # "case:12", "invitation:3", "review:7", "objection:4:recheck"
    kind: str  # a KIND_LABELS key
    subject: str  # what it is about, for people: "LJ-2026-001-003 某某公司"
    department_id: int  # whose digest carries it (and whose leaders it escalates to)
    officer_ids: tuple[int, ...]  # who should act (mentioned in the digest)
    due: dt.date
    provisional: bool
    days_left: int  # working days; 0 = due today, negative = overdue
    page: str = ""  # page reference (core.links.page_ref) where the officers act on it

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    @property
    def what(self) -> str:
        return KIND_LABELS[self.kind]

    def due_label(self) -> str:
        return Deadline(self.due, self.provisional).label()

    def nudge_key(self, today: dt.date) -> str:
        when = "overdue" if self.overdue else f"T-{self.days_left}"
        return f"nudge:{self.key}:{today.isoformat()}:{when}"


@dataclass
class People:
    liaisons: dict[int, list[int]]
    leaders: dict[int, list[int]]

    def staff(self, department_id: int) -> tuple[int, ...]:
        return tuple(self.liaisons.get(department_id, []) + self.leaders.get(department_id, []))


async def department_people(session: AsyncSession) -> People:
    people = People(defaultdict(list), defaultdict(list))
    for officer_id, department_id, roles in await session.execute(
        select(Officer.id, Officer.department_id, Officer.roles)
        .where(Officer.active.is_(True))
        .order_by(Officer.id)
    ):
        if "liaison" in (roles or []):
            people.liaisons[department_id].append(officer_id)
        if "leader" in (roles or []):
            people.leaders[department_id].append(officer_id)
    return people


def _make(
    cal: WorkCalendar,
    today: dt.date,
    key: str,
    kind: str,
    subject: str,
    department_id: int,
    officer_ids: Sequence[int],
    due: Deadline,
    page: str = "",
) -> Obligation:
    return Obligation(
        key,
        kind,
        subject,
        department_id,
        tuple(officer_ids),
        due.day,
        due.provisional,
        cal.workdays_between(today, due.day),
        page,
    )


async def _invitations(
    session: AsyncSession, cal: WorkCalendar, today: dt.date, people: People
) -> list[Obligation]:
    rows = (
        await session.execute(
            select(Invitation, JointTask)
            .join(JointTask, JointTask.id == Invitation.task_id)
            .where(
                Invitation.state == InvitationState.PENDING,
                JointTask.state == TaskState.CONSULTING,
                JointTask.reply_due_on.is_not(None),
            )
        )
    ).all()
    return [
        _make(
            cal,
            today,
            f"invitation:{inv.id}",
            "invitation_reply",
            f"{task.code} {task.title}",
            inv.department_id,
            people.staff(inv.department_id),
            Deadline(task.reply_due_on, task.reply_due_provisional),
        )
        for inv, task in rows
        if task.reply_due_on is not None
    ]


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


async def _entries_and_reviews(
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
                _make(
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
                    _make(
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
            _make(
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


async def _objections(
    session: AsyncSession, cal: WorkCalendar, rules: Rules, today: dt.date, people: People
) -> list[Obligation]:
    rows = (
        await session.execute(
            select(Objection, Case, JointTask)
            .join(Case, Case.id == Objection.case_id)
            .join(JointTask, JointTask.id == Case.task_id)
            .where(Objection.state != ObjectionState.REPLIED)
            .order_by(Objection.id)
        )
    ).all()
    found: list[Obligation] = []
    for obj, case, task in rows:
        subject = f"{case.code} {case.target.name}（异议人：{obj.filed_by}）"
        staff = people.staff(task.lead_department_id)
        if obj.state == ObjectionState.RECEIVED:
            step, due = "recheck", Deadline(obj.recheck_due_on, obj.recheck_due_provisional)
        elif obj.state == ObjectionState.ERROR_FOUND and obj.rechecked_on is not None:
            step, due = "correction", cal.add_workdays(obj.rechecked_on, rules.correction_workdays)
        elif obj.rechecked_on is not None:
            step, due = "reply", cal.add_workdays(obj.rechecked_on, rules.reply_workdays)
        else:
            continue
        found.append(
            _make(
                cal,
                today,
                f"objection:{obj.id}:{step}",
                f"objection_{step}",
                subject,
                task.lead_department_id,
                staff,
                due,
            )
        )
    return found


async def _publications(
    session: AsyncSession, cal: WorkCalendar, rules: Rules, today: dt.date, people: People
) -> list[Obligation]:
    """Approved, not yet published (002 二(六): within 20 working days; 004 第十九条)."""
    approved_at = (
        select(func.max(Review.created_at))
        .join(CaseResult, CaseResult.id == Review.result_id)
        .where(
            CaseResult.case_id == Case.id,
            CaseResult.state == ResultState.APPROVED,
            Review.decision == "approve",
        )
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(Case, JointTask, approved_at)
            .join(JointTask, JointTask.id == Case.task_id)
            .where(
                Case.state == CaseState.APPROVED,
                # through the results' state index: the case table has none on state
                Case.id.in_(
                    select(CaseResult.case_id).where(CaseResult.state == ResultState.APPROVED)
                ),
            )
            .order_by(Case.id)
        )
    ).all()
    return [
        _make(
            cal,
            today,
            f"publication:{case.id}",
            "publication",
            f"{case.code} {case.target.name}",
            task.lead_department_id,
            people.staff(task.lead_department_id),
            cal.add_workdays(
                china_date(approved) if approved else today, rules.publication_workdays
            ),
        )
        for case, task, approved in rows
    ]


async def _referrals(
    session: AsyncSession, cal: WorkCalendar, rules: Rules, today: dt.date, people: People
) -> list[Obligation]:
    """移送 not yet signed for (签收) by the receiving department (001 第十七条 及时移交,
    004 第二十一条 防止监管脱节): due referral_ack_workdays after it was made."""
    rows = (
        await session.execute(
            select(Referral, Case)
            .join(Case, Case.id == Referral.case_id)
            .where(Referral.acknowledged_at.is_(None), Referral.to_department_id.is_not(None))
            .order_by(Referral.id)
        )
    ).all()
    found = []
    for referral, case in rows:
        assert referral.to_department_id is not None
        found.append(
            _make(
                cal,
                today,
                f"referral:{referral.id}",
                "referral_ack",
                f"{case.code} {case.target.name}（{referral.kind}，发送“签收 {case.code}”）",
                referral.to_department_id,
                people.staff(referral.to_department_id),
                referral_deadline(cal, rules, referral),
            )
        )
    return found


async def due_items(
    ctx: Ctx,
    today: dt.date,
    *,
    horizon: dt.date | None = None,
    people: People | None = None,
) -> list[Obligation]:
    """Everything open, soonest first (overdue first); with `horizon`, case entries and
    reviews only where they can be due by that day."""
    cal, rules = await ctx.work_calendar(), ctx.rules
    people = await department_people(ctx.session) if people is None else people
    found = [
        *await _invitations(ctx.session, cal, today, people),
        *await _entries_and_reviews(ctx.session, cal, rules, today, people, horizon),
        *await _objections(ctx.session, cal, rules, today, people),
        *await _publications(ctx.session, cal, rules, today, people),
        *await _referrals(ctx.session, cal, rules, today, people),
    ]
    return sorted(found, key=lambda o: (o.days_left, o.key))
