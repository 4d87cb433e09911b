"""提交 / 通过 / 退回 / 公示 end to end through Dispatcher.handle on a real DB: relative and
unreadable inspection dates, quick results that need details, the two-department review,
returns, publication and who may do each."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.models import (
    AuditEvent,
    Case,
    CasePart,
    CaseResult,
    Department,
    ItemResult,
    OutboxMessage,
    Review,
)
from core.nudges import enqueue_nudges
from core.result_entry import submit_result
from core.rules import Rules
from handlers.results import day_word
from tests.case_factories import World, build_world, enter_other_parts
from tests.dispatch_support import LONG_REASON, bodies, make_dispatcher, send, text_event, too_long

CASE = "LJ-2026-001-001"
TASK = "LJ-2026-001"
TODAY = dt.date(2026, 3, 5)  # a Thursday inside the task window (3月2日 – 3月31日)


@pytest.fixture
async def w(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    """One case (group A1 leader, A2, B1) of a task led by 市场监管 with 卫健委 accepted."""
    async with sessionmaker() as s:
        world = await build_world(s)
    clock.set(china_noon(TODAY))
    return world


async def case_state(sm: async_sessionmaker[AsyncSession]) -> tuple[str, dt.date | None]:
    async with sm() as s:
        case = await s.scalar(select(Case).where(Case.code == CASE))
        assert case is not None
        return case.state, case.inspected_on


async def count(sm: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def others_entered(sm: async_sessionmaker[AsyncSession], clock: FixedClock, w: World) -> None:
    """卫健委's inspector has entered its part (000 §九–十): A1's 提交 completes the case."""
    async with sm() as s:
        await enter_other_parts(s, CASE, w.a1, clock.now())
        await s.commit()


def to_officer(rows: list[OutboxMessage], officer_id: int) -> str:
    return bodies(
        [
            r
            for r in rows
            if r.destination.get("kind") == "officer"
            and r.destination.get("officer_id") == officer_id
        ]
    )


def to_department(rows: list[OutboxMessage], department_id: int) -> str:
    """Titles and bodies of what a department was told."""
    return "\n".join(
        f"{r.message.get('title', '')}\n{r.message.get('body', '')}"
        for r in rows
        if r.destination.get("kind") == "department"
        and r.destination.get("department_id") == department_id
    )


# ---------------------------------------------------------------- 提交: dates and quick codes


@pytest.mark.parametrize(
    ("word", "day"),
    [
        ("今天", TODAY),
        ("昨天", dt.date(2026, 3, 4)),
        ("前天", dt.date(2026, 3, 3)),
        ("3月4号", dt.date(2026, 3, 4)),
        ("2026/3/3", dt.date(2026, 3, 3)),
    ],
)
async def test_submit_takes_relative_and_common_dates(sessionmaker, clock, w, word, day) -> None:
    d = make_dispatcher(sessionmaker, clock)
    await others_entered(sessionmaker, clock, w)
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 {word}"))
    assert f"检查日期：{day.year}年{day.month}月{day.day}日" in to_officer(rows, w.a1.id)
    # both review it (rules.review_requires_participants, 004 第十九条), as the form says
    assert "已送牵头部门和参与部门审核" in to_officer(rows, w.a1.id)
    assert await case_state(sessionmaker) == ("submitted", day)


async def test_relative_dates_are_china_dates(sessionmaker, clock, w) -> None:
    # 2026-03-04 20:00 UTC is already 3月5日 in China
    clock.set(dt.datetime(2026, 3, 4, 20, 0, tzinfo=dt.UTC))
    await others_entered(sessionmaker, clock, w)
    await send(
        sessionmaker,
        make_dispatcher(sessionmaker, clock),
        text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"),
    )
    assert await case_state(sessionmaker) == ("submitted", TODAY)


@pytest.mark.parametrize("command", [f"检查 {CASE} 3月20日", f"提交 {CASE} 未发现问题 3月20日"])
async def test_a_month_day_typed_after_new_year_is_the_last_one_passed(
    sessionmaker, clock, w, command
) -> None:
    """A window crosses the new year: 3月20日 typed on 2027-01-13 is 2026-03-20, the most
    recent such day, not a day to come (it was refused as 检查日期不能晚于今天)."""
    await others_entered(sessionmaker, clock, w)
    clock.set(china_noon(dt.date(2027, 1, 13)))
    rows = await send(
        sessionmaker, make_dispatcher(sessionmaker, clock), text_event(w.a1.code, command)
    )
    assert "2026年3月20日" in to_officer(rows, w.a1.id)
    assert (await case_state(sessionmaker))[1] == dt.date(2026, 3, 20)


@pytest.mark.parametrize(
    ("word", "today", "hint"),
    [
        ("12月14日", dt.date(2026, 12, 15), "2025年12月14日"),
        ("2月29日", dt.date(2028, 3, 1), "2024年2月29日"),
    ],
)
async def test_a_refused_month_day_suggests_an_earlier_year_never_a_future_one(
    sessionmaker, clock, w, word, today, hint
) -> None:
    """An inspection date is past: 12月14日 typed on 2026-12-15 is read as 2026年12月14日
    and, refused (after the task window), the hint names an earlier year, not 2027."""
    clock.set(china_noon(today))
    reply = bodies(
        await send(
            sessionmaker,
            make_dispatcher(sessionmaker, clock),
            text_event(w.a1.code, f"检查 {CASE} {word}"),
        )
    )
    assert "检查日期晚于任务检查时间" in reply
    assert f"按 {today.year}年{word} 理解" in reply and f"如 {hint}" in reply
    assert f"{today.year + 1}年" not in reply


@pytest.mark.parametrize(
    ("word", "today", "ahead", "day"),
    [
        ("12月20日", dt.date(2027, 1, 13), False, dt.date(2026, 12, 20)),
        ("1月13日", dt.date(2027, 1, 13), False, dt.date(2027, 1, 13)),
        ("1月12号", dt.date(2027, 1, 13), False, dt.date(2027, 1, 12)),
        ("2月29日", dt.date(2029, 1, 13), False, dt.date(2028, 2, 29)),
        ("2025年12月20日", dt.date(2027, 1, 13), False, dt.date(2025, 12, 20)),
        ("1月20日", dt.date(2026, 12, 13), True, dt.date(2027, 1, 20)),
        ("12月20日", dt.date(2026, 12, 13), True, dt.date(2026, 12, 20)),
        ("12-16", dt.date(2027, 1, 13), False, dt.date(2026, 12, 16)),
        ("1-12", dt.date(2027, 1, 13), False, dt.date(2027, 1, 12)),
        ("01-20", dt.date(2026, 12, 13), True, dt.date(2027, 1, 20)),
    ],
)
def test_a_month_day_without_a_year_is_the_nearest_such_day(word, today, ahead, day) -> None:
    """Past days (检查, 提交, 收到日期) take the latest such day not after today; a day to come
    (延期) the first not before today."""
    assert day_word(word, today, ahead=ahead) == day


@pytest.mark.parametrize(
    "word", ["明天", "3/32", "2026-02-30", "2月30日", "20日", "20260399", "3.5.2026", "13-01"]
)
async def test_an_unreadable_date_is_named_as_a_date(sessionmaker, clock, w, word) -> None:
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(
        await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 {word}"))
    )
    assert f"无法识别的日期“{word}”" in reply and "检查结果" not in reply
    assert await case_state(sessionmaker) == ("assigned", None)


async def test_an_unreadable_extension_date_is_not_called_an_inspection_date(
    sessionmaker, clock, w
) -> None:
    """延期 takes the new end of the window: its refusal said 检查日期可写 … 今天、昨天或前天."""
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(
        await send(
            sessionmaker,
            d,
            text_event(w.lead_liaison.code, "延期 LJ-2026-001 2026-13-01 检查对象集中停业整顿中"),
        )
    )
    assert "无法识别的日期“2026-13-01”，延期后的截止日期可写：4月30日" in reply
    assert "检查日期" not in reply and "昨天" not in reply


async def test_a_date_without_a_result_asks_for_the_result(sessionmaker, clock, w) -> None:
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 今天")))
    assert "请在检查日期前写明检查结果" in reply and "用法：提交" in reply
    assert await count(sessionmaker, CaseResult) == 0


@pytest.mark.parametrize("result", ["E", "E 已责令改正", "发现问题已责令改正", "A"])
async def test_results_needing_details_are_not_quick(sessionmaker, clock, w, result) -> None:
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} {result} 今天")))
    assert "请在结果填报表单中填写：发送“我的检查”" in reply
    assert await count(sessionmaker, CaseResult) == 0


async def test_serious_non_cooperation_asks_for_a_follow_up_not_a_problem_004_art18_21(
    sessionmaker, clock, w
) -> None:
    """004 第十八条: 8 is formed from the situation and asks for no problem text; 004 第二十一条:
    it needs a follow-up. Chat asks for that follow-up, as the form does, and takes 8 with one
    typed after it (it used to send 8 to the form for a problem description)."""
    d = make_dispatcher(sessionmaker, clock)
    asked = bodies(
        await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 不配合检查情节严重 今天"))
    )
    assert "“不配合检查情节严重”（8）须有后续处置" in asked and "问题" not in asked
    assert "请写在结果之后，例如：不配合检查情节严重 抄告相关部门" in asked
    assert await count(sessionmaker, CaseResult) == 0
    rows = await send(
        sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 不配合检查情节严重 抄告相关部门 今天")
    )
    assert "检查结果：不配合检查情节严重" in to_officer(rows, w.a1.id)
    async with sessionmaker() as s:
        result = await s.scalar(select(CaseResult))
        assert result is not None
        assert (result.codes, result.methods, result.followups) == (["8"], [], ["抄告相关部门"])


async def test_a_part_contradicting_another_departments_situation_is_refused_004_art18(
    sessionmaker, clock, w
) -> None:
    """The tester's LJ-2026-001-007: 市场监管 entered 注销; 卫健委's 未发现问题 is refused,
    naming 市场监管's entry and what to do, instead of being merged into 注销 and published
    with 卫健委's 实地检查 (004 第十八条: 注销 means no visit was possible)."""
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 注销 今天"))
    rows = await send(sessionmaker, d, text_event(w.b1.code, f"提交 {CASE} 未发现问题 今天"))
    reply = to_officer(rows, w.b1.id)
    assert "县市场监督管理局2026年3月5日录入的结果为“注销”（9）" in reply
    assert "与本次录入的“未发现问题”（1）相互矛盾" in reply
    assert await case_state(sessionmaker) == ("part_entered", TODAY)
    assert await count(sessionmaker, CaseResult) == 1


