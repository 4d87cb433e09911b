"""Stage 3, inspection groups: 更换 and 回避 asked for and decided. A drawn inspector changes only
with the consent of their department's leader (001 第十四条: 经本部门相关负责人同意, 004 第十三条),
a recusal included — it is for a conflict of interest with the target (000 §八: 与被抽查对象有
利害关系应依法回避), decided by the head as 行政处罚法 第四十三条 has it. A group member or the
department's liaison asks for a 更换; the officer (or their department's or the lead's liaison
or leader) asks for a 回避. The leader approves — naming the replacement of a 更换 (no lottery),
the next in the inspector draw's order taking over a 回避 (core.groups.member_changes) — or
refuses with a reason, and the officer stays. Each request, decision and refusal is audited and
told to the leaders, the officer and the group.
States and moves: core/states.py (REPLACEMENT).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from core.access import may_act_for, require
from core.cases import active_members, get_case, message
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.groups.member_changes import (
    recusal_successor,
    recuse,
    replace_inspector,
    replacement_reason,
    require_changeable,
    require_leader,
)
from core.jointtask import answerers, get_department, task_by_id
from core.messages import Destination
from core.models import Case, GroupMember, Officer, Recusal, ReplacementRequest
from core.models.cases import CHANGE_LABELS
from core.officers import officer_by_code
from core.rules import written_reason
from core.states import REPLACEMENT, ReplacementState
from core.workdays import cn_datetime

# the action a refusal of who asks is audited under, by kind (names kept from before)
_ASK_ACTIONS = {"replacement": "case.replacement.request", "recusal": "case.recuse"}


async def request(
    ctx: Ctx, case_code: str, officer_code: str, reason: str, *, kind: str = "replacement"
) -> ReplacementRequest:
    """Ask for `officer_code` to leave the case's group: `kind` replacement (更换) or recusal
    (回避); nothing changes until the department leader decides."""
    case = await get_case(ctx, case_code)
    members = await active_members(ctx, case)
    officer = await officer_by_code(ctx, officer_code)
    old = await _asked_about(ctx, kind, case, members, officer)
    if kind == "recusal":
        reason, _ = await recusal_successor(ctx, case, old, reason)
    else:
        require_changeable(case, "更换人员")
        reason = replacement_reason(reason)
    pending = await _pending(ctx, case, officer.id)
    if pending is not None:
        label = CHANGE_LABELS[pending.kind]
        raise InvalidTransition(
            f"{officer.name}的{label}申请正在等待{pending.department.name}分管领导批准"
        )
    actor = ctx.actor
    req = ReplacementRequest(
        case_id=case.id,
        officer_id=officer.id,
        department=await get_department(ctx, old.department_id),
        kind=kind,
        reason=reason,
        requested_by_id=actor.id if actor else officer.id,
        state=REPLACEMENT.start(ReplacementState.PENDING),
        created_at=ctx.clock.now(),
    )
    ctx.session.add(req)
    await ctx.session.flush()
    leaders = [o for o in await answerers(ctx, old.department_id) if o.has_role("leader")]
    msg = message(
        "replacement_requested",
        f"{case.code} 申请{CHANGE_LABELS[kind]}执法检查人员",
        case=case,
        officer=officer,
        request=req,
    )
    notices = [Notice(Destination.officer(o.id), msg) for o in leaders] or [
        Notice(Destination.department(old.department_id), msg)
    ]
    told = {req.requested_by_id, *(o.id for o in leaders)}
    await record(
        ctx,
        f"case.{kind}.requested",
        f"case:{case.code}",
        {"request": req.id, "officer": officer.code, "reason": req.reason},
        notices + _group_notices(case, members, officer, req, told),
    )
    return req


async def decide(
    ctx: Ctx, case_code: str, officer_code: str, *, new_officer_code: str = "", refusal: str = ""
) -> ReplacementRequest:
    """Refuse with `refusal`, or approve: a 更换 naming `new_officer_code`, a 回避 taking the
    next in draw order (department leader, admin)."""
    case = await get_case(ctx, case_code)
    officer = await officer_by_code(ctx, officer_code)
    req = await _pending(ctx, case, officer.id)
    if req is None:
        # one who may not decide hears whose leader does, not that nothing waits (as if they may)
        await require_leader(ctx, case, officer.department_id, "case.change.decide", "更换或回避")
        raise NotFound(f"案件 {case.code} 没有{officer.name}待批准的更换申请或回避申请")
    label = CHANGE_LABELS[req.kind]
    await require_leader(ctx, case, req.department_id, f"case.{req.kind}.decide", label)
    if refusal.strip():
        req.decision_reason = written_reason(
            refusal,
            "不批准理由",
            "请写明不批准的原因",
            min_chars=1,
            missing="",  # blank approves
        )
        REPLACEMENT.move(req, ReplacementState.REFUSED)
    else:
        await _approve(ctx, case, officer, req, new_officer_code)
        REPLACEMENT.move(req, ReplacementState.APPROVED)
    req.decided_by_id, req.decided_at = (ctx.actor.id if ctx.actor else None), ctx.clock.now()
    msg = message(
        "replacement_decided",
        f"{case.code} {label}申请{REPLACEMENT.label(req.state)}",
        case=case,
        officer=officer,
        request=req,
    )
    concerned = {req.requested_by_id, officer.id}  # after a refusal, who stays hears why
    if req.state == ReplacementState.APPROVED:
        concerned.discard(officer.id)  # the change itself told them
    notices = [Notice(Destination.officer(oid), msg) for oid in sorted(concerned)]
    if req.state == ReplacementState.REFUSED:
        members = await active_members(ctx, case)
        notices += _group_notices(case, members, officer, req, concerned)
    await record(
        ctx,
        f"case.{req.kind}.{req.state}",
        f"case:{case.code}",
        {
            "request": req.id,
            "officer": officer.code,
            "new": new_officer_code or None,
            "reason": req.decision_reason,
        },
        notices,
    )
    return req


async def _approve(
    ctx: Ctx, case: Case, officer: Officer, req: ReplacementRequest, new_officer_code: str
) -> None:
    if req.kind == "recusal":
        if new_officer_code:
            raise ValidationFailed(
                "回避按抽取顺序由本部门下一名执法检查人员接替，无须指定："
                f"请发送“批准 {case.code} {officer.code}”"
            )
        await recuse(ctx, case.code, officer.id, req.reason)
        return
    if not new_officer_code:
        raise ValidationFailed(
            f"批准更换须指定接替的执法检查人员：“批准 {case.code} {officer.code} 新人员编号”"
        )
    new = await officer_by_code(ctx, new_officer_code)
    await replace_inspector(ctx, case.code, officer.id, new.id, req.reason)


async def _asked_about(
    ctx: Ctx, kind: str, case: Case, members: Sequence[GroupMember], officer: Officer
) -> GroupMember:
    """The member asked about, once the asker may ask: for a 更换 a group member or the
    officer's department liaison or leader; for a 回避 the officer, or a liaison or leader of
    their department or of the lead. Asking about oneself outside the group is a refusal of who
    asks (audited)."""
    actor, action, subject = ctx.actor, _ASK_ACTIONS[kind], f"case:{case.code}"
    old = next((m for m in members if m.officer_id == officer.id), None)
    if old is None:
        await _refuse_one_who_left(ctx, case, officer)
        require(
            actor is None or actor.id != officer.id,
            action,
            subject,
            f"您不在案件 {case.code} 的检查组中",
        )
        raise ValidationFailed(f"{officer.name}不在案件 {case.code} 的检查组中")
    if kind == "recusal":
        task = await task_by_id(ctx, case.task_id)
        allowed = (
            actor is None
            or actor.id == officer.id
            or may_act_for(ctx, old.department_id)
            or may_act_for(ctx, task.lead_department_id)
        )
        why = "只有本人、所在部门或牵头部门的联络员、分管领导可以申请回避"
    else:
        allowed = (
            actor is None
            or any(m.officer_id == actor.id for m in members)
            or may_act_for(ctx, old.department_id)
        )
        why = "只有本案检查组成员或该部门联络员、分管领导可以申请更换"
    require(allowed, action, subject, why)
    return old


async def _refuse_one_who_left(ctx: Ctx, case: Case, officer: Officer) -> None:
    """A 回避 or 更换 sent again after it took effect: say when the officer left the group and
    who took over, not that they were never in it."""
    left = await ctx.session.scalar(
        select(Recusal)
        .where(Recusal.case_id == case.id, Recusal.officer_id == officer.id)
        .order_by(Recusal.id.desc())
        .limit(1)
    )
    if left is None:
        return
    successor = await ctx.session.get(Officer, left.replacement_officer_id)
    who = "您" if ctx.actor is not None and ctx.actor.id == officer.id else officer.name
    raise InvalidTransition(
        f"{who}已于 {cn_datetime(left.created_at)} {CHANGE_LABELS[left.kind]}，"
        f"不在案件 {case.code} 的检查组中"
        + (f"，由{successor.name}（{successor.code}）接替" if successor else "")
        + "，无须再申请"
    )


def _group_notices(
    case: Case,
    members: Sequence[GroupMember],
    officer: Officer,
    req: ReplacementRequest,
    told: set[int],
) -> list[Notice]:
    """The rest of the group hears of a request and of its refusal, without the reason (often
    personal: a relative, an illness); the leaders and the officer read it."""
    label = CHANGE_LABELS[req.kind]
    msg = message(
        "member_change_asked",
        f"{case.code} {officer.name}{label}申请{REPLACEMENT.label(req.state)}",
        case=case,
        officer=officer,
        request=req,
    )
    return [
        Notice(Destination.officer(m.officer_id), msg) for m in members if m.officer_id not in told
    ]


async def _pending(ctx: Ctx, case: Case, officer_id: int) -> ReplacementRequest | None:
    return await ctx.session.scalar(
        select(ReplacementRequest).where(
            ReplacementRequest.case_id == case.id,
            ReplacementRequest.officer_id == officer_id,
            ReplacementRequest.state == ReplacementState.PENDING,
        )
    )
