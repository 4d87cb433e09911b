"""WeCom AI bot in callback mode over loopback HTTP, against a fake that encrypts with its own
implementation (receiveid empty): URL verification, a group @-mention answered passively in
the group within WeCom's 5 s, a retried msgid with one effect, response_url then the app when
the passive window is missed, a card click answered with update_template_card in time, and a
late card answer given up instead of retried; the leaders' chart in the passive stream's
msg_item, or by response_url as a news card showing our signed link."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import create_app
from bot.dispatch import Dispatcher
from bot.platforms.extras import extras_of
from bot.platforms.wecom import WeComAdapter, WeComCrypto
from bot.platforms.wecom_aibot import WeComAiBotAdapter, WeComAiBotSettings
from bot.sender import Sender
from bot.services import Services
from bot.workers import EventHandler, InboxWorker
from core import images
from core.cards import InvitationAction
from core.changes import Ctx
from core.charts import render_chart
from core.clock import Clock
from core.messages import Event, OutMessage, Platform
from core.models import ChatPlatform, Invitation, OutboxMessage, StoredImage
from core.officers import set_account
from core.outbox import enqueue
from core.summary import ChartData
from handlers.base import SENT_PRIVATELY
from tests import factories as f
from tests.fakes import wait_until
from tests.fakes.wecom_aibot import (
    AiBotCallbackClient,
    FakeWeComWithAiBot,
    aibot_card_click,
    aibot_text,
)
from tests.server_helpers import make_services, random_aes_key, wecom_settings

TOKEN = "aibot-token"
_ids = itertools.count(1)


@dataclass
class Rig:
    services: Services
    fake: FakeWeComWithAiBot
    client: AiBotCallbackClient
    server: TestServer

    def app_messages_to(self, userid: str) -> list[dict]:
        return [d for d in self.fake.delivered if d.get("touser") == userid]

    async def step(self) -> None:
        await InboxWorker(self.services, Dispatcher(self.services)).run_once()
        await Sender(self.services).run_once()


async def start(
    sessionmaker,
    clock,
    *,
    workers: tuple[str, ...],
    passive_wait_s: float = 4.5,  # the most WeCom leaves: a loaded test machine needs it
    handler: EventHandler | None = None,
) -> Rig:
    fake = await FakeWeComWithAiBot(clock=clock).start()
    aes = random_aes_key()
    app = WeComAdapter(wecom_settings(fake, "app-token"), clock)
    aibot = WeComAiBotAdapter(
        WeComAiBotSettings(
            token=TOKEN,
            encoding_aes_key=aes,
            response_url_base=fake.base,
            passive_wait_s=passive_wait_s,
        ),
        clock,
        app=app,
    )
    services = make_services(
        sessionmaker, clock, {Platform.WECOM: app, Platform.WECOM_AIBOT: aibot}
    )
    server = TestServer(
        create_app(services, workers=workers, handler=handler),
        host="127.0.0.1",
    )
    await server.start_server()
    client = AiBotCallbackClient(
        TOKEN, aes, str(server.make_url("/wecom/aibot/callback")), clock=clock
    )
    return Rig(services, fake, client, server)


async def stop(rig: Rig) -> None:
    await rig.client.close()
    await rig.server.close()
    for adapter in rig.services.adapters.values():
        await adapter.close()
    await rig.fake.close()


@pytest.fixture
async def world(sessionmaker) -> AsyncIterator[f.World]:
    async with sessionmaker() as s:
        w = await f.world(s, partners=1, inspectors=1, n_targets=0)
        set_account(w.partners[0].liaison, ChatPlatform.WECOM, "wx-liaison")
        await s.commit()
    yield w


async def test_url_verification_echoes_the_plaintext(sessionmaker, clock) -> None:
    rig = await start(sessionmaker, clock, workers=())
    try:
        assert await rig.client.verify_url("echo-4821") == (200, b"echo-4821")
        status, _ = await rig.client.verify_url("echo", signature="0" * 40)
        assert status == 401
    finally:
        await stop(rig)


async def test_group_mention_is_answered_passively_in_the_group(sessionmaker, clock, world) -> None:
    rig = await start(sessionmaker, clock, workers=("inbox", "sender"))
    try:
        body = aibot_text(
            "wx-liaison",
            "@联检 帮助",
            f"aibot-{next(_ids)}",
            chatid="wrkGroup1",
            response_url=rig.fake.new_response_url(),
        )
        answer = await rig.client.send(body)
        assert answer.status == 200 and answer.seconds < 5
        assert answer.reply is not None, "answered inside the callback response"
        stream = answer.reply["stream"]
        assert (answer.reply["msgtype"], stream["finish"], stream["content"]) == (
            "stream",
            True,
            SENT_PRIVATELY,
        )
        await wait_until(lambda: rig.app_messages_to("wx-liaison"))
        assert "任务" in str(rig.app_messages_to("wx-liaison")[0]), "the help, privately"

        again = await rig.client.send(body)  # WeCom retries the same msgid
        assert (again.status, again.reply) == (200, None)
        async with sessionmaker() as s:
            rows = (await s.scalars(select(OutboxMessage))).all()
        assert len(rows) == 2, "one effect for a retried msgid"
    finally:
        await stop(rig)


class TwoAnswers:
    """Answers twice in the conversation: the passive window is gone, so one answer takes the
    response_url and the other has to go through the app."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def handle(self, session: AsyncSession, event: Event) -> None:
        here = extras_of(event).reply_to()
        assert here is not None
        for n in (1, 2):
            await enqueue(session, here, OutMessage.text(f"第{n}条"), now=self.clock.now())


