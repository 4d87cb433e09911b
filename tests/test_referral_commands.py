"""移送 / 签收 through Dispatcher.handle (001 第十七条, 004 第二十一条): the receiving department's
chat gets the clue and must acknowledge; the leaders' summary counts open referrals."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.models import OutboxMessage, Referral
from core.nudges import enqueue_nudges
from core.obligations.due import due_items
from core.summary import daily_summary, summary_message
from tests.case_factories import World, at_day, build_world
from tests.dispatch_support import audit_rows, bodies, make_dispatcher, send, text_event

CASE = "LJ-2026-001-001"


@pytest.fixture
async def w(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    async with sessionmaker() as s:
        world = await build_world(s)
    clock.set(china_noon(dt.date(2026, 3, 5)))
    return world


async def test_referral_reaches_the_department_and_is_acknowledged_004_art21(
    sessionmaker, clock, w, ctx
) -> None:
    """001 第十七条, 004 第二十一条: a group member refers a clue to another department; its chat
    is told and asked to sign; until it signs the summary counts it; signing tells the lead."""
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} WJ 未取得卫生许可"))
    assert "已移送" in bodies(rows)
    told = [
        r
        for r in rows
        if r.destination.get("kind") == "department"
        and r.destination.get("department_id") == w.other.id
    ]
    assert told and f"签收 {CASE}" in told[0].message["body"]
    assert "于 **2026年3月10日** 前" in told[0].message["body"]  # 3 working days on (Thu → Tue)
    assert "移送待签收：1 件" in summary_message(await daily_summary(ctx, clock.today())).body

    refused = await send(sessionmaker, d, text_event(w.a2.code, f"签收 {CASE}"))
    assert "没有移送给本部门" in bodies(refused)
    refused = await send(sessionmaker, d, text_event(w.b1.code, f"签收 {CASE}"))
    assert "联络员、分管领导" in bodies(refused)
    rows = await send(sessionmaker, d, text_event(w.other_liaison.code, f"签收 {CASE}"))
    assert "已签收" in bodies(rows)
    assert any(r.destination.get("department_id") == w.lead.id for r in rows)
    async with sessionmaker() as s:
        referral = await s.scalar(select(Referral))
        assert referral is not None and referral.acknowledged_by_id == w.other_liaison.id
    assert len(await audit_rows(sessionmaker, "referral.acknowledged")) == 1
    assert "移送待签收" not in summary_message(await daily_summary(ctx, clock.today())).body
    # a colleague's second 签收 is told who signed, not that nothing was sent to the department
    again = bodies(await send(sessionmaker, d, text_event(w.other_leader.code, f"签收 {CASE}")))
    assert f"已由{w.other_liaison.name}于" in again and "无需再签收" in again


async def test_referral_to_an_unknown_department_says_how_to_name_one(
    sessionmaker, clock, w
) -> None:
    """… and, as a body outside the county's departments may be the judiciary, the words that
    name it (it was refused with no pointer)."""
    d = make_dispatcher(sessionmaker, clock)
    text = bodies(await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} 某局 线索")))
    assert "找不到部门“某局”" in text and "简称或代码" in text
    assert "移送司法机关的，接收单位写“公安机关”或“人民检察院”" in text


@pytest.mark.parametrize("receiver", ["公安机关", "县人民检察院", "公安局"])
async def test_a_referral_to_the_judiciary_is_the_leads_to_hand_over_001_art17(
    sessionmaker, clock, w, receiver
) -> None:
    """001 第十七条 (涉嫌犯罪的，由牵头部门负责移送司法机关): `移送 案件号 公安机关 线索` was
    refused as an unknown department with no word of what to write; the result form calls it
    移送司法机关. A body of the judiciary that is no county department is kept as typed, the
    lead department is told, and nobody is asked to sign."""
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(
        sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} {receiver} 涉嫌生产假药")
    )
    reply = bodies([r for r in rows if r.destination.get("officer_id") == w.a1.id])
    assert f"已移送：{CASE}" in reply and f"接收单位：{receiver}（移送司法机关）" in reply, reply
    assert "由牵头部门负责移送" in reply and "已通知该部门签收" not in reply
    async with sessionmaker() as s:
        [referral] = await s.scalars(select(Referral))
    assert (referral.kind, referral.to_department, referral.to_department_id) == (
        "移送司法机关",
        receiver,
        None,
    )
    lead = [r for r in rows if r.destination.get("department_id") == w.lead.id]
    assert lead and "移送司法机关" in lead[0].message["title"]
    assert not [r for r in rows if r.destination.get("department_id") == w.other.id]


async def test_a_referral_may_name_the_department_informally_004_art21(
    sessionmaker, clock, w
) -> None:
    """004 第二十一条: officers say 卫健委 for 县卫生健康委员会 (seed 003 writes 旗卫健委); the
    clue reaches that department's chat. It used to be refused as an unknown department."""
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} 卫健委 未取得卫生许可"))
    assert "接收部门：县卫生健康委员会" in bodies(rows)
    assert any(
        r.destination.get("kind") == "department"
        and r.destination.get("department_id") == w.other.id
        for r in rows
    )


