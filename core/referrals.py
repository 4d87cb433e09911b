"""Beside stages 4–5, referrals: 移送 to another department of the county (001 第十七条, 004
第二十一条) — the problem found is handed over with its clue, the receiving department's chat is
told and must acknowledge (签收); open ones are counted in the leaders' summary. Every 移交 / 移送
of a case is recorded by `add_referral`; the chat's `移送` and the result form name the receiver
in words, which `refer` resolves."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from core import department_names
from core.access import may_act_for, require
from core.cases import (
    OPEN_FOR_ENTRY,
    active_members,
    china_date,
    get_case,
    get_task,
    is_staff,
    message,
)
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.messages import Destination
from core.models import Case, CasePart, Department, Officer, Referral
from core.results import NO_FOLLOWUP
from core.rules import Rules
from core.states import CaseState, PartState
from core.workdays import Deadline, WorkCalendar, cn_datetime

KIND = "移送办案机构"
REFERRAL_KINDS = ("移送办案机构", "抄告相关部门", "移送司法机关", "其他")
# Kinds that may go to a body outside the county's joint conference (公安机关, 人民检察院, a
# higher authority): nobody there signs in the system, so the lead department, which hands
# suspected crimes to the judiciary (001 第十七条), is told and follows it up.
OUTSIDE_KINDS = ("移送司法机关", "其他")
JUDICIAL_KIND = "移送司法机关"
# what officers call the judiciary's bodies (a level before them or not): a chat 移送 names no
# kind, so a receiver so named is 移送司法机关 unless it is one of the county's departments
_JUDICIARY = re.compile(
    r"[县旗区市州盟]?(?:公安机关|公安分?局|公安|派出所|司法机关|检察机关|(?:人民)?检察院|(?:人民)?法院)"
)
# the refusal's pointer for a receiver that is no department
_JUDICIARY_WORDS = "移送司法机关的，接收单位写“公安机关”或“人民检察院”"


# who may refer, for the refusal and the 帮助 line alike
REFERRERS = "本案检查组成员或牵头部门的联络员、分管领导"


async def add_referral(
    ctx: Ctx,
    case_code: str,
    kind: str,
    to_department: str,
    content: str,
    *,
    department: Department | None = None,
) -> Referral:
    """移交 / 移送 of a problem found (004 第二十一条); a group member or lead staff records it.
    A `department` of the county gets it in its chat and must acknowledge it (签收)."""
    case = await get_case(ctx, case_code)
    task = await get_task(ctx, case)
    members = await active_members(ctx, case)
    actor = ctx.actor
    require(
        actor is not None
        and (
            any(m.officer_id == actor.id for m in members)
            or is_staff(actor, [task.lead_department_id])
        ),
        "case.referral.denied",
        f"case:{case.code}",
        f"只有{REFERRERS}可以登记移送",
    )
    assert actor is not None
    _check_fields(kind, to_department, content)
    await _refuse_a_repeat(ctx, case, kind, to_department.strip(), content.strip())
    referral = Referral(
        case_id=case.id,
        kind=kind,
        to_department=to_department.strip(),
        content=content.strip(),
        created_by_id=actor.id,
        created_at=ctx.clock.now(),
        to_department_id=department.id if department else None,
    )
    ctx.session.add(referral)
    due = referral_deadline(await ctx.work_calendar(), ctx.rules, referral) if department else None

    def notice(dest: Destination, title: str, to_acknowledge: bool) -> Notice:
        return Notice(
            dest,
            message(
                "case_referral",
                title,
                case=case,
                target=case.target,
                referral=referral,
                by=actor,
                to_acknowledge=to_acknowledge,
                due=due.label() if due else "",
            ),
        )

    # the receiving department is asked to sign (签收) by its deadline, the lead's own chat too
    # when the referral is to the lead department
    to_lead = department is not None and department.id == task.lead_department_id
    notices = [
        notice(Destination.department(task.lead_department_id), f"{case.code} {kind}", to_lead)
    ]
    if department is not None and not to_lead:
        notices.append(
            notice(Destination.department(department.id), f"{case.code} {kind}：请签收", True)
        )
    await record(
        ctx,
        "case.referral",
        f"case:{case.code}",
        {
            "kind": kind,
            "to": referral.to_department,
            "to_department_id": referral.to_department_id,
            **({"ack_due_on": due.day.isoformat()} if due else {}),
        },
        notices,
    )
    return referral


async def stale_followup(ctx: Ctx, referral: Referral) -> str:
    """What the referring department is to do when its part, entered before this referral,
    says 无需后续处置 — a referral is a follow-up (001 第十七条, 004 第二十一条), and entering the
    part again is refused until it names one: "" when nothing is to be done."""
    assert ctx.actor is not None  # add_referral let only a member or staff through
    department_id = ctx.actor.department_id
    part = await ctx.session.scalar(
        select(CasePart).where(
            CasePart.case_id == referral.case_id, CasePart.department_id == department_id
        )
    )
    if part is None or part.state != PartState.ENTERED or NO_FOLLOWUP not in part.followups:
        return ""
    case = await ctx.session.get(Case, referral.case_id)
    department = await ctx.session.get(Department, department_id)
    assert case is not None and department is not None  # foreign keys
    choose = f"后续处置选择“{referral.kind}”"
    if case.state in OPEN_FOR_ENTRY:
        to_do = f"请重新录入本部门结果，{choose}（聊天录入的写在检查结果之后）"
    elif case.state == CaseState.SUBMITTED:
        named = department.short_name or department.name
        to_do = (
            f"结果已送审核：请审核部门退回本部门结果（退回 {case.code} {named} 理由）"
            f"后重新录入，{choose}"
        )
    else:
        to_do = f"结果已审核通过：请本部门联络员或分管领导更正本部门结果，{choose}"
    return f"本部门已录入的后续处置为“{NO_FOLLOWUP}”，与本次移送不符：{to_do}"


async def _refuse_a_repeat(ctx: Ctx, case: Case, kind: str, to: str, content: str) -> None:
    """The same clue to the same receiver while the first is not signed for is a message sent
    twice, not a second referral: the receiver would sign for one problem twice."""
    first = await ctx.session.scalar(
        select(Referral)
        .where(
            Referral.case_id == case.id,
            Referral.kind == kind,
            Referral.to_department == to,
            Referral.content == content,
            Referral.acknowledged_at.is_(None),
        )
        .order_by(Referral.id)
        .limit(1)
    )
    if first is not None:
        raise InvalidTransition(
            f"案件 {case.code} 已于 {cn_datetime(first.created_at)} 将相同线索移送{to}，"
            "对方尚未签收，不再重复移送；如有新的线索，请写明新的内容"
        )


def _check_fields(kind: str, to_department: str, content: str) -> None:
    if kind not in REFERRAL_KINDS:
        raise ValidationFailed(f"未知的移送方式“{kind}”，可选：{'、'.join(REFERRAL_KINDS)}")
    if not to_department.strip() or not content.strip():
        raise ValidationFailed("请填写接收单位和移送内容", field="referral")


async def refer(
    ctx: Ctx, case_code: str, department_text: str, clue: str, kind: str = KIND
) -> Referral:
    """移送 of a clue named in words (chat `移送`, the result form): to the county department
    `department_text` names, or one of its units (县市场监管局执法大队), whose chat must sign
    for it; a kind in OUTSIDE_KINDS may name a body outside the joint conference instead."""
    _check_fields(kind, department_text, clue)
    to, department = await receiver(ctx, kind, department_text.strip())
    return await add_referral(ctx, case_code, kind, to, clue, department=department)


async def receiver(ctx: Ctx, kind: str, text: str) -> tuple[str, Department | None]:
    """(what the referral names as its receiver, the department that signs for it); refused
    (field referral_to) when the words fit several departments, or none and `kind` is not
    one of OUTSIDE_KINDS."""
    departments = list(await ctx.session.scalars(select(Department)))
    found = department_names.named(departments, text)
    # a unit keeps the name typed: it tells the department which of its bodies is meant
    to = found[0].name if found else text
    found = found or department_names.named_by_unit(departments, text)
    if len(found) > 1:
        raise ValidationFailed(department_names.ambiguous(text, found), field="referral_to")
    if found:
        return to, found[0]
    if kind in OUTSIDE_KINDS:
        return text, None
    pointer = (
        f"移送{text}的，移送方式请选“{JUDICIAL_KIND}”"
        if _JUDICIARY.fullmatch(text)
        else _JUDICIARY_WORDS
    )
    raise ValidationFailed(
        f"{department_names.unknown(departments, text)}；{pointer}", field="referral_to"
    )


async def chat_kind(ctx: Ctx, text: str) -> str:
    """The kind of a chat `移送`, which names none: 移送司法机关 when the receiver is the
    judiciary's (公安机关, 县人民检察院) and no county department, else 移送办案机构."""
    if not _JUDICIARY.fullmatch(text.strip()):
        return KIND
    departments = list(await ctx.session.scalars(select(Department)))
    return KIND if department_names.named(departments, text) else JUDICIAL_KIND


