import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import objections
from core.changes import Ctx
from core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from core.holidays import load_holiday_year
from core.models import AuditEvent, CaseResult, ItemResult, Objection, OutboxMessage
from core.nudges import enqueue_nudges
from core.publication import correct_result
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from core.summary import enqueue_daily_summaries
from core.workdays import HolidayFile, WorkCalendar, YearData
from tests.case_factories import (
    ResultFields,
    World,
    acting,
    at_day,
    build_world,
    enter_other_parts,
    snapshot,
)

D = dt.date
FOUND: ResultFields = {
    "codes": ["A", "2", "B"],
    "methods": ["实地检查"],
    "followups": ["责令改正并跟踪"],
}
CLEAN: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}


async def _published(ctx, session, **world):
    """Submit v1 → return → v2 → approve, which publishes it (rules.auto_publish, the default:
    004 第十九条 审核通过后…自动公示); returns the world."""
    w = await build_world(session, **world)
    inspected = w.task.window_start + dt.timedelta(days=8)
    at_day(ctx, inspected + dt.timedelta(days=2))
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(acting(ctx, w.a1), w.case.code, **FOUND, inspected_on=inspected)
    await review_result(acting(ctx, w.lead_liaison), w.case.code, False, reason="核实问题")
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())  # all reopened
    await submit_result(acting(ctx, w.a1), w.case.code, **FOUND)
    await review_result(acting(ctx, w.lead_liaison), w.case.code, True)
    # rule 8: both review; the closing approval publishes
    await review_result(acting(ctx, w.other_liaison), w.case.code, True)
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "published"
    return w


async def _versions(session, case):
    rows = await session.execute(
        select(CaseResult.version, CaseResult.state, CaseResult.codes, CaseResult.is_correction)
        .where(CaseResult.case_id == case.id)
        .order_by(CaseResult.version)
    )
    return [tuple(r) for r in rows]


