"""Stage 3, inspection groups: 更换 asked for and decided (001 第十四条, 004 第十三条) — a group
member or the department's liaison asks for an inspector to be replaced; the department leader
approves, naming the replacement (no lottery: core.groups.member_changes.replace_inspector), or
refuses with a reason. 回避 keeps its own redraw.
States and moves: core/states.py (REPLACEMENT).
"""

from __future__ import annotations

from sqlalchemy import select

from core.access import may_act_for, require
from core.cases import active_members, get_case, message
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.groups.member_changes import replace_inspector
from core.jointtask import answerers
from core.messages import Destination
from core.models import Case, ReplacementRequest
from core.officers import officer_by_code
from core.states import REPLACEMENT, ReplacementState


async def request(ctx: Ctx, case_code: str, officer_code: str, reason: str) -> ReplacementRequest:
    case = await get_case(ctx, case_code)
    members = await active_members(ctx, case)
    officer = await officer_by_code(ctx, officer_code)
    old = next((m for m in members if m.officer_id == officer.id), None)
    if old is None:
        raise ValidationFailed(f"{officer.name}不在案件 {case.code} 的检查组中")
    actor = ctx.actor
    require(
        actor is None
        or any(m.officer_id == actor.id for m in members)
        or may_act_for(ctx, old.department_id),
        "case.replacement.request",
        f"case:{case.code}",
        "只有本案检查组成员或该部门联络员、分管领导可以申请更换",
    )
    if not reason.strip():
        raise ValidationFailed("申请更换须写明理由")
    if await _pending(ctx, case, officer.id) is not None:
        raise InvalidTransition(f"{officer.name}的更换申请正在等待分管领导批准")
    req = ReplacementRequest(
        case_id=case.id,
        officer_id=officer.id,
        department_id=old.department_id,
        reason=reason.strip(),
        requested_by_id=actor.id if actor else officer.id,
        state=REPLACEMENT.start(ReplacementState.PENDING),
        created_at=ctx.clock.now(),
    )
    ctx.session.add(req)
    await ctx.session.flush()
    leaders = [o for o in await answerers(ctx, old.department_id) if o.has_role("leader")]
    msg = message(
        "replacement_requested",
        f"{case.code} 申请更换执法检查人员",
        case=case,
        officer=officer,
        request=req,
    )
    notices = [Notice(Destination.officer(o.id), msg) for o in leaders] or [
        Notice(Destination.department(old.department_id), msg)
    ]
    await record(
        ctx,
        "case.replacement.requested",
        f"case:{case.code}",
        {"request": req.id, "officer": officer.code, "reason": req.reason},
        notices,
    )
    return req


async def decide(
    ctx: Ctx, case_code: str, officer_code: str, *, new_officer_code: str = "", refusal: str = ""
) -> ReplacementRequest:
    """Approve with `new_officer_code`, or refuse with `refusal` (department leader, admin)."""
    case = await get_case(ctx, case_code)
    officer = await officer_by_code(ctx, officer_code)
    req = await _pending(ctx, case, officer.id)
    if req is None:
        raise NotFound(f"案件 {case.code} 没有{officer.name}待批准的更换申请")
    require(
        may_act_for(ctx, req.department_id, roles=("leader",)),
        "case.replacement.decide",
        f"case:{case.code}",
        "更换执法检查人员须经本部门分管领导（或管理员）决定",
    )
    if new_officer_code:
        new = await officer_by_code(ctx, new_officer_code)
        await replace_inspector(ctx, case.code, officer.id, new.id, req.reason)
        REPLACEMENT.move(req, ReplacementState.APPROVED)
    else:
        if not refusal.strip():
            raise ValidationFailed("不批准更换须写明理由")
        REPLACEMENT.move(req, ReplacementState.REFUSED)
        req.decision_reason = refusal.strip()
    req.decided_by_id, req.decided_at = (ctx.actor.id if ctx.actor else None), ctx.clock.now()
    msg = message(
        "replacement_decided",
        f"{case.code} 更换申请{REPLACEMENT.label(req.state)}",
        case=case,
        officer=officer,
        request=req,
    )
    await record(
        ctx,
        f"case.replacement.{req.state}",
        f"case:{case.code}",
        {
            "request": req.id,
            "officer": officer.code,
            "new": new_officer_code or None,
            "reason": req.decision_reason,
        },
        [Notice(Destination.officer(req.requested_by_id), msg)],
    )
    return req


async def _pending(ctx: Ctx, case: Case, officer_id: int) -> ReplacementRequest | None:
    return await ctx.session.scalar(
        select(ReplacementRequest).where(
            ReplacementRequest.case_id == case.id,
            ReplacementRequest.officer_id == officer_id,
            ReplacementRequest.state == ReplacementState.PENDING,
        )
    )
