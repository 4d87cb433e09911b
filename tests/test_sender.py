"""The outbox sender against a fake WeCom on loopback (real adapter) and against scripted
platform doubles: rate limits, retries, restarts, permanent failures, concurrent senders."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import Counter
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from bot.platforms.base import Channel, SendResult
from bot.platforms.wecom import WeComAdapter
from bot.sender import Sender
from bot.services import Services
from bot.workers import poll_loop
from core import outbox
from core.clock import FixedClock
from core.messages import Destination, Event, OutMessage, Platform
from core.models import (
    AuditEvent,
    ChatBinding,
    Officer,
    OutboxMessage,
    PlatformAccount,
)
from core.states import OutboxState
from tests.fakes.wecom import FakeWeCom
from tests.server_helpers import add_department, make_services, outbox_count, wecom_settings


class ScriptedPlatform:
    """The platform side as a test double: answers from a script, records what it accepted."""

    name = Platform.WECOM
    callback_path = "/wecom/callback"
    buttons_call_back = True

    def __init__(self, failures: list[SendResult] | None = None, delay_s: float = 0.0) -> None:
        self.failures = list(failures or [])
        self.delay_s = delay_s
        self.accepted: list[str] = []
        self.stop_after: int | None = None
        self.reached = asyncio.Event()  # set once `stop_after` messages were accepted

    async def send(
        self, channel: Channel, msg: OutMessage, mention_user_ids: list[str] | None = None
    ) -> SendResult:
        await asyncio.sleep(self.delay_s)
        if self.failures:
            return self.failures.pop(0)
        self.accepted.append(msg.body)
        if self.stop_after is not None and len(self.accepted) >= self.stop_after:
            self.reached.set()
        return SendResult(True)

    async def close(self) -> None:
        return None

    # the sender never receives: the inbound half of PlatformAdapter is not used here
    async def verify_url(self, request: web.Request) -> web.Response:
        raise AssertionError("not a callback endpoint")

    async def parse(self, request: web.Request) -> list[Event]:
        raise AssertionError("not a callback endpoint")

    async def ack(self, events: list[Event], new: list[bool]) -> web.Response:
        raise AssertionError("not a callback endpoint")


@pytest.fixture
async def fake_wecom(clock: FixedClock) -> AsyncIterator[FakeWeCom]:
    fake = await FakeWeCom(clock=clock).start()
    yield fake
    await fake.close()


def wecom_adapter(fake: FakeWeCom, clock: FixedClock) -> WeComAdapter:
    return WeComAdapter(wecom_settings(fake), clock)


async def bind_robot(
    session: AsyncSession, url: str, *, department_id: int | None = None, office: bool = False
) -> int:
    binding = ChatBinding(
        platform="wecom", department_id=department_id, is_office=office, webhook_url=url
    )
    session.add(binding)
    await session.flush()
    return binding.id


async def queue(
    session: AsyncSession, dest: Destination, n: int, now: dt.datetime, prefix: str = "msg"
) -> None:
    for i in range(n):
        await outbox.enqueue(session, dest, OutMessage.text(f"{prefix}-{i}"), now=now)
    await session.commit()


async def add_officer(
    session: AsyncSession, dept: int, code: str, name: str, wecom: str | None = None
) -> Officer:
    """An officer of `dept`, reached on WeCom as `wecom` (none: no platform account), flushed."""
    accounts = [PlatformAccount(platform="wecom", account=wecom)] if wecom else []
    officer = Officer(code=code, name=name, department_id=dept, accounts=accounts)
    session.add(officer)
    await session.flush()
    return officer


async def drain(sender: Sender, clock: FixedClock, *, step: dt.timedelta, rounds: int) -> None:
    for _ in range(rounds):
        await sender.run_once()
        clock.advance(step)


def delivered_texts(fake: FakeWeCom) -> Counter[str]:
    return Counter(
        body["text"]["content"] for body in fake.delivered if body.get("msgtype") == "text"
    )


async def test_group_robot_rate_limit_is_never_exceeded(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, fake_wecom: FakeWeCom
) -> None:
    adapter = wecom_adapter(fake_wecom, clock)
    services = make_services(sessionmaker, clock, {Platform.WECOM: adapter})
    async with sessionmaker() as session:
        dept = await add_department(session)
        await bind_robot(session, fake_wecom.webhook_url(), department_id=dept)
        await queue(session, Destination.department(dept), 45, clock.now())
    sender = Sender(services)
    per_minute: list[int] = []
    for _ in range(4):
        before = len(fake_wecom.delivered)
        for _ in range(3):  # several ticks inside the same minute
            await sender.run_once()
            clock.advance(dt.timedelta(seconds=1))
        per_minute.append(len(fake_wecom.delivered) - before)
        clock.advance(dt.timedelta(seconds=57))
    await adapter.close()
    assert per_minute == [20, 20, 5, 0]
    assert delivered_texts(fake_wecom) == Counter(f"msg-{i}" for i in range(45))
    async with sessionmaker() as session:
        assert await outbox_count(session, state="sent") == 45
        rows = (await session.scalars(select(OutboxMessage))).all()
    # each went out on its one attempt: waiting for the window is not an attempt
    assert all(r.attempts == 1 for r in rows)
    # the robot was never called over its limit: every call was a delivery, no 45009
    assert len(fake_wecom.calls("/cgi-bin/webhook/send")) == 45


async def test_rate_limited_robot_then_restart_mid_queue_delivers_each_once(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, fake_wecom: FakeWeCom
) -> None:
    adapter = wecom_adapter(fake_wecom, clock)
    services = make_services(sessionmaker, clock, {Platform.WECOM: adapter})
    async with sessionmaker() as session:
        await bind_robot(session, fake_wecom.webhook_url(), office=True)
        await queue(session, Destination.office(), 30, clock.now())
    # the robot answers "frequency limit" (45009) to the next five calls
    fake_wecom.script.fail_next(
        "webhook/send", {"errcode": 45009, "errmsg": "api freq out of limit"}, 5
    )
    first = Sender(services)
    await drain(first, clock, step=dt.timedelta(seconds=61), rounds=4)
    clock.advance(dt.timedelta(minutes=5))  # past the backed-off retry of the rate-limited row
    # the process dies holding a claim: its rows are leased but never sent
    async with sessionmaker() as session:
        held = await outbox.claim_due(session, 5, clock.now(), dt.timedelta(seconds=120))
        await session.commit()
    assert held, "the dying process should have been holding some rows"
    second = Sender(services)
    await drain(second, clock, step=dt.timedelta(seconds=61), rounds=12)
    await adapter.close()
    texts = delivered_texts(fake_wecom)
    assert texts == Counter(f"msg-{i}" for i in range(30)), texts
    async with sessionmaker() as session:
        assert await outbox_count(session, state="sent") == 30


async def test_graceful_stop_mid_queue_then_new_sender_finishes_exactly_once(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    platform = ScriptedPlatform(
        failures=[SendResult(False, retry_after=0.0, code="45009")] * 3, delay_s=0.005
    )
    services = make_services(
        sessionmaker,
        clock,
        {Platform.WECOM: platform},
        sender={"app_user_per_minute": 1000, "poll_interval_s": 0.05},
    )
    async with sessionmaker() as session:
        dept = await add_department(session)
        officers = [
            await add_officer(session, dept, f"O{i}", f"人员{i}", f"user{i}") for i in range(5)
        ]
        for officer in officers:
            await queue(
                session, Destination.officer(officer.id), 12, clock.now(), prefix=f"o{officer.id}"
            )
    wake = asyncio.Event()
    first = Sender(services)
    task = asyncio.create_task(first.run(wake))
    platform.stop_after = 15
    await asyncio.wait_for(platform.reached.wait(), 5)
    first.stop()
    await asyncio.wait_for(task, 5)
    async with sessionmaker() as session:
        assert await outbox_count(session, state="pending") > 0, "stopped too late to test"
        claimed = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.claimed_until.is_not(None))
        )
    assert claimed is None  # the unsent part of the batch was handed back
    # failed rows back off (at least 10 s even when the platform asked for 0): let time pass
    await drain(Sender(services), clock, step=dt.timedelta(minutes=5), rounds=10)
    assert Counter(platform.accepted) == Counter(
        f"o{o}-{i}" for o in range(1, 6) for i in range(12)
    )


async def test_invalid_webhook_disables_binding_and_alerts_the_office(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, fake_wecom: FakeWeCom
) -> None:
    adapter = wecom_adapter(fake_wecom, clock)
    services = make_services(sessionmaker, clock, {Platform.WECOM: adapter})
    async with sessionmaker() as session:
        dept = await add_department(session, name="卫生健康委")
        binding_id = await bind_robot(
            session, fake_wecom.webhook_url("removed-robot"), department_id=dept
        )
        await queue(session, Destination.department(dept), 1, clock.now())
    sender = Sender(services)
    await sender.run_once()  # 93000 from the robot
    await sender.run_once()  # the office alert (no office robot: to the simulator)
    await adapter.close()
    async with sessionmaker() as session:
        binding = await session.get(ChatBinding, binding_id)
        assert binding is not None and not binding.enabled
        assert binding.disabled_reason.startswith("93000")
        dead = await outbox.list_dead(session)
        assert [d.dest_key for d in dead] == [f"department:{dept}"]
        alert = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.dest_key == "office")
        )
        assert alert is not None and alert.state == "sent" and alert.channel == "sim"
        assert "卫生健康委" in alert.message["body"] and "93000" in alert.message["body"]
        audit = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "chat_binding.disabled")
        )
        assert audit is not None and audit.subject == f"chat_binding:{binding_id}"
        # later messages to the department no longer use the removed robot
        await queue(session, Destination.department(dept), 1, clock.now(), prefix="later")
    await sender.run_once()
    async with sessionmaker() as session:
        later = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == 3))
        assert later is not None and (later.state, later.channel) == ("sent", "sim")
    assert len(fake_wecom.calls("/cgi-bin/webhook/send")) == 1


async def test_dead_after_max_attempts_and_retry_brings_it_back(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    platform = ScriptedPlatform(failures=[SendResult(False, code="-2", detail="boom")] * 3)
    services = make_services(
        sessionmaker,
        clock,
        {Platform.WECOM: platform},
        sender={"max_attempts": 3, "backoff_base_s": 1, "backoff_cap_s": 4},
    )
    async with sessionmaker() as session:
        dept = await add_department(session)
        officer = await add_officer(session, dept, "O1", "张三", "zhangsan")
        await queue(session, Destination.officer(officer.id), 1, clock.now())
    sender = Sender(services, jitter=lambda: 0.0)
    await sender.run_once()
    async with sessionmaker() as session:
        row = await session.get(OutboxMessage, 1)
        assert row is not None and (row.state, row.attempts) == ("pending", 1)
        assert row.next_attempt_at == clock.now() + dt.timedelta(seconds=0.5)  # base/2, no jitter
    await drain(sender, clock, step=dt.timedelta(seconds=10), rounds=4)
    async with sessionmaker() as session:
        (dead,) = await outbox.list_dead(session)
        assert (dead.attempts, dead.last_error) == (3, "wecom -2: boom")
        await outbox.retry(session, dead.id, clock.now())
        await session.commit()
    await sender.run_once()
    assert platform.accepted == ["msg-0"]
    async with sessionmaker() as session:
        row = await session.get(OutboxMessage, 1)
        assert row is not None and row.state == "sent"


async def test_officer_without_platform_id_goes_to_the_simulator(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    platform = ScriptedPlatform()
    services = make_services(sessionmaker, clock, {Platform.WECOM: platform})
    async with sessionmaker() as session:
        dept = await add_department(session)
        officer = await add_officer(session, dept, "O1", "李四")
        await queue(session, Destination.officer(officer.id), 2, clock.now())
    assert await Sender(services).run_once() == 2
    assert platform.accepted == []
    async with sessionmaker() as session:
        assert await outbox_count(session, state="sent", channel="sim") == 2


async def concurrent_rig(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, platform: ScriptedPlatform
) -> Services:
    services = make_services(
        sessionmaker,
        clock,
        {Platform.WECOM: platform},
        sender={"app_user_per_minute": 1000, "batch_size": 7},
    )
    async with sessionmaker() as session:
        dept = await add_department(session, "D", "部门")
        officers = [
            await add_officer(session, dept, f"O{i}", f"人员{i}", f"u{i}") for i in range(10)
        ]
        for officer in officers:
            await queue(
                session, Destination.officer(officer.id), 10, clock.now(), prefix=f"o{officer.id}"
            )
    return services


async def test_two_concurrent_senders_never_double_send(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    platform = ScriptedPlatform(delay_s=0.002)
    services = await concurrent_rig(sessionmaker, clock, platform)
    senders = [Sender(services), Sender(services)]

    async def loop(sender: Sender) -> int:
        claimed = 0
        for _ in range(100):
            n = await sender.run_once()
            claimed += n
            if n == 0:
                await asyncio.sleep(0.001)
        return claimed

    claimed = await asyncio.gather(*(loop(s) for s in senders))
    counts = Counter(platform.accepted)
    assert len(counts) == 100 and set(counts.values()) == {1}
    assert all(c > 0 for c in claimed), f"both senders should have worked: {claimed}"


async def test_no_route_without_the_simulator_is_a_dead_letter_not_sent(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """In production (simulator off) a message nobody can receive must stay visible."""
    platform = ScriptedPlatform()
    services = make_services(
        sessionmaker, clock, {Platform.WECOM: platform}, simulator={"enabled": False}
    )
    async with sessionmaker() as session:
        dept = await add_department(session)
        officer = await add_officer(session, dept, "O1", "李四")  # no platform account
        await queue(session, Destination.officer(officer.id), 1, clock.now())
    await Sender(services).run_once()
    async with sessionmaker() as session:
        [row] = (await session.scalars(select(OutboxMessage))).all()
    assert row.state == "dead" and "no route" in row.last_error and row.channel != "sim"


async def test_a_claim_about_to_expire_is_handed_back_not_sent(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """Another process may claim a row once its lease runs out: never start a send then."""
    platform = ScriptedPlatform()
    services = make_services(sessionmaker, clock, {Platform.WECOM: platform})
    async with sessionmaker() as session:
        dept = await add_department(session)
        officer = await add_officer(session, dept, "O1", "李四", "u1")
        await queue(session, Destination.officer(officer.id), 3, clock.now())
        rows = await outbox.claim_due(session, 10, clock.now(), dt.timedelta(seconds=5))
        await session.commit()
    await Sender(services)._deliver_group(rows)
    assert platform.accepted == []
    async with sessionmaker() as session:
        assert await outbox_count(session, state="pending") == 3
        assert (
            await session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.claimed_until.is_not(None))
            )
            is None
        )


async def test_a_named_short_wait_still_backs_off(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """A platform asking for 5 s must not burn the attempt budget in a one-minute outage."""
    platform = ScriptedPlatform(failures=[SendResult(False, retry_after=5.0, code="-1")] * 3)
    services = make_services(
        sessionmaker, clock, {Platform.WECOM: platform}, sender={"backoff_base_s": 10.0}
    )
    async with sessionmaker() as session:
        dept = await add_department(session)
        officer = await add_officer(session, dept, "O1", "李四", "u1")
        await queue(session, Destination.officer(officer.id), 1, clock.now())
    waits = []
    for _ in range(3):
        await Sender(services, jitter=lambda: 0.0).run_once()
        async with sessionmaker() as session:
            row = await session.scalar(select(OutboxMessage))
        assert row is not None
        waits.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.set(row.next_attempt_at)
    assert waits == [5.0, 10.0, 20.0]  # max(named wait, 5·2^(n-1)) with zero jitter


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL plans from statistics
async def test_rate_limit_look_up_uses_the_destination_index(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """The look-up runs before every send; through ix_outbox_due it walked every sent row,
    so sending slowed down as the outbox grew (bench/soak.py: handling fell behind). SQLite's
    query plan only."""
    async with sessionmaker() as session:
        bind = session.get_bind()
        seen: list[tuple[str, tuple[Any, ...]]] = []

        def capture(
            _conn: object,
            _cursor: object,
            statement: str,
            params: tuple[Any, ...],  # SQLite's driver takes positional parameters
            _context: object,
            _many: bool,
        ) -> None:
            seen.append((statement, params))

        event.listen(bind, "before_cursor_execute", capture)
        try:
            await outbox.sent_since(session, "user:wecom:u1", "wecom", clock.now())
        finally:
            event.remove(bind, "before_cursor_execute", capture)
        statement, params = seen[-1]
        conn = await session.connection()
        plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)).all()
        assert any("ix_outbox_dest_state_sent" in str(row) for row in plan), plan


async def test_order_per_destination_survives_send_failures(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, fake_wecom: FakeWeCom
) -> None:
    """Issue 11 defect 3: the platform answers 500 for a while; every recipient still gets
    its messages in order: a row waiting for its retry holds the later rows of its
    destination back (they were sent past it: [7,5,8,9,6,0,1,2,3,4])."""
    adapter = wecom_adapter(fake_wecom, clock)
    services = make_services(sessionmaker, clock, {Platform.WECOM: adapter})
    users = [f"officer{n}" for n in range(3)]
    sender = Sender(services)
    fake_wecom.outage["/cgi-bin/message/send"] = 10**6  # down until further notice
    for i in range(6):  # commands keep coming three seconds apart while the platform is down
        async with sessionmaker() as session:
            for user in users:
                await queue(
                    session,
                    Destination.platform_user(Platform.WECOM, user),
                    1,
                    clock.now(),
                    prefix=f"{user}:{i}",
                )
        await drain(sender, clock, step=dt.timedelta(seconds=3), rounds=1)
    fake_wecom.outage.clear()
    await drain(sender, clock, step=dt.timedelta(seconds=20), rounds=30)
    await adapter.close()
    got: dict[str, list[int]] = {user: [] for user in users}
    for body in fake_wecom.delivered:
        user, i = body["text"]["content"].rsplit(":", 1)
        got[user].append(int(i.split("-")[0]))
    assert got == {user: list(range(6)) for user in users}


@pytest.mark.parametrize("duplicate_check_s", [300, 0])
async def test_a_resend_after_a_kill_between_send_and_record(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    fake_wecom: FakeWeCom,
    duplicate_check_s: int,
) -> None:
    """Issue 11 defect 6: a sender sent a row and died before recording it; when the lease
    runs out the row is sent again. WeCom's enable_duplicate_check (an interval longer than
    the lease) drops the second copy; with the check off the member gets it twice, which is
    what stays at-least-once on channels without such a check."""
    adapter = wecom_adapter(fake_wecom, clock)
    adapter.settings.duplicate_check_s = duplicate_check_s
    services = make_services(sessionmaker, clock, {Platform.WECOM: adapter})
    dest = Destination.platform_user(Platform.WECOM, "officer1")
    async with sessionmaker() as session:
        await queue(session, dest, 1, clock.now(), prefix="回复")
        [row] = await outbox.claim_due(
            session, 10, clock.now(), dt.timedelta(seconds=services.settings.sender.lease_s)
        )
        await session.commit()
    # the dying process's send: it reached WeCom, the outcome was never recorded
    assert (
        await adapter.send(
            Channel(Platform.WECOM, "user", "officer1"), OutMessage.model_validate(row.message)
        )
    ).ok
    clock.advance(dt.timedelta(seconds=services.settings.sender.lease_s + 1))
    await Sender(services).run_once()
    await adapter.close()
    async with sessionmaker() as session:
        assert await outbox_count(session, state="sent") == 1
    assert len(fake_wecom.calls("/cgi-bin/message/send")) == 2
    assert len(fake_wecom.delivered) == (1 if duplicate_check_s else 2)


async def test_a_row_behind_another_claim_waits_and_so_do_the_later_ones(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """The sender checks its whole claim in one look-up (it did one per row): a claimed row
    with an earlier pending row of its destination outside the claim (another process took
    it in the same moment) waits, and so do the destination's later rows in the claim."""
    a, b = (
        Destination.platform_user(Platform.WECOM, "a"),
        Destination.platform_user(Platform.WECOM, "b"),
    )
    async with sessionmaker() as session:
        rows = [
            await outbox.enqueue(session, dest, OutMessage.text(f"{n}"), now=clock.now())
            for n, dest in enumerate([a, a, a, b, b, b])
        ]
        await session.commit()
        ids = [row.id for row in rows if row is not None]
        by_id = {row.id: row for row in rows if row is not None}
        claim = [by_id[i] for i in (ids[1], ids[2], ids[3], ids[5])]  # a: 2nd, 3rd; b: 1st, 3rd
        behind = await outbox.behind_other_claims(session, claim)
        whole = await outbox.behind_other_claims(session, [by_id[i] for i in ids])
    assert behind == {ids[1], ids[2], ids[5]}
    assert whole == set()


