import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from core import cases
from core.changes import Ctx
from core.documents import case_document_context
from core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.holidays import load_holiday_year
from core.inspection import mark_notified, record_inspection_date
from core.models import AuditEvent, Case, CaseResult, ItemResult, Officer, OutboxMessage, Review
from core.publication import publish_case, publish_task_results
from core.referrals import add_referral
from core.render import render
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from core.workdays import HolidayFile
from tests.case_factories import (
    ResultFields,
    acting,
    at_day,
    build_world,
    enter_other_parts,
    snapshot,
)

D = dt.date
NO_PROBLEM: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}
PROBLEM: ResultFields = {
    "codes": ["A", "2", "B", "5:WJ"],
    "methods": ["实地检查"],
    "followups": ["责令改正并跟踪"],
}


async def _audit(session, action):
    return list(
        await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


async def _outbox(session):
    return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_result_lifecycle_submit_return_resubmit_approve_publish(ctx, session):
    """With rules.auto_publish off the lead publishes (公示 编号, 002 二(六)); the default
    publishes on approval (tests/test_publication.py)."""
    ctx = dataclasses.replace(ctx, rules=Rules(auto_publish=False))
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    code = w.case.code
    due = await record_inspection_date(acting(ctx, w.a2), code, D(2026, 3, 10))
    assert due.day == D(2026, 4, 8) and not due.provisional  # Qingming 4-6 skipped
    await session.commit()

    await enter_other_parts(session, code, w.a2, ctx.clock.now())
    v1 = await submit_result(
        acting(ctx, w.a2),
        code,
        **PROBLEM,
        inspected_on=D(2026, 3, 10),
        item_results=[
            {
                "item_id": w.items[0].id,
                "codes": ["A", "2", "B"],
                "content": "核查年报",
                "problems": "未公示行政许可信息",
                "handling": "责令十日内改正",
            }
        ],
    )
    await session.commit()
    assert (v1.version, v1.state) == (1, "submitted")
    await session.refresh(w.task)
    assert w.task.state == "reviewing"  # its only case has a result now
    review_requests = [
        m
        for m in await _outbox(session)
        if m.destination
        == {
            "kind": "department",
            "department_id": w.lead.id,
            "officer_id": None,
            "platform": None,
            "address": "",
        }
    ]
    assert "结果待审核" in review_requests[-1].message["title"]
    assert "违反县卫生健康委员会相关规定" in review_requests[-1].message["body"]

    with pytest.raises(InvalidTransition, match="结果已提交，正在审核中"):
        await submit_result(acting(ctx, w.a1), code, **NO_PROBLEM)

    before = await snapshot(session)
    with pytest.raises(ValidationFailed, match="退回结果时必须写明退回理由"):
        await review_result(acting(ctx, w.lead_liaison), code, approve=False, reason="  ")
    await session.commit()
    assert await snapshot(session) == before

    await review_result(
        acting(ctx, w.other_liaison), code, approve=False, reason="卫生检查内容未填写"
    )
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "returned"
    returned = [
        m
        for m in await _outbox(session)
        if m.destination["kind"] == "officer" and "退回" in m.message["title"]
    ]
    assert {m.destination["officer_id"] for m in returned} == {w.a1.id, w.a2.id, w.b1.id}
    assert "卫生检查内容未填写" in returned[0].message["body"]

    await enter_other_parts(session, code, w.b1, ctx.clock.now())  # the return reopened all
    v2 = await submit_result(
        acting(ctx, w.b1),
        code,
        **PROBLEM,
        item_results=[
            {
                "item_id": w.items[1].id,
                "codes": ["A", "5:WJ"],
                "content": "查看卫生许可证",
                "problems": "从业人员健康证过期",
                "handling": "责令整改",
            }
        ],
    )
    await session.commit()
    assert v2.version == 2 and v2.inspected_on == D(2026, 3, 10)

    # a participant approves first: recorded, but the lead's approval decides
    await review_result(acting(ctx, w.other_leader), code, approve=True)
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "submitted"
    with pytest.raises(InvalidTransition, match="本部门已审核过该版本的结果"):
        await review_result(acting(ctx, w.other_liaison), code, approve=True)
    await review_result(acting(ctx, w.lead_leader), code, approve=True)
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "approved"
    reviews = [
        tuple(r)
        for r in (
            await session.execute(select(Review.result_id, Review.decision).order_by(Review.id))
        ).all()
    ]
    assert reviews == [(v1.id, "return"), (v2.id, "approve"), (v2.id, "approve")]

    at_day(ctx, D(2026, 3, 20))
    assert await publish_task_results(acting(ctx, w.lead_liaison), w.task.code) == 1
    await session.commit()
    await session.refresh(w.case)
    await session.refresh(v2)
    assert w.case.state == "published" and v2.state == "published"
    await session.refresh(w.task)
    assert w.task.state == "published"
    assert [e.data for e in await _audit(session, "task.stage")] == [
        {"from": "inspecting", "to": "reviewing"},
        {"from": "reviewing", "to": "published"},
    ]
    assert v2.published_at == ctx.clock.now()
    with pytest.raises(ValidationFailed, match="没有审核通过、待公示的结果"):
        await publish_task_results(acting(ctx, w.lead_liaison), w.task.code)
    with pytest.raises(InvalidTransition, match="不能重新提交"):
        await submit_result(acting(ctx, w.a1), code, **NO_PROBLEM, inspected_on=D(2026, 3, 10))
    published = await _audit(session, "task.results_published")
    assert published[0].data["cases"] == [code]
    assert [e.data["late"] for e in await _audit(session, "case.result.submitted")] == [
        False,
        False,
    ]


async def test_non_member_cannot_submit_and_nothing_changes(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    before = await snapshot(session)
    for actor in (w.outsider, w.lead_liaison, None):
        with pytest.raises(PermissionDenied) as err:
            await submit_result(
                acting(ctx, actor), w.case.code, **NO_PROBLEM, inspected_on=D(2026, 3, 10)
            )
        assert str(err.value) == "只有本案检查组成员可以提交结果"
        assert (err.value.action, err.value.subject) == (
            "case.result.submit.denied",
            f"case:{w.case.code}",
        )
    await session.commit()
    assert await snapshot(session) == before


async def test_inactive_member_is_refused(ctx, session):
    from core.models import GroupMember

    w = await build_world(session)
    member = await session.scalar(select(GroupMember).where(GroupMember.officer_id == w.a2.id))
    member.active = False  # replaced after a recusal
    await session.commit()
    with pytest.raises(PermissionDenied):
        a2 = acting(ctx, w.a2)
        await mark_notified(a2, await cases.get_case(a2, w.case.code, for_update=True), {})


async def test_bad_result_input_changes_nothing(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    before = await snapshot(session)
    on_day = D(2026, 3, 10)
    bad: list[tuple[ResultFields, list[dict[str, Any]], dt.date | None, str]] = [
        ({**NO_PROBLEM, "codes": ["1", "E"]}, [], on_day, "不能与其他检查结果同时选择"),
        ({**PROBLEM, "followups": ["移送办案机构"]}, [], on_day, "请先登记移送记录"),
        (NO_PROBLEM, [{"item_id": 999, "codes": ["1"]}], on_day, "不属于本次抽查任务"),
        (
            NO_PROBLEM,
            [{"item_id": w.items[0].id, "codes": ["A", "2", "B"]}],
            on_day,
            "案件结论不能为“未发现问题”",
        ),
        (NO_PROBLEM, [], None, "请填写检查日期"),
    ]
    for fields, item_results, inspected_on, message in bad:
        with pytest.raises(ValidationFailed) as err:
            await submit_result(
                acting(ctx, w.a1),
                w.case.code,
                **fields,
                item_results=item_results,
                inspected_on=inspected_on,
            )
        assert message in str(err.value)
    with pytest.raises(ValidationFailed, match="检查日期不能晚于今天"):
        await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 13))
    with pytest.raises(ValidationFailed, match="早于任务检查时间"):
        await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 1))
    await session.commit()
    assert await snapshot(session) == before


