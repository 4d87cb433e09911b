"""Stage 3, inspection groups: changing one member once the department leader agreed (asked
for and decided in core.replacements) — 回避, the next eligible inspector of the same department
in the inspector draw's order, and 更换, named by the leader without lottery (seeds 000 §八,
001 第十四–十五条, 004 第十三/十六条). Only before the inspection has started.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import cases
from core.access import may_act_for, require
from core.changes import Ctx, Notice, record
from core.draws import algorithm
from core.draws.pool import decode_pool
from core.draws.targets import locked_draw, pool_data
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.groups.matching import assignment_notice, case_entry
from core.jointtask import answerers, get_department, task_by_id, task_items
from core.messages import Destination, OutMessage
from core.models import Case, GroupMember, Officer, OfficerConflict, Recusal
from core.models.cases import CHANGE_LABELS
from core.models.county import CONFLICT_REASON_CHARS
from core.officers import register_conflict
from core.render import render
from core.rules import written_reason
from core.states import CaseState


async def _members(session: AsyncSession, case: Case) -> list[GroupMember]:
    return list(
        await session.scalars(
            select(GroupMember).where(GroupMember.case_id == case.id).order_by(GroupMember.id)
        )
    )


def require_changeable(case: Case, what: str) -> None:
    """Members change only before the inspection started: checked when a change is asked
    for, so nobody waits on a leader for one that could never be approved, and when decided."""
    if case.state not in (CaseState.ASSIGNED, CaseState.NOTIFIED):
        raise InvalidTransition(f"案件 {case.code} 已开始检查或已录入结果，不能再{what}")


def replacement_reason(reason: str) -> str:
    """A 更换's reason, stripped: any words (001 第十四条 names no minimum), a written
    reason's at most."""
    return written_reason(
        reason,
        "更换理由",
        "请写明需要更换的原因",
        min_chars=1,
        missing="申请更换须写明理由，例如：更换 案件号 人员编号 长期病假无法到岗",
    )


def _active_member(members: Sequence[GroupMember], case: Case, officer_id: int) -> GroupMember:
    found = next((m for m in members if m.active and m.officer_id == officer_id), None)
    if found is None:
        raise NotFound(f"该人员不在案件 {case.code} 的检查组中")
    return found


async def _is_conflicted(session: AsyncSession, officer_id: int, target_id: int) -> bool:
    return (
        await session.scalar(
            select(OfficerConflict.id).where(
                OfficerConflict.officer_id == officer_id, OfficerConflict.target_id == target_id
            )
        )
        is not None
    )


async def require_leader(ctx: Ctx, case: Case, department_id: int, action: str, label: str) -> None:
    """Only the leader of the officer's department (or an admin) decides a 更换 or 回避 (001
    第十四条); the refusal names that department, as the one refused may be of another."""
    dep = await get_department(ctx, department_id)
    require(
        may_act_for(ctx, department_id, roles=("leader",)),
        action,
        f"case:{case.code}",
        f"{label}执法检查人员须经{dep.name}分管领导（或管理员）决定",
    )


async def recuse(ctx: Ctx, case_code: str, officer_id: int, reason: str) -> GroupMember:
    """回避 decided (001 第十四条: 经本部门相关负责人同意; core.replacements asks first): the
    next eligible inspector of the same department in the inspector draw's key order."""
    case = await cases.get_case(ctx, case_code)
    members = await _members(ctx.session, case)
    old = _active_member(members, case, officer_id)
    await require_leader(ctx, case, old.department_id, "case.recusal.decide", "回避")
    reason, successor = await recusal_successor(ctx, case, old, reason)
    added = await _swap(ctx, case, members, old, successor, "recusal", reason)
    # the interest stays after the case: no 更换, choice or later task puts them back on it
    await register_conflict(ctx, old.officer, case.target, reason, case_code=case.code)
    return added


