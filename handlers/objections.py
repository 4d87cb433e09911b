"""案件 案件号 (one case), and the objection commands of 004 第二十条:
异议 案件号 内容 [收到日期], 复查 案件号 维持|有误 结论, 更正 案件号 [结果 理由], 答复 案件号.

Who may act and every deadline are decided in core (core.objections, core.cases); these
handlers parse the words and say what happened and what comes next.
"""

from __future__ import annotations

from itertools import takewhile

from core import cases, objections, progress, results
from core.history import history_lines
from core.publication import correct_result, correctable
from core.result_entry import own_referrals
from core.states import CASE, OBJECTION, RESULT, CaseState
from handlers.base import Args, HandlerCtx, UsageError
from handlers.results import day_word

_UPHELD, _ERROR = ("维持", "无误", "维持原结果"), ("有误", "错误", "更正", "发现错误")


async def show(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError
    view = await progress.case_view(ctx.core, code)
    departments = await cases.participating_departments(ctx.core, view.task)
    extra = cases.department_categories(departments)
    await ctx.say(
        "cmd_case.md.j2",
        v=view,
        history=await history_lines(
            ctx.session,
            view.history,
            {m.officer.code: m.officer.name for m in view.members},
            viewer=ctx.officer,
            with_year=True,
        ),
        case_states=CASE.labels,
        result_states=RESULT.labels,
        objection_states=OBJECTION.labels,
        result_label=lambda code: results.label(code, extra),
        # a fresh review link (an old one expires) for those who may review it now
        reviewer=view.case.state == CaseState.SUBMITTED
        and cases.is_staff(ctx.officer, [d.id for d in departments]),
    )


async def file(ctx: HandlerCtx, args: Args) -> None:
    """The target's objection, recorded by the lead department (received today unless dated:
    the date last, or right after the case number)."""
    code, content = args.code(0), args.rest_after(1)
    if code is None or not content:
        raise UsageError("登记异议须写明案件号和异议内容。")
    words, today = content.split(), ctx.clock.today()
    # the receipt date last, or else right after the case number (the content's own dates
    # stand inside it: 企业于5月6日递交…)
    received_on = day_word(words[-1], today, "收到日期")
    if received_on is not None:
        if len(words) == 1:
            raise UsageError("请在收到日期前写明异议内容。")
        content = content.rsplit(maxsplit=1)[0]
    elif len(words) > 1:
        received_on = day_word(words[0], today, "收到日期")
        if received_on is not None:
            content = content.split(maxsplit=1)[1]
    case = await cases.get_case(ctx.core, code)
    objection = await objections.file_objection(
        ctx.core, code, case.target.name, content, received_on
    )
    await ctx.say("cmd_objection_filed.md.j2", case=case, objection=objection)


async def recheck(ctx: HandlerCtx, args: Args) -> None:
    code, verdict, finding = args.code(0), args.code(1), args.rest_after(2)
    if code is None or verdict not in (*_UPHELD, *_ERROR) or not finding:
        raise UsageError("复查须写明案件号、结论（维持 或 有误）和复查情况。")
    objection = await objections.open_objection(ctx.core, code)
    done = await objections.record_recheck(ctx.core, objection.id, finding, verdict in _ERROR)
    await ctx.say("cmd_objection_rechecked.md.j2", code=code, rechecked=done)


async def correct(ctx: HandlerCtx, args: Args) -> None:
    """A quick corrected result (未发现问题 …) of the officer's department's items (004 第三条);
    a result with problems, or no result named, gets the correction form's link (004 第二十条)."""
    code, words = args.code(0), args.rest_after(1).split()
    if code is None:
        raise UsageError("更正须写明案件号、更正后的结果和更正理由。")
    hint = f"请发送“更正 {code}”打开更正表单填写"
    codes, _ = results.parse_result(words[0], hint) if words else ([], [])
    if not codes or results.needs_form(codes):
        case, _task, _objection = await correctable(ctx.core, code)
        await ctx.say("cmd_correction_form.md.j2", case=case)
        return
    if len(words) < 2:
        raise UsageError("更正须写明案件号、更正后的结果和更正理由。")
    # the result, and the follow-ups named after it (8 needs one), then the reason
    said = 1 + len(list(takewhile(results.FOLLOWUPS.__contains__, words[1:])))
    quick = results.parse_quick_result(" ".join(words[:said]), followup_typed=False)
    result = await correct_result(
        ctx.core,
        code,
        reason=" ".join(words[said:]),
        codes=quick.codes,
        methods=None,  # the department's own as published: 更正 corrects the conclusion
        followups=quick.followups or None,  # none typed: as published (8 keeps its own)
    )
    # a problem the re-check found wrong: the referral resting on it stays on record
    kept = (
        await own_referrals(ctx.session, result.case_id, ctx.officer.department_id)
        if results.NO_FOLLOWUP in quick.followups
        else []
    )
    await ctx.say(
        "cmd_corrected.md.j2",
        code=code,
        result=result,
        kept=kept,
        labels=[results.label(c) for c in result.codes],
        situation=results.situation_named(result.codes),
    )


async def reply(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError
    objection = await objections.open_objection(ctx.core, code)
    note = args.rest_after(1)
    objection = await objections.reply_objection(ctx.core, objection.id, note)
    await ctx.say("cmd_objection_replied.md.j2", code=code, objection=objection, note=note)
