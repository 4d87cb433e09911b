"""Who may act, shared by every stage of a joint task: the department's liaisons and leaders
(or an admin, or the system itself), the lead department, and the audit of a refusal.

Refusals raise PermissionDenied carrying the action and subject. Chat and web pages run a
service inside `denials_on_record`, which rolls the refused work back and keeps the denial itself
on record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext

from core.changes import Ctx, record
from core.errors import PermissionDenied
from core.models import JointTask


def may_act_for(
    ctx: Ctx,
    department_id: int,
    *,
    roles: Sequence[str] = ("liaison", "leader"),
    admin: bool = True,
) -> bool:
    actor = ctx.actor
    if actor is None:  # the system: scheduler, CLI
        return True
    if admin and actor.has_role("admin"):
        return True
    return actor.department_id == department_id and any(actor.has_role(r) for r in roles)


def require(allowed: bool, action: str, subject: str, why: str) -> None:
    if not allowed:
        raise PermissionDenied(why, action=action, subject=subject)


async def record_denied(ctx: Ctx, action: str, subject: str, why: str) -> None:
    """Audit a refused attempt, outside the refused (rolled back) work."""
    await record(ctx, "denied", subject, {"action": action, "why": why})


@asynccontextmanager
async def denials_on_record(
    ctx: Ctx,
    *,
    action: str = "",
    subject: str = "",
    savepoint: bool = True,
    whole: bool = False,
) -> AsyncIterator[None]:
    """Run the block in a SAVEPOINT: a DomainError rolls the block's writes back and propagates;
    a PermissionDenied is first audited in the enclosing transaction, so the refusal stays on
    record once the caller commits. `action` and `subject` stand in when the refusal names none;
    a refusal without any action (a bad link) is not audited. A block that only reads has no
    writes to roll back: `savepoint=False` spares the two statements. `whole`: the block is
    all its transaction has written (a page's handler): instead of a savepoint, an error rolls
    the whole transaction back (`undo`), which costs nothing on the way that succeeds."""
    try:
        async with ctx.session.begin_nested() if savepoint and not whole else nullcontext():
            yield
    except Exception as err:
        if whole:
            await undo(ctx)
        if isinstance(err, PermissionDenied) and (err.action or action):
            await record_denied(ctx, err.action or action, err.subject or subject, err.message)
        raise


async def undo(ctx: Ctx) -> None:
    """Roll the whole transaction back and load the acting officer again (a rollback expires
    every loaded row, and async code cannot reload one lazily), for a caller whose
    transaction held nothing else to keep: what it reads next starts afresh."""
    await ctx.session.rollback()
    if ctx.actor is not None:
        await ctx.session.refresh(ctx.actor)


def lead_only(ctx: Ctx, task: JointTask, action: str, *, admin: bool = True) -> None:
    who = "联络员、分管领导或管理员" if admin else "联络员、分管领导"
    require(
        may_act_for(ctx, task.lead_department_id, admin=admin),
        action,
        f"task:{task.code}",
        f"只有牵头部门（{task.lead_department.name}）的{who}可以执行此操作",
    )
