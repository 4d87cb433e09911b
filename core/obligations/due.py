"""Across stages: everything open, soonest first — the cases' entries and reviews
(core.obligations.cases), invitation replies, objection steps, publications (002 二(六), 004
第十九条) and referral acknowledgements (001 第十七条).
"""

from __future__ import annotations

import datetime as dt
from operator import attrgetter

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import china_date
from core.changes import Ctx
from core.models import Case, CaseResult, Invitation, JointTask, Objection, Referral, Review
from core.obligations.cases import entries_and_reviews
from core.obligations.model import Obligation, People, department_people, make
from core.referrals import referral_deadline
from core.rules import Rules
from core.states import CaseState, InvitationState, ObjectionState, ResultState, TaskState
from core.workdays import Deadline, WorkCalendar


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
        make(
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
            make(
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
        make(
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
            make(
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
        *await entries_and_reviews(ctx.session, cal, rules, today, people, horizon),
        *await _objections(ctx.session, cal, rules, today, people),
        *await _publications(ctx.session, cal, rules, today, people),
        *await _referrals(ctx.session, cal, rules, today, people),
    ]
    return sorted(found, key=attrgetter("days_left", "key"))