async def test_a_department_that_referred_the_case_names_the_referral_as_follow_up_001_art17(
    sessionmaker, clock, w
) -> None:
    """001 第十七条: after 市场监管's `移送` to 卫健委, its `提交 … 未发现问题` (无需后续处置)
    is refused, saying which follow-up to type; typed after the result, it is entered."""
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} 卫健委 未取得卫生许可"))
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    assert "后续处置不能选择“无需后续处置”，请选择“移送办案机构”" in to_officer(rows, w.a1.id)
    assert await count(sessionmaker, CaseResult) == 0
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 移送办案机构 今天"))
    async with sessionmaker() as s:
        result = await s.scalar(select(CaseResult))
        assert result is not None and result.followups == ["移送办案机构"]


async def test_nothing_found_with_an_order_to_correct_is_refused_in_chat_004_art20(
    sessionmaker, clock, w
) -> None:
    """未发现问题 found nothing to put right: `提交 … 未发现问题 责令改正并跟踪` is refused, as
    the form refuses it, saying to type 无需后续处置 (a 移送 typed after it stands, above)."""
    d = make_dispatcher(sessionmaker, clock)
    text = f"提交 {CASE} 未发现问题 责令改正并跟踪 今天"
    rows = await send(sessionmaker, d, text_event(w.a1.code, text))
    reply = to_officer(rows, w.a1.id)
    assert "不能选择“责令改正并跟踪”" in reply and "未发现问题 无需后续处置" in reply, reply
    assert await count(sessionmaker, CaseResult) == 0