async def test_objection_window_recheck_error_and_correction(ctx, session):
    w = await _published(ctx, session)  # published 2026-03-12
    lead = acting(ctx, w.lead_liaison)
    at_day(ctx, D(2026, 5, 15))
    before = await snapshot(session)
    with pytest.raises(ValidationFailed) as err:
        await objections.file_objection(lead, w.case.code, "某某公司", "已公示", D(2026, 5, 12))
    assert str(err.value).startswith("已超过异议期限")
    # 60 calendar days after 2026-03-12, that day included (filed on it below)
    assert "最迟 2026年5月11日（含当日）" in str(err.value) and "日 前" not in str(err.value)
    for wrong in (D(2026, 5, 16), D(2026, 3, 11)):  # tomorrow; before the publication
        with pytest.raises(ValidationFailed) as err:
            await objections.file_objection(lead, w.case.code, "某某公司", "有异议", wrong)
        assert str(err.value).startswith(
            "收到日期应在结果公示之日（2026年3月12日）至今天（2026年5月15日）之间（含当日）"
        )
    with pytest.raises(PermissionDenied) as denied:
        await objections.file_objection(
            acting(ctx, w.a1), w.case.code, "某某公司", "x", D(2026, 5, 11)
        )
    assert denied.value.action == "objection.file.denied"
    await session.commit()
    assert await snapshot(session) == before

    obj = await objections.file_objection(
        lead, w.case.code, "某某公司 法定代表人", "已于检查前公示许可信息，附截图", D(2026, 5, 11)
    )
    await session.commit()
    assert (obj.recheck_due_on, obj.recheck_due_provisional) == (D(2026, 6, 8), False)
    await session.refresh(w.case)
    assert w.case.state == "objected"
    with pytest.raises(InvalidTransition, match="已有异议正在处理"):
        await objections.file_objection(lead, w.case.code, "某某公司", "再次", D(2026, 5, 11))
    with pytest.raises(InvalidTransition, match="尚未复查"):
        await objections.reply_objection(lead, obj.id)
    with pytest.raises(InvalidTransition, match="尚未复查"):
        await correct_result(lead, w.case.code, reason="x", **CLEAN)

    at_day(ctx, D(2026, 5, 20))
    with pytest.raises(ValidationFailed, match="请填写复查情况和结论"):
        await objections.record_recheck(lead, obj.id, " ", error_found=True)
    await objections.record_recheck(lead, obj.id, "经复查，许可信息已按时公示", error_found=True)
    await session.commit()
    assert obj.state == "error_found"
    assert obj.correction_due_on == D(2026, 5, 27) and obj.reply_due_on == D(2026, 6, 10)
    with pytest.raises(InvalidTransition, match="须先更正"):
        await objections.reply_objection(lead, obj.id)
    with pytest.raises(ValidationFailed, match="必须写明更正理由"):
        await correct_result(lead, w.case.code, reason="", **CLEAN)
    with pytest.raises(PermissionDenied):
        await correct_result(acting(ctx, w.a1), w.case.code, reason="x", **CLEAN)

    v3 = await correct_result(
        lead, w.case.code, reason="复查确认已公示，原结论有误", **CLEAN, inspected_on=D(2026, 3, 10)
    )
    await session.commit()
    assert (v3.version, v3.is_correction, v3.state) == (3, True, "published")
    assert await _versions(session, w.case) == [
        (1, "returned", ["A", "2", "B"], False),
        (2, "superseded", ["A", "2", "B"], False),  # still readable
        (3, "published", ["1"], True),
    ]
    await session.refresh(w.case)
    await session.refresh(obj)
    assert (w.case.state, obj.state) == ("corrected", "corrected")

    await objections.reply_objection(lead, obj.id)
    await session.commit()
    assert (obj.state, obj.replied_on) == ("replied", D(2026, 5, 20))
    with pytest.raises(InvalidTransition, match="已答复"):
        await objections.reply_objection(lead, obj.id)
    actions = list(
        await session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.subject.in_([f"objection:{obj.id}", f"case:{w.case.code}"]))
            .order_by(AuditEvent.id)
        )
    )
    assert actions[-5:] == [
        "case.published",
        "objection.filed",
        "objection.rechecked",
        "case.result.corrected",
        "objection.replied",
    ]


async def test_upheld_objection_keeps_the_published_result(ctx, session):
    w = await _published(ctx, session)
    lead = acting(ctx, None)  # the system (CLI as admin) may register it too
    obj = await objections.file_objection(lead, w.case.code, "某某公司", "不服", D(2026, 3, 12))
    await objections.record_recheck(lead, obj.id, "原结论无误", error_found=False)
    await session.commit()
    await session.refresh(w.case)
    assert (obj.state, obj.correction_due_on, w.case.state) == ("upheld", None, "published")
    with pytest.raises(InvalidTransition, match="已复查"):
        await objections.record_recheck(lead, obj.id, "再查", error_found=True)
    await objections.reply_objection(lead, obj.id)
    await session.commit()
    assert [v[1] for v in await _versions(session, w.case)] == ["returned", "published"]


async def test_objection_needs_a_published_result(ctx, session):
    w = await build_world(session)
    with pytest.raises(InvalidTransition, match="结果尚未公示"):
        await objections.file_objection(
            acting(ctx, w.lead_liaison), w.case.code, "某某公司", "x", D(2026, 3, 2)
        )


HOLIDAY_2027 = HolidayFile(  # a Spring Festival break over 2027-02-13, as the tester read it
    2027, holidays=[D(2027, 2, 6) + dt.timedelta(days=i) for i in range(9)], workdays=[], source=""
)


