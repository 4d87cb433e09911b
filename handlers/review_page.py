"""The review page (`/h5/review`): the case, each department's part, attachments and history;
the lead's or a participant's liaison or leader approves or returns it with a reason, through
the same `review_result` as the chat's 通过 / 退回."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from core import case_forms
from core.attachments import FileStore
from core.case_forms import CaseSheet
from core.errors import InvalidTransition, ValidationFailed
from core.history import HistoryLine, history_lines
from core.review import pending_reviewers, review_result
from core.states import CASE, CaseState
from handlers.forms import (
    MAX_TEXT,
    RawForm,
    attachment_page,
    file_links,
    refusals_on_record,
)
from handlers.pages import Page, PageCtx, first, page

REVIEW_PATH = "/h5/review"
REVIEW_FILE_PATH = "/h5/review/file"


class ReviewForm(BaseModel):
    decision: Literal["approve", "return"]
    reason: str = ""  # core.review checks it as it checks the chat's (written_reason)
    department: str = Field("", max_length=40)  # a return of one department's part only


async def _history(pc: PageCtx, sheet: CaseSheet) -> list[HistoryLine]:
    return await history_lines(
        pc.core.session,
        sheet.history,
        {m.officer.code: m.officer.name for m in sheet.members},
        viewer=pc.officer,
    )


def _can_review(pc: PageCtx, sheet: CaseSheet) -> bool:
    """Whether to offer the buttons (core decides; this only hides what it would refuse)."""
    return sheet.case.state == CaseState.SUBMITTED and not any(
        r.department_id == pc.officer.department_id for r in sheet.reviews
    )


async def _page(
    pc: PageCtx,
    sheet: CaseSheet,
    *,
    reason: str = "",
    department: str = "",
    error: str = "",
    reason_error: str = "",
    notice: str = "",
    approved: bool = False,
    status: int = 200,
) -> Page:
    names = {d.id: d.name for d in sheet.departments}
    pending = (
        [d.name for d in await pending_reviewers(pc.core, sheet.task, sheet.result.id)]
        if sheet.result is not None and sheet.case.state == CaseState.SUBMITTED
        else []
    )
    if approved:
        notice = _approval_notice(sheet.case.state, pending)
    return page(
        "review.html",
        status,
        sheet=sheet,
        case=sheet.case,
        task=sheet.task,
        states=CASE.labels,
        attachments=file_links(pc, sheet, REVIEW_FILE_PATH),
        department_names=names,
        pending=pending,
        can_review=_can_review(pc, sheet),
        path=REVIEW_PATH,
        token=pc.token,
        csrf=pc.csrf,
        max_text=MAX_TEXT,
        reason=reason,
        department=department,
        # the departments with a part: a return may reopen only one of them (000 §九–十)
        return_choices=[p.department for p in sheet.parts],
        error=error,
        reason_error=reason_error,
        notice=notice,
        officer_label=pc.officer_label,
        history=await _history(pc, sheet),
    )


async def review_page(pc: PageCtx, case_id: int) -> Page:
    async def show() -> Page:
        return await _page(pc, await case_forms.review_sheet(pc.core, case_id))

    return await refusals_on_record(pc, show(), writes=False)


async def submit_review(pc: PageCtx, case_id: int, raw: RawForm) -> Page:
    return await refusals_on_record(pc, _submit(pc, case_id, raw))


async def review_file(pc: PageCtx, case_id: int, attachment_id: int, store: FileStore) -> Page:
    return await attachment_page(
        pc, case_forms.review_sheet(pc.core, case_id), attachment_id, store
    )


async def _submit(pc: PageCtx, case_id: int, raw: RawForm) -> Page:
    sheet = await case_forms.review_sheet(pc.core, case_id)
    reason = first(raw, "reason").strip()
    department = first(raw, "department").strip()
    try:
        form = ReviewForm.model_validate(
            {
                "decision": first(raw, "decision"),
                "reason": reason,
                "department": department,
            }
        )
    except ValidationError:
        return await _page(
            pc,
            sheet,
            reason=reason,
            status=422,
            error="请选择“审核通过”或“退回检查组”后再提交。",
        )
    try:
        async with pc.session.begin_nested():
            await review_result(
                pc.core,
                sheet.case.code,
                form.decision == "approve",
                form.reason,
                form.department,
            )
    except (ValidationFailed, InvalidTransition) as err:
        sheet = await case_forms.review_sheet(pc.core, case_id)
        on_reason = isinstance(err, ValidationFailed) and err.field == "reason"
        return await _page(
            pc,
            sheet,
            reason=reason,
            department=department,
            status=422,
            error="" if on_reason else err.message,
            reason_error=err.message if on_reason else "",
        )
    sheet = await case_forms.review_sheet(pc.core, case_id)
    if form.decision == "approve":
        return await _page(pc, sheet, approved=True)
    notice = (
        "已退回该部门录入的部分，退回理由已通知该部门的检查人员。"
        if form.department
        else "已退回检查组，退回理由已通知检查组成员。"
    )
    return await _page(pc, sheet, notice=notice)


def _approval_notice(state: CaseState, pending: list[str]) -> str:
    """What chat's 通过 says (cmd_reviewed): the page said 已审核通过 while others still had
    to review."""
    if pending:
        return f"本部门已审核通过，尚待{'、'.join(pending)}审核，全部通过后方可公示。"
    if state == CaseState.PUBLISHED:
        return "审核通过并已公示。"
    return "审核通过，等待牵头部门公示。"
