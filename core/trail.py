"""A task's or a case's audit trail as the office looks it up (全程留痕、责任可溯, 004 第四条):
the events of the task, its invitations, draws, cases and objections, in the order they were
recorded. The archive's audit excerpt (立卷归档) is the same selection."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import AuditEvent, Case, Invitation, JointTask, Objection


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