async def recusal_successor(
    ctx: Ctx, case: Case, old: GroupMember, reason: str
) -> tuple[str, Officer]:
    """A recusal's grounds — a conflict of interest with the target, in words (000 §八) — and who
    would take over: checked when it is asked for, so nobody waits on a leader for a recusal
    that cannot be, and again when it is decided."""
    require_changeable(case, "回避")
    reason = written_reason(
        reason,
        "回避理由",
        "请写明与检查对象的利害关系",
        min_chars=ctx.rules.recusal_reason_min_chars,
        missing="回避须说明理由：写明与检查对象的利害关系，例如：回避 案件号 本人配偶在该企业任职",
        max_chars=CONFLICT_REASON_CHARS,  # approved, it is the conflict's reason (recuse)
    )
    task = await task_by_id(ctx, case.task_id)
    inspectors_draw = await locked_draw(ctx, task, "inspectors")
    dep = await get_department(ctx, old.department_id)
    stratum = dict(decode_pool(await pool_data(ctx, inspectors_draw)))
    order = [
        i.removeprefix(algorithm.INSPECTOR_PREFIX)
        for i in inspectors_draw.selection
        if stratum.get(i) == dep.code
    ]
    officers = {
        o.code: o for o in await ctx.session.scalars(select(Officer).where(Officer.code.in_(order)))
    }
    start = order.index(old.officer.code) + 1 if old.officer.code in order else 0
    been = {m.officer_id for m in await _members(ctx.session, case)}  # who left stays out
    for code in order[start:] + order[:start]:
        o = officers.get(code)
        if (
            o is not None
            and o.active
            and o.has_role("inspector")
            and o.department_id == dep.id
            and o.id not in been
            and not await _is_conflicted(ctx.session, o.id, case.target_id)
        ):
            return reason, o
    raise ValidationFailed("该部门没有可替换的执法检查人员，无法回避")


async def replace_inspector(
    ctx: Ctx, case_code: str, officer_id: int, new_officer_id: int, reason: str
) -> GroupMember:
    """更换: chosen without lottery by the department leader (001 第十四条, 004 第十三条)."""
    case = await cases.get_case(ctx, case_code)
    members = await _members(ctx.session, case)
    old = _active_member(members, case, officer_id)
    await require_leader(ctx, case, old.department_id, "case.replace", "更换")
    require_changeable(case, "更换人员")
    reason = replacement_reason(reason)
    new = await ctx.session.get(Officer, new_officer_id)
    if new is None:
        raise NotFound(f"未找到执法检查人员（编号 {new_officer_id}）")
    refusal = ""
    if new.department_id != old.department_id or not new.active or not new.has_role("inspector"):
        refusal = f"{new.name}不是{old.officer.department.name}在岗的执法检查人员"
    elif any(m.active and m.officer_id == new.id for m in members):
        refusal = f"{new.name}已在该检查组中"
    elif await _is_conflicted(ctx.session, new.id, case.target_id):
        refusal = f"{new.name}与该检查对象有利害关系，须回避"
    if refusal:
        raise ValidationFailed(f"{refusal}。{await _choosable(ctx, case, members, old)}")
    return await _swap(ctx, case, members, old, new, "replacement", reason)


async def _choosable(ctx: Ctx, case: Case, members: Sequence[GroupMember], old: GroupMember) -> str:
    """Who the leader may name instead (004 第十三条: 在具备执法资格的其他执法人员中选派):
    the department's serving inspectors outside the group and without a conflict."""
    in_group = {m.officer_id for m in members if m.active}
    conflicted = select(OfficerConflict.officer_id).where(
        OfficerConflict.target_id == case.target_id
    )
    officers = await ctx.session.scalars(
        select(Officer)
        .where(
            Officer.department_id == old.department_id,
            Officer.active.is_(True),
            Officer.id.not_in(conflicted),
        )
        .order_by(Officer.code)
    )
    named = [o for o in officers if o.has_role("inspector") and o.id not in in_group]
    if not named:
        return (
            f"{old.officer.department.name}没有其他可指定的在岗执法检查人员，"
            "请联系管理员补充人员名录"
        )
    listed = "、".join(f"{o.name}（{o.code}）" for o in named)
    return f"可以指定：{listed}，如“批准 {case.code} {old.officer.code} {named[0].code}”"