async def test_referral_then_a_referred_result(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    with pytest.raises(ValidationFailed, match="未知的移送方式"):
        await add_referral(acting(ctx, w.a1), w.case.code, "转给别人", "县公安局", "x")
    with pytest.raises(ValidationFailed, match="请填写接收单位和移送内容"):
        await add_referral(acting(ctx, w.a1), w.case.code, "移送办案机构", "", "x")
    with pytest.raises(PermissionDenied):
        await add_referral(acting(ctx, w.outsider), w.case.code, "移送办案机构", "稽查大队", "x")
    await add_referral(
        acting(ctx, w.a1),
        w.case.code,
        "移送办案机构",
        "县市场监管稽查大队",
        "涉嫌虚假公示，移送立案调查",
    )
    result = await submit_result(
        acting(ctx, w.a1),
        w.case.code,
        codes=["A", "2", "C"],
        methods=PROBLEM["methods"],
        followups=["移送办案机构"],
        inspected_on=D(2026, 3, 10),
    )
    await session.commit()
    assert result.followups == ["移送办案机构"]
    assert [e.data["kind"] for e in await _audit(session, "case.referral")] == ["移送办案机构"]


async def test_late_submission_is_accepted_and_flagged(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 10))
    at_day(ctx, D(2026, 4, 9))  # due 4-8
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(acting(ctx, w.a1), w.case.code, **NO_PROBLEM)
    await session.commit()
    event = (await _audit(session, "case.result.submitted"))[0]
    assert event.data["late"] is True and event.data["result_due_on"] == "2026-04-08"
    msg = (await _outbox(session))[-1].message
    assert "逾期录入" in msg["body"]