@pytest.mark.parametrize(
    ("others_in", "to_do"),
    [
        (False, "请重新录入本部门结果，后续处置选择“移送办案机构”（聊天录入的写在检查结果之后）"),
        (True, f"请审核部门退回本部门结果（退回 {CASE} 市场监管 理由）后重新录入，后续处置选择"),
    ],
)
async def test_a_referral_after_the_part_said_no_follow_up_says_to_enter_it_again_001_art17(
    sessionmaker, clock, w, others_in, to_do
) -> None:
    """001 第十七条: 市场监管's part said 无需后续处置, then it refers a clue: the reply says its
    part's follow-up no longer fits and how to change it — enter again while the case is open,
    or have a reviewer return the part once it is under review (004 第十九条)."""
    d = make_dispatcher(sessionmaker, clock)
    if others_in:
        await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} 卫健委 未取得卫生许可"))
    reply = to_officer(rows, w.a1.id)
    assert "已移送" in reply and "本部门已录入的后续处置为“无需后续处置”" in reply
    assert to_do in reply


async def test_my_cases_link_each_case_to_its_result_form(sessionmaker, clock, w) -> None:
    listing = bodies(
        await send(
            sessionmaker, make_dispatcher(sessionmaker, clock), text_event(w.a1.code, "我的检查")
        )
    )
    assert CASE in listing and f"[填报结果](lianjian-page:result/case:{w.case.id})" in listing


# ---------------------------------------------------------------- 通过 / 退回 / 公示


async def test_lead_and_participant_approve_then_the_lead_publishes(sessionmaker, clock, w) -> None:
    """With rules.auto_publish off the lead publishes with 公示 (002 二(六))."""
    d = make_dispatcher(sessionmaker, clock, Rules(auto_publish=False))
    await others_entered(sessionmaker, clock, w)
    submitted = await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    for dep in (w.lead, w.other):  # both reviewers are shown the exact commands
        notice = to_department(submitted, dep.id)
        assert f"通过 {CASE}" in notice and f"退回 {CASE} 理由" in notice

    lead = await send(sessionmaker, d, text_event(w.lead_liaison.code, f"通过 {CASE}"))
    assert f"本部门已审核通过：{CASE}" in to_officer(lead, w.lead_liaison.id)
    assert "尚待县卫生健康委员会审核" in to_officer(lead, w.lead_liaison.id)
    assert "结果待本部门审核" in to_department(lead, w.other.id)  # core tells the participant
    assert (await case_state(sessionmaker))[0] == "submitted"
    again = bodies(await send(sessionmaker, d, text_event(w.lead_leader.code, f"通过 {CASE}")))
    assert "本部门已审核过该版本的结果" in again
    early = bodies(await send(sessionmaker, d, text_event(w.lead_liaison.code, f"公示 {TASK}")))
    assert "没有审核通过、待公示的结果" in early

    other = await send(sessionmaker, d, text_event(w.other_liaison.code, f"tg {CASE.lower()}"))
    mine = to_officer(other, w.other_liaison.id)
    assert f"审核通过：{CASE}" in mine and f"公示 {TASK}" in mine and "尚待" not in mine
    assert "检查结果审核通过" in to_officer(other, w.a1.id)  # the group hears it from core
    assert (await case_state(sessionmaker))[0] == "approved"

    published = await send(sessionmaker, d, text_event(w.lead_leader.code, f"公示 {TASK}"))
    assert f"已公示：{TASK}" in to_officer(published, w.lead_leader.id)
    assert "本次公示 1 户" in to_officer(published, w.lead_leader.id)
    assert CASE in to_department(published, w.other.id)
    assert (await case_state(sessionmaker))[0] == "published"


async def test_the_closing_approval_publishes_by_default_004_art19(sessionmaker, clock, w) -> None:
    """004 第十九条 (审核通过后…自动公示): with the default rules the last reviewer's 通过
    publishes the result; the reviewer is told so, and no 公示 is asked of the lead."""
    d = make_dispatcher(sessionmaker, clock)
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    await send(sessionmaker, d, text_event(w.lead_liaison.code, f"通过 {CASE}"))
    last = await send(sessionmaker, d, text_event(w.other_liaison.code, f"通过 {CASE}"))
    mine = to_officer(last, w.other_liaison.id)
    assert f"审核通过并已公示：{CASE}" in mine and "公示 LJ" not in mine
    assert CASE in to_department(last, w.lead.id) and "结果已公示" in bodies(last)
    assert (await case_state(sessionmaker))[0] == "published"


