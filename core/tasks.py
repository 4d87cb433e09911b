"""Joint-task lifecycle up to matched inspectors (design §3, §5; seeds 000 §五–§八,
001 第十四–十五条, 004 第十一/十三/十六条).

draft → consulting (seed committed, invitations out) → ready (every invitation answered or
expired) → [frozen target draw, possibly re-frozen] → locked (beacon entered, selection and
cases created in one transaction) → inspecting (inspectors drawn and matched into groups).

Every service mutates rows, then calls `record` once per state change in the same session;
the caller commits. Refusals raise a DomainError and change nothing; a PermissionDenied carries
the action and subject so the caller can audit it with `record_denied` in its own transaction.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, cast

from sqlalchemy import ColumnElement, String, Table, any_, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from core import codes, draw
from core.changes import Ctx, Notice, record
from core.clock import CHINA_TZ
from core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.links import page_ref
from core.messages import Button, Card, Destination, Field_, OutMessage
from core.models import (
    TARGET_KINDS,
    Case,
    Department,
    Draw,
    DrawPool,
    GroupMember,
    Invitation,
    Item,
    JointTask,
    Officer,
    OfficerConflict,
    Recusal,
    Target,
    TaskItem,
)
from core.pool import (
    SCOPE_KEYS,
    InspectorRow,
    build_inspector_pool,
    build_target_pool,
    decode_pool,
    encode_pool,
    fetch_plain,
    pool_file,
    stored_pool,
)
from core.render import render
from core.rules import Rules
from core.workdays import Deadline

TASK_STATE_LABELS = {
    "draft": "草稿", "consulting": "征询中", "ready": "待抽取", "drawn": "已抽取", "locked": "已锁定",
    "inspecting": "检查中", "reviewing": "审核中", "published": "已公示", "closed": "已归档",
    "cancelled": "已撤销"}
INVITATION_STATE_LABELS = {"pending": "待答复", "accepted": "已接受", "declined": "已拒绝",
                           "expired": "已过期"}
LISTED_CASES = 20  # cases listed in one chat message; the rest are one command away
_DONE_STATES = ("locked", "inspecting", "reviewing", "published", "closed")
_CHUNK = 2000  # ids per IN (…) query: far below SQLite's and asyncpg's parameter limits


# ---------------------------------------------------------------- permissions

def _may_act_for(ctx: Ctx, department_id: int, *, roles: Sequence[str] = ("liaison", "leader"),
                 admin: bool = True) -> bool:
    actor = ctx.actor
    if actor is None:  # the system: scheduler, CLI
        return True
    if admin and actor.has_role("admin"):
        return True
    return actor.department_id == department_id and any(actor.has_role(r) for r in roles)


def _require(allowed: bool, action: str, subject: str, why: str) -> None:
    if not allowed:
        raise PermissionDenied(why, action=action, subject=subject)


async def record_denied(ctx: Ctx, action: str, subject: str, why: str) -> None:
    """Audit a refused attempt. Call it in a fresh transaction after the service raised
    PermissionDenied (its own transaction is rolled back, and the refusal must stay on record)."""
    await record(ctx, "denied", subject, {"action": action, "why": why})


def _lead_only(ctx: Ctx, task: JointTask, action: str, *, admin: bool = True) -> None:
    who = "联络员、分管领导或管理员" if admin else "联络员、分管领导"
    _require(_may_act_for(ctx, task.lead_department_id, admin=admin), action, f"task:{task.code}",
             f"只有牵头部门（{task.lead_department.name}）的{who}可以执行此操作")


# ---------------------------------------------------------------- look-ups

async def _department(session: AsyncSession, department_id: int) -> Department:
    dep = await session.get(Department, department_id)
    if dep is None:
        raise NotFound(f"未找到部门（编号 {department_id}）")
    return dep


async def get_task(ctx: Ctx, code: str, *, for_update: bool = False) -> JointTask:
    """The task by code; `for_update` locks its row so concurrent draws or answers serialise."""
    stmt = select(JointTask).where(JointTask.code == code.strip().upper())
    if for_update:
        stmt = stmt.with_for_update(of=JointTask).execution_options(populate_existing=True)
    task = await ctx.session.scalar(stmt)
    if task is None:
        raise NotFound(f"未找到任务 {code}")
    return task


async def _task_by_id(session: AsyncSession, task_id: int, *, for_update: bool = False) -> JointTask:
    task = await session.get(JointTask, task_id, with_for_update={"of": JointTask} if for_update else None,
                             populate_existing=for_update)
    assert task is not None  # foreign key
    return task


async def _invitation(ctx: Ctx, invitation_id: int) -> Invitation:
    inv = await ctx.session.get(Invitation, invitation_id)
    if inv is None:
        raise NotFound(f"未找到邀请（编号 {invitation_id}）")
    return inv


async def _invitations(session: AsyncSession, task: JointTask) -> list[Invitation]:
    rows = await session.scalars(select(Invitation).where(Invitation.task_id == task.id)
                                 .order_by(Invitation.id).execution_options(populate_existing=True))
    return list(rows)


async def department_invitation(session: AsyncSession, task: JointTask,
                                department_id: int) -> Invitation | None:
    return await session.scalar(select(Invitation).where(
        Invitation.task_id == task.id, Invitation.department_id == department_id))


async def department_task_items(session: AsyncSession, task: JointTask,
                                department_id: int) -> list[Item]:
    """The items a department checks in a task (what it accepted with)."""
    return list(await session.scalars(
        select(Item).join(TaskItem, TaskItem.item_id == Item.id)
        .where(TaskItem.task_id == task.id, TaskItem.department_id == department_id)
        .order_by(Item.code)))


async def item_ids_by_code(session: AsyncSession, department_id: int,
                           codes: Iterable[str]) -> dict[str, int]:
    """Upper-cased item code → id within one department's item list (unknown codes absent)."""
    wanted = [c.upper() for c in codes]
    rows = (await session.execute(select(func.upper(Item.code), Item.id).where(
        Item.department_id == department_id, Item.current.is_(True),
        func.upper(Item.code).in_(wanted)))).all()
    return {code: item_id for code, item_id in rows}


async def task_items(session: AsyncSession, task: JointTask) -> list[Item]:
    """All items of the task, lead's first (one visit, many items)."""
    rows = await session.execute(select(Item, TaskItem.department_id).join(
        TaskItem, TaskItem.item_id == Item.id).where(TaskItem.task_id == task.id).order_by(TaskItem.id))
    return [item for item, _ in rows]


async def _department_items(session: AsyncSession, department: Department,
                            item_ids: Iterable[int] | None) -> list[Item]:
    """The chosen items of a department's item list; None = its key items (or, when its list
    has no key item, the whole list)."""
    own = list(await session.scalars(select(Item).where(
        Item.department_id == department.id, Item.current.is_(True)).order_by(Item.code)))
    if item_ids is None:
        chosen = default_items(own)
    else:
        wanted = list(dict.fromkeys(item_ids))
        by_id = {i.id: i for i in own}
        if missing := [i for i in wanted if i not in by_id]:
            raise ValidationFailed(f"抽查事项（编号 {missing[0]}）不在{department.name}的抽查事项清单中")
        chosen = [by_id[i] for i in wanted]
    if not chosen:
        raise ValidationFailed(f"{department.name}的抽查事项清单为空，请先导入抽查事项清单" if not own
                               else "请至少选择一项本部门本次检查事项")
    return chosen