@pytest.mark.parametrize(
    ("published_on", "extra", "last_day"),
    [
        (D(2026, 3, 12), {}, (D(2026, 5, 11), False)),  # a Monday: 60 days, as filed
        (D(2026, 8, 2), {}, (D(2026, 10, 8), False)),  # 10-01 … 10-07 国庆: the 8th
        (D(2026, 12, 15), {}, (D(2027, 2, 15), True)),  # a Saturday; 2027 weekdays only
        (D(2026, 12, 15), {2027: HOLIDAY_2027}, (D(2027, 2, 15), False)),
        # a make-up working Saturday (调休) is a working day: the period ends on it
        (
            D(2026, 12, 15),
            {2027: HolidayFile(2027, [], [D(2027, 2, 13)], "")},
            (D(2027, 2, 13), False),
        ),
    ],
)
def test_the_objection_period_ending_on_a_rest_day_ends_on_the_next_working_day_004_art20(
    published_on, extra, last_day
):
    """004 第二十条: 自检查结果公示之日起 60 日内. The seed says no more, so 民法典 counts it:
    the day of publication not counted (第二百零一条), a last day on a statutory rest day moved
    to the day after the rest (第二百零三条)."""
    cal = WorkCalendar(
        {y: YearData(frozenset(f.holidays), frozenset(f.workdays)) for y, f in extra.items()}
    )
    last = objections.objection_last_day(published_on, Rules(), cal)
    assert (last.day, last.provisional) == last_day


async def test_an_objection_on_the_working_day_after_a_rest_day_deadline_is_filed_civil_code_203(
    ctx, session
):
    """Published 2026-12-15: the 60th day, 2027-02-13, is a Saturday, so an objection received
    on Monday 2027-02-15 is in time (004 第二十条, 民法典 第二百零三条); the 16th is not."""
    w = await _published(ctx, session, window_start=D(2026, 12, 5), window_end=D(2026, 12, 31))
    lead = acting(ctx, w.lead_liaison)
    await load_holiday_year(ctx, HOLIDAY_2027)
    at_day(ctx, D(2027, 2, 16))
    with pytest.raises(ValidationFailed) as err:
        await objections.file_objection(lead, w.case.code, "某某公司", "不服", D(2027, 2, 16))
    assert "即最迟 2027年2月15日（含当日）" in str(err.value)
    assert "顺延至其后第一个工作日" in str(err.value)
    obj = await objections.file_objection(lead, w.case.code, "某某公司", "不服", D(2027, 2, 15))
    assert obj.received_on == D(2027, 2, 15)


async def test_recheck_deadline_across_year_end_becomes_final(ctx, session):
    w = await _published(
        ctx, session, window_start=D(2026, 11, 23), window_end=D(2026, 12, 31)
    )  # published 2026-12-03
    at_day(ctx, D(2026, 12, 14))
    obj = await objections.file_objection(
        acting(ctx, w.lead_liaison), w.case.code, "某某公司", "不服", D(2026, 12, 14)
    )
    await session.commit()
    # 12-15 … 12-31 = 13 working days, then weekdays less 元旦: 1-4 … 1-12
    assert (obj.recheck_due_on, obj.recheck_due_provisional) == (D(2027, 1, 12), True)
    changed = await load_holiday_year(
        ctx, HolidayFile(2027, holidays=[D(2027, 1, 1), D(2027, 1, 4)], workdays=[], source="测试")
    )
    await session.commit()
    obj = await session.scalar(select(Objection).where(Objection.id == obj.id))
    await session.refresh(obj)
    assert changed == 1
    assert (obj.recheck_due_on, obj.recheck_due_provisional) == (D(2027, 1, 13), False)


