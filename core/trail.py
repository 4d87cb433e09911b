"""A task's or a case's audit trail as the office looks it up (全程留痕、责任可溯, 004 第四条):
the events of the task, its invitations, draws, cases and objections, in the order they were
recorded, and in words (`trail_text`, `lianjian audit show`). The archive's audit excerpt
(立卷归档) is the same selection, filed raw and in words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.history import history_lines
from core.models import AuditEvent, Case, Department, Invitation, JointTask, Objection

_SUBJECT_KINDS = {"task": "任务", "case": "案件", "draw": "抽取"}


async def task_trail(session: AsyncSession, task: JointTask) -> list[AuditEvent]:
    """Every event of the task: its own, its invitations', its draws', its cases' and the
    objections to them."""
    invitations = select(Invitation.id).where(Invitation.task_id == task.id)
    objections = (
        select(Objection.id).join(Case, Case.id == Objection.case_id).where(Case.task_id == task.id)
    )
    subjects = [
        f"task:{task.code}",
        *(f"invitation:{i}" for i in await session.scalars(invitations)),
        *(f"objection:{i}" for i in await session.scalars(objections)),
    ]
    return await _events(
        session,
        or_(
            AuditEvent.subject.in_(subjects),
            AuditEvent.subject.startswith(f"case:{task.code}-", autoescape=True),
            AuditEvent.subject.startswith(f"draw:{task.code}-", autoescape=True),
        ),
    )


async def case_trail(session: AsyncSession, case: Case) -> list[AuditEvent]:
    """Every event of the case and of the objections to it."""
    objections = select(Objection.id).where(Objection.case_id == case.id)
    subjects = [f"case:{case.code}", *(f"objection:{i}" for i in await session.scalars(objections))]
    return await _events(session, AuditEvent.subject.in_(subjects))


async def _events(session: AsyncSession, where: ColumnElement[bool]) -> list[AuditEvent]:
    return list(await session.scalars(select(AuditEvent).where(where).order_by(AuditEvent.id)))


async def trail_text(session: AsyncSession, title: str, events: Sequence[AuditEvent]) -> str:
    """The events in words, one a line, under `title` (任务 LJ-2026-001): when, who, what and on
    what, and why."""
    lines = await history_lines(session, events, viewer=None, with_year=True)
    subjects = await subject_words(session, {e.subject for e in events})
    out = [f"{title} 的审计记录共 {len(events)} 条（按记录先后；序号即审计日志中的编号）："]
    for e, line in zip(events, lines, strict=True):
        why = f"；理由：{line.reason}" if line.reason else ""
        out.append(f"{e.id:>6}  {line.at}  {line.who}  {line.what}（{subjects[e.subject]}）{why}")
    return "\n".join(out) + "\n"


async def subject_words(session: AsyncSession, subjects: Iterable[str]) -> dict[str, str]:
    """Each audit subject in words: 任务 / 案件 / 抽取 and its code, 县公安局的邀请 for an
    invitation, 案件 … 的第 1 条异议 for an objection (counted within its case)."""
    subjects = set(subjects)
    invitations = dict(
        (
            await session.execute(
                select(Invitation.id, Department.name)
                .join(Department, Department.id == Invitation.department_id)
                .where(Invitation.id.in_(_ids(subjects, "invitation")))
            )
        ).all()
    )
    of_cases = select(Objection.case_id).where(Objection.id.in_(_ids(subjects, "objection")))
    rows = await session.execute(
        select(Objection.id, Case.code)
        .join(Case, Case.id == Objection.case_id)
        .where(Objection.case_id.in_(of_cases))
        .order_by(Objection.id)
    )
    objections: dict[int, str] = {}
    counted: dict[str, int] = {}
    for objection_id, code in rows.all():
        counted[code] = counted.get(code, 0) + 1
        objections[objection_id] = f"案件 {code} 的第 {counted[code]} 条异议"

    def words(subject: str) -> str:
        kind, _, ref = subject.partition(":")
        if kind == "invitation" and ref.isdigit() and int(ref) in invitations:
            return f"{invitations[int(ref)]}的邀请"
        if kind == "objection" and ref.isdigit() and int(ref) in objections:
            return objections[int(ref)]
        return f"{_SUBJECT_KINDS[kind]} {ref}" if kind in _SUBJECT_KINDS else subject

    return {s: words(s) for s in subjects}


def _ids(subjects: Iterable[str], kind: str) -> list[int]:
    return [int(ref) for s in subjects if (ref := s.removeprefix(f"{kind}:")).isdigit()]