async def test_participant_may_not_publish_and_is_audited(sessionmaker, clock, w) -> None:
    """With rules.auto_publish off the lead publishes with 公示 (002 二(六))."""
    d = make_dispatcher(sessionmaker, clock, Rules(auto_publish=False))
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    for reviewer in (w.lead_liaison, w.other_liaison):
        await send(sessionmaker, d, text_event(reviewer.code, f"通过 {CASE}"))
    refused = bodies(await send(sessionmaker, d, text_event(w.other_liaison.code, f"gs {TASK}")))
    assert "只有牵头部门的联络员、分管领导可以办理此事项" in refused
    async with sessionmaker() as s:
        denied = await s.scalar(select(AuditEvent).where(AuditEvent.action == "denied"))
    assert denied is not None and denied.actor == w.other_liaison.code
    assert denied.data["action"] == "task.publish.denied"
    assert (await case_state(sessionmaker))[0] == "approved"


async def test_return_needs_a_reason_and_sends_the_result_back(sessionmaker, clock, w) -> None:
    d = make_dispatcher(sessionmaker, clock)
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 昨天"))
    bare = bodies(await send(sessionmaker, d, text_event(w.other_liaison.code, f"退回 {CASE}")))
    assert "退回结果须写明案件号和退回理由" in bare and "用法：退回 案件号 [部门] 理由" in bare
    assert await count(sessionmaker, Review) == 0

    reason = "检查记录表缺少检查人员签名"
    rows = await send(sessionmaker, d, text_event(w.other_liaison.code, f"th {CASE} {reason}"))
    mine = to_officer(rows, w.other_liaison.id)
    assert f"已退回：{CASE}" in mine and f"退回理由：{reason}" in mine
    for member in (w.a1, w.a2, w.b1):
        told = to_officer(rows, member.id)
        assert "检查结果被退回" in told and f"退回理由：{reason}" in told
        assert f"(lianjian-page:result/case:{w.case.id})" in told and "我的检查" in told
    assert (await case_state(sessionmaker))[0] == "returned"

    clock.set(china_noon(dt.date(2026, 3, 6)))
    await others_entered(sessionmaker, clock, w)  # the return reopened every part
    again = bodies(
        await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 前天"))
    )
    assert "结果已提交" in again
    assert await case_state(sessionmaker) == ("submitted", dt.date(2026, 3, 4))


async def test_a_return_reason_over_2000_characters_is_refused_004_art19(
    sessionmaker, clock, w
) -> None:
    """004 第十九条: 退回's reason is a written reason with its limit, with or without a
    department named; a longer one is refused saying what to do and the result stays up."""
    d = make_dispatcher(sessionmaker, clock)
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 昨天"))
    for named in ("", "卫健委 "):
        said = bodies(
            await send(
                sessionmaker,
                d,
                text_event(w.other_liaison.code, f"退回 {CASE} {named}{LONG_REASON}"),
            )
        )
        assert too_long("退回理由") in said
    assert await count(sessionmaker, Review) == 0
    assert (await case_state(sessionmaker))[0] == "submitted"


async def test_each_submission_is_named_by_its_entry_of_the_case_004_art19(
    sessionmaker, clock, w
) -> None:
    """A resubmission after a return is 第 1 版 like the one returned (the edition counts
    corrections only): the reviewers' messages add which entry of the case it is (本案第 M 次
    录入), as `案件` lists the versions, so a reviewer tells the rounds apart (004 第十九条)."""
    d = make_dispatcher(sessionmaker, clock)
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 昨天"))
    reason = "检查记录表缺少检查人员签名"
    returned = bodies(
        await send(sessionmaker, d, text_event(w.other_liaison.code, f"退回 {CASE} {reason}"))
    )
    assert "第 1 版 · 本案第 1 次录入" in returned, returned
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 昨天"))
    approved = bodies(await send(sessionmaker, d, text_event(w.other_liaison.code, f"通过 {CASE}")))
    assert "第 1 版 · 本案第 2 次录入" in approved and "本案第 1 次" not in approved, approved


async def test_the_case_view_gives_reviewers_a_fresh_review_link(sessionmaker, clock, w) -> None:
    """An expired review link sends the reviewer to chat: `案件 案件号` signs a new one for the
    lead's and participants' liaisons and leaders while the result awaits review, not for
    the inspectors."""
    d = make_dispatcher(sessionmaker, clock)
    ref = f"(lianjian-page:review/case:{w.case.id})"
    before = bodies(await send(sessionmaker, d, text_event(w.lead_liaison.code, f"案件 {CASE}")))
    assert ref not in before
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 昨天"))
    for reviewer in (w.lead_liaison, w.other_leader):
        rows = await send(sessionmaker, d, text_event(reviewer.code, f"案件 {CASE}"))
        assert f"[打开审核页面]{ref}" in to_officer(rows, reviewer.id)
    inspector = bodies(await send(sessionmaker, d, text_event(w.a1.code, f"案件 {CASE}")))
    assert CASE in inspector and ref not in inspector


async def test_the_review_notice_names_who_entered_each_part_000_s9_10(
    sessionmaker, clock, w
) -> None:
    """谁检查、谁录入 (000 §九–十): the notice named only the officer whose entry completed the
    case (录入人：张检查) although 王检查 had entered 卫健委's part."""
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.b1.code, f"提交 {CASE} 未发现问题 昨天"))
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 昨天"))
    told = to_officer(rows, w.lead_liaison.id)
    assert "检查结果待审核" in told
    assert "各部门录入人：县市场监督管理局 张检查；县卫生健康委员会 王检查\n检查结果：" in told
    assert "录入人：张检查" not in told


