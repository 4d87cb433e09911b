import dataclasses
import datetime as dt

import pytest
from sqlalchemy import event, select

from core.clock import china_noon
from core.holidays import holiday_warning, load_holiday_year
from core.inspection import record_inspection_date
from core.models import (
    AuditEvent,
    Case,
    Department,
    Invitation,
    JointTask,
    Objection,
    OutboxMessage,
    Target,
)
from core.nudges import SHOWN, _listing, enqueue_nudges
from core.obligations.due import due_items
from core.obligations.model import Obligation
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from core.states import ObjectionState
from core.summary import daily_summary, enqueue_daily_summaries, summary_message
from core.workdays import HolidayFile
from tests.case_factories import (
    ResultFields,
    acting,
    add_case,
    at_day,
    build_world,
    enter_other_parts,
)
from tests.factories import group_members

D = dt.date
CLEAN: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}


async def _consulting_task(session, w, reply_due, provisional=False, lead=None):
    task = JointTask(
        code="LJ-2026-002",
        year=2026,
        title="校园周边联合抽查",
        lead_department_id=(lead or w.lead).id,
        window_start=D(2026, 4, 1),
        window_end=D(2026, 4, 30),
        state="consulting",
        reply_due_on=reply_due,
        reply_due_provisional=provisional,
        created_at=china_noon(D(2026, 3, 1)),
    )
    session.add(task)
    await session.flush()
    session.add(Invitation(task_id=task.id, department_id=w.other.id, state="pending"))
    await session.commit()
    return task


async def _inspected_world(ctx, session):
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 10))
    await session.commit()  # result due 2026-04-08 (Qingming 4-4…4-6 off)
    return w


async def _outbox(session, since_id=0):
    return list(
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.id > since_id).order_by(OutboxMessage.id)
        )
    )


async def test_due_items_say_who_what_and_when(ctx, session):
    w = await _inspected_world(ctx, session)
    await _consulting_task(session, w, D(2026, 4, 2))
    items = await due_items(ctx, D(2026, 4, 2))
    assert [(o.kind, o.department_id, o.due, o.days_left) for o in items] == [
        ("invitation_reply", w.other.id, D(2026, 4, 2), 0),
        ("result_entry", w.lead.id, D(2026, 4, 8), 3),
        ("result_entry", w.other.id, D(2026, 4, 8), 3),
    ]
    assert items[0].officer_ids == (w.other_liaison.id, w.other_leader.id)
    # 谁检查、谁录入 (000 §九–十): each department's inspectors owe its own part
    assert set(items[1].officer_ids) == {w.a1.id, w.a2.id}
    assert items[2].officer_ids == (w.b1.id,)
    assert (
        items[1].nudge_key(D(2026, 4, 2))
        == f"nudge:case:{w.case.id}:part:{w.lead.id}:2026-04-02:T-3"
    )

    at_day(ctx, D(2026, 4, 9))
    await enter_other_parts(session, w.case.code, w.a2, ctx.clock.now())
    await submit_result(acting(ctx, w.a2), w.case.code, **CLEAN)
    await session.commit()
    later = await due_items(ctx, D(2026, 4, 20))
    review = next(o for o in later if o.kind == "review" and o.department_id == w.lead.id)
    assert review.due == D(2026, 4, 16) and review.days_left < 0
    assert set(review.officer_ids) == {w.lead_liaison.id, w.lead_leader.id}


async def _submitted_world(ctx, session):
    """The case complete and under review since 2026-04-09 (review due 4-16)."""
    w = await _inspected_world(ctx, session)
    at_day(ctx, D(2026, 4, 9))
    await enter_other_parts(session, w.case.code, w.a2, ctx.clock.now())
    await submit_result(acting(ctx, w.a2), w.case.code, **CLEAN)
    await session.commit()
    return w


def _reviews(items: list[Obligation]) -> dict[int, tuple[int, ...]]:
    return {o.department_id: o.officer_ids for o in items if o.kind == "review"}


async def test_each_department_still_to_approve_owes_the_review_004_art19(ctx, session):
    """004 第十九条 (经牵头部门和参与部门审核通过后…公示): the lead and every participant
    review; each department whose approval is missing owes the review, with its own liaisons
    and leaders, and one that has approved owes nothing more."""
    w = await _submitted_world(ctx, session)
    before = await due_items(ctx, D(2026, 4, 20))
    assert _reviews(before) == {
        w.lead.id: (w.lead_liaison.id, w.lead_leader.id),
        w.other.id: (w.other_liaison.id, w.other_leader.id),
    }
    assert {o.due for o in before if o.kind == "review"} == {D(2026, 4, 16)}

    await review_result(acting(ctx, w.lead_liaison), w.case.code, approve=True)
    await session.commit()
    assert _reviews(await due_items(ctx, D(2026, 4, 20))) == {
        w.other.id: (w.other_liaison.id, w.other_leader.id)
    }


