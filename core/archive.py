"""立卷归档 of a joint task (001 第二十条, 004 第二十五条): one ZIP with everything the task
produced — plan, invitations and answers, draw receipts and pool files, notices and records
(DOCX), results (every version) with attachments, reviews, publication, objections, and the
task's audit excerpt with its chain check — then the task is `closed`.

Only a task whose results are all published and whose objections are all settled is archived.
The archive's manifest lists every file with its SHA-256; the `task.closed` audit event carries
the manifest's digest, so a copy of the archive can later be matched to the record.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit
from core.attachments import FileStore
from core.changes import Ctx, record
from core.clock import CHINA_TZ
from core.documents import DOC_KINDS, document_context, document_file
from core.draws.verify import draw_public_json, pool_csv_text
from core.errors import InvalidTransition, NotFound, PermissionDenied
from core.models import (
    Attachment,
    AuditEvent,
    Case,
    CaseResult,
    Department,
    Draw,
    Invitation,
    Item,
    ItemResult,
    JointTask,
    Objection,
    Officer,
    Review,
    TaskItem,
)
from core.states import TASK, ObjectionState, TaskState

ARCHIVABLE = (TaskState.PUBLISHED, TaskState.CLOSED)  # closed: a copy may be made again
OPEN_OBJECTIONS = (ObjectionState.RECEIVED, ObjectionState.ERROR_FOUND)


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with BOM so Excel opens the Chinese columns as they are."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str).encode("utf-8")


def _when(at: dt.datetime | None) -> str:
    return at.astimezone(CHINA_TZ).isoformat(timespec="seconds") if at else ""


class _Files:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, name: str, content: bytes) -> None:
        self.files[name] = content

    def manifest(self, task: JointTask, generated_at: dt.datetime) -> bytes:
        lines = [
            f"联合抽查任务 {task.code}《{task.title}》立卷归档",
            f"生成时间：{_when(generated_at)}",
            "文件清单（SHA-256  文件名）：",
        ]
        lines += [f"{hashlib.sha256(c).hexdigest()}  {n}" for n, c in sorted(self.files.items())]
        return ("\n".join(lines) + "\n").encode("utf-8")


async def _names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    rows = await session.execute(select(Officer.id, Officer.name).where(Officer.id.in_(wanted)))
    return {i: n for i, n in rows.all()}


async def _plan(session: AsyncSession, task: JointTask, files: _Files) -> None:
    items = (
        await session.execute(
            select(Item, Department.name)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .join(Department, Department.id == TaskItem.department_id)
            .where(TaskItem.task_id == task.id)
            .order_by(Department.id, Item.code)
        )
    ).all()
    files.add(
        "01-任务方案/任务.json",
        _json(
            {
                "code": task.code,
                "title": task.title,
                "year": task.year,
                "lead_department": task.lead_department.name,
                "window_start": task.window_start,
                "window_end": task.window_end,
                "scope": task.scope,
                "rule": task.rule,
                "commitment": task.commitment,
                "created_at": _when(task.created_at),
                "items": [
                    {"department": d, "code": i.code, "name": i.name, "category": i.category}
                    for i, d in items
                ],
            }
        ),
    )


async def _invitations(session: AsyncSession, task: JointTask, files: _Files) -> list[int]:
    invitations = list(
        await session.scalars(
            select(Invitation).where(Invitation.task_id == task.id).order_by(Invitation.id)
        )
    )
    names = await _names(session, (i.responded_by_id for i in invitations))
    files.add(
        "02-邀请与答复/邀请.csv",
        _csv(
            ("部门", "答复", "理由", "答复人", "答复时间"),
            [
                (
                    i.department.name,
                    i.state,
                    i.reason,
                    names.get(i.responded_by_id or 0, ""),
                    _when(i.responded_at),
                )
                for i in invitations
            ],
        ),
    )
    return [i.id for i in invitations]


async def _draws(ctx: Ctx, task: JointTask, files: _Files) -> None:
    for d in await ctx.session.scalars(
        select(Draw).where(Draw.task_id == task.id).order_by(Draw.id)
    ):
        files.add(
            f"03-抽取/{d.code}.json",
            _json(
                {
                    **draw_public_json(d),
                    "parameters": d.parameters,
                    "frozen_at": _when(d.frozen_at),
                    "locked_at": _when(d.locked_at),
                }
            ),
        )
        files.add(f"03-抽取/{d.code}-pool.csv", (await pool_csv_text(ctx, d.id)).encode())


async def _documents(ctx: Ctx, cases: Sequence[Case], files: _Files) -> None:
    for case in cases:
        context = await document_context(ctx, case.code, ctx.clock.today())
        for kind in DOC_KINDS:
            doc = document_file(kind, "docx", context)
            files.add(f"04-检查文书/{case.code}/{doc.filename}", doc.content)


async def _results(session: AsyncSession, cases: Sequence[Case], files: _Files) -> None:
    by_id = {c.id: c for c in cases}
    results = list(
        await session.scalars(
            select(CaseResult)
            .where(CaseResult.case_id.in_(by_id))
            .order_by(CaseResult.case_id, CaseResult.version)
        )
    )
    names = await _names(session, (r.entered_by_id for r in results))
    files.add(
        "05-检查结果/结果.csv",
        _csv(
            (
                "案件号",
                "检查对象",
                "统一社会信用代码",
                "版本",
                "状态",
                "结果代码",
                "检查方式",
                "后续处置",
                "后续处置完成",
                "完成日期",
                "检查日期",
                "备注",
                "是否更正",
                "录入人",
                "录入时间",
                "公示时间",
            ),
            [
                (
                    by_id[r.case_id].code,
                    by_id[r.case_id].target.name,
                    by_id[r.case_id].target.uscc,
                    r.version,
                    r.state,
                    ",".join(r.codes),
                    "、".join(r.methods),
                    "、".join(r.followups),
                    r.followup_done,
                    r.followup_done_on,
                    r.inspected_on,
                    r.remarks,
                    r.is_correction,
                    names.get(r.entered_by_id, ""),
                    _when(r.entered_at),
                    _when(r.published_at),
                )
                for r in results
            ],
        ),
    )
    version = {r.id: (by_id[r.case_id].code, r.version) for r in results}
    items = (
        await session.execute(
            select(ItemResult, Item.name)
            .join(Item, Item.id == ItemResult.item_id)
            .where(ItemResult.result_id.in_(version))
            .order_by(ItemResult.result_id, ItemResult.id)
        )
    ).all()
    files.add(
        "05-检查结果/事项结果.csv",
        _csv(
            ("案件号", "版本", "检查事项", "结果代码", "检查内容", "发现的问题", "处理情况"),
            [
                (*version[i.result_id], name, ",".join(i.codes), i.content, i.problems, i.handling)
                for i, name in items
            ],
        ),
    )
    files.add(
        "07-公示/公示.csv",
        _csv(
            ("案件号", "版本", "公示时间", "是否更正", "当前状态"),
            [
                (by_id[r.case_id].code, r.version, _when(r.published_at), r.is_correction, r.state)
                for r in results
                if r.published_at is not None
            ],
        ),
    )
    reviews = list(
        await session.scalars(
            select(Review).where(Review.result_id.in_(version)).order_by(Review.id)
        )
    )
    reviewers = await _names(session, (r.reviewer_id for r in reviews))
    departments = dict((await session.execute(select(Department.id, Department.name))).all())
    files.add(
        "06-审核/审核.csv",
        _csv(
            ("案件号", "版本", "审核部门", "审核人", "结论", "理由", "时间"),
            [
                (
                    *version[r.result_id],
                    departments[r.department_id],
                    reviewers.get(r.reviewer_id, ""),
                    "通过" if r.decision == "approve" else "退回",
                    r.reason,
                    _when(r.created_at),
                )
                for r in reviews
            ],
        ),
    )


async def _attachments(
    session: AsyncSession, cases: Sequence[Case], store: FileStore | None, files: _Files
) -> None:
    """Every result version's photos and PDFs, by case and version; a file the store no
    longer holds is listed as missing rather than silently left out."""
    code = {c.id: c.code for c in cases}
    rows = (
        await session.execute(
            select(Attachment, CaseResult.case_id, CaseResult.version)
            .join(CaseResult, CaseResult.id == Attachment.result_id)
            .where(CaseResult.case_id.in_(code))
            .order_by(CaseResult.case_id, CaseResult.version, Attachment.id)
        )
    ).all()
    listed = []
    for a, case_id, version in rows:
        name = f"05-检查结果/附件/{code[case_id]}/第{version}版-{a.id}-{a.name}"
        present = store is not None and store.has(a.sha256)
        if store is not None and present:
            files.add(name, store.read(a.sha256))
        listed.append(
            (code[case_id], version, a.name, a.mime, a.size, a.sha256, name if present else "缺失")
        )
    files.add(
        "05-检查结果/附件清单.csv",
        _csv(("案件号", "版本", "文件名", "类型", "字节", "SHA-256", "归档位置"), listed),
    )


async def _objections(session: AsyncSession, cases: Sequence[Case], files: _Files) -> list[int]:
    code = {c.id: c.code for c in cases}
    objections = list(
        await session.scalars(
            select(Objection).where(Objection.case_id.in_(code)).order_by(Objection.id)
        )
    )
    files.add(
        "08-异议/异议.csv",
        _csv(
            (
                "案件号",
                "申请人",
                "异议内容",
                "收到日期",
                "状态",
                "复查期限",
                "复查结论",
                "复查日期",
                "答复日期",
            ),
            [
                (
                    code[o.case_id],
                    o.filed_by,
                    o.content,
                    o.received_on,
                    o.state,
                    o.recheck_due_on,
                    o.recheck_finding,
                    o.rechecked_on,
                    o.replied_on,
                )
                for o in objections
            ],
        ),
    )
    return [o.id for o in objections]


async def _audit(
    session: AsyncSession,
    task: JointTask,
    invitation_ids: Sequence[int],
    objection_ids: Sequence[int],
    files: _Files,
) -> None:
    """The task's events with their hashes, each row's hash recomputed, and the whole chain's
    check at the time of archiving (an excerpt alone cannot show that nothing was deleted)."""
    subjects = [
        f"task:{task.code}",
        *(f"invitation:{i}" for i in invitation_ids),
        *(f"objection:{i}" for i in objection_ids),
    ]
    events = list(
        await session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    AuditEvent.subject.in_(subjects),
                    AuditEvent.subject.startswith(f"case:{task.code}-"),
                    AuditEvent.subject.startswith(f"draw:{task.code}-"),
                )
            )
            .order_by(AuditEvent.id)
        )
    )
    files.add(
        "09-审计/审计摘录.jsonl",
        b"".join(
            _json_line(
                {
                    "id": e.id,
                    "at": e.at.astimezone(dt.UTC).isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "subject": e.subject,
                    "data": e.data,
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }
            )
            for e in events
        ),
    )
    bad = [
        e.id
        for e in events
        if audit.row_hash(e.prev_hash, e.id, e.at, e.actor, e.action, e.subject, e.data) != e.hash
    ]
    problems = await audit.verify_chain(session)
    lines = [
        f"摘录 {len(events)} 条记录；逐条重算哈希："
        + ("全部一致" if not bad else f"第 {bad} 条不一致"),
        "全链校验：" + ("通过" if not problems else "未通过"),
    ]
    lines += [f"✗ {p.problem}" for p in problems]
    files.add("09-审计/审计校验.txt", ("\n".join(lines) + "\n").encode("utf-8"))


def _json_line(obj: dict[str, Any]) -> bytes:
    return (audit.canonical(obj) + "\n").encode("utf-8")


async def _archivable(ctx: Ctx, task_code: str) -> JointTask:
    task = await ctx.session.scalar(
        select(JointTask).where(JointTask.code == task_code.upper()).with_for_update(of=JointTask)
    )
    if task is None:
        raise NotFound(f"找不到任务 {task_code}")
    actor = ctx.actor
    if actor is not None and not (
        actor.has_role("admin")
        or (
            actor.department_id == task.lead_department_id
            and (actor.has_role("liaison") or actor.has_role("leader"))
        )
    ):
        raise PermissionDenied(
            "只有发起部门联络员、分管领导或管理员可以立卷归档",
            action="task.archive.denied",
            subject=f"task:{task.code}",
        )
    if task.state not in ARCHIVABLE:
        raise InvalidTransition(f"任务 {task.code} 的检查结果尚未全部公示，不能立卷归档")
    open_objections = await ctx.session.scalar(
        select(Objection.id)
        .join(Case, Case.id == Objection.case_id)
        .where(Case.task_id == task.id, Objection.state.in_(OPEN_OBJECTIONS))
        .limit(1)
    )
    if open_objections is not None:
        raise InvalidTransition(f"任务 {task.code} 尚有未办结的异议，办结后再立卷归档")
    last = await ctx.session.scalar(
        select(func.max(CaseResult.published_at))
        .join(Case, Case.id == CaseResult.case_id)
        .where(Case.task_id == task.id)
    )
    if last is not None and task.state == TaskState.PUBLISHED:
        # 004 第二十条: objections may come within 60 days of publication
        open_until = last.astimezone(CHINA_TZ).date() + dt.timedelta(
            days=ctx.rules.objection_calendar_days
        )
        if ctx.clock.today() <= open_until:
            raise InvalidTransition(
                f"任务 {task.code} 的异议期（公示后 {ctx.rules.objection_calendar_days} "
                f"日）至 {open_until.isoformat()} 届满，届满后再立卷归档"
            )
    return task


async def archive_task(
    ctx: Ctx, task_code: str, store: FileStore | None = None
) -> tuple[bytes, JointTask]:
    """The archive (ZIP bytes) with the attachments held by `store`; the task is `closed` once
    the caller commits."""
    task = await _archivable(ctx, task_code)
    files = _Files()
    cases = list(
        await ctx.session.scalars(select(Case).where(Case.task_id == task.id).order_by(Case.code))
    )
    await _plan(ctx.session, task, files)
    invitation_ids = await _invitations(ctx.session, task, files)
    await _draws(ctx, task, files)
    await _documents(ctx, cases, files)
    await _results(ctx.session, cases, files)
    await _attachments(ctx.session, cases, store, files)
    objection_ids = await _objections(ctx.session, cases, files)
    await _audit(ctx.session, task, invitation_ids, objection_ids, files)
    manifest = files.manifest(task, ctx.clock.now())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("00-归档清单.txt", manifest)
        for name, content in sorted(files.files.items()):
            zf.writestr(name, content)
    again = task.state == TaskState.CLOSED  # a further copy of an archived task
    if not again:
        TASK.move(task, TaskState.CLOSED, what="立卷归档", subject=task.code)
    await record(
        ctx,
        "task.archived_again" if again else "task.closed",
        f"task:{task.code}",
        {"manifest_sha256": hashlib.sha256(manifest).hexdigest(), "files": len(files.files) + 1},
    )
    return out.getvalue(), task