async def test_an_inspector_may_not_review_and_is_audited(sessionmaker, clock, w) -> None:
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    refused = bodies(await send(sessionmaker, d, text_event(w.a2.code, f"通过 {CASE}")))
    assert "只有牵头部门或参与部门的联络员、分管领导可以审核结果" in refused
    async with sessionmaker() as s:
        denied = await s.scalar(select(AuditEvent).where(AuditEvent.action == "denied"))
    assert denied is not None and denied.data["action"] == "case.result.review.denied"
    assert await count(sessionmaker, Review) == 0


async def test_usage_without_a_code(sessionmaker, clock, w) -> None:
    d = make_dispatcher(sessionmaker, clock)
    assert "用法：通过 案件号" in bodies(
        await send(sessionmaker, d, text_event(w.lead_liaison.code, "通过"))
    )
    assert "用法：公示 编号" in bodies(
        await send(sessionmaker, d, text_event(w.lead_liaison.code, "公示"))
    )


async def test_lead_only_review_waits_for_the_lead_after_a_participant(
    sessionmaker, clock, w
) -> None:
    rules = Rules(review_requires_participants=False, auto_publish=False)
    d = make_dispatcher(sessionmaker, clock, rules)
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    other = to_officer(
        await send(sessionmaker, d, text_event(w.other_liaison.code, f"通过 {CASE}")),
        w.other_liaison.id,
    )
    assert "尚待县市场监督管理局审核" in other
    lead = to_officer(
        await send(sessionmaker, d, text_event(w.lead_liaison.code, f"通过 {CASE}")),
        w.lead_liaison.id,
    )
    assert f"审核通过：{CASE}" in lead and "尚待" not in lead
    assert (await case_state(sessionmaker))[0] == "approved"


async def test_after_the_leads_approval_the_participant_is_reminded_not_the_lead_004_art19(
    sessionmaker, clock, w
) -> None:
    """004 第十九条 (经牵头部门和参与部门审核通过): the lead's 通过 in chat ends its review; once
    overdue, the reminder and the leaders' 逾期事项报告 go to 卫健委, whose approval is missing."""
    d = make_dispatcher(sessionmaker, clock)
    await others_entered(sessionmaker, clock, w)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    await send(sessionmaker, d, text_event(w.lead_liaison.code, f"通过 {CASE}"))
    overdue = dt.date(2026, 3, 16)  # review due 3月12日, five working days after 3月5日
    clock.set(china_noon(overdue))
    async with sessionmaker() as s, s.begin():
        await enqueue_nudges(Ctx(session=s, clock=clock), overdue)
    async with sessionmaker() as s:
        rows = list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    nudged = [r for r in rows if (r.idempotency_key or "").startswith("nudge:")]
    reminded = [r for r in nudged if f"审核检查结果 · {CASE}" in r.message.get("body", "")]
    assert reminded and "已逾期" in to_department(reminded, w.other.id)
    assert "逾期事项报告" in to_officer(reminded, w.other_leader.id)
    for lead_side in (to_department(reminded, w.lead.id), to_officer(reminded, w.lead_leader.id)):
        assert lead_side == ""


# ---------------------------------------------------------------- 谁检查、谁录入 (000 §九–十)


async def test_one_departments_part_leaves_the_case_part_entered_000_s9_10(
    sessionmaker, clock, w
) -> None:
    """000 §九–十 (谁检查、谁录入): 市场监管's 提交 enters its part only; the case is 部分录入,
    卫健委's inspector (and only they) is told which part waits for them, review is refused,
    and 卫健委's own 提交 sends the case to review."""
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    reply = to_officer(rows, w.a1.id)
    assert f"本部门结果已录入：{CASE}" in reply and "尚待县卫生健康委员会录入" in reply
    waiting = to_officer(rows, w.b1.id)
    assert "待县卫生健康委员会录入本部门检查结果" in waiting and "公共场所卫生检查" in waiting
    assert f"lianjian-page:result/case:{w.case.id}" in waiting
    assert "录入本部门检查结果" not in to_officer(rows, w.a2.id)
    assert not to_department(rows, w.lead.id) and not to_department(rows, w.other.id)
    assert await case_state(sessionmaker) == ("part_entered", TODAY)

    refused = bodies(await send(sessionmaker, d, text_event(w.lead_liaison.code, f"通过 {CASE}")))
    assert "尚有县卫生健康委员会未录入本部门检查事项的结果（部分录入）" in refused
    refused = bodies(
        await send(sessionmaker, d, text_event(w.other_liaison.code, f"退回 {CASE} 缺签名"))
    )
    assert "部分录入" in refused
    assert await count(sessionmaker, Review) == 0

    rows = await send(sessionmaker, d, text_event(w.b1.code, f"提交 {CASE} 未发现问题 今天"))
    assert f"结果已提交：{CASE}" in to_officer(rows, w.b1.id)
    assert "结果待审核" in to_department(rows, w.lead.id)
    assert await case_state(sessionmaker) == ("submitted", TODAY)
    async with sessionmaker() as s:
        states = list(await s.scalars(select(CaseResult.state).order_by(CaseResult.version)))
    assert states == ["part_entered", "submitted"]