async def test_sends_of_one_claim_are_marked_together_each_at_its_own_time(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """mark_sent_many: one claim's rows keep each its own send time (the rate limits' window),
    and a row whose claim was taken over is left to its new claimant."""
    async with sessionmaker() as session:
        await queue(session, Destination.platform_user(Platform.WECOM, "u1"), 3, clock.now())
        rows = await outbox.claim_due(session, 10, clock.now(), dt.timedelta(seconds=60))
        await session.commit()
    token = rows[0].claimed_until
    assert token is not None and {row.claimed_until for row in rows} == {token}
    t0 = clock.now()
    marks = [
        outbox.SentMark(rows[0].id, token, t0, "wecom"),
        outbox.SentMark(rows[1].id, token, t0 + dt.timedelta(seconds=7), "wecom"),
        outbox.SentMark(rows[2].id, token - dt.timedelta(seconds=1), t0, "wecom"),  # stale
    ]
    async with sessionmaker() as session:
        assert await outbox.mark_sent_many(session, marks) == {rows[0].id, rows[1].id}
        await session.commit()
    async with sessionmaker() as session:
        found = {
            row.id: row
            for row in await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        }
    assert [(found[r.id].state, found[r.id].sent_at) for r in rows] == [
        ("sent", t0),
        ("sent", t0 + dt.timedelta(seconds=7)),
        ("pending", None),
    ]


async def test_busy_claims_are_paced_and_a_wake_after_a_quiet_spell_is_not() -> None:
    """While each claim finds rows the next waits out the pace (the replies of the moment go
    in one claim); the first after a quiet spell starts at once."""
    loop = asyncio.get_running_loop()
    wake, stopping = asyncio.Event(), asyncio.Event()
    starts: list[float] = []

    async def tick() -> int:
        starts.append(loop.time())
        if len(starts) == 4:
            stopping.set()
        return 0 if len(starts) == 3 else 1  # the third finds nothing: quiet

    task = asyncio.create_task(poll_loop(tick, wake, stopping, 10.0, "test", pace_s=0.1))
    await asyncio.sleep(0.5)
    woken = loop.time()
    wake.set()
    await asyncio.wait_for(task, 2)
    assert len(starts) == 4
    assert all(b - a >= 0.1 for a, b in pairwise(starts[:3]))
    assert starts[3] - woken < 0.05


@pytest.fixture
async def dead_letters(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> list[int]:
    """Three messages nobody can receive, in production (simulator off): two to an officer
    without a platform account, one to a department without a chat robot."""
    services = make_services(
        sessionmaker, clock, {Platform.WECOM: ScriptedPlatform()}, simulator={"enabled": False}
    )
    async with sessionmaker() as session:
        dept = await add_department(session, "GA", "县公安局")
        officer = await add_officer(session, dept, "GA008", "李四")  # no platform account
        await queue(session, Destination.officer(officer.id), 2, clock.now())
        await queue(session, Destination.department(dept), 1, clock.now())
    await Sender(services).run_once()
    async with sessionmaker() as session:
        return sorted(r.id for r in await outbox.list_dead(session))


def test_dead_letters_say_in_chinese_what_to_do_and_retry_takes_several(
    db_url: str, dead_letters: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    """`outbox list` showed `no route: officer:27 has no platform account or enabled chat`;
    it names who cannot be reached and how to fix it, and `outbox retry` takes several ids or
    --all-dead, saying how many it requeued."""
    assert len(dead_letters) == 3
    assert main(["outbox", "list", "--dead", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "no route" not in out and "has no" not in out
    assert "李四（GA008）没有绑定企业微信或钉钉账号" in out and "绑定 GA008" in out
    assert "县公安局没有启用的部门群机器人" in out and "lianjian chat bind GA" in out
    first, *rest = dead_letters
    assert main(["outbox", "retry", str(first), "--db", db_url]) == 0
    assert "已重新排队 1 条" in capsys.readouterr().out
    assert main(["outbox", "retry", str(first), "--db", db_url]) == 2
    assert "只有死信可以重新发送" in capsys.readouterr().err
    assert main(["outbox", "retry", "--all-dead", "--db", db_url]) == 0
    assert f"已重新排队 {len(rest)} 条" in capsys.readouterr().out
    assert main(["outbox", "list", "--dead", "--db", db_url]) == 0
    assert "没有死信" in capsys.readouterr().out


class FailingPlatform(ScriptedPlatform):
    """WeCom answering each message with the next of `outcomes`: a SendResult, or an exception
    the adapter raises (a bug of ours)."""

    def __init__(self, outcomes: list[SendResult | Exception]) -> None:
        super().__init__()
        self.outcomes = outcomes

    async def send(
        self, channel: Channel, msg: OutMessage, mention_user_ids: list[str] | None = None
    ) -> SendResult:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
async def failed_sends(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> list[int]:
    """Four officers' messages as WeCom refused them: permanently, for now, by an adapter's
    bug, and one whose reason no version of ours words (an older release's)."""
    platform = FailingPlatform(
        [
            SendResult(
                False, permanent=True, code="60020", detail="not allow to access from your ip"
            ),
            SendResult(False, code="-1", detail="system busy"),
            KeyError("touser"),
            SendResult(True),
        ]
    )
    services = make_services(sessionmaker, clock, {Platform.WECOM: platform})
    async with sessionmaker() as session:
        dept = await add_department(session)
        for n in range(4):
            officer = await add_officer(session, dept, f"O{n}", f"张{n}", f"zhang{n}")
            await queue(session, Destination.officer(officer.id), 1, clock.now(), prefix=f"m{n}")
    await Sender(services, jitter=lambda: 0.0).run_once()
    async with sessionmaker() as session:
        ids = list(await session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))
        odd = await session.get(OutboxMessage, ids[3])
        assert odd is not None
        odd.state, odd.last_error = OutboxState.DEAD, "smtp 550: mailbox unavailable"
        await session.commit()
    return ids


def test_outbox_list_says_in_chinese_what_to_do_with_a_platforms_refusal(
    db_url: str, failed_sends: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    """`outbox list` showed a platform's refusal as `企业微信返回错误 60020: not allow…` (what
    to do left to guess) and any other reason raw, in English. Each is a Chinese line saying
    what happens next and what to do; the platform's words follow in parentheses (its error
    codes are looked up by them); a defect of ours says so, its exception class in the log."""
    assert main(["outbox", "list", "--db", db_url]) == 0
    lines = {int(line.split()[0]): line for line in capsys.readouterr().out.splitlines()}
    dead, busy, bug, odd = failed_sends
    assert (
        "企业微信拒收，已停止重试：请按错误码 60020 查企业微信接口说明改正（如应用权限、可信 IP、"
        f"人员账号），然后 lianjian outbox retry {dead}"
        "（企业微信原话：60020: not allow to access from your ip）"
    ) in lines[dead]
    assert (
        "企业微信暂未发出，将自动重试；若一再失败，请按错误码 -1 查企业微信接口说明"
        "（企业微信原话：-1: system busy）"
    ) in lines[busy]
    assert (
        "联检发送企业微信消息时程序错误（已记入日志），将自动重试；若一再出错，"
        "请把服务日志中的错误记录交给维护人员"
    ) in lines[bug]
    assert "KeyError" not in lines[bug]  # our exception's class is for the log, not the office
    assert (
        f"未能发出：请查看服务日志中的错误记录，处理后 lianjian outbox retry {odd}"
        "（原话：smtp 550: mailbox unavailable）"
    ) in lines[odd]
    for line in lines.values():  # the English only inside the parentheses
        assert not re.search(
            r"[A-Za-z]{3,}", re.sub(r"（[^（）]*）|lianjian outbox retry", "", line)
        ), line
