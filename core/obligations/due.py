"""Across stages: everything open, soonest first — target draws to confirm once their beacon
is out (000 二(八)), the cases' entries and reviews (core.obligations.cases), invitation
replies, objection steps, publications (002 二(六), 004 第十九条) and referral
acknowledgements (001 第十七条).
"""

from __future__ import annotations

import datetime as dt
from operator import attrgetter
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import china_date
from core.changes import Ctx
from core.draws.beacon import frozen_beacon_day
from core.models import (
    Case,
    CaseResult,
    Draw,
    Invitation,
    JointTask,
    Objection,
    Referral,
    Review,
    Target,
)
from core.obligations.cases import entries_and_reviews
from core.obligations.model import Obligation, People, department_people, make
from core.obligations.rows import (
    CASE,
    INVITATION,
    OBJECTION,
    REFERRAL,
    RESULT,
    REVIEW,
    TARGET,
    TASK,
)
from core.referrals import referral_due
from core.render import md_text
from core.rules import Rules
from core.states import (
    CaseState,
    DrawState,
    InvitationState,
    ObjectionState,
    ResultState,
    TaskState,
)
from core.workdays import Deadline, WorkCalendar


async def _invitations(
    session: AsyncSession, cal: WorkCalendar, today: dt.date, people: People
) -> list[Obligation]:
    rows = (
        await session.execute(
            select(
                INVITATION.id,
                INVITATION.department_id,
                TASK.code,
                TASK.title,
                TASK.reply_due_on,
                TASK.reply_due_provisional,
            )
            .join_from(Invitation.__table__, JointTask.__table__, TASK.id == INVITATION.task_id)
            .where(
                INVITATION.state == InvitationState.PENDING,
                TASK.state == TaskState.CONSULTING,
                TASK.reply_due_on.is_not(None),
            )
        )
    ).all()
    return [
        make(
            cal,
            today,
            f"invitation:{invitation_id}",
            "invitation_reply",
            f"{code} {title}",
            department_id,
            people.staff(department_id),
            Deadline(reply_due_on, provisional),
        )
        for invitation_id, department_id, code, title, reply_due_on, provisional in rows
        if reply_due_on is not None
    ]


async def _draws_to_confirm(
    session: AsyncSession, cal: WorkCalendar, today: dt.date, people: People
) -> list[Obligation]:
    """Frozen target draws whose beacon is out (000 二(八): the lead draws the targets): due
    the working day after it, as from then the draw waits only for 确认抽取 and its committed
    pool only ages (000 §五.1). Past the window's last day the lead extends it first."""
    rows = (
        await session.execute(
            select(Draw, JointTask)
            .join(JointTask, JointTask.id == Draw.task_id)
            .where(Draw.kind == "targets", Draw.state == DrawState.FROZEN)
            .order_by(Draw.id)
        )
    ).all()
    found: list[Obligation] = []
    for draw, task in rows:
        day = frozen_beacon_day(draw) or china_date(draw.frozen_at)
        if day >= today:
            continue  # published in the evening at the earliest (Rules.beacon_ready_time)
        then = f"先发送“延期 {task.code} 截止日期 理由”，再" if today > task.window_last_day else ""
        found.append(
            make(
                cal,
                today,
                f"draw:{draw.id}",
                "draw_confirm",
                f"{task.code} {task.title}（信标：{md_text(draw.beacon_source)}；"
                f"{then}发送“确认抽取 {task.code} 信标值”）",
                task.lead_department_id,
                people.staff(task.lead_department_id),
                cal.add_workdays(day, 1),
            )
        )
    return found


def _of_case(*columns: ColumnElement[Any]) -> Select[Any]:
    """`columns` with the case's code and its target's name, from the case and its target."""
    return select(*columns, CASE.code, TARGET.name).join_from(
        Case.__table__, Target.__table__, TARGET.id == CASE.target_id
    )


