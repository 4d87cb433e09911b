"""移送 / 签收 through Dispatcher.handle (001 第十七条, 004 第二十一条): the receiving department's
chat gets the clue and must acknowledge; the leaders' summary counts open referrals."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import FixedClock, china_noon
from core.models import Referral
from core.summary import daily_summary, summary_message
from tests.case_factories import World, build_world
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


async def test_referral_to_an_unknown_department_says_how_to_name_one(
    sessionmaker, clock, w
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    text = bodies(await send(sessionmaker, d, text_event(w.a1.code, f"移送 {CASE} 某局 线索")))
    assert "找不到部门“某局”" in text and "简称或代码" in text