async def test_a_return_naming_a_department_reopens_only_its_part_000_s9_10(
    sessionmaker, clock, w
) -> None:
    """000 §九–十, 004 第十九条: `退回 案件号 部门 理由` tells only 卫健委's inspector and
    reopens only its part; its new entry alone sends the case back to review."""
    d = make_dispatcher(sessionmaker, clock)
    for member in (w.a1, w.b1):
        await send(sessionmaker, d, text_event(member.code, f"提交 {CASE} 未发现问题 今天"))
    assert (await case_state(sessionmaker))[0] == "submitted"
    rows = await send(
        sessionmaker,
        d,
        text_event(w.lead_liaison.code, f"退回 {CASE} 县卫生健康委员会 缺少卫生检测记录"),
    )
    assert "退回理由：缺少卫生检测记录" in to_officer(rows, w.b1.id)
    assert "退回县卫生健康委员会录入的部分" in to_officer(rows, w.b1.id)
    # the notice carries the inspector's own form link (signed per recipient by the sender)
    assert f"(lianjian-page:result/case:{w.case.id})" in to_officer(rows, w.b1.id)
    assert "我的检查" in to_officer(rows, w.b1.id)
    assert not to_officer(rows, w.a1.id) and not to_officer(rows, w.a2.id)
    assert (await case_state(sessionmaker))[0] == "returned"

    rows = await send(sessionmaker, d, text_event(w.b1.code, f"提交 {CASE} 未发现问题 今天"))
    assert (await case_state(sessionmaker))[0] == "submitted"

    unknown = bodies(
        await send(sessionmaker, d, text_event(w.lead_liaison.code, f"退回 {CASE} 公安 缺签名"))
    )  # not a department of the case: the whole text is the reason, every part reopens
    assert f"已退回：{CASE}" in unknown and "退回理由：公安 缺签名" in unknown
    rows = await send(sessionmaker, d, text_event(w.b1.code, f"提交 {CASE} 未发现问题 今天"))
    assert "尚待县市场监督管理局录入" in to_officer(rows, w.b1.id)
    assert (await case_state(sessionmaker))[0] == "part_entered"


async def test_my_cases_say_whose_part_is_in_000_s9_10(sessionmaker, clock, w) -> None:
    """000 §九–十: after 市场监管's 提交, its inspectors' 我的检查 says their part is in and waits
    for the other department; 卫健委's inspector still gets the form to fill in."""
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    mine = bodies(await send(sessionmaker, d, text_event(w.a2.code, "我的检查")))
    assert "部分录入｜本部门已录入，待其他部门录入｜[查看结果]" in mine
    theirs = bodies(await send(sessionmaker, d, text_event(w.b1.code, "我的检查")))
    assert "部分录入｜结果录入期限" in theirs and "[填报结果]" in theirs


async def test_quick_entries_merge_the_case_conclusion_from_every_part_000_s9_10(
    sessionmaker, clock, w
) -> None:
    """000 §九–十 (谁检查、谁录入): 卫健委's `提交 … F` is the result of its own item; 市场监管's
    later `提交 … 未发现问题` adds its own item's result, and the case conclusion is merged from
    both parts (F), not taken from the last department's words alone (it used to read 1)."""
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.b1.code, f"提交 {CASE} F 今天"))
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    reply = to_officer(rows, w.a1.id)
    assert "本部门检查结果：未发现问题" in reply
    assert "案件结论（各部门事项合并）：未发现开展本次抽查涉及的经营活动" in reply
    assert await case_state(sessionmaker) == ("submitted", TODAY)
    async with sessionmaker() as s:
        latest = await s.scalar(select(CaseResult).order_by(CaseResult.version.desc()).limit(1))
        assert latest is not None and latest.codes == ["F"]
        items = dict(
            (
                await s.execute(
                    select(ItemResult.item_id, ItemResult.codes).where(
                        ItemResult.result_id == latest.id
                    )
                )
            ).all()
        )
    assert items == {w.items[0].id: ["1"], w.items[1].id: ["F"]}


async def test_a_quick_entry_keeps_the_follow_up_another_part_needs_000_s9_10(
    sessionmaker, clock, w
) -> None:
    """000 §九–十: after 卫健委 found a problem and ordered a correction (E, through the form's
    service), 市场监管's quick 未发现问题 enters its own item; the case stays E with 卫健委's
    methods, follow-up and remarks instead of 无需后续处置."""
    async with sessionmaker() as s:
        ctx = Ctx(session=s, clock=clock, rules=Rules(), actor=w.b1)
        await submit_result(
            ctx,
            CASE,
            codes=["E"],
            methods=["实地检查", "检验检测"],
            followups=["责令改正并跟踪"],
            inspected_on=TODAY,
            item_results=[{"item_id": w.items[1].id, "codes": ["E"], "problems": "健康证过期"}],
            remarks="已责令三日内整改",
        )
        await s.commit()
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 今天"))
    assert "案件结论（各部门事项合并）：发现问题已责令改正" in to_officer(rows, w.a1.id)
    async with sessionmaker() as s:
        latest = await s.scalar(select(CaseResult).order_by(CaseResult.version.desc()).limit(1))
        assert latest is not None and latest.state == "submitted"
        assert (latest.codes, latest.methods, latest.followups, latest.remarks) == (
            ["E"],
            ["实地检查", "检验检测"],
            ["责令改正并跟踪"],
            "已责令三日内整改",
        )
        problems = await s.scalar(
            select(ItemResult.problems).where(
                ItemResult.result_id == latest.id, ItemResult.item_id == w.items[1].id
            )
        )
    assert problems == "健康证过期"