async def test_the_daily_summary_counts_overdue_reviews_by_department_004_art19(ctx, session):
    """004 第十九条: a result under review past its turnaround (Rules.review_workdays) shows in
    the leaders' summary with the departments whose approval is missing; before, the summary
    never read reviews, so a case stuck in 待审核 looked like any other."""
    w = await _submitted_world(ctx, session)
    on_time = summary_message(await daily_summary(ctx, D(2026, 4, 16))).body
    assert "审核" not in on_time.split("结果录入")[1]
    await review_result(acting(ctx, w.lead_liaison), w.case.code, approve=True)
    await session.commit()
    body = summary_message(await daily_summary(ctx, D(2026, 4, 20))).body
    assert "⚠ 审核逾期 1 件（未审核：县卫生健康委员会 1）" in body
    [task] = (await daily_summary(ctx, D(2026, 4, 20), w.lead.id)).tasks
    assert task.reviews_overdue == {"县卫生健康委员会": 1}


async def test_lead_only_review_is_owed_by_the_lead_alone(ctx, session):
    """Without rules.review_requires_participants the lead's approval decides: only the lead
    owes the review."""
    w = await _submitted_world(ctx, session)
    lead_only = dataclasses.replace(ctx, rules=Rules(review_requires_participants=False))
    assert list(_reviews(await due_items(lead_only, D(2026, 4, 20)))) == [w.lead.id]


async def test_an_overdue_review_reminds_and_escalates_only_where_approval_is_missing_004_art19(
    ctx, session
):
    """004 第十九条: after the lead's 通过, the overdue review is the participant's — its group
    and its leader hear of it (逾期事项报告), the lead's do not."""
    w = await _submitted_world(ctx, session)
    await review_result(acting(ctx, w.lead_liaison), w.case.code, approve=True)
    await session.commit()
    last = max([m.id for m in await _outbox(session)], default=0)
    await enqueue_nudges(ctx, D(2026, 4, 20))
    await session.commit()
    new = await _outbox(session, last)
    review_nudges = [m for m in new if "审核检查结果" in m.message["body"]]
    assert {
        (m.destination["kind"], m.destination["officer_id"] or m.destination["department_id"])
        for m in review_nudges
    } == {
        ("department", w.other.id),
        ("officer", w.other_liaison.id),
        ("officer", w.other_leader.id),
    }
    reports = [m for m in review_nudges if "逾期事项报告" in m.message["body"]]
    assert [m.destination["officer_id"] for m in reports] == [w.other_leader.id]


async def test_nudges_are_daily_digests_and_idempotent(ctx, session):
    w = await _inspected_world(ctx, session)
    await _consulting_task(session, w, D(2026, 4, 2))
    today = D(2026, 4, 2)
    # one digest per department, and the group's three inspectors their own item privately
    assert await enqueue_nudges(ctx, today) == 2 + 3
    await session.commit()
    queued = await _outbox(session)
    personal = [m for m in queued if (m.idempotency_key or "").startswith("nudge:officer:")]
    assert {m.destination["officer_id"] for m in personal} == {w.a1.id, w.a2.id, w.b1.id}
    assert all(
        f"[点此办理](lianjian-page:result/case:{w.case.id})" in m.message["body"] for m in personal
    )
    digests = [m for m in queued if (m.idempotency_key or "").startswith("nudge:department:")]
    assert {m.destination["department_id"] for m in digests} == {w.lead.id, w.other.id}
    lead_digest = next(m for m in digests if m.destination["department_id"] == w.lead.id)
    assert "还剩 3 个工作日：录入检查结果" in lead_digest.message["body"]
    assert set(lead_digest.message["mention_officer_ids"]) == {w.a1.id, w.a2.id}
    other_digest = next(m for m in digests if m.destination["department_id"] == w.other.id)
    assert w.b1.id in other_digest.message["mention_officer_ids"]
    last = queued[-1].id

    assert await enqueue_nudges(ctx, today) == 0  # a second tick the same day
    await session.commit()
    assert await _outbox(session, last) == []
    assert await enqueue_nudges(ctx, D(2026, 4, 4)) == 0  # Saturday: no nudges

    # 4-3: entry is at T-2 (no nudge); the invitation is overdue → digest + escalation
    assert await enqueue_nudges(ctx, D(2026, 4, 3)) == 2
    await session.commit()
    new = await _outbox(session, last)
    assert [
        (m.destination["kind"], m.destination["officer_id"] or m.destination["department_id"])
        for m in new
    ] == [("department", w.other.id), ("officer", w.other_leader.id)]
    assert "已逾期 1 个工作日" in new[0].message["body"]
    assert "逾期事项报告" in new[1].message["body"]