def default_items(own: list[Item]) -> list[Item]:
    """What a department takes when it accepts without choosing: its key items, or, when its
    list has none, the whole list."""
    return [i for i in own if i.category == "key"] or own


def _clean_scope(scope: dict[str, Any] | None) -> dict[str, Any]:
    scope = dict(scope or {})
    if unknown := set(scope) - {*SCOPE_KEYS, "complaint_driven"}:
        raise ValidationFailed(f"抽查范围中有无法识别的条件：{'、'.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key in SCOPE_KEYS:
        values = [str(v).strip() for v in scope.get(key) or [] if str(v).strip()]
        if values:
            out[key] = values
    if bad := [k for k in out.get("kinds", []) if k not in TARGET_KINDS]:
        raise ValidationFailed(f"检查对象类型“{bad[0]}”无效，可选：{'、'.join(TARGET_KINDS)}")
    if scope.get("complaint_driven"):
        out["complaint_driven"] = True
    return out


# ---------------------------------------------------------------- create and consult

async def create_task(ctx: Ctx, *, title: str, lead_department_id: int, window_start: dt.date,
                      window_end: dt.date, item_ids: Iterable[int], scope: dict[str, Any] | None,
                      rule: dict[str, Any], year: int | None = None) -> JointTask:
    lead = await _department(ctx.session, lead_department_id)
    _require(_may_act_for(ctx, lead.id), "task.create", f"department:{lead.code}",
             "只有管理员或牵头部门的联络员、分管领导可以创建联合抽查任务")
    title = title.strip()
    if not title:
        raise ValidationFailed("任务名称不能为空")
    if window_end < window_start:
        raise ValidationFailed("检查时间窗口的结束日期早于开始日期")
    parsed = draw.parse_rule(rule)
    clean_scope = _clean_scope(scope)
    items = await _department_items(ctx.session, lead, list(item_ids))
    year = year or window_start.year
    task = JointTask(code=await codes.next_code(ctx.session, "LJ", year), year=year, title=title,
                     lead_department=lead, window_start=window_start, window_end=window_end,
                     scope=clean_scope, rule=parsed.model_dump(mode="json"), state="draft",
                     created_by_id=ctx.actor.id if ctx.actor else None, created_at=ctx.clock.now())
    ctx.session.add(task)
    await ctx.session.flush()
    ctx.session.add_all(TaskItem(task_id=task.id, item_id=i.id, department_id=lead.id) for i in items)
    await ctx.session.flush()
    await record(ctx, "task.created", f"task:{task.code}", {
        "title": title, "lead": lead.code, "window": [window_start.isoformat(), window_end.isoformat()],
        "items": [i.code for i in items], "scope": clean_scope, "rule": parsed.public()})
    return task


async def _answerers(session: AsyncSession, department_id: int) -> list[Officer]:
    """The department's liaisons and leaders: the officers who may answer an invitation."""
    officers = await session.scalars(select(Officer).where(
        Officer.department_id == department_id, Officer.active.is_(True)).order_by(Officer.id))
    return [o for o in officers if o.has_role("liaison") or o.has_role("leader")]


def _invitation_card(task: JointTask, inv: Invitation, text: str, reply_due: str) -> OutMessage:
    card = Card(title=f"联合抽查邀请：{task.title}", description=text, task_id=f"inv-{inv.id}",
                fields=[Field_(name="任务编号", value=task.code),
                        Field_(name="牵头部门", value=task.lead_department.name),
                        Field_(name="答复期限", value=reply_due)],
                buttons=[Button(label="接受", action_key=f"inv:accept:{inv.id}", style="primary"),
                         Button(label="拒绝", action_key=f"inv:decline:{inv.id}", style="danger")])
    return OutMessage(kind="card", title=card.title, body=text, card=card)


def _rule_text(rule: draw.SamplingRule) -> str:
    return "；".join(f"{s.name} {s.describe()}" for s in rule.strata)


async def open_consultation(ctx: Ctx, task: JointTask, department_ids: Iterable[int], *,
                            single_department: bool = False) -> list[Invitation]:
    """Commit to the seed and invite the participants. An empty list is allowed only for a
    single-department task (`single_department=True`), which goes straight to "ready"."""
    _lead_only(ctx, task, "task.consult")
    if task.state != "draft":
        raise InvalidTransition(f"任务当前状态为“{TASK_STATE_LABELS[task.state]}”，只有草稿任务可以发起征询")
    ids = [d for d in dict.fromkeys(department_ids) if d != task.lead_department_id]
    if not ids and not single_department:
        raise ValidationFailed("联合抽查至少要邀请一个参与部门")
    departments = [await _department(ctx.session, d) for d in ids]
    seed = draw.new_seed()
    task.seed_hex, task.commitment = seed.hex(), draw.commitment(seed)
    due = (await ctx.work_calendar()).add_workdays(ctx.clock.today(), ctx.rules.invitation_reply_workdays)
    task.reply_due_on, task.reply_due_provisional = due.day, due.provisional
    task.state = "consulting" if departments else "ready"
    invitations = [Invitation(task_id=task.id, department=d, state="pending") for d in departments]
    ctx.session.add_all(invitations)
    await ctx.session.flush()
    items = await task_items(ctx.session, task)
    rule_text = _rule_text(draw.parse_rule(task.rule))
    notices = []
    for inv, dep in zip(invitations, departments, strict=True):
        # each department sees its own item list with the codes `接受 编号 事项代码` takes
        own = list(await ctx.session.scalars(select(Item).where(
            Item.department_id == dep.id, Item.current.is_(True)).order_by(Item.code)))
        text = render("messages/invitation.md.j2", task=task, lead=task.lead_department,
                      items=items, own_items=own, rule_text=rule_text, reply_due=due.label())
        # The group chat is told (robot webhooks cannot carry answer buttons); the people who
        # may answer get the card itself in their direct chat with the bot.
        notices.append(Notice(Destination.department(dep.id), OutMessage.md(
            f"联合抽查邀请：{task.title}", text), key=f"invitation:{inv.id}"))
        notices.extend(Notice(Destination.officer(o.id), _invitation_card(task, inv, text, due.label()),
                              key=f"invitation:{inv.id}:officer:{o.id}")
                       for o in await _answerers(ctx.session, dep.id))
    await record(ctx, "task.consultation_opened", f"task:{task.code}", {
        "departments": [d.code for d in departments], "commitment": task.commitment,
        "reply_due_on": due.day.isoformat(), "reply_due_provisional": due.provisional}, notices)
    if not departments:
        await _consultation_done(ctx, task, [])
    return invitations


async def _consultation_done(ctx: Ctx, task: JointTask, invitations: list[Invitation]) -> None:
    task.state = "ready"
    text = render("messages/consultation_done.md.j2", task=task, invitations=invitations,
                  state_labels=INVITATION_STATE_LABELS)
    await record(ctx, "task.ready", f"task:{task.code}",
                 {"invitations": {i.department.code: i.state for i in invitations}},
                 [Notice(Destination.department(task.lead_department_id),
                         OutMessage.md(f"征询完成：{task.code}", text), key=f"task-ready:{task.id}")])


async def _after_answer(ctx: Ctx, task: JointTask) -> None:
    invitations = await _invitations(ctx.session, task)
    if all(i.state != "pending" for i in invitations):
        await _consultation_done(ctx, task, invitations)


async def _answerable(ctx: Ctx, invitation_id: int, action: str) -> tuple[Invitation, JointTask]:
    inv = await _invitation(ctx, invitation_id)
    _require(_may_act_for(ctx, inv.department_id, admin=False), action, f"invitation:{inv.id}",
             f"只有{inv.department.name}的联络员或分管领导可以答复该邀请")
    # Lock the task first: the last answer, whoever gives it, must see all the others.
    task = await _task_by_id(ctx.session, inv.task_id, for_update=True)
    await ctx.session.refresh(inv)
    if inv.state in ("accepted", "declined"):
        raise InvalidTransition(f"该邀请已答复（{INVITATION_STATE_LABELS[inv.state]}），不能重复答复")
    if inv.state == "expired" or (task.reply_due_on is not None and ctx.clock.today() > task.reply_due_on):
        due = (Deadline(task.reply_due_on, task.reply_due_provisional).label()
               if task.reply_due_on else "—")
        raise InvalidTransition(f"该邀请已过答复期限（{due}），不能再答复，请与牵头部门联系")
    if task.state != "consulting":
        raise InvalidTransition(f"任务当前状态为“{TASK_STATE_LABELS[task.state]}”，不再接受答复")
    return inv, task


def _answer_notice(ctx: Ctx, task: JointTask, inv: Invitation, items: list[Item]) -> Notice:
    text = render("messages/invitation_answered.md.j2", task=task, invitation=inv,
                  department=inv.department, items=items,
                  actor_name=ctx.actor.name if ctx.actor else ctx.actor_label)
    title = f"{inv.department.name}{INVITATION_STATE_LABELS[inv.state]}：{task.code}"
    return Notice(Destination.department(task.lead_department_id), OutMessage.md(title, text),
                  key=f"invitation-answer:{inv.id}")


def _mark_answered(ctx: Ctx, inv: Invitation, state: str, reason: str = "") -> None:
    inv.state, inv.reason = state, reason
    inv.responded_by_id = ctx.actor.id if ctx.actor else None
    inv.responded_at = ctx.clock.now()


async def accept_invitation(ctx: Ctx, invitation_id: int,
                            item_ids: Iterable[int] | None = None) -> Invitation:
    """Accept, choosing the department's own items; None = its key items (all items when its
    list has no key item), so one tap on "接受" is a complete answer."""
    inv, task = await _answerable(ctx, invitation_id, "invitation.accept")
    items = await _department_items(ctx.session, inv.department,
                                    None if item_ids is None else list(item_ids))
    _mark_answered(ctx, inv, "accepted")
    ctx.session.add_all(TaskItem(task_id=task.id, item_id=i.id, department_id=inv.department_id)
                        for i in items)
    await ctx.session.flush()
    await record(ctx, "invitation.accepted", f"invitation:{inv.id}",
                 {"task": task.code, "department": inv.department.code, "items": [i.code for i in items]},
                 [_answer_notice(ctx, task, inv, items)])
    await _after_answer(ctx, task)
    return inv


async def decline_invitation(ctx: Ctx, invitation_id: int, reason: str) -> Invitation:
    """Decline with the written reason the rules require (seed 000 §七)."""
    inv, task = await _answerable(ctx, invitation_id, "invitation.decline")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("拒绝参加联合抽查须书面说明理由")
    if len(reason) < ctx.rules.decline_reason_min_chars:
        raise ValidationFailed(f"拒绝理由至少需要 {ctx.rules.decline_reason_min_chars} 个字，"
                               f"请写明不参加的具体原因")
    _mark_answered(ctx, inv, "declined", reason)
    await ctx.session.flush()
    await record(ctx, "invitation.declined", f"invitation:{inv.id}",
                 {"task": task.code, "department": inv.department.code, "reason": reason},
                 [_answer_notice(ctx, task, inv, [])])
    await _after_answer(ctx, task)
    return inv


async def expire_invitations(ctx: Ctx) -> int:
    """Scheduler tick: pending invitations past their reply day expire; their tasks become ready."""
    today = ctx.clock.today()
    # Several serve processes run this tick: each task is expired by whoever locks it first,
    # and the state is re-read under the lock so an answer committed meanwhile stands.
    tasks = list(await ctx.session.scalars(select(JointTask).where(
        JointTask.state == "consulting", JointTask.reply_due_on < today).order_by(JointTask.id)
        .with_for_update(skip_locked=True, of=JointTask).execution_options(populate_existing=True)))
    expired = 0
    for task in tasks:
        invitations = await _invitations(ctx.session, task)
        due = task.reply_due_on.isoformat() if task.reply_due_on else "—"
        for inv in (i for i in invitations if i.state == "pending"):
            inv.state = "expired"
            text = render("messages/invitation_expired.md.j2", task=task, department=inv.department,
                          reply_due=due)
            msg = OutMessage.md(f"邀请已过期：{task.code}", text)
            await record(ctx, "invitation.expired", f"invitation:{inv.id}",
                         {"task": task.code, "department": inv.department.code, "reply_due_on": due},
                         [Notice(Destination.department(inv.department_id), msg, key=f"inv-expired:{inv.id}"),
                          Notice(Destination.department(task.lead_department_id), msg,
                                 key=f"inv-expired-lead:{inv.id}")])
            expired += 1
        await _consultation_done(ctx, task, invitations)
    return expired


# ---------------------------------------------------------------- target draw

async def _participants(session: AsyncSession, task: JointTask) -> list[Department]:
    """Lead first, then the accepted departments by code."""
    accepted = await session.scalars(select(Department).join(
        Invitation, Invitation.department_id == Department.id).where(
        Invitation.task_id == task.id, Invitation.state == "accepted").order_by(Department.code))
    return [task.lead_department, *accepted]


def _broadcast(departments: Iterable[Department], msg: OutMessage, key: str) -> list[Notice]:
    return [Notice(Destination.department(d.id), msg, key=f"{key}:{d.id}") for d in departments]


def _check_drawable(task: JointTask) -> None:
    if task.state in ("draft", "consulting"):
        raise InvalidTransition("任务尚未完成征询，不能抽取")
    if task.state in _DONE_STATES:
        raise InvalidTransition("抽取结果已锁定，不能重新抽取")
    if task.state != "ready":
        raise InvalidTransition(f"任务当前状态为“{TASK_STATE_LABELS[task.state]}”，不能抽取")


async def freeze_pool(ctx: Ctx, task_code: str, beacon_source: str) -> Draw:
    """Freeze the pool and rule and announce them with the beacon to come — never a selection."""
    task = await get_task(ctx, task_code, for_update=True)
    _lead_only(ctx, task, "draw.freeze", admin=False)  # only the lead draws
    _check_drawable(task)
    beacon_source = (beacon_source or "").strip()
    if not beacon_source:
        raise ValidationFailed("请写明将使用的公开信标来源（例如：2026年12月2日福彩3D开奖号码），"
                               "信标值须在冻结时无人能知")
    day = _future_beacon_day(ctx, beacon_source)
    rule = draw.parse_rule(task.rule)
    report = await build_target_pool(ctx.session, task, rule)
    if not report.candidates:
        detail = "，".join(f"{r} {n} 户" for r, n in report.exclusions_in_order().items())
        raise ValidationFailed("抽取范围内没有符合条件的检查对象" + (f"（已排除：{detail}）" if detail else ""))
    earlier = list(await ctx.session.scalars(select(Draw).where(
        Draw.task_id == task.id, Draw.kind == "targets")))
    for d in earlier:
        if d.state == "frozen":
            d.state = "superseded"
    freeze_no = len(earlier) + 1
    strata, exclusions = report.strata_sizes(), report.exclusions_in_order()
    frozen_file = pool_file(report.candidates)
    frozen = Draw(code=f"{task.code}-T{freeze_no}", task_id=task.id, kind="targets",
                  task_code=task.code, state="frozen", freeze_no=freeze_no, commitment=task.commitment,
                  beacon_source=beacon_source, uses_beacon=True,
                  pool_hash=frozen_file.hash, pool_size=len(report.candidates),
                  parameters={"rule": rule.public(), "scope": task.scope, "strata": strata,
                              "exclusions": exclusions, "beacon_source": beacon_source,
                              "beacon_date": day.isoformat(),
                              "repeat_check": report.repeat_check_reason},
                  algorithm_version=draw.ALGORITHM_VERSION,
                  created_by_id=ctx.actor.id if ctx.actor else None, frozen_at=ctx.clock.now())
    ctx.session.add(frozen)
    await ctx.session.flush()
    ctx.session.add(DrawPool(draw_id=frozen.id, data=frozen_file.data))
    text = render("messages/draw_frozen.md.j2", task=task, d=frozen, strata=strata,
                  rule_texts={s.name: s.describe() for s in rule.strata}, exclusions=exclusions,
                  repeat_reason=report.repeat_check_reason,
                  beacon_ready=beacon_ready_label(beacon_ready_at(day, ctx.rules)))
    notices = _broadcast(await _participants(ctx.session, task),
                         OutMessage.md(f"抽取范围已冻结：{task.code}", text), f"draw-frozen:{frozen.id}")
    await record(ctx, "draw.refrozen" if freeze_no > 1 else "draw.frozen", f"draw:{frozen.code}", {
        "task": task.code, "freeze_no": freeze_no, "pool_hash": frozen.pool_hash,
        "pool_size": frozen.pool_size, "strata": strata, "exclusions": exclusions,
        "commitment": task.commitment, "beacon_source": beacon_source,
        "beacon_date": day.isoformat(), "rule": rule.public(),
        "superseded": [d.code for d in earlier if d.state == "superseded"]}, notices)
    return frozen


# ---------------------------------------------------------------- the public beacon (design §5)

_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_BEACON_MAX_CHARS = 64
_3D_DIGITS = re.compile(r"[0-9](?:\s*[0-9]){2}")


def beacon_day(source: str) -> dt.date | None:
    """The date a beacon source names ("2026年3月3日…" or "…2026-03-03…"); None when it names
    none. Several different dates make the source ambiguous and are refused."""
    text = unicodedata.normalize("NFKC", source)
    found: set[dt.date] = set()
    for m in (*_CN_DATE.finditer(text), *_ISO_DATE.finditer(text)):
        try:
            found.add(dt.date(int(m[1]), int(m[2]), int(m[3])))
        except ValueError:
            raise ValidationFailed(f"信标来源中的日期“{m[0]}”无效") from None
    if len(found) > 1:
        raise ValidationFailed("信标来源中写了多个日期，请只写信标公布的那一天")
    return found.pop() if found else None


def beacon_ready_at(day: dt.date, rules: Rules) -> dt.datetime:
    """From this instant the beacon of `day` counts as published (China time, Rules)."""
    return dt.datetime.combine(day, rules.beacon_ready_time, CHINA_TZ)


def beacon_ready_label(at: dt.datetime) -> str:
    local = at.astimezone(CHINA_TZ)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _future_beacon_day(ctx: Ctx, source: str) -> dt.date:
    """The beacon's date, which must still lie ahead: a value anyone (the lead included) can
    already know at freeze would let the freezer choose the selection."""
    day = beacon_day(source)
    if day is None:
        raise ValidationFailed("信标来源须写明信标公布的日期（例如：2026年12月2日福彩3D开奖号码），"
                               "以便任何人核对")
    if beacon_ready_at(day, ctx.rules) <= ctx.clock.now():
        raise ValidationFailed(f"信标日期 {day.year}年{day.month}月{day.day}日 的信标值已公布，"
                               "请改用今后才公布的信标（例如明天的福彩3D开奖号码）")
    return day


def _is_3d(source: str) -> bool:
    return "3D" in unicodedata.normalize("NFKC", source).upper()


def _checked_beacon(ctx: Ctx, frozen: Draw, value: str) -> str:
    """The beacon value, accepted only once it is published and only in the source's form.
    Full-width input is stored half-width: everyone recomputes from the stored text."""
    stored = frozen.parameters.get("beacon_date")  # absent on draws frozen before it was kept
    day = dt.date.fromisoformat(stored) if stored else beacon_day(frozen.beacon_source)
    if day is None:
        raise InvalidTransition("冻结时的信标来源没有写明日期，无法确认信标已公布；"
                                "请重新执行“抽取”并写明信标日期")
    ready = beacon_ready_at(day, ctx.rules)
    if ctx.clock.now() < ready:
        raise InvalidTransition(f"信标（{frozen.beacon_source}）尚未公布，"
                                f"{beacon_ready_label(ready)} 起才能确认抽取")
    value = unicodedata.normalize("NFKC", value or "").strip()
    if not value:
        raise ValidationFailed(f"请输入信标值（{frozen.beacon_source}）")
    if _is_3d(frozen.beacon_source) and not _3D_DIGITS.fullmatch(value):
        raise ValidationFailed(f"福彩3D开奖号码应为 3 位数字（例如 4 1 7 或 417），请按{frozen.beacon_source}"
                               f"的开奖公告输入")
    if len(value) > _BEACON_MAX_CHARS:
        raise ValidationFailed(f"信标值不能超过 {_BEACON_MAX_CHARS} 个字符")
    return value


async def _pool_data(session: AsyncSession, d: Draw) -> bytes:
    data = await session.scalar(select(DrawPool.data).where(DrawPool.draw_id == d.id))
    assert data is not None  # written with the draw
    return data


def _uscc_among(dialect: str, usccs: list[str]) -> ColumnElement[bool] | None:
    """Target.uscc in the list as ONE bound value, so compiling does not grow with the list: a
    JSON array read by json_each on SQLite, an array with = ANY on PostgreSQL (None elsewhere)."""
    if dialect == "sqlite":
        return Target.uscc.in_(select(func.json_each(json.dumps(usccs)).table_valued("value")))
    if dialect == "postgresql":
        return Target.uscc == any_(bindparam("usccs", usccs, type_=ARRAY(String)))
    return None


async def _target_ids(session: AsyncSession, usccs: Sequence[str]) -> dict[str, tuple[int, str]]:
    """uscc → (target id, name) (a city-wide draw selects tens of thousands)."""
    columns = select(Target.uscc, Target.id, Target.name)
    among = _uscc_among((await session.connection()).dialect.name, list(usccs))
    if among is not None:
        queries = [columns.where(among)]
    else:  # other databases: IN (…) lists of bounded length
        queries = [columns.where(Target.uscc.in_(usccs[i:i + _CHUNK])) for i in range(0, len(usccs), _CHUNK)]
    out: dict[str, tuple[int, str]] = {}
    for query in queries:
        out.update((u, (tid, name)) for u, tid, name in await fetch_plain(session, query))
    return out


async def _insert_cases(session: AsyncSession, n: int, columns: dict[str, Any]) -> None:
    """n cases by column (a list of n values, or one value for every row) in one driver-level
    executemany: SQLAlchemy's per-row parameter handling of tens of thousands of cases costs
    more than the database's own work. Single values (dates, flags) pass the column type's bind
    processor, so the driver gets what SQLAlchemy would send it; lists hold plain str/int."""
    conn = await session.connection()
    dialect, table = conn.dialect, cast(Table, Case.__table__)
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    by_column: dict[str, Iterable[Any]] = {}
    for key, values in columns.items():
        if isinstance(values, list):
            by_column[key] = values
        else:
            process = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
            by_column[key] = repeat(process(values) if process else values, n)
    params = list(zip(*(by_column[key] for key in compiled.positiontup or ()), strict=True))
    if params:
        await conn.exec_driver_sql(str(compiled), params)


async def confirm_draw(ctx: Ctx, task_code: str, beacon: str) -> Draw:
    """Enter the beacon: compute the selection once, lock it and create the cases."""
    task = await get_task(ctx, task_code, for_update=True)
    _lead_only(ctx, task, "draw.confirm", admin=False)
    _check_drawable(task)
    frozen = await ctx.session.scalar(select(Draw).where(
        Draw.task_id == task.id, Draw.kind == "targets", Draw.state == "frozen"))
    if frozen is None:
        raise InvalidTransition("尚未冻结抽取范围，请先执行“抽取”并公布信标来源")
    beacon = _checked_beacon(ctx, frozen, beacon) if frozen.uses_beacon else ""
    pool_hash, pool = stored_pool(await _pool_data(ctx.session, frozen))
    if pool_hash != frozen.pool_hash:
        raise InvalidTransition("冻结的抽取范围与其哈希不符，已停止抽取，请联系管理员")
    seed = bytes.fromhex(task.seed_hex)
    rule = draw.parse_rule(task.rule)
    selection = draw.select(pool, rule, draw.final_seed(seed, beacon or None), task.code)
    now = ctx.clock.now()
    frozen.selection, frozen.beacon, frozen.seed_hex = selection, beacon, task.seed_hex
    frozen.state, frozen.locked_at = "locked", now
    targets = await _target_ids(ctx.session, selection)
    if missing := [u for u in selection if u not in targets]:
        # never name a would-be selected target: this transaction is rolled back unlocked
        raise InvalidTransition(f"冻结后有 {len(missing)} 户检查对象已从名录库删除，无法锁定；"
                                "请重新冻结抽取范围并公布新的信标来源")
    due = (await ctx.work_calendar()).add_workdays(task.window_end, ctx.rules.result_entry_workdays)
    case_codes = [f"{task.code}-{n:03d}" for n in range(1, len(selection) + 1)]
    await _insert_cases(ctx.session, len(selection), {
        "code": case_codes, "task_id": task.id, "target_id": [targets[u][0] for u in selection],
        "state": "assigned", "result_due_on": due.day, "result_due_provisional": due.provisional})
    task.state = "locked"
    wanted = set(selection)
    chosen = Counter(stratum for i, stratum in pool if i in wanted)
    shown = [{"code": code, "name": targets[u][1], "uscc": u}
             for code, u in zip(case_codes[:LISTED_CASES], selection, strict=False)]
    text = render("messages/draw_locked.md.j2", task=task, d=frozen, chosen=dict(chosen), shown=shown,
                  hidden=max(0, len(selection) - LISTED_CASES))
    notices = _broadcast(await _participants(ctx.session, task),
                         OutMessage.md(f"抽取结果已锁定：{task.code}", text), f"draw-locked:{frozen.id}")
    await record(ctx, "draw.locked", f"draw:{frozen.code}", {
        "task": task.code, "freeze_no": frozen.freeze_no, "commitment": frozen.commitment,
        "seed": frozen.seed_hex, "beacon": beacon, "beacon_source": frozen.beacon_source,
        "pool_hash": frozen.pool_hash, "pool_size": frozen.pool_size,
        "selection_size": len(selection), "selection_by_stratum": dict(chosen)}, notices)
    return frozen


# ---------------------------------------------------------------- inspectors

class _Roster:
    """One department's inspectors in key order; hands out the least-loaded eligible one, ties
    going to key order — plain round-robin when nothing is skipped, so loads differ by ≤ 1."""

    def __init__(self, department: Department, officers: Sequence[InspectorRow]) -> None:
        self.department = department
        self.heap: list[tuple[int, int, InspectorRow]] = [(0, pos, o) for pos, o in enumerate(officers)]

    def take(self, target_id: int, taken: set[int], conflicts: set[tuple[int, int]]) -> InspectorRow | None:
        skipped, chosen = [], None
        while self.heap:
            load, pos, officer = heapq.heappop(self.heap)
            if officer.id in taken or (officer.id, target_id) in conflicts:
                skipped.append((load, pos, officer))
                continue
            chosen = officer
            heapq.heappush(self.heap, (load + 1, pos, officer))
            break
        for entry in skipped:
            heapq.heappush(self.heap, entry)
        return chosen


def _inspector_rule(departments: Sequence[Department], sizes: dict[int, int]) -> draw.SamplingRule:
    """Every inspector of every department is ordered: one stratum per department, count = all."""
    return draw.parse_rule({"strata": [{"name": d.code, "count": sizes[d.id]} for d in departments]})


async def _locked_draw(session: AsyncSession, task: JointTask, kind: str) -> Draw:
    d = await session.scalar(select(Draw).where(Draw.task_id == task.id, Draw.kind == kind,
                                                Draw.state == "locked").order_by(Draw.id.desc()))
    if d is None:
        raise InvalidTransition("检查对象尚未抽取锁定" if kind == "targets" else "尚未匹配执法检查人员")
    return d


async def _task_cases(session: AsyncSession, task: JointTask, selection: Sequence[str]) -> list[Case]:
    """The task's cases in selection order."""
    cases = list(await session.scalars(select(Case).where(Case.task_id == task.id)))
    position = {u: n for n, u in enumerate(selection)}
    return sorted(cases, key=lambda c: position[c.target.uscc])


async def _conflicts(session: AsyncSession, officer_ids: Iterable[int]) -> set[tuple[int, int]]:
    ids = list(officer_ids)
    out: set[tuple[int, int]] = set()
    for i in range(0, len(ids), _CHUNK):
        rows = await session.execute(select(OfficerConflict.officer_id, OfficerConflict.target_id)
                                     .where(OfficerConflict.officer_id.in_(ids[i:i + _CHUNK])))
        out.update((o, t) for o, t in rows)
    return out


def _assign(cases: Sequence[Case], rosters: Sequence[_Roster], conflicts: set[tuple[int, int]],
            min_size: int) -> dict[int, list[tuple[InspectorRow, bool]]]:
    """case id → [(officer, is_leader)]: the lead's first officer leads; each accepted department
    sends one; the lead tops the group up to the minimum size."""
    lead, others = rosters[0], rosters[1:]
    groups: dict[int, list[tuple[InspectorRow, bool]]] = {}
    for case in cases:
        taken: set[int] = set()
        group: list[tuple[InspectorRow, bool]] = []
        for roster in (lead, *others):
            officer = roster.take(case.target_id, taken, conflicts)
            if officer is None:
                raise ValidationFailed(f"{roster.department.name}没有可派往 {case.code}"
                                       f"（{case.target.name}）的执法检查人员（其余人员均需回避）")
            taken.add(officer.id)
            group.append((officer, roster is lead))
        while len(group) < min_size:
            officer = lead.take(case.target_id, taken, conflicts)
            if officer is None:
                raise ValidationFailed(f"{lead.department.name}的执法检查人员不足，无法使 {case.code} "
                                       f"的检查组达到 {min_size} 人")
            taken.add(officer.id)
            group.append((officer, False))
        groups[case.id] = group
    return groups


async def match_inspectors(ctx: Ctx, task_code: str) -> list[Case]:
    """Draw each participating department's inspectors (keyed order, same seed and beacon as the
    targets) and match them round-robin into one group per case."""
    task = await get_task(ctx, task_code, for_update=True)
    _lead_only(ctx, task, "inspectors.match", admin=False)
    if task.state != "locked":
        raise InvalidTransition("已匹配执法检查人员，不能重新匹配" if task.state in _DONE_STATES
                                else "检查对象尚未抽取锁定，不能匹配执法检查人员")
    targets_draw = await _locked_draw(ctx.session, task, "targets")
    departments = await _participants(ctx.session, task)
    pools = await build_inspector_pool(ctx.session, [d.id for d in departments])
    if empty := [d.name for d in departments if not pools[d.id]]:
        raise ValidationFailed(f"{'、'.join(empty)}没有在岗的执法检查人员，无法匹配检查组")
    by_code = {draw.INSPECTOR_PREFIX + o.code: o for rows in pools.values() for o in rows}
    dep_code = {d.id: d.code for d in departments}
    pool = [(i, dep_code[o.department_id]) for i, o in by_code.items()]
    rule = _inspector_rule(departments, {d: len(rows) for d, rows in pools.items()})
    seed = bytes.fromhex(targets_draw.seed_hex)
    beacon = targets_draw.beacon or None
    selection = draw.select(pool, rule, draw.final_seed(seed, beacon), task.code)
    ordered: dict[int, list[InspectorRow]] = defaultdict(list)
    for i in selection:
        ordered[by_code[i].department_id].append(by_code[i])
    cases = await _task_cases(ctx.session, task, targets_draw.selection)
    conflicts = await _conflicts(ctx.session, (o.id for o in by_code.values()))
    rosters = [_Roster(d, ordered[d.id]) for d in departments]
    groups = _assign(cases, rosters, conflicts, ctx.rules.min_group_size)
    await (await ctx.session.connection()).execute(insert(GroupMember), [
        {"case_id": cid, "officer_id": o.id, "department_id": o.department_id, "is_leader": leads,
         "active": True} for cid, members in groups.items() for o, leads in members])
    now = ctx.clock.now()
    n = 1 + (await ctx.session.scalar(select(func.count()).select_from(Draw).where(
        Draw.task_id == task.id, Draw.kind == "inspectors")) or 0)
    inspectors_draw = Draw(
        code=f"{task.code}-I{n}", task_id=task.id, kind="inspectors", task_code=task.code,
        state="locked", freeze_no=1, commitment=targets_draw.commitment, seed_hex=targets_draw.seed_hex,
        beacon_source=targets_draw.beacon_source, beacon=targets_draw.beacon,
        uses_beacon=targets_draw.uses_beacon, pool_hash=draw.pool_hash(pool), pool_size=len(pool),
        parameters={"rule": rule.public(), "strata": draw.stratum_sizes(pool),
                    "min_group_size": ctx.rules.min_group_size},
        algorithm_version=draw.ALGORITHM_VERSION, selection=selection,
        created_by_id=ctx.actor.id if ctx.actor else None, frozen_at=now, locked_at=now)
    ctx.session.add(inspectors_draw)
    await ctx.session.flush()
    ctx.session.add(DrawPool(draw_id=inspectors_draw.id, data=encode_pool(pool)))
    task.state = "inspecting"
    loads = Counter(o.code for members in groups.values() for o, _ in members)
    notices = await _match_notices(ctx, task, cases, groups, departments)
    await record(ctx, "inspectors.matched", f"task:{task.code}", {
        "draw": inspectors_draw.code, "pool_hash": inspectors_draw.pool_hash,
        "pool_size": len(pool), "cases": len(cases), "loads": dict(sorted(loads.items()))}, notices)
    return cases


def _group_names(members: Iterable[tuple[InspectorRow, bool]], names: dict[int, str]) -> tuple[str, str]:
    """("张三、李四", leader's name)."""
    listed = list(members)
    leader = next((names[o.id] for o, leads in listed if leads), "—")
    return "、".join(names[o.id] for o, _ in listed), leader


async def _match_notices(ctx: Ctx, task: JointTask, cases: Sequence[Case],
                         groups: dict[int, list[tuple[InspectorRow, bool]]],
                         departments: Sequence[Department]) -> list[Notice]:
    officer_ids = {o.id for members in groups.values() for o, _ in members}
    names = dict((await ctx.session.execute(select(Officer.id, Officer.name).where(
        Officer.id.in_(officer_ids)))).all())
    items = "、".join(i.name for i in await task_items(ctx.session, task))
    per_officer: dict[int, list[dict[str, str]]] = defaultdict(list)
    per_department: dict[int, list[dict[str, str]]] = defaultdict(list)
    for case in cases:
        members = groups[case.id]
        listed, leader = _group_names(members, names)
        entry = {"code": case.code, "name": case.target.name, "uscc": case.target.uscc,
                 "address": case.target.address, "members": listed, "leader": leader}
        for officer, _ in members:
            per_officer[officer.id].append(entry)
        for dep_id in {o.department_id for o, _ in members}:
            ours = "、".join(names[o.id] for o, _ in members if o.department_id == dep_id)
            per_department[dep_id].append({**entry, "ours": ours})
    workdays = ctx.rules.result_entry_workdays
    notices = [_assignment(ctx, task, entries, items, oid, key=f"matched:{task.id}:officer:{oid}")
               for oid, entries in per_officer.items()]
    for dep in departments:
        entries = per_department[dep.id]
        officers = len({o.id for m in groups.values() for o, _ in m if o.department_id == dep.id})
        text = render("messages/department_cases.md.j2", task=task, department=dep, total=len(entries),
                      officers=officers, shown=entries[:LISTED_CASES],
                      hidden=max(0, len(entries) - LISTED_CASES), workdays=workdays)
        notices.append(Notice(Destination.department(dep.id),
                              OutMessage.md(f"检查人员匹配结果：{task.code}", text),
                              key=f"matched:{task.id}:department:{dep.id}"))
    return notices


def _assignment(ctx: Ctx, task: JointTask, entries: list[dict[str, str]], items: str, officer_id: int,
                *, key: str, joined: str = "") -> Notice:
    """One inspector's assignment: every case with address, group, window, items and deadline."""
    text = render("messages/inspector_cases.md.j2", task=task, total=len(entries),
                  shown=entries[:LISTED_CASES], hidden=max(0, len(entries) - LISTED_CASES),
                  items=items, workdays=ctx.rules.result_entry_workdays, joined=joined,
                  documents=page_ref("documents", f"task:{task.code}"))
    return Notice(Destination.officer(officer_id), OutMessage.md(f"检查任务：{task.code}", text), key=key)


# ---------------------------------------------------------------- recusal and replacement

async def _case(ctx: Ctx, code: str) -> Case:
    case = await ctx.session.scalar(select(Case).where(Case.code == code.strip().upper()))
    if case is None:
        raise NotFound(f"未找到案件 {code}")
    return case


async def _members(session: AsyncSession, case: Case) -> list[GroupMember]:
    return list(await session.scalars(select(GroupMember).where(GroupMember.case_id == case.id)
                                      .order_by(GroupMember.id)))


def _changeable(case: Case, reason: str, what: str) -> str:
    if case.state not in ("assigned", "notified"):
        raise InvalidTransition(f"案件 {case.code} 已开始检查或已录入结果，不能再{what}")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(f"{what}须说明理由")
    return reason


def _active_member(members: Sequence[GroupMember], case: Case, officer_id: int) -> GroupMember:
    found = next((m for m in members if m.active and m.officer_id == officer_id), None)
    if found is None:
        raise NotFound(f"该人员不在案件 {case.code} 的检查组中")
    return found


async def _is_conflicted(session: AsyncSession, officer_id: int, target_id: int) -> bool:
    return await session.scalar(select(OfficerConflict.id).where(
        OfficerConflict.officer_id == officer_id, OfficerConflict.target_id == target_id)) is not None


async def recuse(ctx: Ctx, case_code: str, officer_id: int, reason: str) -> GroupMember:
    """回避: the next eligible inspector of the same department in the inspector draw's key order."""
    case = await _case(ctx, case_code)
    members = await _members(ctx.session, case)
    old = _active_member(members, case, officer_id)
    task = await _task_by_id(ctx.session, case.task_id)
    actor = ctx.actor
    _require(actor is None or actor.id == officer_id or _may_act_for(ctx, old.department_id)
             or _may_act_for(ctx, task.lead_department_id), "case.recuse", f"case:{case.code}",
             "只有本人、所在部门或牵头部门的联络员、分管领导可以申请回避")
    reason = _changeable(case, reason, "回避")
    if len(reason) < ctx.rules.recusal_reason_min_chars:
        raise ValidationFailed(f"回避理由至少需要 {ctx.rules.recusal_reason_min_chars} 个字，"
                               "请写明与检查对象的利害关系")
    inspectors_draw = await _locked_draw(ctx.session, task, "inspectors")
    dep = await _department(ctx.session, old.department_id)
    stratum = dict(decode_pool(await _pool_data(ctx.session, inspectors_draw)))
    order = [i.removeprefix(draw.INSPECTOR_PREFIX) for i in inspectors_draw.selection
             if stratum.get(i) == dep.code]
    officers = {o.code: o for o in await ctx.session.scalars(select(Officer).where(Officer.code.in_(order)))}
    start = order.index(old.officer.code) + 1 if old.officer.code in order else 0
    been = {m.officer_id for m in members}
    replacement = None
    for code in order[start:] + order[:start]:
        o = officers.get(code)
        if (o is not None and o.active and o.has_role("inspector") and o.department_id == dep.id
                and o.id not in been and not await _is_conflicted(ctx.session, o.id, case.target_id)):
            replacement = o
            break
    if replacement is None:
        raise ValidationFailed("该部门没有可替换的执法检查人员，无法回避")
    return await _swap(ctx, case, members, old, replacement, "recusal", reason)


async def replace_inspector(ctx: Ctx, case_code: str, officer_id: int, new_officer_id: int,
                            reason: str) -> GroupMember:
    """更换: chosen without lottery by the department leader (001 第十四条, 004 第十三条)."""
    case = await _case(ctx, case_code)
    members = await _members(ctx.session, case)
    old = _active_member(members, case, officer_id)
    _require(_may_act_for(ctx, old.department_id, roles=("leader",)), "case.replace",
             f"case:{case.code}", "更换执法检查人员须经本部门分管领导（或管理员）决定")
    reason = _changeable(case, reason, "更换人员")
    new = await ctx.session.get(Officer, new_officer_id)
    if new is None:
        raise NotFound(f"未找到执法检查人员（编号 {new_officer_id}）")
    if new.department_id != old.department_id or not new.active or not new.has_role("inspector"):
        raise ValidationFailed(f"{new.name}不是{old.officer.department.name}在岗的执法检查人员")
    if any(m.active and m.officer_id == new.id for m in members):
        raise ValidationFailed(f"{new.name}已在该检查组中")
    if await _is_conflicted(ctx.session, new.id, case.target_id):
        raise ValidationFailed(f"{new.name}与该检查对象有利害关系，须回避")
    return await _swap(ctx, case, members, old, new, "replacement", reason)


async def _swap(ctx: Ctx, case: Case, members: list[GroupMember], old: GroupMember, new: Officer,
                kind: str, reason: str) -> GroupMember:
    old.active = False
    added = GroupMember(case_id=case.id, officer=new, department_id=new.department_id,
                        is_leader=old.is_leader, active=True)
    ctx.session.add(added)
    ctx.session.add(Recusal(case_id=case.id, officer_id=old.officer_id, kind=kind, reason=reason,
                            replacement_officer_id=new.id,
                            decided_by_id=ctx.actor.id if ctx.actor else None, created_at=ctx.clock.now()))
    await ctx.session.flush()
    group = [*(m for m in members if m.active), added]
    await record(ctx, f"case.{kind}", f"case:{case.code}", {
        "officer": old.officer.code, "replacement": new.code, "reason": reason,
        "leader_changed": old.is_leader}, await _swap_notices(ctx, case, group, old, new, kind, reason))
    return added


async def _swap_notices(ctx: Ctx, case: Case, group: list[GroupMember], old: GroupMember, new: Officer,
                        kind: str, reason: str) -> list[Notice]:
    """The group hears who left and who joined; the newcomer gets the full assignment; the reason,
    often personal (a relative, a friendship), goes only to the department's liaisons and leaders
    (a department without any has its chat told, without the reason)."""
    names = {m.officer_id: m.officer.name for m in group if m.officer_id != new.id} | {new.id: new.name}
    leader = next((names[m.officer_id] for m in group if m.is_leader), "—")
    listed = "、".join(names[m.officer_id] for m in group)
    label = "回避" if kind == "recusal" else "更换"

    def change(with_reason: bool) -> OutMessage:
        return OutMessage.md(f"检查组人员{label}：{case.code}", render(
            "messages/member_change.md.j2", case=case, target=case.target, old=old.officer, new=new,
            leads=old.is_leader, reason=reason if with_reason else "", kind=kind, kind_label=label,
            decided_by=ctx.actor.name if ctx.actor else ctx.actor_label, members=listed, leader=leader))

    key = f"{kind}:{case.id}:{new.id}"
    private = [o.id for o in await _answerers(ctx.session, old.department_id)]
    told = [oid for oid in dict.fromkeys([old.officer_id, *(m.officer_id for m in group)])
            if oid != new.id and oid not in private]
    notices = [Notice(Destination.officer(oid), change(False), key=f"{key}:{oid}") for oid in told]
    notices += [Notice(Destination.officer(oid), change(True), key=f"{key}:{oid}") for oid in private]
    if not private:
        notices.append(Notice(Destination.department(old.department_id), change(False),
                              key=f"{key}:department"))
    task = await _task_by_id(ctx.session, case.task_id)
    entry = {"code": case.code, "name": case.target.name, "uscc": case.target.uscc,
             "address": case.target.address, "members": listed, "leader": leader}
    items = "、".join(i.name for i in await task_items(ctx.session, task))
    joined = f"您因{old.officer.name}{label}接替加入检查组{'并担任组长' if old.is_leader else ''}。"
    notices.append(_assignment(ctx, task, [entry], items, new.id, key=f"{key}:assignment", joined=joined))
    return notices


# ---------------------------------------------------------------- queries for the handlers

@dataclass(frozen=True)
class TaskListing:
    task: JointTask
    role: str  # lead | invited
    invitation: Invitation | None


async def tasks_for_department(ctx: Ctx, department_id: int) -> list[TaskListing]:
    """The department's own tasks and its invitations; pending invitations first, then newest."""
    own = await ctx.session.scalars(select(JointTask).where(JointTask.lead_department_id == department_id))
    invited = await ctx.session.execute(select(JointTask, Invitation).join(
        Invitation, Invitation.task_id == JointTask.id).where(Invitation.department_id == department_id))
    listing = [TaskListing(t, "lead", None) for t in own]
    listing += [TaskListing(t, "invited", inv) for t, inv in invited]
    listing.sort(key=lambda x: x.task.created_at, reverse=True)
    listing.sort(key=lambda x: not (x.invitation is not None and x.invitation.state == "pending"))
    return listing


async def task_progress(ctx: Ctx, code: str) -> dict[str, Any]:
    task = await get_task(ctx, code)
    invitations = await _invitations(ctx.session, task)
    cases = Counter((await ctx.session.execute(select(Case.state).where(Case.task_id == task.id))).scalars())
    overdue = await ctx.session.scalar(select(func.count()).select_from(Case).where(
        Case.task_id == task.id, Case.state.in_(("assigned", "notified", "inspected", "returned")),
        Case.result_due_on < ctx.clock.today()))
    return {"code": task.code, "title": task.title, "state": task.state,
            "state_label": TASK_STATE_LABELS[task.state],
            "reply_due_on": task.reply_due_on, "reply_due_provisional": task.reply_due_provisional,
            "invitations": [{"department": i.department.name, "state": i.state,
                             "state_label": INVITATION_STATE_LABELS[i.state], "reason": i.reason}
                            for i in invitations],
            "invitation_counts": dict(Counter(i.state for i in invitations)),
            "cases": dict(cases), "case_total": sum(cases.values()), "overdue": int(overdue or 0)}


async def cases_for_officer(ctx: Ctx, officer_id: int) -> list[Case]:
    """Cases where the officer is an active group member, by code."""
    return list(await ctx.session.scalars(select(Case).join(
        GroupMember, GroupMember.case_id == Case.id).where(
        GroupMember.officer_id == officer_id, GroupMember.active.is_(True)).order_by(Case.code)))


@dataclass
class InvitationView:
    """An invitation as its answer page shows it."""

    invitation: Invitation
    task: JointTask
    task_items: list[tuple[str, Item]]  # (department name, item), every department's
    own_items: list[Item]  # the invited department's item list, offered as check boxes
    items_in_task: set[int]  # own items already in the task (once accepted)
    responder: str = ""

    def default_item_ids(self) -> set[int]:
        """Pre-checked boxes: the items already in the task for this department (after an
        answer), else what a one-tap 接受 takes."""
        return set(self.items_in_task) or {i.id for i in default_items(self.own_items)}


async def invitation_view(ctx: Ctx, invitation_id: int) -> InvitationView:
    session = ctx.session
    invitation = await session.scalar(
        select(Invitation).where(Invitation.id == invitation_id)
        .execution_options(populate_existing=True))
    if invitation is None:
        raise NotFound("邀请不存在或已被撤回。")
    task = await session.get(JointTask, invitation.task_id)
    if task is None:
        raise NotFound("任务不存在。")
    rows = (await session.execute(
        select(Department.name, Item, TaskItem.department_id)
        .join(TaskItem, TaskItem.item_id == Item.id)
        .join(Department, Department.id == TaskItem.department_id)
        .where(TaskItem.task_id == task.id).order_by(Department.id, Item.code))).all()
    own_items = list(await session.scalars(
        select(Item).where(Item.department_id == invitation.department_id,
                           Item.current.is_(True)).order_by(Item.code)))
    responder = ""
    if invitation.responded_by_id is not None:
        who = await session.get(Officer, invitation.responded_by_id)
        responder = who.name if who is not None else ""
    return InvitationView(
        invitation=invitation, task=task, task_items=[(name, item) for name, item, _ in rows],
        own_items=own_items,
        items_in_task={item.id for _, item, dept in rows if dept == invitation.department_id},
        responder=responder)
