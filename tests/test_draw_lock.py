"""A lock is final (docs/architecture.md §3): a failed inspector match keeps it and reveals
nothing more; 匹配 retries the match. Only the lead department draws — not even the office's
admin."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from core.clock import china_noon
from core.models import Draw, GroupMember, Officer
from tests import factories as f
from tests.dispatch_support import bodies, make_dispatcher, ready_world, send, text_event


@pytest.fixture
async def ready(sessionmaker, clock) -> tuple[f.World, str]:
    return await ready_world(sessionmaker, clock, inspectors=2, n_targets=30)


async def test_failed_match_keeps_the_lock_and_match_retries(sessionmaker, clock, ready) -> None:
    w, code = ready
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"抽取 {code}"))
    lead_inspectors = [o.id for o in w.lead.inspectors]
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Officer).where(Officer.id.in_(lead_inspectors)).values(active=False))
    clock.set(china_noon(dt.date(2026, 3, 4)))  # the default beacon (3 March's 福彩3D) is out
    reply = bodies(
        await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 417"))
    )
    assert "抽取结果已锁定" in reply and f"匹配 {code}" in reply
    async with sessionmaker() as s:
        target_draw = await s.scalar(
            select(Draw).where(Draw.task_code == code, Draw.kind == "targets")
        )
        assert target_draw.state == "locked" and target_draw.beacon == "417"
        assert await s.scalar(select(GroupMember.id).limit(1)) is None
    # no re-roll: a second confirm with another beacon is refused
    again = bodies(
        await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 999"))
    )
    assert "已锁定" in again
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Officer).where(Officer.id.in_(lead_inspectors)).values(active=True))
    matched = bodies(await send(sessionmaker, d, text_event(w.lead.liaison.code, f"匹配 {code}")))
    assert "执法检查人员已匹配" in matched
    async with sessionmaker() as s:
        assert await s.scalar(select(GroupMember.id).limit(1)) is not None
        target_draw = await s.scalar(
            select(Draw).where(Draw.task_code == code, Draw.kind == "targets")
        )
        assert target_draw.beacon == "417"


async def test_office_admin_cannot_freeze_or_confirm(sessionmaker, clock, ready) -> None:
    w, code = ready
    d = make_dispatcher(sessionmaker, clock)
    denied = bodies(await send(sessionmaker, d, text_event(w.admin.code, f"抽取 {code}")))
    assert "只有牵头部门" in denied
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.id).where(Draw.task_code == code)) is None