async def test_an_unsigned_referral_is_nudged_then_escalated_and_counted_late_004_art21(
    sessionmaker, clock, w, ctx
) -> None:
    """001 第十七条 (及时移交), 004 第二十一条 (防止监管脱节): the receiving department has
    Rules.referral_ack_workdays (3) working days to sign; its chat is nudged before the
    deadline, its leaders once it is overdue, and the leaders' summary counts it late."""
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} WJ 未取得卫生许可"))
    # made Thursday 2026-03-05: due Tuesday 03-10 (three working days on)
    [due] = [o for o in await due_items(ctx, clock.today()) if o.kind == "referral_ack"]
    assert (due.due, due.department_id) == (dt.date(2026, 3, 10), w.other.id)
    assert set(due.officer_ids) == {w.other_liaison.id, w.other_leader.id}

    async def nudges_on(day: dt.date) -> list[OutboxMessage]:
        at_day(ctx, day)
        async with sessionmaker() as s, s.begin():
            await enqueue_nudges(Ctx(session=s, clock=clock), day)
        async with sessionmaker() as s:
            return [
                r
                for r in await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
                if f"签收 {CASE}" in r.message.get("body", "")
                and r.created_at >= china_noon(day) - dt.timedelta(hours=12)
            ]

    before = await nudges_on(dt.date(2026, 3, 9))  # T-1
    assert [r.destination.get("department_id") for r in before] == [w.other.id]
    assert "签收移送线索" in before[0].message["body"]
    late = await nudges_on(dt.date(2026, 3, 11))  # one working day overdue
    assert {r.destination.get("officer_id") for r in late} >= {w.other_leader.id}
    body = summary_message(await daily_summary(ctx, dt.date(2026, 3, 11), w.other.id)).body
    assert "移送待签收：1 件，其中 ⚠ 逾期未签收 1 件" in body

    await send(sessionmaker, d, text_event(w.other_leader.code, f"签收 {CASE}"))
    assert not [o for o in await due_items(ctx, clock.today()) if o.kind == "referral_ack"]
    body = summary_message(await daily_summary(ctx, dt.date(2026, 3, 11), w.other.id)).body
    assert "移送待签收" not in body


async def test_a_referral_to_the_lead_department_asks_its_own_chat_to_sign_004_art21(
    sessionmaker, clock, w
) -> None:
    """001 第十七条: a clue for the lead department itself (e.g. its 办案机构) is signed for
    like any other: the lead's chat is asked for 签收 with the deadline, not just told."""
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} SJ 未公示年度报告"))
    lead = [r for r in rows if r.destination.get("department_id") == w.lead.id]
    assert len(lead) == 1 and f"签收 {CASE}" in lead[0].message["body"]
    assert "2026年3月10日" in lead[0].message["body"]
    signed = await send(sessionmaker, d, text_event(w.lead_liaison.code, f"签收 {CASE}"))
    assert "已签收" in bodies(signed)


async def test_the_same_clue_sent_twice_is_one_referral_while_unsigned_004_art21(
    sessionmaker, clock, w
) -> None:
    """004 第二十一条: one problem is handed over once; the same 移送 sent again (a resend, a
    double tap) made a second referral for the department to sign. It is refused, saying when
    the first was sent; a new clue, or the same one after 签收, is a referral of its own."""
    d = make_dispatcher(sessionmaker, clock)
    typed = f"移送 {CASE} 卫健 未取得卫生许可"
    await send(sessionmaker, d, text_event(w.a1.code, typed))
    again = bodies(await send(sessionmaker, d, text_event(w.a2.code, typed)))
    assert f"案件 {CASE} 已于 2026年3月5日 12:00 将相同线索" in again
    assert "尚未签收，不再重复移送" in again
    await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} 卫健 从业人员无健康证明"))
    await send(sessionmaker, d, text_event(w.other_liaison.code, f"签收 {CASE}"))
    await send(sessionmaker, d, text_event(w.a1.code, typed))
    async with sessionmaker() as s:
        contents = list(await s.scalars(select(Referral.content).order_by(Referral.id)))
    assert contents == ["未取得卫生许可", "从业人员无健康证明", "未取得卫生许可"]


async def test_who_may_refer_is_said_as_the_rule_has_it_004_art21(sessionmaker, clock, w) -> None:
    """The lead's leader may refer (README access matrix): the refusal and the 帮助 line name
    the leader beside the group members and the lead's liaison."""
    d = make_dispatcher(sessionmaker, clock)

    async def say(code: str, text: str) -> str:
        return bodies(await send(sessionmaker, d, text_event(code, text)))

    rule = "本案检查组成员或牵头部门的联络员、分管领导"
    assert f"只有{rule}可以登记移送" in await say(w.outsider.code, f"移送 {CASE} WJ 线索")
    assert rule in await say(w.a1.code, "帮助 移送")
    assert "已移送" in await say(w.lead_leader.code, f"移送 {CASE} WJ 未取得卫生许可")