async def nothing_found_published(ctx: Ctx, session: AsyncSession) -> World:
    """Both departments inspected on 3月10日 and found nothing; published."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    for officer, item in ((w.a1, w.items[0]), (w.b1, w.items[1])):
        await submit_result(
            acting(ctx, officer),
            w.case.code,
            **CLEAN,
            inspected_on=D(2026, 3, 10),
            item_results=[{"item_id": item.id, "codes": ["1"]}],
        )
    for reviewer in (w.lead_liaison, w.other_liaison):
        await review_result(acting(ctx, reviewer), w.case.code, True)
    await session.commit()
    return w


async def test_a_participants_correction_to_a_situation_is_refused_004_art18(ctx, session) -> None:
    """004 第十八条, 第二十条: both departments inspected and found nothing, published; 注销
    (no visit was possible) is the target's situation, every department's items', so
    卫健委's correction of its part to it is refused, naming the lead, which corrects it for
    the whole case; nothing changes."""
    w = await nothing_found_published(ctx, session)
    before = await snapshot(session)
    with pytest.raises(ValidationFailed, match="由牵头部门县市场监督管理局的联络员或分管领导"):
        await correct_result(
            acting(ctx, w.other_liaison),
            w.case.code,
            reason="企业已注销",
            codes=["9"],
            methods=[],
            followups=["无需后续处置"],
        )
    await session.rollback()
    assert await snapshot(session) == before


async def _leader_summary(ctx, session, leader) -> str:
    """The day's summary the tick queued for `leader` (the scheduler's path)."""
    await enqueue_daily_summaries(ctx, ctx.clock.today())
    await session.commit()
    key = f"summary:{leader.id}:{ctx.clock.today().isoformat()}"
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    return row.message["body"]


async def test_the_summary_shows_an_overdue_objection_step_as_the_nudge_does_004_art20(
    ctx, session
):
    """004 第二十条 (复查 within 20 working days, the reply within 15 after it): when the nudge
    says a step is 已逾期, the leader's daily summary says it is overdue too, not only
    异议处理中."""
    w = await _published(ctx, session)
    lead = acting(ctx, w.lead_liaison)
    obj = await objections.file_objection(lead, w.case.code, "某某公司", "不服", ctx.clock.today())
    await session.commit()
    cal = await ctx.work_calendar()
    at_day(ctx, cal.add_workdays(obj.recheck_due_on, 1).day)
    await enqueue_nudges(ctx, ctx.clock.today())
    nudged = [r.message["body"] for r in await session.scalars(select(OutboxMessage))]
    assert any("异议复查" in b and "已逾期 1 个工作日" in b for b in nudged)
    assert "异议处理中：1，其中 ⚠ 已逾期：异议复查 1" in await _leader_summary(
        ctx, session, w.lead_leader
    )

    await objections.record_recheck(lead, obj.id, "原结论无误", error_found=False)
    await session.commit()
    at_day(ctx, cal.add_workdays(ctx.clock.today(), ctx.rules.reply_workdays).day)
    due_today = await _leader_summary(ctx, session, w.lead_leader)
    assert "异议处理中：1" in due_today and "已逾期" not in due_today
    at_day(ctx, cal.add_workdays(ctx.clock.today(), 1).day)
    assert "异议处理中：1，其中 ⚠ 已逾期：答复异议 1" in await _leader_summary(
        ctx, session, w.lead_leader
    )


async def test_the_leads_correction_to_unreachable_gives_every_item_its_words_004_art18(
    ctx, session
) -> None:
    """004 第十八条: 无法联系 (6) is a situation whose item names what was found; the lead's
    correction of its item to it (with 违反工商… and 发现问题待后续处理 above it) gives 卫健委's
    item the same codes and words, so each item's result stands as a result the form takes
    (004 第二十条: the lead corrects the whole case)."""
    w = await nothing_found_published(ctx, session)
    unreachable = {"codes": ["A", "2", "6"], "problems": "登记住所无法联系", "handling": "列入异常"}
    result = await correct_result(
        acting(ctx, w.lead_leader),
        w.case.code,
        reason="复查发现通过登记住所无法联系",
        codes=["A", "2", "6"],
        methods=None,
        followups=["其他"],
        item_results=[{"item_id": w.items[0].id, **unreachable}],
    )
    rows = await session.scalars(select(ItemResult).where(ItemResult.result_id == result.id))
    assert (
        sorted((r.codes, r.problems, r.handling) for r in rows)
        == [(["A", "2", "6"], "登记住所无法联系", "列入异常")] * 2
    )
    assert (result.codes, result.followups) == (["A", "2", "6"], ["其他"])