@pytest.mark.parametrize("said", ["卫健委", "卫健局", "县卫健委"])
async def test_a_return_may_name_the_department_informally_004_art19(
    sessionmaker, clock, w, said
) -> None:
    """004 第十九条 with 000 §九–十: reviewers say 卫健委 for 县卫生健康委员会 (seed 003's member
    list writes 旗卫健委); `退回 案件号 卫健委 理由` reopens only its part and tells only its
    inspector, and the reason leaves the department's name out. It used to be read as a reason
    naming no department, reopening every part."""
    d = make_dispatcher(sessionmaker, clock)
    for member in (w.a1, w.b1):
        await send(sessionmaker, d, text_event(member.code, f"提交 {CASE} 未发现问题 今天"))
    rows = await send(
        sessionmaker, d, text_event(w.lead_liaison.code, f"退回 {CASE} {said} 缺少卫生检测记录")
    )
    assert "退回理由：缺少卫生检测记录" in to_officer(rows, w.b1.id)
    assert "退回县卫生健康委员会录入的部分" in to_officer(rows, w.b1.id)
    # the notice carries the inspector's own form link (signed per recipient by the sender)
    assert f"(lianjian-page:result/case:{w.case.id})" in to_officer(rows, w.b1.id)
    assert "我的检查" in to_officer(rows, w.b1.id)
    assert not to_officer(rows, w.a1.id) and not to_officer(rows, w.a2.id)
    mine = to_officer(rows, w.lead_liaison.id)  # the reviewer is told whose part went back
    assert "县卫生健康委员会录入的部分已退回" in mine and "退回检查组" not in mine
    async with sessionmaker() as s:
        states = dict((await s.execute(select(CasePart.department_id, CasePart.state))).all())
    assert states == {w.lead.id: "entered", w.other.id: "returned"}


async def test_a_return_naming_a_department_still_needs_a_reason_004_art19(
    sessionmaker, clock, w
) -> None:
    """004 第十九条 (退回 with its reason): `退回 案件号 卫健委` names a department and no reason;
    it used to send every part back with “卫健委” as the reason."""
    d = make_dispatcher(sessionmaker, clock)
    for member in (w.a1, w.b1):
        await send(sessionmaker, d, text_event(member.code, f"提交 {CASE} 未发现问题 今天"))
    rows = await send(sessionmaker, d, text_event(w.lead_liaison.code, f"退回 {CASE} 卫健委"))
    assert "请写明退回理由" in to_officer(rows, w.lead_liaison.id)
    assert not to_officer(rows, w.a1.id) and not to_officer(rows, w.b1.id)
    assert await count(sessionmaker, Review) == 0
    assert (await case_state(sessionmaker))[0] == "submitted"


async def returned_beside(
    sm: async_sessionmaker[AsyncSession], clock: FixedClock, w: World, county: Department, said: str
) -> list[OutboxMessage]:
    """`county` added to the county (not to the task), both parts entered, then the lead's
    `退回 案件号 {said}`: what it sent."""
    async with sm() as s, s.begin():
        s.add(county)
    d = make_dispatcher(sm, clock)
    for member in (w.a1, w.b1):
        await send(sm, d, text_event(member.code, f"提交 {CASE} 未发现问题 今天"))
    return await send(sm, d, text_event(w.lead_liaison.code, f"退回 {CASE} {said}"))


async def test_a_return_naming_a_department_outside_the_case_is_refused_000_s9_10(
    sessionmaker, clock, w
) -> None:
    """000 §九–十: 县交通运输局 is a county department with no part in this case; `退回 案件号 交通
    理由` used to send every part back with “交通 …” as the reason."""
    rows = await returned_beside(
        sessionmaker, clock, w, Department(code="JT", name="县交通运输局"), "交通 缺少检测记录"
    )
    refused = to_officer(rows, w.lead_liaison.id)
    assert "交通未参加该案件" in refused
    assert "可退回给：县市场监督管理局、县卫生健康委员会" in refused
    assert not to_officer(rows, w.a1.id) and not to_officer(rows, w.b1.id)
    assert await count(sessionmaker, Review) == 0


async def test_the_next_department_records_its_inspection_on_a_part_entered_case_000_s9_10(
    sessionmaker, clock, w
) -> None:
    """000 §九 (各部门执法检查人员负责本部门检查项目的检查) with 004 第十四条 (一次性完成…所有内容的
    检查): after 市场监管 entered its part, 卫健委's inspector may record with `检查` the day of
    the joint visit — the case's — and the case stays 部分录入. Another day is refused, naming
    the date and 市场监管: it used to move the case's date and the deadline counted from it
    (004 第十九条), hiding a late part. Its 提交 then needs no date."""
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.a1.code, f"提交 {CASE} 未发现问题 3月3日"))
    assert await case_state(sessionmaker) == ("part_entered", dt.date(2026, 3, 3))
    refused = to_officer(
        await send(sessionmaker, d, text_event(w.b1.code, f"检查 {CASE} 昨天")), w.b1.id
    )
    assert "本案检查日期为 2026年3月3日，县市场监督管理局" in refused and "004 第十四条" in refused
    rows = await send(sessionmaker, d, text_event(w.b1.code, f"检查 {CASE} 3月3日"))
    reply = to_officer(rows, w.b1.id)
    assert f"已登记 {CASE} 的检查日期：2026年3月3日" in reply
    assert "2026年3月31日" in reply  # 20 working days after 3月3日 (000 §十)
    assert await case_state(sessionmaker) == ("part_entered", dt.date(2026, 3, 3))
    async with sessionmaker() as s:
        case = await s.scalar(select(Case).where(Case.code == CASE))
        assert case is not None and case.result_due_on == dt.date(2026, 3, 31)
        parts = dict((await s.execute(select(CasePart.department_id, CasePart.state))).all())
    assert parts == {w.lead.id: "entered"}  # the part entered stands

    rows = await send(sessionmaker, d, text_event(w.b1.code, f"提交 {CASE} 未发现问题"))
    assert f"结果已提交：{CASE}" in to_officer(rows, w.b1.id)
    assert await case_state(sessionmaker) == ("submitted", dt.date(2026, 3, 3))


