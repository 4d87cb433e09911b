"""提交 案件号 结果 [检查日期] — quick results that need no problem details; the rest go to the form."""

from __future__ import annotations

import datetime as dt
import re

from core import cases, results
from core.errors import ValidationFailed
from handlers.base import Args, HandlerCtx, UsageError

_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_CN_DATE = re.compile(r"^(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日?$")


async def submit(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    text = args.rest_after(1)
    if code is None or not text:
        raise UsageError
    words = text.split()
    inspected_on = _date(words[-1], ctx.clock.today()) if len(words) > 1 else None
    if inspected_on is not None:
        text = " ".join(words[:-1])
    codes = results.parse_quick_result(text)
    methods, followups = results.quick_defaults(codes)
    case = await cases.get_case(ctx.session, code)
    await cases.require_member(ctx.core, case, "case.result.submit")  # refuse outsiders first
    if methods and inspected_on is None and case.inspected_on is None:
        # Never assume today: it would hide a late entry behind a fresh deadline (rule 7).
        raise ValidationFailed(f"请写明检查日期，例如：提交 {case.code} 未发现问题 3月20日")
    result = await cases.submit_result(ctx.core, code, codes=codes, methods=methods,
                                       followups=followups, inspected_on=inspected_on)
    await ctx.say("cmd_submitted.md.j2", case=case, labels=[results.label(c) for c in result.codes],
                  inspected_on=result.inspected_on)


def _date(word: str, today: dt.date) -> dt.date | None:
    """A trailing 2026-03-05 / 3月5日 is the inspection date; other words are part of the result."""
    m = _ISO_DATE.match(word) or _CN_DATE.match(word)
    if m is None:
        return None
    year = int(m.group(1)) if m.group(1) else today.year
    try:
        return dt.date(year, int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValidationFailed(f"检查日期“{word}”不是有效日期") from None