async def test_missed_window_goes_by_response_url_once_then_by_the_app(sessionmaker, clock) -> None:
    rig = await start(sessionmaker, clock, workers=(), passive_wait_s=0.01)
    try:
        url = rig.fake.new_response_url()
        answer = await rig.client.send(
            aibot_text("wx-someone", "你好", "aibot-slow", response_url=url)
        )
        assert (answer.status, answer.reply) == (200, None)
        await InboxWorker(rig.services, TwoAnswers(clock)).run_once()
        await Sender(rig.services).run_once()
        [posts] = [p for p in rig.fake.response_urls.values() if p]
        assert posts == [{"msgtype": "markdown", "markdown": {"content": "第1条"}}]
        assert [m["text"]["content"] for m in rig.app_messages_to("wx-someone")] == ["第2条"]
    finally:
        await stop(rig)


async def _invitation(sessionmaker, clock, services: Services, w: f.World) -> Invitation:
    async with sessionmaker() as s:
        ctx = Ctx(session=s, clock=clock, rules=services.rules)
        _, inv = await f.invite_first_partner(ctx, w)
        await s.commit()
    return inv


async def test_card_click_is_answered_with_update_template_card_in_time(
    sessionmaker, clock, world
) -> None:
    rig = await start(sessionmaker, clock, workers=("inbox", "sender"))
    try:
        inv = await _invitation(sessionmaker, clock, rig.services, world)
        key = InvitationAction(action="accept", invitation_id=inv.id).pack()
        answer = await rig.client.send(
            aibot_card_click("wx-liaison", key, f"inv-{inv.id}", "aibot-card-1")
        )
        assert answer.seconds < 5, "WeCom drops a card event not answered within 5 s"
        assert answer.reply is not None
        assert answer.reply["response_type"] == "update_template_card"
        card = answer.reply["template_card"]
        assert card["task_id"] == f"inv-{inv.id}" and answer.reply["userids"] == ["wx-liaison"]
        assert "接受" in card["sub_title_text"] and world.partners[0].liaison.name in str(card)
        async with sessionmaker() as s:
            assert (await s.get(Invitation, inv.id)).state == "accepted"
    finally:
        await stop(rig)


async def test_a_late_card_answer_is_given_up_not_retried(sessionmaker, clock, world) -> None:
    rig = await start(sessionmaker, clock, workers=(), passive_wait_s=0.01)
    try:
        inv = await _invitation(sessionmaker, clock, rig.services, world)
        key = InvitationAction(action="accept", invitation_id=inv.id).pack()
        answer = await rig.client.send(
            aibot_card_click("wx-liaison", key, f"inv-{inv.id}", "aibot-card-late")
        )
        assert (answer.status, answer.reply) == (200, None)
        await rig.step()
        async with sessionmaker() as s:
            [update_row] = [
                r
                for r in (await s.scalars(select(OutboxMessage))).all()
                if r.message.get("kind") == "card_update" and r.message.get("card_ref")
            ]
            assert (update_row.state, update_row.attempts) == ("dead", 1)
        requests_before = len(rig.fake.requests)
        await rig.step()
        assert len(rig.fake.requests) == requests_before, "nothing is sent again"
    finally:
        await stop(rig)


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 43, 44, 45, 300])
def test_reply_crypto_matches_an_independent_implementation(size: int) -> None:
    aes = random_aes_key()
    ours = WeComCrypto(TOKEN, aes, receive_id="")
    theirs = AiBotCallbackClient(TOKEN, aes, "http://unused")
    text = "审" * size
    assert theirs.decrypt(ours.encrypt(text)) == (text, "")
    assert ours.decrypt(theirs.encrypt(text)) == text


