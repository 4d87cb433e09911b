"""Configurable rules (docs/domain.md): defaults are the stricter reading of the regulations."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import ValidationFailed


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped rule is refused, not ignored

    decline_reason_min_chars: int = Field(10, ge=1)  # 书面函告理由 (seed 000 §七)
    invitation_reply_workdays: int = Field(5, ge=1)
    result_entry_workdays: int = Field(20, ge=1)  # 000 §十, 001 第十六条, 004 第十九条
    objection_calendar_days: int = Field(60, ge=1)  # 004 第二十条
    recheck_workdays: int = Field(20, ge=1)
    correction_workdays: int = Field(5, ge=1)
    reply_workdays: int = Field(15, ge=1)
    review_workdays: int = Field(5, ge=1)  # not in the seeds: our turnaround for 审核, nudged
    # not in the seeds: the window to re-enter a part a reviewer returned (004 第十九条), from the
    # return, or the result deadline if later; nudged, never counted as late (core.timeliness)
    reentry_workdays: int = Field(5, ge=1)
    # 移送 must be signed for (签收) by the receiving department: 001 第十七条 says 及时 and 004
    # 第二十一条 防止监管脱节, without a number; ours, nudged and escalated like any deadline
    referral_ack_workdays: int = Field(3, ge=1)
    nudge_before_workdays: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [3, 1, 0]
    )
    # 004 第十九条 (审核通过后…自动公示), 002 二(六) (公示 within 20 working days of the result):
    # True publishes a result the moment its review closes; False waits for the lead's 公示,
    # nudged as an obligation due publication_workdays after the approval.
    auto_publish: bool = True
    publication_workdays: int = Field(20, ge=1)
    review_requires_participants: bool = True  # 004 第十九条: lead AND participants approve
    min_group_size: int = Field(2, ge=2)  # 004 第十六条(二)
    # 000 §五.1, 004 第八条: a target inspected this year is not drawn again; "except_key_items"
    # lets a task whose 工作方案 asks for it (every item a key item, or complaint-driven) re-check
    # the departments' own targets (001 第十四条). The imported higher-level list counts anyway.
    same_year_exclusion: Literal["always", "except_key_items"] = "always"
    # cap for general items (docs/domain.md rule 4), decimal text
    general_item_ratio_cap: str = "0.10"
    # 快抽 always has two parties (002 二(五)): a colleague's number (确认快抽) or a dated public
    # beacon; True allows only the public beacon
    quick_draw_requires_beacon: bool = False
    conversation_hours: int = Field(72, ge=1)  # how long the bot waits for e.g. a reason
    # China time on the beacon's date from which its value counts as published: 福彩3D is drawn
    # around 21:15, so 确认抽取 is refused before 21:30 that day (docs/architecture.md §3: nobody
    # may know the beacon at freeze, and the lead may not enter one before it exists).
    beacon_ready_time: dt.time = dt.time(21, 30)
    recusal_reason_min_chars: int = Field(4, ge=1)  # 回避 must name the interest, not just "回避"
    # 一公开: published results name the inspection group (names and 执法证号) only where the
    # local rules publish them; off by default, so no officer data is public unless decided
    publish_inspectors: bool = False


REASON_MAX_CHARS = 2000  # a written reason's length limit (the answer page's field too)


def written_reason_problem(
    reason: str | None,
    what: str,
    advice: str,
    *,
    min_chars: int,
    missing: str,
    max_chars: int = REASON_MAX_CHARS,
) -> str:
    """Why `reason` (stripped) is no written reason (书面理由, seed 000 §七), "" if it is one:
    `missing` when blank, else at least `min_chars` written characters (a decline's or a
    withdrawal's Rules.decline_reason_min_chars, a recusal's recusal_reason_min_chars, 1 where
    any words do), at most `max_chars` characters (a column shorter than REASON_MAX_CHARS
    holds fewer), and not one character repeated ("aaaaaaaaaaaa", "哈哈哈哈"; case and width
    aside) — only that: a Latin abbreviation in Chinese words is a reason (GMP认证). The one
    check of every reason a user writes: `what` names it (拒绝理由), `advice` follows a reason
    too short or repeated."""
    reason = (reason or "").strip()
    if not reason:
        return missing
    if (written := written_length(reason)) < min_chars:
        return f"{what}至少需要 {min_chars} 个字（标点、空格不计），现有 {written} 个字，{advice}"
    if len(reason) > max_chars:
        return (
            f"{what}不能超过 {max_chars} 个字，现有 {len(reason)} 个字，"
            f"请删减到 {max_chars} 个字以内"
        )
    if written > 1 and len(set(_written(reason))) == 1:
        return f"{what}不能只是同一个字的重复，{advice}"
    return ""


def written_reason(
    reason: str | None,
    what: str,
    advice: str,
    *,
    min_chars: int,
    missing: str,
    field: str = "",
    max_chars: int = REASON_MAX_CHARS,
) -> str:
    """`reason` stripped when written_reason_problem finds none, else ValidationFailed with
    its message (on form field `field`): for a caller with nothing to ask before refusing."""
    if problem := written_reason_problem(
        reason, what, advice, min_chars=min_chars, missing=missing, max_chars=max_chars
    ):
        raise ValidationFailed(problem, field=field)
    return (reason or "").strip()


def written_length(text: str) -> int:
    """What counts toward a written reason's minimum length (书面理由): letters, CJK characters
    and digits; punctuation, spaces and symbols do not, so "。。。。。。。。。。" is no reason."""
    return sum(1 for ch in text if ch.isalnum())


def _written(text: str) -> list[str]:
    """The written characters, case and width aside ("Ａ" and "a" alike): what a reason of
    one character repeated is made of."""
    return [ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum()]