async def test_inspection_is_still_refused_once_the_result_is_under_review(
    sessionmaker, clock, w
) -> None:
    """The date is fixed once every part is in (待审核): `检查` is refused, nothing changes, and
    the refusal says where the date goes instead (a return, then the new entry)."""
    d = make_dispatcher(sessionmaker, clock)
    for member in (w.a1, w.b1):
        await send(sessionmaker, d, text_event(member.code, f"提交 {CASE} 未发现问题 3月3日"))
    refused = bodies(await send(sessionmaker, d, text_event(w.b1.code, f"检查 {CASE} 昨天")))
    assert (
        "不能登记检查日期；检查日期有误的，请审核部门退回后在重新录入结果时写明正确日期" in refused
    )
    assert await case_state(sessionmaker) == ("submitted", dt.date(2026, 3, 3))
    await send(sessionmaker, d, text_event(w.lead_liaison.code, f"退回 {CASE} 检查日期有误"))
    refused = bodies(await send(sessionmaker, d, text_event(w.b1.code, f"检查 {CASE} 昨天")))
    assert "重新录入结果时写明检查日期即可：提交 案件号 结果 检查日期" in refused


@pytest.mark.parametrize("said", ["卫健委", "卫健"])
async def test_a_return_names_the_cases_own_department_before_the_countys_004_art19(
    sessionmaker, clock, w, said
) -> None:
    """004 第十九条 with 000 §九–十: the county also has 县卫生健康局 (outside this task), so
    “卫健委” fits two county departments, but only one of this case's: `退回 案件号 卫健委 理由`
    reopens 县卫生健康委员会's part — the case's own departments are read first, the county's
    only to tell a department outside the case from a word of the reason."""
    county = Department(code="WJJ", name="县卫生健康局")
    rows = await returned_beside(sessionmaker, clock, w, county, f"{said} 缺少卫生检测记录")
    assert "退回县卫生健康委员会录入的部分" in to_officer(rows, w.b1.id), bodies(rows)
    assert "退回理由：缺少卫生检测记录" in to_officer(rows, w.b1.id)
    async with sessionmaker() as s:
        states = dict((await s.execute(select(CasePart.department_id, CasePart.state))).all())
    assert states == {w.lead.id: "entered", w.other.id: "returned"}


@pytest.mark.parametrize("said", ["卫建委", "卫健健委", "卫生监督所"])
async def test_a_misspelt_department_in_a_return_is_refused_000_s9_10(
    sessionmaker, clock, w, said
) -> None:
    """000 §九–十: `退回 案件号 卫建委 不完整` (卫建委 for 卫健委) named no department, so the
    whole text became the reason and every department's part was reopened, every member told.
    A word that looks like a department's name is refused with the name it is one character
    from, and nothing changes."""
    d = make_dispatcher(sessionmaker, clock)
    for member in (w.a1, w.b1):
        await send(sessionmaker, d, text_event(member.code, f"提交 {CASE} 未发现问题 今天"))
    rows = await send(
        sessionmaker, d, text_event(w.lead_liaison.code, f"退回 {CASE} {said} 不完整")
    )
    refused = to_officer(rows, w.lead_liaison.id)
    assert f"“{said}”不是本案录入结果的部门" in refused, refused
    assert "可退回给：县市场监督管理局、县卫生健康委员会" in refused
    if said != "卫生监督所":
        assert "是不是县卫生健康委员会？可退回给" in refused
    assert not to_officer(rows, w.a1.id) and not to_officer(rows, w.b1.id)
    assert await count(sessionmaker, Review) == 0
    assert (await case_state(sessionmaker))[0] == "submitted"


@pytest.mark.parametrize(
    "reason",
    [
        "检查记录表缺少执法人员签名，请补充后报送县市场监管局",
        "现场照片不清晰，请重新拍摄后按程序办",
        "核查意见未写明，请联系执法大队",
    ],
)
async def test_a_return_reason_ending_as_an_organs_name_ends_is_the_reason_000_s9_10(
    sessionmaker, clock, w, reason
) -> None:
    """000 §九–十, 004 第十九条: a return's reason typed without a space is the whole text
    after the case number; one ending in 局, 办 or 队 (报送县市场监管局, 按程序办) is a
    sentence, not a misspelt department, and sends every department's part back with it. It
    was refused as “…”不是本案录入结果的部门."""
    d = make_dispatcher(sessionmaker, clock)
    for member in (w.a1, w.b1):
        await send(sessionmaker, d, text_event(member.code, f"提交 {CASE} 未发现问题 今天"))
    rows = await send(sessionmaker, d, text_event(w.lead_liaison.code, f"退回 {CASE} {reason}"))
    assert "不是本案录入结果的部门" not in to_officer(rows, w.lead_liaison.id)
    async with sessionmaker() as s:
        assert list(await s.scalars(select(Review.reason))) == [reason]
        states = set(await s.scalars(select(CasePart.state)))
    assert states == {"returned"}