async def test_single_chat_gets_the_answer_itself_passively(sessionmaker, clock, world) -> None:
    rig = await start(sessionmaker, clock, workers=("inbox", "sender"))
    try:
        answer = await rig.client.send(
            aibot_text(
                "wx-liaison", "帮助", "aibot-single-1", response_url=rig.fake.new_response_url()
            )
        )
        assert answer.reply is not None and answer.seconds < 5
        assert "任务" in answer.reply["stream"]["content"], "the help itself, in this chat"
        assert rig.app_messages_to("wx-liaison") == [], "nothing needed the app"
    finally:
        await stop(rig)


class PictureFirst:
    """Answers with a chart first, so the picture takes the passive reply."""

    def __init__(self, clock: Clock, png: bytes) -> None:
        self.clock, self.png = clock, png

    async def handle(self, session: AsyncSession, event: Event) -> None:
        here = extras_of(event).reply_to()
        assert here is not None
        image = await images.store(session, self.png, now=self.clock.now())
        await enqueue(session, here, OutMessage.picture("日报图表", image), now=self.clock.now())


async def test_a_chart_in_the_passive_answer_rides_in_the_stream(sessionmaker, clock) -> None:
    png = render_chart(ChartData(clock.today(), "全部部门"), dpi=30)
    assert png is not None
    rig = await start(
        sessionmaker, clock, workers=("inbox", "sender"), handler=PictureFirst(clock, png)
    )
    try:
        answer = await rig.client.send(aibot_text("wx-someone", "图表", "aibot-picture"))
        assert answer.reply is not None and answer.seconds < 5
        stream = answer.reply["stream"]
        assert (stream["finish"], stream["content"]) == (True, "**日报图表**")
        [item] = stream["msg_item"]
        raw = base64.b64decode(item["image"]["base64"])
        assert item["msgtype"] == "image" and raw == png
        assert item["image"]["md5"] == hashlib.md5(png).hexdigest()
    finally:
        await stop(rig)


async def test_the_command_in_a_single_chat_shows_the_chart_in_a_news_card(
    sessionmaker, clock, world
) -> None:
    """汇总 (003 附件1 一(五)): the text takes the passive reply; the chart, second, takes the
    response_url as a news_notice card whose picture WeCom loads from our signed image link."""
    async with sessionmaker() as s:
        leader = await s.merge(world.lead.leader)
        set_account(leader, ChatPlatform.WECOM, "wx-leader")
        await s.commit()
    rig = await start(sessionmaker, clock, workers=("inbox", "sender"))
    rig.services.public_base_url = str(rig.server.make_url("")).rstrip("/")
    try:
        await _invitation(sessionmaker, clock, rig.services, world)  # a task in progress
        url = rig.fake.new_response_url()
        answer = await rig.client.send(
            aibot_text("wx-leader", "汇总", "aibot-sum", response_url=url)
        )
        assert answer.reply is not None
        assert "双随机联合抽查日报" in answer.reply["stream"]["content"]
        await wait_until(lambda: any(rig.fake.response_urls.values()))
        [[post]] = [p for p in rig.fake.response_urls.values() if p]
        assert post["msgtype"] == "template_card"
        card = post["template_card"]
        assert card["card_type"] == "news_notice"
        assert card["main_title"]["title"] == "双随机联合抽查日报图表"
        link = card["card_image"]["url"]
        assert card["card_action"] == {"type": 1, "url": link}
        async with sessionmaker() as s:
            [chart] = (await s.scalars(select(StoredImage))).all()
        async with aiohttp.ClientSession() as http, http.get(link) as resp:
            assert (resp.status, resp.content_type) == (200, "image/png")
            assert await resp.read() == chart.data
        assert rig.app_messages_to("wx-leader") == [], "nothing needed the app"
    finally:
        await stop(rig)


async def test_a_signed_timestamp_that_is_not_ascii_digits_is_400(sessionmaker, clock) -> None:
    """A genuine signature over the timestamp "²" (str.isdigit says yes, int() says no) is bad
    input: 400, as for the app callback, which shares the check (WeComCrypto.check_query)."""
    rig = await start(sessionmaker, clock, workers=())
    try:
        echostr = rig.client.encrypt("echo")
        params = {
            "msg_signature": rig.client.sign("²", "7", echostr),
            "timestamp": "²",
            "nonce": "7",
            "echostr": echostr,
        }
        async with rig.client._session_().get(rig.client.url, params=params) as resp:
            assert resp.status == 400
    finally:
        await stop(rig)
