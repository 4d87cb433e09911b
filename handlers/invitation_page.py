"""The signed-link invitation page: a liaison or leader accepts (ticking the department's items)
or declines (with a written reason). DingTalk card buttons open it; it works on any platform."""

from __future__ import annotations

from dataclasses import dataclass, field

from core import access
from core.clock import CHINA_TZ
from core.consultation import answers
from core.consultation.answers import InvitationView
from core.errors import DomainError, PermissionDenied, ValidationFailed
from handlers.pages import Page, PageCtx, denied, page


@dataclass
class AnswerForm:
    """What the officer posted, echoed back on an error so nothing typed is lost."""

    action: str = ""
    item_ids: set[int] = field(default_factory=set)
    reason: str = ""


async def show(ctx: PageCtx, invitation_id: int) -> Page:
    """The invitation for one who may answer it (or the admin); anyone else holding a link is
    refused, and the refusal audited."""
    try:
        async with access.denials_on_record(ctx.core):
            view = await answers.invitation_view(ctx.core, invitation_id)
    except PermissionDenied as err:
        return denied(err)
    return _render(ctx, view)


async def submit(ctx: PageCtx, invitation_id: int, form: AnswerForm) -> Page:
    """Apply the answer; a refusal is undone, audited when it is a denial, and shown with the
    officer's input kept."""
    try:
        async with access.denials_on_record(ctx.core):
            notice = await _answer(ctx, invitation_id, form)
    except PermissionDenied as err:  # audited; the page would show what they may not see
        return denied(err)
    except DomainError as err:
        view = await answers.invitation_view(ctx.core, invitation_id)
        return _render(ctx, view, form=form, error=err.message, status=422)
    view = await answers.invitation_view(ctx.core, invitation_id)
    return _render(ctx, view, form=form, notice=notice)


async def _answer(ctx: PageCtx, invitation_id: int, form: AnswerForm) -> str:
    if form.action == "accept":
        if not form.item_ids:
            raise ValidationFailed("请至少勾选一项本部门的抽查事项；如不参加，请填写理由后拒绝。")
        await answers.accept_invitation(ctx.core, invitation_id, sorted(form.item_ids))
        return "已记录：本部门接受该联合抽查任务，将通知牵头部门。"
    if form.action == "decline":
        await answers.decline_invitation(ctx.core, invitation_id, form.reason)
        return "已记录：本部门拒绝该任务，书面理由将转告牵头部门。"
    raise ValidationFailed("请选择接受或拒绝。")


def _render(
    ctx: PageCtx,
    view: InvitationView,
    *,
    form: AnswerForm | None = None,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Page:
    form = form or AnswerForm(item_ids=view.default_item_ids())
    responded_at = view.invitation.responded_at
    return page(
        "invitation.html",
        status,
        invitation=view.invitation,
        task=view.task,
        task_items=view.task_items,
        own_items=view.own_items,
        planned=view.planned,
        responder=view.responder,
        responded_on=responded_at.astimezone(CHINA_TZ).date() if responded_at else None,
        token=ctx.token,
        csrf=ctx.csrf,
        officer_label=ctx.officer_label,
        min_reason=ctx.rules.decline_reason_min_chars,
        form_items=form.item_ids,
        form_reason=form.reason,
        error=error,
        notice=notice,
    )
