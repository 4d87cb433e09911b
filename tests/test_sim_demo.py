"""`serve --demo`'s first hour in the simulator: a task waits for answers, a guided script says
who to become and what to type, and a demo clock (demo only, audited, never backwards) reaches
the beacon's publication so a draw can be confirmed."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from core.clock import CHINA_TZ, FixedClock
from core.demo_clock import ACTION, DemoClock, restore_offset
from core.demo_guide import TITLES
from core.models import AuditEvent, Invitation, OutboxMessage, ScheduledRun
from tests.browser import shot_path
from tests.dispatch_support import make_dispatcher, send, text_event
from tests.server_helpers import demo_client, make_services

START = dt.datetime(2026, 11, 30, 10, 0, tzinfo=CHINA_TZ)  # a Monday


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: the simulator is a local trial tool on the embedded database."""
    return sqlite_url


async def test_a_fresh_demo_has_a_task_waiting_and_the_guide_names_who_answers(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client, _ = await demo_client(sessionmaker, START)
    try:
        step = await (await client.get("/sim/api/guide")).json()
        assert step["number"] == 1 and step["say"].startswith("接受 LJ-2026-")
        async with sessionmaker() as session:
            pending = list(await session.scalars(select(Invitation.state)))
        assert pending and set(pending) == {"pending"}
        assert step["who"].endswith("001")  # a participating department's liaison
    finally:
        await client.close()


async def test_the_demo_clock_moves_forward_only_and_is_audited(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client, clock = await demo_client(sessionmaker, START)
    try:
        resp = await client.post("/sim/api/clock", json={"workdays": 3})
        assert resp.status == 200 and (await resp.json())["label"].startswith("2026年12月3日 周四")
        assert clock.today() == dt.date(2026, 12, 3)
        resp = await client.post("/sim/api/clock", json={"to": "beacon"})
        assert resp.status == 400 and "抽取" in (await resp.json())["error"]  # nothing frozen
        resp = await client.post("/sim/api/clock", json={"workdays": -2})
        assert resp.status == 400 and clock.today() == dt.date(2026, 12, 3)
        async with sessionmaker() as session:
            moves = list(
                await session.scalars(select(AuditEvent.data).where(AuditEvent.action == ACTION))
            )
            assert [m["why"] for m in moves] == ["快进 3 个工作日"]
            restarted = DemoClock(FixedClock(START))  # a restart keeps the demo's day
            await restore_offset(
                make_services(sessionmaker, restarted).core_ctx(session), restarted
            )
        assert restarted.today() == dt.date(2026, 12, 3)
    finally:
        await client.close()


async def test_moving_the_demo_clock_runs_each_passed_days_ticks_in_order(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The demo clock "moves the server's time forward so deadlines and nudges come due": each
    daily tick runs for every day the move passes, at its time of day and in order, as a server
    running through those days would have — the reply nudges at T-3/T-1/T-0 (000 §七 reply
    deadline), the leaders' summaries on working days, the office's weekly warning that next
    year's holiday data is missing (from 1 November), and the invitations expiring the day after
    their deadline, after the T-0 nudge. A second move goes on from where the first stopped."""
    client, clock = await demo_client(sessionmaker, START)
    times = make_services(sessionmaker, clock).settings.scheduler
    try:
        assert (await client.post("/sim/api/clock", json={"workdays": 9})).status == 200
        assert clock.today() == dt.date(2026, 12, 11)
        assert (await client.post("/sim/api/clock", json={"workdays": 1})).status == 200
    finally:
        await client.close()
    days = [dt.date(2026, 12, d) for d in range(1, 15)]  # after 30 Nov 10:00, to 14 Dec 10:00
    workdays = [d for d in days if d.weekday() < 5]
    async with sessionmaker() as session:
        runs = (await session.execute(select(ScheduledRun.job, ScheduledRun.day))).all()
        ran_at = list(await session.scalars(select(ScheduledRun.ran_at)))
        digests = list(
            await session.scalars(select(AuditEvent.at).where(AuditEvent.action == "nudge.digest"))
        )
        expired = list(
            await session.scalars(
                select(AuditEvent.at).where(AuditEvent.action == "invitation.expired")
            )
        )
        warnings = list(
            await session.scalars(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.idempotency_key.like("holiday-warning:%")
                )
            )
        )
    by_job: dict[str, list[dt.date]] = {}
    for job, day in runs:
        by_job.setdefault(job, []).append(day)
    assert sorted(by_job["summaries"]) == sorted(by_job["nudges"]) == workdays
    assert sorted(by_job["holiday_warning"]) == sorted(by_job["housekeeping"]) == days
    # the warning weekly, on the week's first working day the tick runs (12-01, 12-07, 12-14)
    assert sorted(filter(None, warnings)) == [f"holiday-warning:2026-W{w}" for w in (49, 50, 51)]
    # each run at its own time of that day: the claims' times are the days' times
    assert {f"{at.astimezone(CHINA_TZ):%H:%M}" for at in ran_at} == {
        times.nudge_time,
        times.summary_time,
        times.holiday_warning_time,
        times.housekeeping_time,
    }
    reply_due = dt.date(2026, 12, 7)  # 5 working days after the demo task was opened
    nudged = sorted({at.astimezone(CHINA_TZ).date() for at in digests})
    assert nudged == [dt.date(2026, 12, 2), dt.date(2026, 12, 4), reply_due]
    assert expired and {at.astimezone(CHINA_TZ).date() for at in expired} == {
        reply_due + dt.timedelta(days=1)
    }


async def test_outside_demo_mode_there_is_no_clock_control(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    services = make_services(sessionmaker, FixedClock(START))
    client = TestClient(TestServer(create_app(services, workers=()), host="127.0.0.1"))
    await client.start_server()
    try:
        assert (await client.post("/sim/api/clock", json={"workdays": 3})).status in (404, 405)
        assert (await client.get("/sim/api/guide")).status == 404
    finally:
        await client.close()


# ---------------------------------------------------------------- the guided path in a browser


async def _follow_guide(page: Any, until: str) -> None:
    """Press 切换到该人员并填入命令 and send, step after step, until the guide shows `until`."""
    for _ in range(8):
        title = await page.inner_text("#guide-title")
        if until in title:
            return
        before = title + await page.inner_text("#guide-who")
        await page.click("#guide-go")
        await page.click("#composer button")
        await page.wait_for_function(
            "b => document.querySelector('#guide-title').innerText"
            " + document.querySelector('#guide-who').innerText !== b",
            arg=before,
            timeout=20000,
        )
    raise AssertionError(f"the guide never reached {until}")


async def test_guided_path_lead_liaison_fast_forwards_and_confirms_the_draw(
    sessionmaker: async_sessionmaker[AsyncSession], phone: Any
) -> None:
    client, clock = await demo_client(sessionmaker, START, workers=("inbox", "sender"))
    url = str(client.make_url("/sim"))
    try:
        await phone.goto(url)
        await phone.wait_for_selector("#guide-go:not([hidden])")
        await _follow_guide(phone, "牵头部门冻结抽取池")
        await _follow_guide(phone, "快进到信标公布后")
        frozen_on = clock.today()
        await phone.click("#to-beacon")
        await phone.wait_for_function(
            "d => !document.querySelector('#clock').innerText.includes(d)",
            arg=f"{frozen_on.month}月{frozen_on.day}日",
            timeout=10000,
        )
        await _follow_guide(phone, "联络员申请更换检查人员")
        await phone.screenshot(path=shot_path("sim-locked"))
        await phone.wait_for_selector(".msg >> text=已锁定", timeout=20000)
        await _follow_guide(phone, "检查人员录入结果")  # 更换 → 批准 → 移送 → 签收 on the way
        await phone.click("#guide-go")  # become an inspector: the assignment is there
        await phone.wait_for_selector(".msg >> text=LJ-2026-001-", timeout=20000)
        await phone.screenshot(path=shot_path("sim-inspector"))
    finally:
        await client.close()


async def test_the_guide_walks_a_replacement_a_referral_and_an_objection_in_chat(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 8: `serve --demo` exercises 更换 → 批准 (001 第十四条, 004 第十三条), 移送 → 签收
    (001 第十七条, 004 第二十一条) and 异议 → 复查 → 答复 (004 第二十条) as typed chat commands:
    doing exactly what the guide says, step after step, reaches the end with each recorded."""
    client, _clock = await demo_client(sessionmaker, START)
    d = make_dispatcher(sessionmaker, _clock)
    titles: list[str] = []
    said = ("", "")
    try:
        # 4 answers, freeze, confirm, 更换/批准, 移送/签收, one case's 5 parts and 5 reviews,
        # 异议/复查/答复: a person follows the guide in a few dozen steps, not once per case
        for _ in range(40):
            step = await (await client.get("/sim/api/guide")).json()
            if step["done"]:  # the last step's number, as 13/13 reads: never 14 of 13
                assert step["number"] == step["total"] == len(TITLES), step
                break
            if step["number"] == 3 and step["title"] not in titles:
                assert (await client.post("/sim/api/clock", json={"to": "beacon"})).status == 200
            if step["title"] not in titles:
                titles.append(step["title"])
            assert (step["who"], step["say"]) != said, step  # the last one moved nothing on
            said = (step["who"], step["say"])
            if days := re.search(r"快进 (\d+) 个工作日”，再发送", step["hint"]):
                moved = await client.post("/sim/api/clock", json={"workdays": int(days[1])})
                assert moved.status == 200
            await send(sessionmaker, d, text_event(*said))
        else:
            raise AssertionError(f"the guide never finished: {titles}")
    finally:
        await client.close()
    assert titles == [t for t in TITLES if t != "牵头部门公示"]  # approval publishes
    async with sessionmaker() as session:
        actions = set(await session.scalars(select(AuditEvent.action)))
    assert {
        "case.replacement.approved",
        "case.referral",
        "referral.acknowledged",
        "objection.filed",
        "objection.rechecked",
        "objection.replied",
    } <= actions
