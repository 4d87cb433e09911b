"""WeCom AI bot long connection against a fake gateway on loopback speaking the real frames:
subscribe, a group @-mention answered in the group on its req_id with the private part pushed,
an invitation card pushed and its click updated within 5 s, a late update given up, two
unanswered pings ending a dead socket, a second process taking the bot over, and the leaders'
summary chart: uploaded over the socket and pushed as an image, or carried in the answering
stream's msg_item."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.dispatch import Dispatcher
from bot.platforms.base import Channel
from bot.platforms.wecom_aibot import WeComAiBotAdapter, WeComAiBotSettings, conversation_address
from bot.sender import Sender
from bot.services import Services
from bot.workers import InboxWorker
from core.changes import Ctx
from core.charts import render_chart
from core.messages import Destination, Event, Image, OutMessage, Platform
from core.models import ChatPlatform, InboxEvent, Invitation, OutboxMessage, StoredImage
from core.officers import set_account
from core.outbox import enqueue
from core.summary import ChartData, enqueue_daily_summaries
from handlers.base import SENT_PRIVATELY
from tests import factories as f
from tests.fakes import wait_until
from tests.fakes.wecom_aibot import FakeAiBotGateway, aibot_card_click, aibot_text
from tests.server_helpers import ReplyingHandler, make_services, outbox_count


def ws_settings(gateway: FakeAiBotGateway, **kw: object) -> WeComAiBotSettings:
    return WeComAiBotSettings(
        mode="websocket",
        bot_id=gateway.bot_id,
        secret=gateway.secret,
        ws_url=gateway.ws_url,
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
        **kw,
    )


@dataclass
class Rig:
    gateway: FakeAiBotGateway
    adapter: WeComAiBotAdapter
    services: Services
    server: TestServer
    world: f.World

    async def step(self) -> None:
        await InboxWorker(self.services, Dispatcher(self.services)).run_once()
        await Sender(self.services).run_once()

    async def stored(self, n: int) -> None:
        async def count() -> int:
            async with self.services.sessionmaker() as s:
                return int(await s.scalar(select(func.count()).select_from(InboxEvent)) or 0)

        for _ in range(500):
            if await count() >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("events not stored")


@pytest.fixture
async def rig(sessionmaker, clock) -> AsyncIterator[Rig]:
    gateway = await FakeAiBotGateway().start()
    adapter = WeComAiBotAdapter(ws_settings(gateway), clock)
    services = make_services(sessionmaker, clock, {Platform.WECOM_AIBOT: adapter})
    assert adapter.ws is not None
    services.connections = [adapter.ws]
    server = TestServer(create_app(services, workers=("connections",)), host="127.0.0.1")
    await server.start_server()
    await asyncio.wait_for(gateway.connected.wait(), 10)
    async with sessionmaker() as s:
        w = await f.world(s, partners=1, inspectors=1, n_targets=0)
        set_account(w.partners[0].liaison, ChatPlatform.WECOM, "wx-liaison")
        await s.commit()
    r = Rig(gateway, adapter, services, server, w)
    yield r
    await server.close()
    await adapter.close()
    await gateway.close()


async def test_group_mention_is_answered_in_the_group_and_the_rest_pushed(rig) -> None:
    req_id = await rig.gateway.push(
        aibot_text("wx-liaison", "@联检 帮助", "ws-1", chatid="wrkGroup1")
    )
    await rig.stored(1)
    await rig.step()
    [answer] = rig.gateway.got("aibot_respond_msg")
    assert answer.req_id == req_id, "the answer echoes the callback's req_id"
    assert (answer.body["msgtype"], answer.body["stream"]["content"]) == ("stream", SENT_PRIVATELY)
    [push] = rig.gateway.got("aibot_send_msg")
    assert push.body["chatid"] == "wx-liaison" and "任务" in push.body["markdown"]["content"]


async def _invite(rig: Rig) -> tuple[Invitation, dict[str, Any]]:  # the card as JSON
    w = rig.world
    async with rig.services.sessionmaker() as s:
        ctx = Ctx(session=s, clock=rig.services.clock, rules=rig.services.rules)
        _, inv = await f.invite_first_partner(ctx, w)
        await s.commit()
    await Sender(rig.services).run_once()
    [card] = [
        r.body["template_card"]
        for r in rig.gateway.got("aibot_send_msg")
        if r.body["chatid"] == "wx-liaison" and r.body["msgtype"] == "template_card"
    ]
    return inv, card


async def test_card_click_is_updated_within_five_seconds(rig) -> None:
    inv, card = await _invite(rig)
    keys = {b["text"]: b["key"] for b in card["button_list"]}
    req_id = await rig.gateway.push(
        aibot_card_click("wx-liaison", keys["接受"], str(card["task_id"]), "ws-card-1")
    )
    await rig.stored(1)
    await rig.step()
    [upd] = rig.gateway.got("aibot_respond_update_msg")
    assert upd.req_id == req_id and upd.body["template_card"]["task_id"] == card["task_id"]
    assert "接受" in str(upd.body["template_card"])
    async with rig.services.sessionmaker() as s:
        assert (await s.get(Invitation, inv.id)).state == "accepted"
        states = {r.message.get("kind"): r.state for r in (await s.scalars(select(OutboxMessage)))}
    assert states["card_update"] == "sent", "the gateway took it inside its 5 s"


async def test_a_late_card_update_is_given_up(rig, clock) -> None:
    _, card = await _invite(rig)
    keys = {b["text"]: b["key"] for b in card["button_list"]}
    await rig.gateway.push(
        aibot_card_click("wx-liaison", keys["接受"], str(card["task_id"]), "ws-card-late")
    )
    await rig.stored(1)
    await InboxWorker(rig.services, Dispatcher(rig.services)).run_once()
    clock.advance(dt.timedelta(seconds=6))
    await Sender(rig.services).run_once()
    await Sender(rig.services).run_once()
    assert rig.gateway.got("aibot_respond_update_msg") == [], "WeCom would drop it anyway"
    async with rig.services.sessionmaker() as s:
        [row] = [
            r
            for r in await s.scalars(select(OutboxMessage))
            if r.message.get("kind") == "card_update" and r.message.get("card_ref")
        ]
    assert (row.state, row.attempts) == ("dead", 1)


async def test_two_unanswered_pings_mean_a_dead_socket(clock) -> None:
    gateway = await FakeAiBotGateway().start()
    gateway.answer_pings = False
    adapter = WeComAiBotAdapter(ws_settings(gateway, ping_interval_s=0.05), clock)
    assert adapter.ws is not None
    task = asyncio.create_task(adapter.ws.run(_sink))
    try:
        await wait_until(lambda: len(gateway.subscribed) >= 2)
        pings = [r for r in gateway.received if r.cmd == "ping"]
        assert len(pings) >= 2 and pings[0].req_id.startswith("ping_")
        assert adapter.ws.health()["last_error"] == "DeadSocket: 2 pings unanswered"
    finally:
        adapter.ws.stop()
        await asyncio.wait_for(task, 10)
        await gateway.close()


async def test_a_second_process_takes_over_and_the_first_does_not_fight_back(
    sessionmaker, clock
) -> None:
    """…and each process's /healthz says which of them holds the bot."""
    gateway = await FakeAiBotGateway().start()
    first = WeComAiBotAdapter(ws_settings(gateway), clock)
    second = WeComAiBotAdapter(ws_settings(gateway), clock)
    assert first.ws is not None and second.ws is not None
    one = asyncio.create_task(first.ws.run(_sink))
    try:
        await wait_until(lambda: len(gateway.subscribed) == 1)
        two = asyncio.create_task(second.ws.run(_sink))
        await wait_until(lambda: first.ws.health()["state"] == "kicked")
        await asyncio.wait_for(one, 5)  # the first one's run ended: no reconnect loop
        await asyncio.sleep(0.2)
        assert len(gateway.subscribed) == 2 and gateway.kicked == 1
        states = {}
        for name, adapter in (("first", first), ("second", second)):
            services = make_services(sessionmaker, clock, {Platform.WECOM_AIBOT: adapter})
            assert adapter.ws is not None
            services.connections = [adapter.ws]
            server = TestServer(create_app(services, workers=()), host="127.0.0.1")
            await server.start_server()
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(server.make_url("/healthz")) as resp,
                ):
                    states[name] = (await resp.json())["connections"]["wecom_aibot_ws"]
            finally:
                await server.close()
        assert states["first"]["state"] == "kicked"
        assert "another connection took over" in states["first"]["last_error"]
        assert states["second"]["state"] == "connected"
        second.ws.stop()
        await asyncio.wait_for(two, 10)
    finally:
        await gateway.close()


