"""案件 / 异议 / 复查 / 更正 / 答复 end to end through Dispatcher.handle on a real DB
(004 第二十条: objection within 60 days of publication, re-check in 20, correction in 5 and
reply in 15 working days), plus 任务 given a case number and 申报回避 as 利害关系."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.models import Case, CaseResult, Department, Objection, Officer
from core.result_entry import submit_result
from core.rules import Rules
from tests.case_factories import World, build_world, enter_other_parts
from tests.dispatch_support import audit_rows, bodies, make_dispatcher, send, text_event

CASE = "LJ-2026-001-001"
TASK = "LJ-2026-001"


@pytest.fixture
async def w(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    async with sessionmaker() as s:
        world = await build_world(s)
    clock.set(china_noon(dt.date(2026, 3, 5)))
    return world


async def say(sm, clock, officer, text: str) -> str:
    return bodies(await send(sm, make_dispatcher(sm, clock), text_event(officer.code, text)))


async def publish(sm, clock, w: World, result: str = "未发现问题", day: str = "3月4日") -> None:
    """提交 `result` (inspected `day`) → 通过 by lead and participant, all in chat; the closing
    approval publishes (rules.auto_publish, 004 第十九条; by default published 2026-03-05)."""
    async with sm() as s:  # 卫健委's part is in (000 §九–十): A1's 提交 completes the case
        await enter_other_parts(s, CASE, w.a1, clock.now())
        await s.commit()
    await say(sm, clock, w.a1, f"提交 {CASE} {result} {day}")
    await say(sm, clock, w.lead_liaison, f"通过 {CASE}")
    assert "审核通过并已公示" in await say(sm, clock, w.other_liaison, f"通过 {CASE}")


async def objection(sm) -> Objection | None:
    async with sm() as s:
        return await s.scalar(select(Objection))


async def case_state(sm) -> str:
    async with sm() as s:
        return str(await s.scalar(select(Case.state).where(Case.code == CASE)))


async def test_objection_recheck_correction_reply_in_chat_004_art20(sessionmaker, clock, w) -> None:
    """004 第二十条: the whole objection path is reachable in chat, each reply naming the next
    step and its working-day deadline."""
    sm = sessionmaker
    await publish(sm, clock, w)
    assert await case_state(sm) == "published"
    clock.set(china_noon(dt.date(2026, 3, 10)))
    text = await say(sm, clock, w.lead_liaison, f"异议 {CASE} 企业称检查前已整改 3月9日")
    assert "已登记异议" in text and "2026年4月7日" in text  # 20 working days after 3-9
    obj = await objection(sm)
    assert obj is not None and obj.filed_by == w.target.name and obj.received_on.day == 9
    assert await case_state(sm) == "objected"

    text = await say(sm, clock, w.lead_liaison, f"复查 {CASE} 有误 原记录漏填整改情况")
    assert "确有错误" in text and f"更正 {CASE}" in text and "2026年3月17日" in text  # 5 workdays
    text = await say(sm, clock, w.lead_liaison, f"答复 {CASE}")
    assert "须先更正" in text
    text = await say(sm, clock, w.other_liaison, f"更正 {CASE} 未发现问题 复查发现原记录有误")
    assert "已更正公示结果" in text and "第 2 版" in text
    text = await say(sm, clock, w.lead_liaison, f"答复 {CASE}")
    assert "已答复异议" in text
    obj = await objection(sm)
    assert obj is not None and obj.state == "replied"
    assert len(await audit_rows(sm, "objection.replied")) == 1

    text = await say(sm, clock, w.lead_liaison, f"答复 {CASE}")
    assert "没有正在处理的异议" in text and f"异议 {CASE}" in text


async def test_a_correction_to_serious_non_cooperation_names_its_follow_up_004_art21(
    sessionmaker, clock, w
) -> None:
    """004 第二十一条: a result corrected to 8 takes the follow-up typed after it, the reason
    after that, as `提交` does."""
    sm = sessionmaker
    await publish(sm, clock, w)
    text = await say(
        sm, clock, w.lead_liaison, f"更正 {CASE} 不配合检查情节严重 抄告相关部门 当事人拒绝检查"
    )
    assert "已更正公示结果" in text
    async with sm() as s:
        latest = await s.scalar(select(CaseResult).order_by(CaseResult.version.desc()).limit(1))
    assert latest is not None
    assert (latest.codes, latest.followups) == (["8"], ["抄告相关部门"])


async def test_a_correction_keeps_the_follow_up_of_the_cases_referral_001_art17(
    sessionmaker, clock, w
) -> None:
    """001 第十七条: a correction is the correcting department's part (004 第三条), so it
    answers for the department's referral as an entry does: 无需后续处置 is refused, saying
    to choose the referral's kind."""
    sm = sessionmaker
    await say(sm, clock, w.a1, f"移送 {CASE} 卫健委 未取得卫生许可")
    await publish(sm, clock, w, "未发现问题 移送办案机构")
    correction = f"更正 {CASE} 未发现问题 无需后续处置 复查发现原记录有误"
    text = await say(sm, clock, w.lead_liaison, correction)
    assert "本部门已就本案登记移送（移送办案机构：县卫生健康委员会），后续处置不能选择" in text
    assert await case_state(sm) == "published"