async def test_overdue_result_escalates_every_working_day(ctx, session):
    w = await _inspected_world(ctx, session)
    sent = []
    for day in (D(2026, 4, 7), D(2026, 4, 8), D(2026, 4, 9), D(2026, 4, 10), D(2026, 4, 13)):
        sent.append(await enqueue_nudges(ctx, day))
        await session.commit()
    # T-1, T-0, then every working day each department's digest + its leader (its own part,
    # 000 §九–十); each time the 3 inspectors too
    assert sent == [2 + 3, 2 + 3, 4 + 3, 4 + 3, 4 + 3]
    escalations = [
        m for m in await _outbox(session) if (m.idempotency_key or "").startswith("nudge:leader:")
    ]
    assert {m.destination["officer_id"] for m in escalations} == {
        w.lead_leader.id,
        w.other_leader.id,
    }
    events = list(
        await session.scalars(select(AuditEvent.data).where(AuditEvent.action == "nudge.digest"))
    )
    # the two departments' digests each day
    assert [e["keys"][0].rsplit(":", 1)[1] for e in events] == [
        *("T-1", "T-1"),
        *("T-0", "T-0"),
        *("overdue",) * 6,
    ]


async def test_new_obligation_the_same_day_still_gets_its_nudge(ctx, session):
    w = await _inspected_world(ctx, session)
    # each department's digest of its part (000 §九–十) + the 3 inspectors
    assert await enqueue_nudges(ctx, D(2026, 4, 2)) == 2 + 3
    await session.commit()
    await _consulting_task(session, w, D(2026, 4, 2))  # appears after the first tick
    assert await enqueue_nudges(ctx, D(2026, 4, 2)) == 1
    await session.commit()
    assert await enqueue_nudges(ctx, D(2026, 4, 2)) == 0


async def test_summary_counts_and_daily_summaries(ctx, session):
    w = await _inspected_world(ctx, session)
    third = Department(code="GA", name="县公安局")
    target = Target(uscc="91512081MA62K0260E", name="某某网吧")
    session.add_all([third, target])
    await session.flush()
    session.add(
        Invitation(
            task_id=w.task.id,
            department_id=third.id,
            state="declined",
            reason="本年度警力已全部安排专项行动，无法参加",
        )
    )
    late_case = Case(code="LJ-2026-001-002", task_id=w.task.id, target_id=target.id)
    session.add(late_case)
    await session.flush()
    session.add_all(group_members(late_case.id, [w.a1]))
    session.add(
        OutboxMessage(
            destination={"kind": "office"},
            dest_key="office",
            message={},
            state="dead",
            next_attempt_at=ctx.clock.now(),
            created_at=ctx.clock.now(),
        )
    )
    await session.commit()
    at_day(ctx, D(2026, 3, 13))
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN)
    await session.commit()

    today = D(2026, 4, 30)  # window end 3-31 + 20 working days = 4-29
    summary = await daily_summary(ctx, today)
    [task] = summary.tasks
    assert (task.accepted, task.pending, task.declined) == (
        1,
        0,
        [("县公安局", "本年度警力已全部安排专项行动，无法参加")],
    )
    assert task.cases_by_state == {"submitted": 1, "assigned": 1}
    assert (task.on_time, task.late, task.overdue, task.returned, task.objections_open) == (
        1,
        0,
        1,
        0,
        0,
    )
    assert summary.dead_letters == 1
    body = summary_message(summary).body
    assert "按时 1，逾期录入 0，逾期未录入 1" in body and "县公安局 不参加" in body
    assert "1 条消息发送失败" in body

    await _consulting_task(session, w, D(2026, 5, 8), lead=w.other)
    mine = await daily_summary(ctx, today, w.lead.id)
    theirs = await daily_summary(ctx, today, w.other.id)
    assert [t.code for t in mine.tasks] == ["LJ-2026-001"]
    assert [t.code for t in theirs.tasks] == ["LJ-2026-001", "LJ-2026-002"]

    at_day(ctx, today)
    assert await enqueue_daily_summaries(ctx, today) == 2  # the two leaders
    await session.commit()
    assert await enqueue_daily_summaries(ctx, today) == 0
    keys = {m.idempotency_key for m in await _outbox(session)}
    assert {
        f"summary:{w.lead_leader.id}:2026-04-30",
        f"summary:{w.other_leader.id}:2026-04-30",
    } <= keys