async def test_wrong_secret_is_refused_and_retried_with_backoff(clock) -> None:
    gateway = await FakeAiBotGateway().start()
    adapter = WeComAiBotAdapter(
        WeComAiBotSettings(
            mode="websocket",
            bot_id=gateway.bot_id,
            secret="wrong",
            ws_url=gateway.ws_url,
            backoff_base_s=0.01,
            backoff_cap_s=0.02,
        ),
        clock,
    )
    assert adapter.ws is not None
    task = asyncio.create_task(adapter.ws.run(_sink))
    try:
        await wait_until(lambda: len(gateway.got("aibot_subscribe")) >= 3)
        assert gateway.subscribed == [] and "40058" in adapter.ws.health()["last_error"]
    finally:
        adapter.ws.stop()
        await asyncio.wait_for(task, 10)
        await gateway.close()


async def _sink(events: list[Event]) -> list[bool]:
    return [True] * len(events)


async def test_socket_killed_mid_burst_loses_and_doubles_nothing(rig) -> None:
    bodies = [aibot_text(f"wx-u{i}", f"消息{i}", f"burst-{i}") for i in range(60)]
    for body in bodies[:40]:
        await rig.gateway.push(body)
    rig.gateway.kill()  # some frames read and stored, some lost in the socket
    await wait_until(lambda: len(rig.gateway.subscribed) == 2)
    for body in bodies:  # WeCom may deliver again what the dead socket carried
        await rig.gateway.push(body)
    await rig.stored(60)
    handler = ReplyingHandler(rig.services.clock)
    worker = InboxWorker(rig.services, handler)
    while await worker.run_once():
        pass
    async with rig.services.sessionmaker() as s:
        assert int(await s.scalar(select(func.count()).select_from(InboxEvent)) or 0) == 60
        assert await outbox_count(s) == 60, "each message handled exactly once"
    assert rig.adapter.ws.health()["connects"] == 2