@pytest.mark.parametrize(
    "content", ["企业称已于2026年6月公示2025年度报告，请求更正", "企业称2026年12月已整改"]
)
async def test_an_objection_whose_last_word_holds_a_date_is_content_004_art20(
    sessionmaker, clock, w, content
) -> None:
    """004 第二十条: a written objection often names a date. Its last word is a receipt date
    only when it is a date by itself; one with other words around a date is the content,
    received today (it was refused as 无法识别的日期)."""
    sm = sessionmaker
    await publish(sm, clock, w)
    text = await say(sm, clock, w.lead_liaison, f"异议 {CASE} {content}")
    assert "已登记异议" in text and "无法识别" not in text, text
    obj = await objection(sm)
    assert obj is not None and (obj.content, obj.received_on) == (content, dt.date(2026, 3, 5))


async def test_a_late_objection_typed_without_a_receipt_date_says_how_to_date_it_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条: an objection typed without its receipt date is taken as received today; when
    that is past the 60 days the refusal says how to record one received in time: the receipt
    date last (or right after the case number), with an example."""
    sm = sessionmaker
    await publish(sm, clock, w)
    clock.set(china_noon(dt.date(2026, 5, 20)))
    text = await say(sm, clock, w.lead_liaison, f"异议 {CASE} 企业称检查前已整改")
    assert "已超过异议期限" in text and "最迟 2026年5月6日" in text, text
    assert f"异议 {CASE} 异议内容 5月6日" in text and "收到日期" in text, text
    text = await say(sm, clock, w.lead_liaison, f"异议 {CASE} 企业称检查前已整改 5月7日")
    assert "已超过异议期限" in text and "异议内容 5月6日" not in text, text
    assert await objection(sm) is None


@pytest.mark.parametrize("day", ["5月6日", "2026-05-06", "05-06"])
async def test_a_receipt_date_right_after_the_case_number_is_read_004_art20(
    sessionmaker, clock, w, day
) -> None:
    """004 第二十条: the receipt date may be typed right after the case number as well as last
    (the content's last word being no date); it was taken as part of the content and the
    objection refused as received today, past the 60 days."""
    sm = sessionmaker
    await publish(sm, clock, w)
    clock.set(china_noon(dt.date(2026, 5, 20)))
    text = await say(sm, clock, w.lead_liaison, f"异议 {CASE} {day} 企业于5月6日递交书面申请")
    assert "已登记异议" in text and "收到日期：2026年5月6日" in text, text
    obj = await objection(sm)
    assert obj is not None and (obj.content, obj.received_on) == (
        "企业于5月6日递交书面申请",
        dt.date(2026, 5, 6),
    )


async def test_objection_upheld_and_late_objection_004_art20(sessionmaker, clock, w) -> None:
    """004 第二十条: an objection after 60 days is refused with the dates; an upheld re-check
    restores the published result and asks for the reply within 15 working days."""
    sm = sessionmaker
    await publish(sm, clock, w)
    clock.set(china_noon(dt.date(2026, 5, 20)))
    text = await say(sm, clock, w.lead_liaison, f"异议 {CASE} 不服")
    assert "已超过异议期限" in text and await objection(sm) is None
    clock.set(china_noon(dt.date(2026, 4, 1)))
    await say(sm, clock, w.lead_liaison, f"异议 {CASE} 不服检查结论")
    text = await say(sm, clock, w.lead_liaison, f"复查 {CASE} 维持 经核对原结果无误")
    assert "维持原结果" in text and "2026年4月23日" in text  # 15 working days (清明 4-4..4-6)
    assert await case_state(sm) == "published"
    text = await say(sm, clock, w.lead_liaison, f"复查 {CASE} 也许 再看看")
    assert "用法" in text


async def test_how_the_objector_was_answered_is_kept_not_dropped_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条 (答复 within 15 working days of the re-check): `答复 案件号 已电话告知企业`
    dropped the words after the case number silently; they are how the objector was answered,
    kept in the record and told back and to the lead department."""
    sm = sessionmaker
    await publish(sm, clock, w)
    clock.set(china_noon(dt.date(2026, 4, 1)))
    await say(sm, clock, w.lead_liaison, f"异议 {CASE} 不服检查结论")
    await say(sm, clock, w.lead_liaison, f"复查 {CASE} 维持 经核对原结果无误")
    rows = await send(
        sm,
        make_dispatcher(sm, clock),
        text_event(w.lead_liaison.code, f"答复 {CASE} 已电话告知企业"),
    )
    assert "答复方式：已电话告知企业。" in bodies(rows)
    told = [r for r in rows if r.destination.get("department_id") == w.lead.id]
    assert told and "答复方式：已电话告知企业" in told[0].message["body"]
    [event] = await audit_rows(sm, "objection.replied")
    assert event.data["note"] == "已电话告知企业"


async def test_objection_commands_are_lead_staff_only_004_art20(sessionmaker, clock, w) -> None:
    sm = sessionmaker
    await publish(sm, clock, w)
    text = await say(sm, clock, w.a1, f"异议 {CASE} 不服")
    assert await objection(sm) is None and "牵头部门" in text
    denied = [r.data["action"] for r in await audit_rows(sm, "denied")]
    assert denied == ["objection.file.denied"]


async def test_case_view_shows_group_dates_results_and_history(sessionmaker, clock, w) -> None:
    sm = sessionmaker
    async with sm() as s:  # 卫健委's part is in (000 §九–十): A1's 提交 completes the case
        await enter_other_parts(s, CASE, w.a1, clock.now())
        await s.commit()
    await say(sm, clock, w.a1, f"提交 {CASE} 未发现问题 3月4日")
    text = await say(sm, clock, w.b1, f"案件 {CASE}")
    for part in (
        w.target.name,
        "张检查（组长）",
        "李检查",
        "王检查",
        "县卫生健康委员会",
        "第 1 版",
        "待审核",
        f"通过 {CASE}",
        "提交结果（张检查）",
    ):
        assert part in text, part
    # one fact a line, in China time (the record used to run the lines together in UTC)
    assert "检查组：张检查（组长）、李检查、王检查\n检查日期：2026年3月4日\n" in text
    assert re.search(r"\n- 2026年3月5日 12:00 提交结果（张检查）\n", text), text


async def test_case_view_is_refused_to_other_departments(sessionmaker, clock, w) -> None:
    sm = sessionmaker
    async with sm() as s, s.begin():
        dept = Department(code="JY", name="县教育局")
        s.add(dept)
        await s.flush()
        s.add(Officer(code="JX", name="郑旁人", department_id=dept.id, roles=["inspector"]))
    stranger = type("O", (), {"code": "JX"})
    text = await say(sm, clock, stranger, f"案件 {CASE}")
    assert w.target.name not in text and "参与部门" in text


async def test_task_with_a_case_number_points_to_case(sessionmaker, clock, w) -> None:
    text = await say(sessionmaker, clock, w.a1, f"任务 {CASE}")
    assert f"案件 {CASE}" in text


async def test_declare_conflict_alias(sessionmaker, clock, w) -> None:
    """申报回避 is 利害关系 under another name (001 第十四条 回避): one implementation."""
    text = await say(sessionmaker, clock, w.a2, f"申报回避 {w.target.uscc} 本人配偶在该企业任职")
    assert len(await audit_rows(sessionmaker, "officer.conflict_declared")) == 1, text


async def test_case_view_names_the_missing_and_late_part_000_s9_10(sessionmaker, clock, w) -> None:
    """000 §九–十 (谁检查、谁录入), 000 §十 (20 working days): 案件 shows each department's
    part — the lead's entered, 卫健委's missing and, past the deadline, overdue — and that the
    next step is 卫健委's entry."""
    sm = sessionmaker
    await say(sm, clock, w.a1, f"提交 {CASE} 未发现问题 3月4日")
    text = await say(sm, clock, w.lead_liaison, f"案件 {CASE}")
    assert "状态：部分录入" in text
    assert "县市场监督管理局 已录入（2026年3月5日）；县卫生健康委员会 未录入" in text
    assert "下一步：县卫生健康委员会的检查组成员发送" in text
    clock.set(china_noon(dt.date(2026, 4, 2)))  # inspected 3-4: due 4-1
    text = await say(sm, clock, w.lead_liaison, f"案件 {CASE}")
    assert "县卫生健康委员会 未录入（已逾期）" in text


async def test_case_view_names_a_departments_own_category(sessionmaker, clock, w) -> None:
    """docs/domain.md (3, 4, G, 5: one child of A per participating department): 案件 shows
    卫健委's own category by its words, as the form and the review page do, not as 5:WJ."""
    async with sessionmaker() as s:
        await submit_result(
            Ctx(session=s, clock=clock, rules=Rules(), actor=w.b1),
            CASE,
            codes=["A", "5:WJ"],
            methods=["实地检查"],
            followups=["责令改正并跟踪"],
            inspected_on=dt.date(2026, 3, 4),
            item_results=[
                {"item_id": w.items[1].id, "codes": ["A", "5:WJ"], "problems": "无卫生许可证"}
            ],
        )
        await s.commit()
    text = await say(sessionmaker, clock, w.lead_liaison, f"案件 {CASE}")
    assert "发现问题待后续处理；违反县卫生健康委员会相关规定" in text and "5:WJ" not in text


async def test_a_recheck_says_when_its_deadlines_are_provisional_004_art20(
    sessionmaker, clock
) -> None:
    """A re-check whose reply (15 working days) and correction (5) deadlines fall in a year
    without holiday data says so, as every other deadline does: the confirmation read the
    bare dates while the lead's notice said 暂按工作日…"""
    sm = sessionmaker
    async with sm() as s:  # 2035: no holiday data in the database or the package
        w = await build_world(
            s, window_start=dt.date(2035, 12, 3), window_end=dt.date(2035, 12, 28)
        )
    clock.set(china_noon(dt.date(2035, 12, 11)))
    await publish(sm, clock, w, day="12月10日")
    clock.set(china_noon(dt.date(2035, 12, 20)))
    await say(sm, clock, w.lead_liaison, f"异议 {CASE} 企业称检查前已整改 12月19日")
    text = await say(sm, clock, w.lead_liaison, f"复查 {CASE} 有误 原记录漏填整改情况")
    confirmation = text[text.index("已登记复查结论") :]
    # the correction's deadline and the reply's, in the confirmation as in the lead's notice
    assert confirmation.count("暂按周一至周五计算") == 2, text