async def test_status_result_without_visit_and_not_inspected_due_from_window(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 4, 30))  # window ends 3-31; + 20 wd = 4-29 → late
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(
        acting(ctx, w.a1), w.case.code, codes=["9"], methods=[], followups=["无需后续处置"]
    )
    await session.commit()
    event = (await _audit(session, "case.result.submitted"))[0]
    assert event.data["result_due_on"] == "2026-04-29" and event.data["late"] is True
    assert event.data["inspected_on"] is None


async def test_review_needs_staff_of_a_participating_department(ctx, session):
    w = await _submitted_world(ctx, session)
    for actor in (w.a2, w.outsider):
        with pytest.raises(PermissionDenied) as err:
            await review_result(acting(ctx, actor), w.case.code, approve=True)
        assert err.value.action == "case.result.review.denied"
    with pytest.raises(PermissionDenied):
        await publish_case(acting(ctx, w.a1), w.case.code)


async def test_inspection_across_year_end_is_provisional_until_holidays_load(ctx, session):
    w = await build_world(session, window_start=D(2026, 12, 1), window_end=D(2026, 12, 31))
    at_day(ctx, D(2026, 12, 11))
    due = await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 12, 10))
    await session.commit()
    # 15 working days left in December, then weekdays less 元旦 (1-1, Fri): 1-4 … 1-8
    assert (due.day, due.provisional) == (D(2027, 1, 8), True)
    notice = (await _outbox(session))[-1].message["body"]
    assert "暂按周一至周五计算" in notice

    changed = await load_holiday_year(
        ctx,
        HolidayFile(
            2027, holidays=[D(2027, 1, 1), D(2027, 1, 4)], workdays=[], source="测试用节假日安排"
        ),
    )
    await session.commit()
    assert changed == 1
    case = await session.scalar(select(Case).where(Case.id == w.case.id))
    await session.refresh(case)
    assert (case.result_due_on, case.result_due_provisional) == (D(2027, 1, 11), False)
    assert (await _audit(session, "deadlines.recomputed"))[0].data["changes"][0][
        "to"
    ] == "2027-01-11"


