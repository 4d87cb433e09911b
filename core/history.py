"""A case's audit trail in words (全程留痕, 004 第四条), as the review page and `案件` show it:
what was done, by whom (by name), when (China time) and why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import CHINA_TZ
from core.models import AuditEvent, Department, Officer
from core.results import situation_named
from core.review import reopened_codes
from core.workdays import cn_datetime

EVENT_LABELS = {
    "case.inspected": "登记检查日期",
    "case.notified": "已通知",
    "case.notice_reissued": "检查组变更后重新发放通知书",
    "case.result.submitted": "提交结果",
    "case.result.part_entered": "录入本部门结果",
    "case.result.reviewed": "审核",
    "case.referral": "登记移送",
    "referral.acknowledged": "签收移送",
    "case.published": "公示",
    "case.result.corrected": "更正",
    "case.recusal": "回避",
    "case.replacement": "更换检查人员",
    "case.replacement.requested": "申请更换检查人员",
    "case.replacement.approved": "批准更换检查人员",
    "case.replacement.refused": "不批准更换检查人员",
    "case.recusal.requested": "申请回避",
    "case.recusal.approved": "批准回避",
    "case.recusal.refused": "不批准回避",
    "objection.filed": "登记异议",
    "objection.rechecked": "复查异议",
    "objection.replied": "答复异议",
    "denied": "被拒绝的操作",
    "case.result.attachments": "上传附件",
    "case.documents": "生成检查文书",
}
# The task's own events, beside its cases' (a task's trail: core.trail, `lianjian audit show`)
TASK_EVENT_LABELS = {
    "task.created": "创建联合抽查任务",
    "task.consultation_opened": "发出邀请",
    "task.ready": "部门答复完毕",
    "task.stage": "任务阶段变更",
    "task.window_extended": "延长检查期限",
    "task.window_ended": "检查时间结束，提醒未检查的对象",
    "task.results_published": "公示检查结果",
    "task.closed": "立卷归档",
    "task.archived_again": "再次导出归档",
    "task.withdrawn": "撤销任务",
    "invitation.accepted": "接受邀请",
    "invitation.declined": "拒绝邀请",
    "invitation.expired": "邀请逾期未答复",
    "draw.frozen": "冻结抽取范围",
    "draw.refrozen": "重新冻结抽取范围",
    "draw.locked": "确认抽取",
    "inspectors.matched": "随机匹配检查人员",
    "plan.started": "按年度计划发起",
    "deadlines.recomputed": "重算期限",
}
_LABELS = EVENT_LABELS | TASK_EVENT_LABELS
_ACTORS = {"system": "系统"}
_ACTOR_KINDS = {"admin": "管理员", "demo": "演示"}


@dataclass(frozen=True)
class HistoryLine:
    at: str
    what: str
    who: str
    reason: str


async def history_lines(
    session: AsyncSession,
    events: Sequence[AuditEvent],
    known: Mapping[str, str] = {},
    *,
    viewer: Officer | None,
    with_year: bool = False,
) -> list[HistoryLine]:
    """`events` in words, as `viewer` may read them (None: the office's own trail, CLI and
    archive); `known`: officer names by code the caller holds already (the group), the others
    (liaisons, leaders, reviewers) are looked up in one query. When: 3月5日 12:00 beside the
    case, 2026年3月5日 12:00 (`with_year`) in chat, read later."""
    names = dict(known)
    others = ({e.actor for e in events} | _named(events, _OFFICER_KEYS)) - names.keys()
    if others:
        rows = await session.execute(
            select(Officer.code, Officer.name).where(Officer.code.in_(others))
        )
        names.update({code: name for code, name in rows.all()})
    reopened = _named(events, ("reopened", "entered_for"))  # department codes
    departments = dict(
        (
            await session.execute(
                select(Department.code, Department.name).where(Department.code.in_(reopened))
            )
        ).all()
        if reopened
        else ()
    )
    private = await _private_reasons(session, events, viewer)
    return [
        HistoryLine(
            _when(e.at.astimezone(CHINA_TZ), with_year),
            _what(e, names, departments),
            _who(e.actor, names),
            _reason(e) if e.id not in private else "",
        )
        for e in events
    ]


def _reason(e: AuditEvent) -> str:
    return str(e.data.get("reason") or e.data.get("why") or "") if e.data else ""


async def _private_reasons(
    session: AsyncSession, events: Sequence[AuditEvent], viewer: Officer | None
) -> set[int]:
    """The events whose reason `viewer` may not read: a 回避's or 更换's (often personal: the
    group is told without it) is the officer's own, their department's liaisons' and leaders'
    (whose leader decides, 001 第十四条) and the office's."""
    changes = [e for e in events if e.action.startswith(_GROUP_CHANGES) and _reason(e)]
    if viewer is None or viewer.has_role("admin") or not changes:
        return set()
    staff = viewer.has_role("liaison") or viewer.has_role("leader")
    rows = await session.execute(
        select(Officer.code, Officer.department_id).where(
            Officer.code.in_(_named(changes, ("officer",)))
        )
    )
    own = {code for code, department in rows.all() if staff and department == viewer.department_id}
    return {e.id for e in changes if e.data["officer"] not in own | {viewer.code}}