async def test_provisional_invitation_deadline_is_recomputed(ctx, session):
    w = await build_world(session)
    # sent 2026-12-28: weekdays less 元旦 → 12-29, 12-30, 12-31, 1-4, 1-5
    task = await _consulting_task(session, w, D(2027, 1, 5), provisional=True)
    at_day(ctx, D(2026, 11, 2))
    warning = await holiday_warning(ctx)
    assert warning is not None and "2027 年节假日安排" in warning
    test_year = HolidayFile(
        2027, holidays=[D(2027, 1, 1), D(2027, 1, 4)], workdays=[], source="测试"
    )
    changed = await load_holiday_year(ctx, test_year)
    await session.commit()
    await session.refresh(task)
    assert changed == 1
    assert (task.reply_due_on, task.reply_due_provisional) == (D(2027, 1, 6), False)
    assert await holiday_warning(ctx) is None
    # loading the same data again changes nothing
    assert await load_holiday_year(ctx, test_year) == 0


async def test_no_holiday_warning_before_november(ctx):
    at_day(ctx, D(2026, 10, 31))
    assert await holiday_warning(ctx) is None


async def test_invitation_reply_nudge_mentions_leaders_too(ctx, session):
    w = await build_world(session)
    await _consulting_task(session, w, D(2026, 4, 2))
    # due today: the invited department; and the world's case, never inspected in its March
    # window, told to the lead's liaison and the three of its group (000 §五.3)
    assert await enqueue_nudges(ctx, D(2026, 4, 2)) == 1 + 4
    await session.commit()
    digest = next(m for m in await _outbox(session) if m.destination["kind"] == "department")
    assert digest.destination["department_id"] == w.other.id
    assert set(digest.message["mention_officer_ids"]) == {w.other_liaison.id, w.other_leader.id}


async def test_provisional_window_result_deadline_is_recomputed_when_holidays_load(ctx, session):
    w = await build_world(session, window_start=D(2026, 12, 1), window_end=D(2026, 12, 20))
    cal = await ctx.work_calendar()
    # as the draw confirmation sets it: no inspection date, so window end + 20 working days
    due = cal.add_workdays(w.task.window_end, ctx.rules.result_entry_workdays)
    # 2027 without data: weekdays less 元旦 (1月1日, a fixed-date holiday)
    assert (due.day, due.provisional) == (D(2027, 1, 18), True)
    w.case.result_due_on, w.case.result_due_provisional = due.day, due.provisional
    await session.commit()

    at_day(ctx, D(2026, 11, 20))
    test_year = HolidayFile(
        2027,
        holidays=[D(2027, 1, 1), *(D(2027, 1, d) for d in range(4, 9))],
        workdays=[],
        source="测试用节假日安排",
    )
    assert await load_holiday_year(ctx, test_year) == 1
    await session.commit()
    await session.refresh(w.case)
    assert (w.case.result_due_on, w.case.result_due_provisional) == (D(2027, 1, 25), False)
    recomputed = (
        await session.scalars(
            select(AuditEvent.data).where(AuditEvent.action == "deadlines.recomputed")
        )
    ).one()
    assert recomputed["changes"] == [
        {
            "subject": f"case:{w.case.code}",
            "field": "result_due_on",
            "from": "2027-01-18",
            "to": "2027-01-25",
            "provisional": False,
        }
    ]