async def _leaders_on_wecom(rig: Rig) -> None:
    """Both leaders reachable by the AI bot alone, with a task in progress (its invitation
    cards went out before they were bound)."""
    await _invite(rig)
    async with rig.services.sessionmaker() as s:
        for n, dept in enumerate([rig.world.lead, *rig.world.partners]):
            leader = await s.merge(dept.leader)
            set_account(leader, ChatPlatform.WECOM, f"wx-leader{n}")
        await s.commit()


async def test_summary_charts_are_uploaded_over_the_socket_and_pushed_as_images(rig) -> None:
    """The daily tick (003 附件1 一(五)) reaches leaders the AI bot alone serves: text, then
    the chart uploaded in chunks (init, chunk 0…, finish) and pushed as an image message."""
    await _leaders_on_wecom(rig)
    async with rig.services.sessionmaker() as s:
        ctx = Ctx(session=s, clock=rig.services.clock, rules=rig.services.rules)
        assert await enqueue_daily_summaries(ctx, ctx.clock.today()) == 2
        await s.commit()
        charts = {row.data for row in (await s.scalars(select(StoredImage))).all()}
    while await Sender(rig.services).run_once():
        pass
    pushed = [
        (r.body["chatid"], r.body["msgtype"])
        for r in rig.gateway.got("aibot_send_msg")
        if r.body["chatid"].startswith("wx-leader")
    ]
    assert sorted(pushed) == sorted(
        [(f"wx-leader{n}", kind) for n in (0, 1) for kind in ("markdown", "image")]
    )
    assert set(rig.gateway.pictures) == charts and len(rig.gateway.pictures) == 2
    inits = rig.gateway.got("aibot_upload_media_init")
    assert [i.body["type"] for i in inits] == ["image"] * len(charts)
    assert [c.body["chunk_index"] for c in rig.gateway.got("aibot_upload_media_chunk")] == [0] * 2