# the codes an event's data names besides its actor: who left a group and who joined it
_OFFICER_KEYS = ("officer", "replacement", "new")
_GROUP_CHANGES = ("case.replacement", "case.recusal")


def _named(events: Sequence[AuditEvent], keys: Sequence[str]) -> set[str]:
    """The codes (one, or a list) the events' data hold under `keys`."""
    found: set[str] = set()
    for e in events:
        for key in keys:
            value = (e.data or {}).get(key)
            found.update(value if isinstance(value, list) else [value] if value else [])
    return found


def _what(e: AuditEvent, names: Mapping[str, str], departments: Mapping[str, str]) -> str:
    """The event's label with what it decided, for whom and on what: 审核通过 / 审核退回 and whose
    part went back, the referral's receiving department, who replaced whom, the lead's
    correction of the whole case to the target's situation or away from it."""
    label, data = _LABELS.get(e.action, e.action), e.data or {}
    if e.action == "case.result.reviewed" and "decision" in data:
        if data["decision"] == "approve":
            return "审核通过"
        parts = "、".join(departments.get(c, c) for c in reopened_codes(data))
        return "审核退回" + (f"：退回{parts}录入的部分" if parts else "")
    if e.action == "case.referral" and data.get("to"):
        return f"{label}：{data.get('kind', '')}，接收单位 {data['to']}"
    if e.action == "case.result.corrected" and data.get("away_from"):
        restored = situation_named(data["away_from"])
        entered = "、".join(departments.get(c, c) for c in data.get("entered_for") or [])
        if entered:  # no inspection result of theirs to restore: the lead's re-check's
            return f"{label}：{entered}的检查事项按牵头部门复查结果录入（原为{restored}）"
        return f"{label}：其他部门的检查事项恢复为{restored}前公示的检查结果"
    if e.action == "case.result.corrected" and data.get("whole_case"):
        return f"{label}：各部门的检查事项一并更正为{situation_named(data['codes'])}"
    if e.action.startswith(_GROUP_CHANGES) and data.get("officer"):
        by = data.get("replacement") or data.get("new")
        # the officer asking for their own 回避 is named once, as who did it
        whom = (
            "" if data["officer"] == e.actor else f"：{names.get(data['officer'], data['officer'])}"
        )
        return label + whom + (f"，由{names.get(by, by)}接替" if by else "")
    return label


def _who(actor: str, names: Mapping[str, str]) -> str:
    if actor in names:
        return names[actor]
    kind = actor.split(":", 1)[0]
    return _ACTORS.get(actor) or _ACTOR_KINDS.get(kind) or actor


def _when(at: dt.datetime, with_year: bool) -> str:
    return cn_datetime(at) if with_year else f"{at.month}月{at.day}日 {at:%H:%M}"
