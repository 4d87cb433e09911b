"""DingTalk Stream mode against a fake Stream gateway on loopback speaking the real frames:
a group @-mention becomes a command whose answer reaches the group, every frame is acked by
messageId only after it is in the inbox, pings are echoed, a killed socket mid-burst loses and
doubles nothing, tickets are single-use and an expired one is replaced, and /healthz shows the
connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.dispatch import Dispatcher
from bot.platforms.dingtalk import DingTalkAdapter, DingTalkSettings
from bot.platforms.dingtalk.stream import NO_RESPONSE, DingTalkStream, ack_frame
from bot.platforms.longconn import Backoff
from bot.sender import Sender
from bot.services import Services
from bot.workers import EventHandler, InboxWorker
from core.changes import Ctx
from core.clock import FixedClock
from core.messages import Event, Platform
from core.models import ChatPlatform, InboxEvent, Invitation
from core.officers import set_account
from handlers.base import SENT_PRIVATELY
from tests import factories as f
from tests.fakes import wait_until
from tests.fakes.dingtalk import robot_message
from tests.fakes.dingtalk_stream import CARD_TEMPLATE, FakeDingTalkStream
from tests.server_helpers import ReplyingHandler, dingtalk_settings, make_services, outbox_count


@dataclass
class Rig:
    fake: FakeDingTalkStream
    services: Services
    stream: DingTalkStream
    server: TestServer

    def message(
        self,
        content: str,
        msg_id: str,
        *,
        staff_id: str = "manager7675",
        session_webhook: str = "",
        robot_code: str | None = None,  # the fake's own robot unless a test names another
    ) -> dict[str, object]:
        return robot_message(
            content,
            msg_id=msg_id,
            created_ms=int(self.services.clock.now().timestamp() * 1000),
            staff_id=staff_id,
            session_webhook=session_webhook,
            robot_code=self.fake.robot_code if robot_code is None else robot_code,
        )

    async def health(self) -> dict[str, object]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.server.make_url("/healthz")) as resp,
        ):
            return await resp.json()


def stream_settings(fake: FakeDingTalkStream, **kw: str) -> DingTalkSettings:
    return dingtalk_settings(
        fake,
        mode="stream",
        stream_backoff_base_s=0.01,
        stream_backoff_cap_s=0.05,
        **kw,
    )


async def start_rig(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    handler: EventHandler,
    workers: tuple[str, ...],
    **settings: str,
) -> Rig:
    fake = await FakeDingTalkStream(clock=clock).start()
    adapter = DingTalkAdapter(stream_settings(fake, **settings), clock)
    services = make_services(sessionmaker, clock, {Platform.DINGTALK: adapter})
    stream = DingTalkStream(adapter, clock)
    services.connections = [stream]
    server = TestServer(create_app(services, handler=handler, workers=workers), host="127.0.0.1")
    await server.start_server()
    await asyncio.wait_for(fake.connected.wait(), 10)
    return Rig(fake, services, stream, server)


@pytest.fixture
async def rig(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> AsyncIterator[Rig]:
    r = await start_rig(sessionmaker, clock, ReplyingHandler(clock), ("connections",))
    yield r
    await r.server.close()
    await r.services.adapters[Platform.DINGTALK].close()
    await r.fake.close()


async def inbox_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(InboxEvent)) or 0)


async def test_group_mention_becomes_a_command_answered_in_the_group(sessionmaker, clock) -> None:
    async with sessionmaker() as s:
        w = await f.world(s, partners=1, inspectors=1, n_targets=0)
        liaison = w.partners[0].liaison
        set_account(liaison, ChatPlatform.DINGTALK, "ding-liaison")
        await s.commit()
    r = await start_rig(
        sessionmaker, clock, Dispatcher(make_services(sessionmaker, clock)), ("connections",)
    )
    services = r.services
    try:
        session_webhook = r.fake.new_session_webhook()
        mid = await r.fake.push(
            r.message(
                "@联检机器人 帮助",
                "msg-help-1",
                staff_id="ding-liaison",
                session_webhook=session_webhook,
            )
        )
        await wait_until(lambda: mid in r.fake.acked())
        assert await inbox_rows(sessionmaker) == 1, "acked only once it is in the inbox"
        await InboxWorker(services, Dispatcher(services)).run_once()
        await Sender(services).run_once()
        in_group = [d for d in r.fake.delivered if "userIds" not in d]
        to_officer = [d for d in r.fake.delivered if d.get("userIds") == ["ding-liaison"]]
        assert [d["text"]["content"] for d in in_group] == [SENT_PRIVATELY]
        assert to_officer and "任务" in str(to_officer[0]["msgParam"]), "the help itself"
    finally:
        await r.server.close()
        await services.adapters[Platform.DINGTALK].close()
        await r.fake.close()


async def test_ping_is_echoed_and_foreign_frames_are_refused(rig) -> None:
    await rig.fake.system("ping", {"opaque": "abc-123"})
    await wait_until(lambda: rig.fake.ping_echoes)
    assert rig.fake.ping_echoes == [{"opaque": "abc-123"}]
    other_robot = await rig.fake.push(rig.message("帮助", "m-x", robot_code="someone-else"))
    unknown = await rig.fake.push({"x": 1}, topic="/v1.0/graph/api/invoke")
    await wait_until(lambda: len(rig.fake.acks) == 2)
    assert {a.message_id: a.code for a in rig.fake.acks} == {other_robot: 400, unknown: 404}
    assert await inbox_rows(rig.services.sessionmaker) == 0


async def test_socket_killed_mid_burst_loses_and_doubles_nothing(rig, sessionmaker) -> None:
    sent = [await rig.fake.push(rig.message(f"消息{i}", f"burst-{i}")) for i in range(60)]
    await wait_until(lambda: len(rig.fake.acks) >= 10)
    rig.fake.kill()  # some frames stored but unacked, some not even read
    sent += [await _push_when_connected(rig, i) for i in range(60, 80)]
    await wait_until(lambda: not rig.fake.unacked, timeout_s=15)
    assert rig.stream.health()["connects"] >= 2
    assert await inbox_rows(sessionmaker) == 80
    handler = ReplyingHandler(rig.services.clock)
    worker = InboxWorker(rig.services, handler)
    while await worker.run_once():
        pass
    async with sessionmaker() as s:
        assert await outbox_count(s) == 80, "each message handled exactly once"
    assert handler.calls == 80
    assert set(sent) <= rig.fake.acked()


async def _push_when_connected(rig: Rig, i: int) -> str:
    await asyncio.wait_for(rig.fake.connected.wait(), 10)
    return await rig.fake.push(rig.message(f"消息{i}", f"burst-{i}"))


async def test_tickets_are_single_use_and_an_expired_one_is_replaced(sessionmaker, clock) -> None:
    fake = await FakeDingTalkStream(clock=clock).start()
    fake.expire_next = 2  # the first two tickets are dead on arrival
    adapter = DingTalkAdapter(stream_settings(fake), clock)
    stream = DingTalkStream(adapter, clock)
    stored: list[Event] = []

    async def sink(events: list[Event]) -> list[bool]:
        stored.extend(events)
        return [True] * len(events)

    task = asyncio.create_task(stream.run(sink))
    try:
        await asyncio.wait_for(fake.connected.wait(), 10)
        assert fake.refused == ["expired ticket", "expired ticket"]
        await fake.system("disconnect", {"reason": "persistent connection is timeout"})
        await wait_until(lambda: len(fake.connections) == 2 and fake.connected.is_set())
        assert fake.refused == ["expired ticket", "expired ticket"], "no ticket used twice"
        assert len(fake.calls("/v1.0/gateway/connections/open")) == 4
        mid = await fake.push(
            robot_message("帮助", msg_id="after", created_ms=0, robot_code=fake.robot_code)
        )
        await wait_until(lambda: mid in fake.acked())
        assert [e.event_id for e in stored] == ["after"]
    finally:
        stream.stop()
        await asyncio.wait_for(task, 10)
        await adapter.close()
        await fake.close()
    assert stream.health()["state"] == "stopped"


async def test_a_frame_is_acked_only_after_it_is_stored(sessionmaker, clock) -> None:
    fake = await FakeDingTalkStream(clock=clock).start()
    adapter = DingTalkAdapter(stream_settings(fake), clock)
    stream = DingTalkStream(adapter, clock)
    release, fail = asyncio.Event(), {"on": False}

    async def slow_sink(events: list[Event]) -> list[bool]:
        await release.wait()
        if fail["on"]:
            raise RuntimeError("database down")
        return [True]

    task = asyncio.create_task(stream.run(slow_sink))
    try:
        await asyncio.wait_for(fake.connected.wait(), 10)
        mid = await fake.push(
            robot_message("帮助", msg_id="slow", created_ms=0, robot_code=fake.robot_code)
        )
        await fake.system("ping", {"opaque": "p"})  # pings do not wait for the store
        await wait_until(lambda: fake.ping_echoes)
        assert fake.acks == []
        release.set()
        await wait_until(lambda: mid in fake.acked())
        fail["on"] = True
        lost = await fake.push(
            robot_message("帮助", msg_id="lost", created_ms=0, robot_code=fake.robot_code)
        )
        await wait_until(lambda: lost in fake.acked(500))
        assert lost in fake.unacked, "a failed store is no success: the platform may resend"
    finally:
        stream.stop()
        await asyncio.wait_for(task, 10)
        await adapter.close()
        await fake.close()


async def test_healthz_reports_the_stream_connection(rig) -> None:
    health = await rig.health()
    conn = health["connections"]["dingtalk_stream"]
    assert (conn["state"], conn["connects"]) == ("connected", 1)
    rig.fake.kill()
    await wait_until(lambda: len(rig.fake.connections) == 2 and rig.fake.connected.is_set())
    await wait_until(lambda: rig.stream.health()["state"] == "connected")
    conn = (await rig.health())["connections"]["dingtalk_stream"]
    assert conn["connects"] == 2 and conn["last_error"] == "connection closed"


@pytest.mark.parametrize("message_id", ["msgb3f9", 'q"uo\\te', "中文\ud800", ""])
def test_a_stored_frames_ack_is_the_general_ack_text(message_id: str) -> None:
    """The stored-message ack is pasted from a template; it must read exactly as the ack
    frame built field by field, whatever the messageId holds."""
    general = {
        "code": 200,
        "headers": {"contentType": "application/json", "messageId": message_id},
        "message": "OK",
        "data": NO_RESPONSE,
    }
    assert ack_frame(message_id, 200, NO_RESPONSE) == json.dumps(general)
    assert json.loads(ack_frame(message_id, 500, NO_RESPONSE, "not stored"))["code"] == 500


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(1.0, 60.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    low = Backoff(1.0, 60.0, rand=lambda: 0.0)
    assert backoff.next_delay() == 1.0 and low.next_delay() == 0.5


async def _card_rig(sessionmaker, clock, *, refuse_card: bool = False) -> tuple[Rig, int]:
    """Stream mode with an interactive card template; a partner's liaison on DingTalk has just
    been invited (the sender ran once)."""
    async with sessionmaker() as s:
        w = await f.world(s, partners=1, inspectors=1, n_targets=0)
        set_account(w.partners[0].liaison, ChatPlatform.DINGTALK, "ding-liaison")
        ctx = Ctx(session=s, clock=clock, rules=make_services(sessionmaker, clock).rules)
        _, inv = await f.invite_first_partner(ctx, w)
        await s.commit()
    r = await start_rig(
        sessionmaker,
        clock,
        Dispatcher(make_services(sessionmaker, clock)),
        ("connections",),
        card_template_id=CARD_TEMPLATE,
    )
    if refuse_card:
        r.fake.script.fail_next("createAndDeliver", {"status": 400, "code": "param.invalid"})
    await Sender(r.services).run_once()
    return r, inv.id


async def test_invitation_card_buttons_call_back_and_the_card_shows_who_answered(
    sessionmaker, clock
) -> None:
    r, invitation_id = await _card_rig(sessionmaker, clock)
    try:
        [(track, card)] = list(r.fake.cards.items())
        params = card["cardData"]["cardParamMap"]
        assert (params["button1_text"], params["button2_text"]) == ("接受", "拒绝")
        assert "http" not in params["content"], "the interactive card needs no signed link"
        mid = await r.fake.click(track, "ding-liaison", params["button1_action"])
        await wait_until(lambda: mid in r.fake.acked())
        await InboxWorker(r.services, Dispatcher(r.services)).run_once()
        await Sender(r.services).run_once()
        async with sessionmaker() as s:
            assert (await s.get(Invitation, invitation_id)).state == "accepted"
        # the click's answer, and the card shown answered to each of the department's answerers
        assert {upd["outTrackId"] for upd in r.fake.card_updates} == {track}
        assert r.fake.card_state[track]["status"].endswith("接受")
    finally:
        await r.server.close()
        await r.services.adapters[Platform.DINGTALK].close()
        await r.fake.close()


async def test_a_refused_interactive_card_falls_back_to_signed_links(sessionmaker, clock) -> None:
    r, _ = await _card_rig(sessionmaker, clock, refuse_card=True)
    try:
        assert r.fake.cards == {}
        [sent] = [d for d in r.fake.delivered if d.get("userIds") == ["ding-liaison"]]
        assert sent["msgKey"] == "sampleActionCard6"
        assert "/h5/" in sent["msgParam"]["buttonUrl1"], "the signed H5 link stays the fallback"
    finally:
        await r.server.close()
        await r.services.adapters[Platform.DINGTALK].close()
        await r.fake.close()