async def test_the_command_answers_with_text_then_pushes_the_same_chart(rig) -> None:
    """汇总 from a leader: the text answers the callback on its req_id, the chart follows
    (one answer per req_id) pushed into the same chat; a second ask reuses the upload."""
    await _leaders_on_wecom(rig)
    for n in (1, 2):
        req_id = await rig.gateway.push(aibot_text("wx-leader0", "汇总", f"ws-summary-{n}"))
        await rig.stored(n)
        await rig.step()
        answers = [r for r in rig.gateway.got("aibot_respond_msg") if r.req_id == req_id]
        [answer] = answers
        assert "双随机联合抽查日报" in answer.body["stream"]["content"]
        assert "msg_item" not in answer.body["stream"]
    pushes = [p for p in rig.gateway.got("aibot_send_msg") if p.body["chatid"] == "wx-leader0"]
    assert [p.body["msgtype"] for p in pushes] == ["image"] * 2
    assert len({p.body["image"]["media_id"] for p in pushes}) == 1
    assert len(rig.gateway.got("aibot_upload_media_finish")) == 1
    async with rig.services.sessionmaker() as s:
        [chart] = (await s.scalars(select(StoredImage))).all()
    assert rig.gateway.pictures == [chart.data, chart.data]


async def test_a_chart_answering_a_message_rides_in_the_finished_stream(rig, clock) -> None:
    """The first answer to a callback carries the picture itself: msg_item on the finishing
    frame, Base64 with the MD5 of its bytes (the fake refuses anything else)."""
    png = render_chart(ChartData(clock.today(), "全部部门"), dpi=30)
    assert png is not None
    req_id = await rig.gateway.push(aibot_text("wx-liaison", "图表", "ws-picture"))
    address = conversation_address(m="ws-picture", u="wx-liaison", q=req_id)
    picture = OutMessage.picture("双随机联合抽查日报图表", Image(sha256="0" * 64, data=png))
    sent = await rig.adapter.send(
        Channel(Platform.WECOM_AIBOT, "session_webhook", address), picture
    )
    assert sent.ok, sent
    [answer] = rig.gateway.got("aibot_respond_msg")
    stream = answer.body["stream"]
    assert (answer.req_id, stream["finish"], stream["content"]) == (
        req_id,
        True,
        "**双随机联合抽查日报图表**",
    )
    assert [i["msgtype"] for i in stream["msg_item"]] == ["image"]
    assert rig.gateway.pictures == [png]


async def test_a_missing_picture_is_not_pushed(rig, clock) -> None:
    """A chart whose bytes are gone (pruned) is retried later, never pushed as an empty image."""
    await _leaders_on_wecom(rig)
    gone = Image(sha256="f" * 64)
    async with rig.services.sessionmaker() as s:
        dest = Destination.officer(rig.world.lead.leader.id)
        await enqueue(s, dest, OutMessage.picture("图表", gone), now=clock.now())
        await s.commit()
    await Sender(rig.services).run_once()
    assert rig.gateway.got("aibot_upload_media_init") == []
    assert [p for p in rig.gateway.got("aibot_send_msg") if p.body["msgtype"] == "image"] == []
    async with rig.services.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage))).all()
    [row] = [r for r in rows if r.message.get("kind") == "image"]
    assert row.state == "pending" and "no_picture" in row.last_error