async def _signed_already(ctx: Ctx, case: Case, department_id: int) -> None:
    """Refuses a second 签收 of what a colleague of the department has signed, naming them."""
    signed = await ctx.session.execute(
        select(Officer.name, Referral.acknowledged_at)
        .join(Officer, Officer.id == Referral.acknowledged_by_id)
        .where(Referral.case_id == case.id, Referral.to_department_id == department_id)
        .order_by(Referral.acknowledged_at.desc())
        .limit(1)
    )
    row = signed.first()
    if row is not None and row.acknowledged_at is not None:
        raise InvalidTransition(
            f"案件 {case.code} 移送给本部门的线索已由{row.name}于"
            f"{cn_datetime(row.acknowledged_at)}签收，无需再签收"
        )


async def acknowledge(ctx: Ctx, case_code: str) -> list[Referral]:
    """The receiving department's liaison or leader signs for the case's open referrals."""
    case = await get_case(ctx, case_code)
    actor = ctx.actor
    open_ones = list(
        await ctx.session.scalars(
            select(Referral)
            .where(
                Referral.case_id == case.id,
                Referral.acknowledged_at.is_(None),
                Referral.to_department_id.is_not(None),
            )
            .order_by(Referral.id)
        )
    )
    mine = [r for r in open_ones if actor is None or r.to_department_id == actor.department_id]
    if not mine and actor is not None:
        await _signed_already(ctx, case, actor.department_id)
    if not mine:
        # "nothing of yours" is a refusal of who asks (audited), "nothing at all" a state
        nothing = f"案件 {case.code} 没有移送给本部门、待签收的线索"
        if open_ones:
            raise PermissionDenied(
                nothing, action="referral.acknowledge", subject=f"case:{case.code}"
            )
        raise NotFound(nothing)
    assert mine[0].to_department_id is not None
    require(
        may_act_for(ctx, mine[0].to_department_id, admin=False),  # the department's own act
        "referral.acknowledge",
        f"case:{case.code}",
        "只有接收部门的联络员、分管领导可以签收移送",
    )
    task = await get_task(ctx, case)
    for r in mine:
        r.acknowledged_at, r.acknowledged_by_id = ctx.clock.now(), actor.id if actor else None
    msg = message(
        "referral_acknowledged", f"{case.code} 移送已签收", case=case, referrals=mine, by=actor
    )
    await record(
        ctx,
        "referral.acknowledged",
        f"case:{case.code}",
        {"referrals": [r.id for r in mine]},
        [Notice(Destination.department(task.lead_department_id), msg)],
    )
    return mine


def referral_deadline(cal: WorkCalendar, rules: Rules, referral: Referral) -> Deadline:
    """By when the receiving department signs for a referral (Rules.referral_ack_workdays
    working days after it was made); nudged and escalated by core.nudges."""
    return referral_due(cal, rules, referral.created_at)


def referral_due(cal: WorkCalendar, rules: Rules, created_at: dt.datetime) -> Deadline:
    """referral_deadline from the referral's creation time alone (a row, not a Referral)."""
    return cal.add_workdays(china_date(created_at), rules.referral_ack_workdays)


async def open_counts(ctx: Ctx, department_id: int | None, today: dt.date) -> tuple[int, int]:
    """Referrals not yet acknowledged (to the department, when given), and how many of those
    are past their deadline on `today`."""
    query = select(Referral).where(
        Referral.acknowledged_at.is_(None), Referral.to_department_id.is_not(None)
    )
    if department_id is not None:
        query = query.where(Referral.to_department_id == department_id)
    open_ones = list(await ctx.session.scalars(query))
    cal = await ctx.work_calendar()
    late = sum(referral_deadline(cal, ctx.rules, r).day < today for r in open_ones)
    return len(open_ones), late
