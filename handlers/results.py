"""提交 案件号 结果 [检查日期] — quick results that need no problem details.

Results with problems found (A, E …) cannot be entered in chat; core.results says where they go
instead (the result form); 8 takes its follow-up typed after it. 谁检查、谁录入 (000 §九–十): the
words are the result of the officer's own department's items; the case conclusion is merged with
the other departments' parts (core.result_parts.quick_entry), as the form merges it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager

from core import cases, results
from core.errors import ValidationFailed
from core.result_entry import load_entry_state, submit_result
from core.result_parts import departments_with_items, not_entered, quick_entry
from core.workdays import cn_date
from handlers.base import Args, HandlerCtx, UsageError

_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_CN_DATE = re.compile(r"^(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号]?$")
_MONTH_DAY = re.compile(r"^()(\d{1,2})-(\d{1,2})$")  # 12-16: no year, as 12月16日
_DAYS_AGO = {"今天": 0, "昨天": 1, "前天": 2}
# A word meant as a date that is not one we read: nothing but digits with a date separator or
# unit ("3/20", "20日", "2026-13-01"), eight digits, or another relative day. Bare numbers are
# result codes (1, 9, 10 …) and never look like dates; a word with other text around a date
# (企业称已于2026年6月公示…) is not a date by itself but part of the text before it.
_DATE_LIKE = re.compile(
    r"^(?=.*\d)(?=.*[年月日号/.\-])[\d年月日号/.\-]+$|^\d{8}$|^(?:明天|后天|大前天)$"
)
_DATE_FORMS = "3月20日、03-20、2026-03-20、今天、昨天或前天"


def _date_parts(word: str) -> re.Match[str] | None:
    """The word as a date: groups year (empty when not typed), month and day."""
    return _ISO_DATE.match(word) or _CN_DATE.match(word) or _MONTH_DAY.match(word)


async def submit(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    text = args.rest_after(1)
    if code is None or not text:
        raise UsageError
    words = text.split()
    inspected_on = day_word(words[-1], ctx.clock.today())
    if inspected_on is not None:
        if len(words) == 1:
            raise UsageError("请在检查日期前写明检查结果。")
        text = " ".join(words[:-1])
    else:
        _refuse_words_after_a_date(code, words, ctx.clock.today())
    quick = results.parse_quick_result(text)
    # the case locked first, read once: the other departments' parts merged below are the
    # ones the entry stores, and the reply's missing parts are those the entry leaves
    loaded = await load_entry_state(ctx.core, code)
    case, task = loaded.case, loaded.task
    actor = await cases.require_member(  # outsiders first
        ctx.core, case, "case.result.submit", loaded.members
    )
    if quick.methods and inspected_on is None and case.inspected_on is None:
        # Never assume today: it would hide a late entry behind a fresh deadline (rule 7).
        raise ValidationFailed(f"请写明检查日期，例如：提交 {case.code} 未发现问题 3月20日")
    entry = quick_entry(loaded, actor, quick.codes, quick.methods, quick.followups)
    with read_as(words[-1], inspected_on):
        result = await submit_result(
            ctx.core, code, inspected_on=inspected_on, loaded=loaded, **dataclasses.asdict(entry)
        )
    merged = result.codes != quick.codes
    await ctx.say(
        "cmd_submitted.md.j2",
        case=case,
        labels=[results.label(c) for c in quick.codes],
        merged=(await cases.result_labels(ctx.core, task, result, loaded.departments))
        if merged
        else [],
        inspected_on=result.inspected_on,
        missing=not_entered(loaded.parts, departments_with_items(task, loaded.task_items)),
        participants_review=ctx.core.rules.review_requires_participants,
    )


def day_word(
    word: str,
    today: dt.date,
    what: str = "检查日期",
    forms: str = _DATE_FORMS,
    *,
    ahead: bool = False,
) -> dt.date | None:
    """The date a trailing word names (today = the China date), None when the word is part of
    the text before it; a word that looks like a date but is none is refused, saying which
    date (`what`) is asked for and how it may be written (`forms`). A month and day without a
    year is the latest such day not after today — a task window crosses the new year, so
    12月20日 typed in January is last December — or, `ahead`, the first not before today."""
    if word in _DAYS_AGO:
        return today - dt.timedelta(days=_DAYS_AGO[word])
    m = _date_parts(word)
    if m is None:
        if _DATE_LIKE.search(word):
            raise _bad_date(word, what, forms)
        return None
    month, day = int(m.group(2)), int(m.group(3))
    found = (
        _dated(int(m.group(1)), month, day)
        if m.group(1)
        else _nearest(month, day, today, ahead=ahead)
    )
    if found is None:
        raise _bad_date(word, what, forms)
    return found


def _refuse_words_after_a_date(code: str, words: list[str], today: dt.date) -> None:
    """A date before the last word (未发现问题 2027-02-10 多余): the date goes last, and what
    follows it is not understood — rather than the date called an unknown result."""
    for i, word in enumerate(words[:-1]):
        try:
            day = day_word(word, today)
        except ValidationFailed:
            continue  # not a date either: the result's own words, parsed next
        if day is not None:
            raise ValidationFailed(
                f"检查日期“{word}”须写在最后，其后的“{' '.join(words[i + 1 :])}”无法识别。"
                f"例如：提交 {code} {' '.join(words[:i]) or '未发现问题'} {word}"
            )


@contextmanager
def read_as(word: str, day: dt.date | None) -> Iterator[None]:
    """A refused date typed without its year (12月20日, 12-20) says the year it was read in: the
    latest such day not after today, which may be last year's. The other year it suggests is
    the one before (2月29日: the leap year before), never a day to come: an inspection is
    past."""
    try:
        yield
    except ValidationFailed as err:
        m = _date_parts(word)
        if day is None or err.field != "inspected_on" or m is None or m.group(1):
            raise
        earlier = _nearest(day.month, day.day, day - dt.timedelta(days=1), ahead=False)
        other = f"；如指其他年份，请写明年份，如 {cn_date(earlier)}" if earlier else ""
        raise ValidationFailed(
            f"{err.message}（“{word}”未写年份，按 {cn_date(day)} 理解{other}）",
            field=err.field,
        ) from err


def _dated(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _nearest(month: int, day: int, today: dt.date, *, ahead: bool) -> dt.date | None:
    """The nearest month-day on the side of today asked for; 2月29日 recurs within 8 years."""
    step = 1 if ahead else -1
    for k in range(9):
        found = _dated(today.year + step * k, month, day)
        if found is not None and (found >= today if ahead else found <= today):
            return found
    return None


def day_named(
    word: str,
    today: dt.date,
    what: str = "检查日期",
    forms: str = _DATE_FORMS,
    *,
    ahead: bool = False,
) -> dt.date:
    """A word that must be a date (检查, 延期)."""
    day = day_word(word, today, what, forms, ahead=ahead)
    if day is None:
        raise _bad_date(word, what, forms)
    return day


def _bad_date(word: str, what: str, forms: str) -> ValidationFailed:
    return ValidationFailed(f"无法识别的日期“{word}”，{what}可写：{forms}")