async def _objections(
    session: AsyncSession, cal: WorkCalendar, rules: Rules, today: dt.date, people: People
) -> list[Obligation]:
    rows = (
        await session.execute(
            _of_case(
                OBJECTION.id,
                OBJECTION.filed_by,
                OBJECTION.state,
                OBJECTION.recheck_due_on,
                OBJECTION.recheck_due_provisional,
                OBJECTION.rechecked_on,
                TASK.lead_department_id,
            )
            .join(Objection.__table__, OBJECTION.case_id == CASE.id)
            .join(JointTask.__table__, TASK.id == CASE.task_id)
            .where(OBJECTION.state != ObjectionState.REPLIED)
            .order_by(OBJECTION.id)
        )
    ).all()
    found: list[Obligation] = []
    for (
        obj_id,
        filed_by,
        state,
        recheck_due_on,
        provisional,
        rechecked_on,
        lead,
        code,
        target,
    ) in rows:
        step = objection_step(
            cal, rules, state, Deadline(recheck_due_on, provisional), rechecked_on
        )
        if step is None:
            continue
        found.append(
            make(
                cal,
                today,
                f"objection:{obj_id}:{step[0]}",
                f"objection_{step[0]}",
                f"{code} {target}（异议人：{filed_by}）",
                lead,
                people.staff(lead),
                step[1],
            )
        )
    return found


def objection_step(
    cal: WorkCalendar,
    rules: Rules,
    state: str,
    recheck_due: Deadline,
    rechecked_on: dt.date | None,
) -> tuple[str, Deadline] | None:
    """The open step of an objection not yet replied to and its deadline: the re-check, then
    the correction when it found an error, else the reply. The nudges and the leaders'
    summary both read it, so a step the nudge calls overdue is overdue in the summary too."""
    if state == ObjectionState.RECEIVED:
        return "recheck", recheck_due
    if rechecked_on is None:
        return None
    if state == ObjectionState.ERROR_FOUND:
        return "correction", cal.add_workdays(rechecked_on, rules.correction_workdays)
    return "reply", cal.add_workdays(rechecked_on, rules.reply_workdays)


async def _publications(
    session: AsyncSession, cal: WorkCalendar, rules: Rules, today: dt.date, people: People
) -> list[Obligation]:
    """Approved, not yet published (002 二(六): within 20 working days; 004 第十九条)."""
    approved_at = (
        select(func.max(REVIEW.created_at))
        .join_from(Review.__table__, CaseResult.__table__, RESULT.id == REVIEW.result_id)
        .where(
            RESULT.case_id == CASE.id,
            RESULT.state == ResultState.APPROVED,
            REVIEW.decision == "approve",
        )
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            _of_case(CASE.id, TASK.lead_department_id, approved_at)
            .join(JointTask.__table__, TASK.id == CASE.task_id)
            .where(
                CASE.state == CaseState.APPROVED,
                # through the results' state index: the case table has none on state
                CASE.id.in_(select(RESULT.case_id).where(RESULT.state == ResultState.APPROVED)),
            )
            .order_by(CASE.id)
        )
    ).all()
    return [
        make(
            cal,
            today,
            f"publication:{case_id}",
            "publication",
            f"{code} {target}",
            lead,
            people.staff(lead),
            cal.add_workdays(
                china_date(approved) if approved else today, rules.publication_workdays
            ),
        )
        for case_id, lead, approved, code, target in rows
    ]


async def _referrals(
    session: AsyncSession, cal: WorkCalendar, rules: Rules, today: dt.date, people: People
) -> list[Obligation]:
    """移送 not yet signed for (签收) by the receiving department (001 第十七条 及时移交,
    004 第二十一条 防止监管脱节): due referral_ack_workdays after it was made."""
    rows = (
        await session.execute(
            _of_case(REFERRAL.id, REFERRAL.kind, REFERRAL.to_department_id, REFERRAL.created_at)
            .join(Referral.__table__, REFERRAL.case_id == CASE.id)
            .where(REFERRAL.acknowledged_at.is_(None), REFERRAL.to_department_id.is_not(None))
            .order_by(REFERRAL.id)
        )
    ).all()
    return [
        make(
            cal,
            today,
            f"referral:{referral_id}",
            "referral_ack",
            f"{code} {target}（{kind}，发送“签收 {code}”）",
            to_department_id,
            people.staff(to_department_id),
            referral_due(cal, rules, created_at),
        )
        for referral_id, kind, to_department_id, created_at, code, target in rows
    ]


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
        *await _draws_to_confirm(ctx.session, cal, today, people),
        *await _invitations(ctx.session, cal, today, people),
        *await entries_and_reviews(ctx.session, cal, rules, today, people, horizon),
        *await _objections(ctx.session, cal, rules, today, people),
        *await _publications(ctx.session, cal, rules, today, people),
        *await _referrals(ctx.session, cal, rules, today, people),
    ]
    return sorted(found, key=attrgetter("days_left", "key"))