async def _swap(
    ctx: Ctx,
    case: Case,
    members: list[GroupMember],
    old: GroupMember,
    new: Officer,
    kind: str,
    reason: str,
) -> GroupMember:
    old.active = False
    added = GroupMember(
        case_id=case.id,
        officer=new,
        department_id=new.department_id,
        is_leader=old.is_leader,
        active=True,
    )
    ctx.session.add(added)
    ctx.session.add(
        Recusal(
            case_id=case.id,
            officer_id=old.officer_id,
            kind=kind,
            reason=reason,
            replacement_officer_id=new.id,
            decided_by_id=ctx.actor.id if ctx.actor else None,
            created_at=ctx.clock.now(),
        )
    )
    await ctx.session.flush()
    group = [*(m for m in members if m.active), added]
    await record(
        ctx,
        f"case.{kind}",
        f"case:{case.code}",
        {
            "officer": old.officer.code,
            "replacement": new.code,
            "reason": reason,
            "leader_changed": old.is_leader,
        },
        await _swap_notices(ctx, case, group, old, new, kind, reason),
    )
    return added


async def _swap_notices(
    ctx: Ctx,
    case: Case,
    group: list[GroupMember],
    old: GroupMember,
    new: Officer,
    kind: str,
    reason: str,
) -> list[Notice]:
    """The group hears who left and who joined; the one who left is told the case is no longer
    theirs; the newcomer gets the full assignment; the reason, often personal (a relative, a
    friendship), goes only to the one who left and the department's liaisons and leaders (a
    department without any has its chat told, without the reason)."""
    names = {m.officer_id: m.officer.name for m in group if m.officer_id != new.id} | {
        new.id: new.name
    }
    leader = next((names[m.officer_id] for m in group if m.is_leader), "—")
    listed = "、".join(names[m.officer_id] for m in group)
    label = CHANGE_LABELS[kind]

    def change(with_reason: bool) -> OutMessage:
        return OutMessage.md(
            f"检查组人员{label}：{case.code}",
            render(
                "messages/member_change.md.j2",
                case=case,
                target=case.target,
                old=old.officer,
                new=new,
                leads=old.is_leader,
                reason=reason if with_reason else "",
                kind=kind,
                kind_label=label,
                decided_by=ctx.actor.name if ctx.actor else ctx.actor_label,
                members=listed,
                leader=leader,
            ),
        )

    key = f"{kind}:{case.id}:{new.id}"
    private = [o.id for o in await answerers(ctx, old.department_id) if o.id != old.officer_id]
    told = [m.officer_id for m in group if m.officer_id != new.id and m.officer_id not in private]
    notices = [Notice(Destination.officer(oid), change(False), key=f"{key}:{oid}") for oid in told]
    notices += [
        Notice(Destination.officer(oid), change(True), key=f"{key}:{oid}") for oid in private
    ]
    notices.append(_left_notice(ctx, case, old, new, kind, reason, key=f"{key}:left"))
    if not private:
        notices.append(
            Notice(
                Destination.department(old.department_id), change(False), key=f"{key}:department"
            )
        )
    task = await task_by_id(ctx, case.task_id)
    entry = case_entry(case, listed, leader)
    items = "、".join(i.name for i in await task_items(ctx, task))
    joined = f"您因{old.officer.name}{label}接替加入检查组{'并担任组长' if old.is_leader else ''}。"
    notices.append(
        assignment_notice(ctx, task, [entry], items, new.id, key=f"{key}:assignment", joined=joined)
    )
    return notices


def _left_notice(
    ctx: Ctx,
    case: Case,
    old: GroupMember,
    new: Officer,
    kind: str,
    reason: str,
    *,
    key: str,
) -> Notice:
    """The one who left: the case is no longer theirs (their assignment still lists it), by
    whose decision and why."""
    text = render(
        "messages/member_left.md.j2",
        case=case,
        target=case.target,
        new=new,
        reason=reason,
        kind=kind,
        decided_by=ctx.actor.name if ctx.actor else ctx.actor_label,
    )
    return Notice(
        Destination.officer(old.officer_id),
        OutMessage.md(f"已退出检查组：{case.code}", text),
        key=key,
    )
