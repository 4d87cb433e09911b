"""Stage 9, closing (立卷归档): whether a task may be archived (all results published, objections
settled, the objection period over; lead department or admin), the ZIP with its manifest, and the
task moved to `closed` (a closed task may be archived again, as a further copy)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

from sqlalchemy import func, select

from core.archive import audit_excerpt, contents
from core.attachments import FileStore
from core.cases import PUBLIC
from core.changes import Ctx, record
from core.clock import CHINA_TZ
from core.errors import InvalidTransition, PermissionDenied
from core.jointtask import no_task
from core.models import Case, CaseResult, JointTask, Objection
from core.objections import objection_last_day
from core.states import CASE, OBJECTION, TASK, ObjectionState, TaskState
from core.workdays import cn_date

ARCHIVABLE = (TaskState.PUBLISHED, TaskState.CLOSED)  # closed: a copy may be made again
# 004 第二十条: an objection ends with the written answer (答复), after its re-check and any
# correction; one re-checked but not answered is still open
OPEN_OBJECTIONS = tuple(s for s in ObjectionState if s != ObjectionState.REPLIED)


async def _archivable(ctx: Ctx, task_code: str) -> JointTask:
    task = await ctx.session.scalar(
        select(JointTask).where(JointTask.code == task_code.upper()).with_for_update(of=JointTask)
    )
    if task is None:
        raise no_task(task_code)
    actor = ctx.actor
    if actor is not None and not (
        actor.has_role("admin")
        or (
            actor.department_id == task.lead_department_id
            and (actor.has_role("liaison") or actor.has_role("leader"))
        )
    ):
        raise PermissionDenied(
            "只有牵头部门联络员、分管领导或管理员可以立卷归档",
            action="task.archive.denied",
            subject=f"task:{task.code}",
        )
    if task.state not in ARCHIVABLE:
        raise InvalidTransition(await _not_yet_published(ctx, task))
    open_objections = (
        await ctx.session.execute(
            select(Objection, Case.code)
            .join(Case, Case.id == Objection.case_id)
            .where(Case.task_id == task.id, Objection.state.in_(OPEN_OBJECTIONS))
            .order_by(Case.code, Objection.id)
        )
    ).all()
    if open_objections:
        shown = "；".join(_step_due(o, code) for o, code in open_objections)
        raise InvalidTransition(f"任务 {task.code} 尚有未办结的异议：{shown}。办结后再立卷归档")
    last = await ctx.session.scalar(
        select(func.max(CaseResult.published_at))
        .join(Case, Case.id == CaseResult.case_id)
        .where(Case.task_id == task.id)
    )
    if last is not None and task.state == TaskState.PUBLISHED:
        # 004 第二十条: objections may come within 60 days of publication
        open_until = objection_last_day(
            last.astimezone(CHINA_TZ).date(), ctx.rules, await ctx.work_calendar()
        )
        if ctx.clock.today() <= open_until.day:
            raise InvalidTransition(
                f"任务 {task.code} 的异议期（公示后 {ctx.rules.objection_calendar_days} "
                f"日）至 {open_until.label()} 届满，届满后再立卷归档"
            )
    return task


def _step_due(objection: Objection, case_code: str) -> str:
    """An open objection's case, state, the step due by when, and the chat command doing it
    (004 第二十条)."""
    due: dt.date | None
    if objection.state == ObjectionState.RECEIVED:
        step, due, command = "复查", objection.recheck_due_on, "维持|有误 复查情况"
    elif objection.state == ObjectionState.ERROR_FOUND:
        step, due, command = "更正", objection.correction_due_on, "结果 理由"
    else:  # UPHELD or CORRECTED: the objector is still to be answered
        step, due, command = "答复", objection.reply_due_on, "答复方式"
    by = f"，{step}期限 {cn_date(due)}" if due else ""
    return (
        f"{case_code}（{OBJECTION.label(objection.state)}{by}，"
        f"聊天中发送：{step} {case_code} {command}）"
    )


def _entry(name: str, at: dt.datetime) -> zipfile.ZipInfo:
    """A ZIP entry dated by the service clock in China time, as the manifest is (writestr
    would stamp the host's real time, which differs on a demo clock)."""
    info = zipfile.ZipInfo(name, date_time=at.astimezone(CHINA_TZ).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16  # rw for the owner, as writestr gives a name
    return info


SHOWN_CASES = 20  # beyond these the refusal gives the count


async def _not_yet_published(ctx: Ctx, task: JointTask) -> str:
    """Why the task cannot be archived yet: the cases whose results are not public, each with
    its state, so the lead knows whom to chase; or the task's stage before it has cases."""
    cases = list(
        await ctx.session.scalars(
            select(Case)
            .where(Case.task_id == task.id, Case.state.not_in(PUBLIC))
            .order_by(Case.code)
        )
    )
    if not cases:
        return (
            f"任务 {task.code} 还在“{TASK.label(task.state)}”阶段，尚无公示的检查结果，"
            "不能立卷归档：检查结果全部公示、异议期届满后再立卷归档"
        )
    shown = "；".join(
        f"{c.code} {c.target.name}（{CASE.label(c.state)}）" for c in cases[:SHOWN_CASES]
    )
    more = f"等 {len(cases)} 户" if len(cases) > SHOWN_CASES else ""
    return (
        f"任务 {task.code} 的检查结果尚未全部公示，不能立卷归档。未公示：{shown}{more}。"
        "各户结果录入、审核并公示后再立卷归档"
    )


async def archive_task(
    ctx: Ctx, task_code: str, store: FileStore | None = None
) -> tuple[bytes, JointTask, bool]:
    """The archive (ZIP bytes) with the attachments held by `store`, the task, and whether it
    was archived before (this is a further copy); the task is `closed` once the caller
    commits."""
    task = await _archivable(ctx, task_code)
    files = contents.Files()
    cases = list(
        await ctx.session.scalars(select(Case).where(Case.task_id == task.id).order_by(Case.code))
    )
    await contents.plan(ctx, task, files)
    await contents.invitations(ctx.session, task, files)
    await contents.draws(ctx, task, files)
    await contents.documents(ctx, task, cases, files)
    await contents.group_changes(ctx.session, cases, files)
    await contents.referrals(ctx.session, cases, files)
    await contents.results(ctx, task, cases, files)
    await contents.attachments(ctx.session, cases, store, files)
    await contents.objections(ctx.session, cases, files)
    await audit_excerpt.audit_files(ctx.session, task, files)
    now = ctx.clock.now()
    manifest = files.manifest(task, now)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in [("00-归档清单.txt", manifest), *sorted(files.files.items())]:
            zf.writestr(_entry(name, now), content)
    again = task.state == TaskState.CLOSED  # a further copy of an archived task
    if not again:
        TASK.move(task, TaskState.CLOSED, what="立卷归档", subject=task.code)
    await record(
        ctx,
        "task.archived_again" if again else "task.closed",
        f"task:{task.code}",
        {"manifest_sha256": hashlib.sha256(manifest).hexdigest(), "files": len(files.files) + 1},
    )
    return out.getvalue(), task, again