async def test_documents_render_with_target_and_items(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    notice_ctx = await case_document_context(ctx, w.case.code)
    notice = render("documents/notice.html.j2", **notice_ctx)
    assert "嘉善县某某食品有限公司" in notice and "联合抽查通知书" in notice
    assert "企业公示信息检查（重点事项）" in notice and "公共场所卫生检查" in notice
    assert "张检查（组长）" in notice and "ZFA1" in notice
    blank_form = render("documents/record.html.j2", **notice_ctx)
    assert "☐ 实地检查" in blank_form and "违反县卫生健康委员会相关规定" in blank_form

    await submit_result(
        acting(ctx, w.a1),
        w.case.code,
        **PROBLEM,
        inspected_on=D(2026, 3, 10),
        item_results=[
            {"item_id": w.items[0].id, "codes": ["A", "2", "B"], "problems": "未公示<行政许可>信息"}
        ],
    )
    await session.commit()
    record = render("documents/record.html.j2", **await case_document_context(ctx, w.case.code))
    assert "一企一表" in record and "91330424MA28AQAQXU" in record
    assert "未公示&lt;行政许可&gt;信息" in record  # autoescaped
    assert (
        "违反县卫生健康委员会相关规定（5-县卫生健康委员会）" in record and "2026年3月10日" in record
    )
    assert "第 1 版" in record


async def test_results_are_versioned_rows(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await submit_result(
        acting(ctx, w.a1),
        w.case.code,
        **NO_PROBLEM,
        inspected_on=D(2026, 3, 10),
        item_results=[{"item_id": w.items[0].id, "codes": ["1"]}],
    )
    await session.commit()
    rows = (
        await session.execute(
            select(CaseResult.version, ItemResult.codes).join(
                ItemResult, ItemResult.result_id == CaseResult.id
            )
        )
    ).all()
    assert [tuple(r) for r in rows] == [(1, ["1"])]


async def test_result_inspection_date_must_lie_between_window_start_and_today(ctx, session):
    w = await build_world(session)  # window starts 2026-03-02
    at_day(ctx, D(2026, 3, 12))
    before = await snapshot(session)
    with pytest.raises(ValidationFailed, match="早于任务检查时间（2026年3月2日 至 2026年3月31日）"):
        await submit_result(
            acting(ctx, w.a1), w.case.code, **NO_PROBLEM, inspected_on=D(2026, 2, 27)
        )
    with pytest.raises(ValidationFailed, match="检查日期不能晚于今天"):
        await submit_result(
            acting(ctx, w.a1), w.case.code, **NO_PROBLEM, inspected_on=D(2026, 3, 13)
        )
    await session.rollback()
    assert await snapshot(session) == before
    await session.refresh(w.case)
    assert (w.case.inspected_on, w.case.result_due_on) == (None, None)


async def _submitted_world(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(acting(ctx, w.a1), w.case.code, **NO_PROBLEM, inspected_on=D(2026, 3, 10))
    await session.commit()
    return w


async def test_lead_approval_waits_for_every_participating_department(ctx, session):
    """004 第十九条: approved only once the lead and every participant approved (shown in the
    approved state, so with rules.auto_publish off: the default publishes at that moment)."""
    ctx = dataclasses.replace(ctx, rules=Rules(auto_publish=False))
    w = await _submitted_world(ctx, session)
    submitted = [m for m in await _outbox(session) if "结果待审核" in m.message["title"]]
    groups = [
        m.destination["department_id"] for m in submitted if m.destination["kind"] == "department"
    ]
    assert set(groups) == {w.lead.id, w.other.id}
    # and each liaison and leader privately, with the signed review page (004 第十九条)
    assert {
        m.destination["officer_id"] for m in submitted if m.destination["kind"] == "officer"
    } == {w.lead_liaison.id, w.lead_leader.id, w.other_liaison.id, w.other_leader.id}

    await review_result(acting(ctx, w.lead_liaison), w.case.code, approve=True)
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "submitted"
    pending = (await _outbox(session))[-1]
    assert pending.destination["department_id"] == w.other.id
    assert "已由县市场监督管理局审核通过，尚待县卫生健康委员会审核" in pending.message["body"]
    assert (await _audit(session, "case.result.reviewed"))[-1].data["case_state"] == "submitted"
    with pytest.raises(ValidationFailed, match="没有审核通过、待公示的结果"):
        await publish_task_results(acting(ctx, w.lead_liaison), w.task.code)

    await review_result(acting(ctx, w.other_liaison), w.case.code, approve=True)
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "approved"
    assert "牵头部门和全部参与部门审核通过" in (await _outbox(session))[-1].message["body"]


async def test_lead_alone_approves_when_participant_review_is_not_required(ctx, session):
    w = await _submitted_world(ctx, session)
    lead_only = dataclasses.replace(
        ctx, rules=Rules(review_requires_participants=False, auto_publish=False)
    )
    await review_result(acting(lead_only, w.lead_liaison), w.case.code, approve=True)
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "approved"


async def _ctx_as(session, clock, code: str, rules: Rules) -> Ctx:
    officer = await session.scalar(select(Officer).where(Officer.code == code))
    return Ctx(session=session, clock=clock, actor=officer, rules=rules)


async def test_concurrent_reviews_serialise_and_the_second_sees_the_first(
    ctx, session, sessionmaker, engine, clock
):
    w = await _submitted_world(ctx, session)
    # the lead's approval alone decides; left approved (not published) for the lead's 公示
    rules = Rules(review_requires_participants=False, auto_publish=False)
    async with sessionmaker() as s1, sessionmaker() as s2:
        lead = await _ctx_as(s1, clock, "AL", rules)
        participant = await _ctx_as(s2, clock, "BL", rules)
        await cases.get_case(participant, w.case.code)  # s2 holds a copy: state "submitted"
        await review_result(lead, w.case.code, approve=True)
        await s1.flush()
        if engine.dialect.name == "postgresql":
            # the lead's transaction still holds the row: the participant's review must wait
            second = asyncio.create_task(
                review_result(participant, w.case.code, approve=False, reason="卫生检查内容未填写")
            )
            await asyncio.sleep(0.3)
            assert not second.done()
            await s1.commit()
            with pytest.raises(InvalidTransition, match="当前状态为“审核通过”"):
                await asyncio.wait_for(second, 10)
        else:  # SQLite has one writer: the second review runs after the commit
            await s1.commit()
            with pytest.raises(InvalidTransition, match="当前状态为“审核通过”"):
                await review_result(
                    participant, w.case.code, approve=False, reason="卫生检查内容未填写"
                )
        await s2.rollback()
    assert await session.scalar(select(Case.state).where(Case.id == w.case.id)) == "approved"
    decisions = list(await session.scalars(select(Review.decision)))
    assert decisions == ["approve"]


async def test_each_department_enters_only_its_own_items_000_s9_10(ctx, session):
    """000 §九–十 (谁检查、谁录入): a group member enters the items of their own department;
    changing another department's part is refused naming whose it is (nothing stored), and a
    new version carries the other departments' parts as they stood. The participant's part
    alone leaves the case 部分录入; the lead's part completes it."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    sj_item, wj_item = w.items  # SJ-01 (the lead's), WJ-01 (the participant's)
    wj_part = {
        "item_id": wj_item.id,
        "codes": ["A", "5:WJ"],
        "content": "查看卫生许可证",
        "problems": "从业人员健康证过期",
        "handling": "责令整改",
    }
    before = await snapshot(session)
    with pytest.raises(ValidationFailed, match="“公共场所卫生检查”是县卫生健康委员会的检查事项"):
        await submit_result(
            acting(ctx, w.a1),
            w.case.code,
            **PROBLEM,
            inspected_on=D(2026, 3, 10),
            item_results=[wj_part],
        )
    await session.commit()
    assert await snapshot(session) == before

    v1 = await submit_result(
        acting(ctx, w.b1),
        w.case.code,
        **PROBLEM,
        inspected_on=D(2026, 3, 10),
        item_results=[wj_part],
    )
    await session.commit()
    assert (w.case.state, v1.state) == ("part_entered", "part_entered")
    sj_part = {
        "item_id": sj_item.id,
        "codes": ["A", "2", "B"],
        "content": "核查年报",
        "problems": "未公示许可信息",
        "handling": "责令改正",
    }
    # the lead's inspector may resend the participant's part unchanged (the form carries it) …
    v2 = await submit_result(
        acting(ctx, w.a1), w.case.code, **PROBLEM, item_results=[sj_part, wj_part]
    )
    await session.commit()
    assert (w.case.state, v2.state) == ("submitted", "submitted")
    parts = {
        r.item_id: (r.codes, r.problems)
        for r in await session.scalars(select(ItemResult).where(ItemResult.result_id == v2.id))
    }
    assert parts == {
        sj_item.id: (["A", "2", "B"], "未公示许可信息"),
        wj_item.id: (["A", "5:WJ"], "从业人员健康证过期"),
    }
    # … and a version that leaves it out still carries it
    await review_result(acting(ctx, w.lead_liaison), w.case.code, False, reason="再核")
    v3 = await submit_result(acting(ctx, w.a2), w.case.code, **PROBLEM, item_results=[sj_part])
    await session.commit()
    carried = {
        r.item_id: r.problems
        for r in await session.scalars(select(ItemResult).where(ItemResult.result_id == v3.id))
    }
    assert carried == {sj_item.id: "未公示许可信息", wj_item.id: "从业人员健康证过期"}
    assert v1.version == 1 and v3.version == 3


async def test_a_case_number_without_its_zeros_finds_the_case(ctx, session):
    """LJ-2026-001-1 is the case LJ-2026-001-001 wherever core looks a case up by its number
    (the command line and the documents too, not only chat); more digits than a case has are
    another number, not found."""
    w = await build_world(session)
    assert w.case.code == "LJ-2026-001-001"
    assert (await cases.get_case(ctx, "lj-2026-001-1")).id == w.case.id
    assert (await cases.get_case(ctx, "LJ-2026-001-01", for_update=True)).id == w.case.id
    with pytest.raises(NotFound):
        await cases.get_case(ctx, "LJ-2026-001-0001")
