"""检查文书: the signed documents page (list, HTML, DOCX) and the chat command `通知书 案件号`.

The page handler gets the officer named by a valid link and the object the link is bound to
(`task:CODE`: the officer's cases of a task; `case:CODE`: one case); the bot only parses HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import documents, jointtask
from core.changes import Ctx
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.links import MISMATCH, page_ref
from core.models import Case, JointTask
from core.render import render
from core.states import CASE
from handlers.base import Args, HandlerCtx, UsageError
from handlers.pages import PageCtx

# the printable documents' 打印 button (WeCom's and DingTalk's in-app browsers have no print menu)
PRINT_SCRIPT_PATH = "/public/static/print.js"  # a static asset, the same for everyone


@dataclass(frozen=True)
class DocumentRequest:
    obj: str  # what the link is bound to: "task:LJ-2026-001" or "case:LJ-2026-001-0001"
    case: str = ""  # one case of the list
    doc: str = ""  # notice | record
    fmt: str = "html"


async def _cases(ctx: Ctx, obj: str) -> list[Case]:
    kind, _, code = obj.partition(":")
    if kind == "case":
        return [await documents.readable_case(ctx, code)]
    if kind != "task":
        raise PermissionDenied(MISMATCH)
    task = await jointtask.get_task(ctx, code)
    return await documents.task_cases_for(ctx, task, ctx.actor)


async def documents_page(page: PageCtx, req: DocumentRequest) -> documents.Rendered:
    """The list of cases with their documents, or one document (the notice marks 已通知)."""
    ctx = page.core
    cases = await _cases(ctx, req.obj)
    if not req.doc:
        # each case's task, for its window as extended (000 §五.3)
        tasks = {c.task_id: await ctx.session.get(JointTask, c.task_id) for c in cases}
        html = render(
            "web/documents.html",
            cases=cases,
            tasks=tasks,
            token=page.token,
            states=CASE,
            unreplaced=await documents.unreplaced_notes(ctx, cases),
        )
        return documents.Rendered("", html.encode("utf-8"), "text/html; charset=utf-8")
    case = next((c for c in cases if c.code == req.case), None)
    kind = next((k for k in documents.DOC_KINDS if k == req.doc), None)
    fmt = next((f for f in documents.FORMATS if f == req.fmt), None)
    if case is None or kind is None or fmt is None:
        raise NotFound("没有这份检查文书，请回到文书列表重新选择。")
    if kind == "notice":
        if note := (await documents.unreplaced_notes(ctx, [case])).get(case.code):
            raise ValidationFailed(note)  # a notice naming an officer who left is not handed over
        await documents.issue_notice(ctx, case.code, via=f"page:{fmt}")
    context = await documents.case_document_context(ctx, case.code)
    return documents.document_file(
        kind, fmt, {**context, "print_script": PRINT_SCRIPT_PATH}, ctx.clock.now()
    )


async def notice(ctx: HandlerCtx, args: Args) -> None:
    """通知书 案件号: the case's documents link again, in the officer's private chat."""
    code = args.code(0)
    if code is None:
        raise UsageError("请写明案件号。")
    case = await documents.readable_case(ctx.core, code)
    await ctx.say(
        "cmd_documents.md.j2",
        case=case,
        target=case.target,
        link=page_ref("documents", f"case:{case.code}"),
        unreplaced=(await documents.unreplaced_notes(ctx.core, [case])).get(case.code, ""),
    )
