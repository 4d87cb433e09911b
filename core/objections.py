"""Stage 8, objections to published results: re-checks and replies (004 第二十条).

States and moves: core/states.py (OBJECTION); `corrected` is set by core.publication.correct_result.
Deadlines: file within 60 calendar days of publication (`objection_last_day`); re-check within
20 working days of receipt; correct within 5 and reply within 15 working days of the re-check
result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from core.cases import (
    china_date,
    get_case,
    get_task,
    latest_result,
    message,
    require_lead_staff,
)
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.messages import Destination
from core.models import Case, JointTask, Objection
from core.rules import Rules
from core.states import CASE, OBJECTION, CaseState, ObjectionState, ResultState
from core.workdays import Deadline, WorkCalendar, cn_date


def objection_last_day(published_on: dt.date, rules: Rules, cal: WorkCalendar) -> Deadline:
    """The last day a target may object to a result published on `published_on` (004 第二十条:
    自检查结果公示之日起 60 日内). The seed does not say how the days are counted, so the general
    rule of 民法典 applies: the day of publication is not counted (第二百零一条), and a last day
    that is a statutory rest day moves to the day after the rest ends (第二百零三条) — the next
    working day, make-up working weekends (调休) counting as working days. Provisional while
    the year of that day has no holiday data (weekends only)."""
    day = published_on + dt.timedelta(days=rules.objection_calendar_days)
    provisional = not cal.knows(day.year)
    while not cal.is_workday(day):
        day += dt.timedelta(days=1)
        provisional |= not cal.knows(day.year)
    return Deadline(day, provisional)


def _notice_lead(task: JointTask, template: str, title: str, **context: object) -> Notice:
    return Notice(
        Destination.department(task.lead_department_id), message(template, title, **context)
    )


async def file_objection(
    ctx: Ctx, case_code: str, filed_by: str, content: str, received_on: dt.date | None
) -> Objection:
    """The lead department registers a written objection it received on `received_on` (None:
    today, no date given — a late one is then told how to give the day it came in)."""
    case = await get_case(ctx, case_code)
    task = await get_task(ctx, case)
    await require_lead_staff(ctx, task, "objection.file", f"case:{case.code}")
    if case.state == CaseState.OBJECTED:
        raise InvalidTransition(f"案件 {case.code} 已有异议正在处理")
    published = await latest_result(ctx, case, ResultState.PUBLISHED)
    if published is None or not CASE.allows(case.state, CaseState.OBJECTED):
        raise CASE.refusal(case.state, "受理异议（结果尚未公示）", case.code)
    assert published.published_at is not None
    if not filed_by.strip() or not content.strip():
        raise ValidationFailed("请填写异议人和异议内容（书面申请及证明材料）")
    published_on = china_date(published.published_at)
    cal = await ctx.work_calendar()
    last = objection_last_day(published_on, ctx.rules, cal)
    today = ctx.clock.today()
    dated, received_on = received_on is not None, received_on or today
    if received_on > today or received_on < published_on:
        raise ValidationFailed(
            f"收到日期应在结果公示之日（{cn_date(published_on)}）至今天（{cn_date(today)}）"
            "之间（含当日），请写实际收到书面申请的日期"
        )
    if received_on > last.day:
        raise ValidationFailed(
            f"已超过异议期限：结果于 {cn_date(published_on)} 公示，应在公示之日起"
            f" {ctx.rules.objection_calendar_days} 日内提出（最后一日为节假日的，顺延至其后"
            f"第一个工作日），即最迟 {last.label()}（含当日），"
            f"申请收到日期为 {cn_date(received_on)}{'' if dated else _how_to_date(case, last.day)}"
        )
    due = cal.add_workdays(received_on, ctx.rules.recheck_workdays)
    objection = Objection(
        case_id=case.id,
        filed_by=filed_by.strip(),
        content=content.strip(),
        received_on=received_on,
        state=OBJECTION.start(ObjectionState.RECEIVED),
        recheck_due_on=due.day,
        recheck_due_provisional=due.provisional,
        handled_by_id=ctx.actor.id if ctx.actor else None,
    )
    ctx.session.add(objection)
    CASE.move(case, CaseState.OBJECTED)
    await ctx.session.flush()
    notice = _notice_lead(
        task,
        "objection_filed",
        f"{case.code} 收到异议",
        case=case,
        target=case.target,
        objection=objection,
        due=due.label(),
    )
    await record(
        ctx,
        "objection.filed",
        f"objection:{objection.id}",
        {
            "case": case.code,
            "received_on": received_on.isoformat(),
            "recheck_due_on": due.day.isoformat(),
            "provisional": due.provisional,
            "version": published.version,
        },
        [notice],
    )
    return objection


def _how_to_date(case: Case, last: dt.date) -> str:
    """An objection typed without its receipt date was taken as received today: how to record
    one that came in on time (the chat's 异议, date last or right after the case number)."""
    return (
        "（未写收到日期，按今天计）。如书面申请是在期限内收到的，请写明实际收到日期"
        f"（写在最后，或紧跟案件号），例如：异议 {case.code} 异议内容 {last.month}月{last.day}日"
    )


async def _load(ctx: Ctx, objection_id: int, action: str) -> tuple[Objection, Case, JointTask]:
    objection = await ctx.session.get(Objection, objection_id)
    if objection is None:
        raise NotFound(f"找不到异议 {objection_id}")
    case = await ctx.session.get(Case, objection.case_id)
    assert case is not None  # foreign key
    task = await get_task(ctx, case)
    await require_lead_staff(ctx, task, action, f"objection:{objection.id}")
    return objection, case, task


async def _restore_case(ctx: Ctx, case: Case) -> None:
    """An upheld objection leaves the published result as it was."""
    current = await latest_result(ctx, case, ResultState.PUBLISHED)
    CASE.move(
        case,
        CaseState.CORRECTED
        if current is not None and current.is_correction
        else CaseState.PUBLISHED,
    )


@dataclass(frozen=True)
class Rechecked:
    """A recorded re-check and the deadlines it set, as computed: a deadline in a year
    without holiday data says it is provisional wherever it is shown."""

    objection: Objection
    reply_due: Deadline
    correction_due: Deadline | None


async def record_recheck(ctx: Ctx, objection_id: int, finding: str, error_found: bool) -> Rechecked:
    objection, case, task = await _load(ctx, objection_id, "objection.recheck")
    if objection.state != ObjectionState.RECEIVED:
        raise InvalidTransition("该异议已复查")
    if not finding.strip():
        raise ValidationFailed("请填写复查情况和结论")
    cal = await ctx.work_calendar()
    today = ctx.clock.today()
    reply_due = cal.add_workdays(today, ctx.rules.reply_workdays)
    correction_due = cal.add_workdays(today, ctx.rules.correction_workdays)
    objection.recheck_finding, objection.rechecked_on = finding.strip(), today
    objection.reply_due_on = reply_due.day
    objection.handled_by_id = ctx.actor.id if ctx.actor else objection.handled_by_id
    if error_found:
        OBJECTION.move(objection, ObjectionState.ERROR_FOUND)
        objection.correction_due_on = correction_due.day
    else:
        OBJECTION.move(objection, ObjectionState.UPHELD)
        await _restore_case(ctx, case)
    notice = _notice_lead(
        task,
        "objection_rechecked",
        f"{case.code} 异议复查结论",
        case=case,
        target=case.target,
        objection=objection,
        error_found=error_found,
        correction_due=correction_due.label(),
        reply_due=reply_due.label(),
    )
    await record(
        ctx,
        "objection.rechecked",
        f"objection:{objection.id}",
        {
            "case": case.code,
            "error_found": error_found,
            "reply_due_on": reply_due.day.isoformat(),
            "correction_due_on": objection.correction_due_on.isoformat()
            if objection.correction_due_on
            else None,
        },
        [notice],
    )
    return Rechecked(objection, reply_due, correction_due if error_found else None)


async def reply_objection(ctx: Ctx, objection_id: int, note: str = "") -> Objection:
    """The re-check result was communicated to the objector; `note`: how (已电话告知企业),
    kept in the record and told to the lead department."""
    note = note.strip()
    objection, case, task = await _load(ctx, objection_id, "objection.reply")
    refusals = {
        ObjectionState.RECEIVED: "该异议尚未复查，不能答复",
        ObjectionState.ERROR_FOUND: "复查发现错误，须先更正公示结果再答复",
        ObjectionState.REPLIED: "该异议已答复",
    }
    if objection.state in refusals:
        raise InvalidTransition(refusals[objection.state])
    corrected = objection.state == ObjectionState.CORRECTED
    OBJECTION.move(objection, ObjectionState.REPLIED)
    objection.replied_on = ctx.clock.today()
    notice = _notice_lead(
        task,
        "objection_replied",
        f"{case.code} 异议已答复",
        case=case,
        target=case.target,
        objection=objection,
        corrected=corrected,
        note=note,
    )
    await record(
        ctx,
        "objection.replied",
        f"objection:{objection.id}",
        {"case": case.code, "corrected": corrected, **({"note": note} if note else {})},
        [notice],
    )
    return objection


async def open_objection(ctx: Ctx, case_code: str) -> Objection:
    """The case's objection still being handled (not yet replied to), for the chat commands."""
    case = await get_case(ctx, case_code)
    objection = await ctx.session.scalar(
        select(Objection)
        .where(Objection.case_id == case.id, Objection.state != ObjectionState.REPLIED)
        .order_by(Objection.id.desc())
        .limit(1)
    )
    if objection is None:
        raise NotFound(
            f"案件 {case.code} 没有正在处理的异议；登记异议请发送："
            f"异议 {case.code} 异议内容 [收到日期]"
        )
    return objection