async def test_an_objections_reply_and_correction_are_counted_again_from_its_recheck_004_art20(
    ctx, session
):
    """004 第二十条: once rechecked, the reply and (an error found) the correction are due some
    working days after the recheck; loading a year's holidays counts both again from that day."""
    w = await build_world(session)
    rechecked = D(2026, 12, 28)
    cal = await ctx.work_calendar()
    objection = Objection(
        case_id=w.case.id,
        filed_by="当事人",
        content="结果有误",
        received_on=D(2026, 12, 1),
        state=ObjectionState.ERROR_FOUND,
        recheck_due_on=D(2026, 12, 29),
        rechecked_on=rechecked,
        reply_due_on=cal.add_workdays(rechecked, ctx.rules.reply_workdays).day,
        correction_due_on=cal.add_workdays(rechecked, ctx.rules.correction_workdays).day,
    )
    session.add(objection)
    await session.commit()
    at_day(ctx, D(2026, 11, 20))
    test_year = HolidayFile(
        2027, holidays=[*(D(2027, 1, d) for d in range(1, 9))], workdays=[], source="测试用"
    )
    await load_holiday_year(ctx, test_year)
    await session.commit()
    await session.refresh(objection)
    assert (objection.reply_due_on, objection.correction_due_on) == (D(2027, 1, 26), D(2027, 1, 12))


async def test_the_ticks_narrow_query_finds_what_the_full_scan_finds(ctx, session):
    """The nudge tick reads only cases that can fall due by T-3 (bench/ticks.py); over weeks it
    must pick exactly the nudges a scan of every open case picks: window deadlines (no
    inspection date), inspection-date deadlines and reviews of submitted results alike."""
    w = await build_world(session, case_no=1)
    for n, target_no in ((2, "91330424MA28AQAQ2A"), (3, "91330424MA28AQAQ3B")):
        await add_case(session, w, n, uscc=target_no, name=f"对象{n}", group=(w.a1,))
    at_day(ctx, D(2026, 3, 12))
    await record_inspection_date(acting(ctx, w.a1), w.case.code, D(2026, 3, 10))
    await session.commit()
    at_day(ctx, D(2026, 3, 20))
    await enter_other_parts(session, w.case.code, w.a2, ctx.clock.now())
    await submit_result(acting(ctx, w.a2), w.case.code, **CLEAN)
    await session.commit()
    cal = await ctx.work_calendar()
    schedule = set(ctx.rules.nudge_before_workdays)
    seen: set[str] = set()
    for offset in range(60):
        today = D(2026, 3, 20) + dt.timedelta(days=offset)
        horizon = cal.add_workdays(today, max(schedule)).day
        full = [o.key for o in await due_items(ctx, today) if o.overdue or o.days_left in schedule]
        narrow = [
            o.key
            for o in await due_items(ctx, today, horizon=horizon)
            if o.overdue or o.days_left in schedule
        ]
        assert narrow == full, today
        seen.update(k.split(":")[0] for k in full)
    assert seen == {"case", "review"}


DAY = dt.date(2026, 12, 7)


def test_a_long_nudge_lists_the_most_urgent_and_counts_the_rest() -> None:
    """A digest of 35 items shows the first 30 (the caller sorts overdue first) and says how
    many more there are, instead of being cut mid-line by the platform's size limit."""
    items = [
        Obligation(
            f"case:{i}", "result_entry", f"LJ-2026-001-{i:03d} 某公司", 1, (), DAY, False, -1
        )
        for i in range(SHOWN + 5)
    ]
    body = _listing("nudge_digest", "待办提醒", items, DAY, "").body
    listed = [line for line in body.splitlines() if line.startswith("- ⚠")]
    assert len(listed) == SHOWN and "LJ-2026-001-029" in body and "LJ-2026-001-030" not in body
    assert "另有 5 项（此处只列出最紧急的 30 项）" in body
    assert "另有" not in _listing("nudge_digest", "待办提醒", items[:SHOWN], DAY, "").body


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL plans from statistics
async def test_the_nudge_tick_finds_due_cases_through_the_deadline_index(ctx, session):
    """bench/ticks.py: filtered by task first, the tick walked every open case of every live
    task (100,000) to nudge the 2,000 due. Each kind of due case has its own index: the
    deadline's, the task's (window deadline), the results' state. SQLite's query plan only."""
    await build_world(session)
    at_day(ctx, D(2026, 4, 27))
    seen = []

    def capture(_conn, _cursor, statement, params, _context, _many):
        seen.append((statement, params))

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", capture)
    try:
        await enqueue_nudges(ctx, D(2026, 4, 27))
    finally:
        event.remove(bind, "before_cursor_execute", capture)
    statement, params = next((s, p) for s, p in seen if "UNION ALL" in s)
    conn = await session.connection()
    plan = [
        str(row)
        for row in (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)).all()
    ]
    assert any("ix_inspection_case_result_due_on" in row for row in plan), plan
    assert not any("SCAN inspection_case" in row for row in plan), plan
