"""The leaders' daily summary reaches each platform with its chart (003 附件1 一(五), 000 §十三):
the summary tick queues the markdown and the PNG for every leader, and the sender delivers the
picture the way each platform takes pictures, through the fake servers — WeCom app: media/upload
then an image message; WeCom group robot: Base64 with the MD5 of the bytes; DingTalk: markdown
showing our signed, expiring image link; the simulator: the picture on its page. Without a CJK
font the text goes alone and a warning is logged."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pages import image as image_page
from bot.platforms.dingtalk import DingTalkAdapter
from bot.platforms.simulator import messages_for
from bot.platforms.simulator import routes as sim_routes
from bot.sender import Sender
from bot.services import Services
from core import charts, images, outbox
from core.changes import Ctx
from core.charts import render_chart
from core.clock import FixedClock
from core.messages import Destination, OutMessage, Platform
from core.models import (
    ChatBinding,
    Invitation,
    Officer,
    OutboxMessage,
    PlatformAccount,
    StoredImage,
)
from core.states import InvitationState
from core.summary import ChartData, enqueue_daily_summaries, requested_summary
from tests import factories as f
from tests.case_factories import World, at_day, build_world
from tests.dispatch_support import make_dispatcher, send, text_event
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom
from tests.server_helpers import dingtalk_settings, make_services, pages_app
from tests.test_sender import wecom_adapter

DAY = dt.date(2026, 5, 20)  # a Wednesday, working day; the task's results are overdue


@pytest.fixture
async def fake_wecom(clock: FixedClock) -> AsyncIterator[FakeWeCom]:
    fake = await FakeWeCom(clock=clock).start()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_dingtalk(clock: FixedClock) -> AsyncIterator[FakeDingTalk]:
    fake = await FakeDingTalk(clock=clock).start()
    yield fake
    await fake.close()


async def bind(session: AsyncSession, officer: Officer, platform: str, account: str) -> None:
    session.add(PlatformAccount(officer_id=officer.id, platform=platform, account=account))
    await session.commit()


async def summary_world(ctx: Ctx, session: AsyncSession) -> World:
    w = await build_world(session)
    at_day(ctx, DAY)
    return w


async def queued(session: AsyncSession) -> list[OutMessage]:
    rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
    return [OutMessage.model_validate(r.message) for r in rows]


async def drain(sender: Sender) -> None:
    while await sender.run_once():
        pass


def small_chart() -> bytes:
    png = render_chart(ChartData(DAY, "全部部门"), dpi=30)
    assert png is not None
    return png


async def send_all_by_wecom(
    fake: FakeWeCom, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    adapter = wecom_adapter(fake, clock)
    await drain(Sender(make_services(sessionmaker, clock, {Platform.WECOM: adapter})))
    await adapter.close()


async def test_the_tick_queues_text_then_chart_for_each_leader_stored_once(
    ctx: Ctx, session: AsyncSession
) -> None:
    await summary_world(ctx, session)
    assert await enqueue_daily_summaries(ctx, DAY) == 2
    await session.commit()
    kinds = [(m.kind, m.title.split(" ")[0]) for m in await queued(session)]
    assert (
        kinds
        == [
            ("markdown", "双随机联合抽查日报（2026年5月20日）"),
            ("image", "双随机联合抽查日报图表"),
        ]
        * 2
    )
    stored = (await session.scalars(select(StoredImage))).all()
    assert len(stored) == 2  # one chart per department scope, stored by content
    for row in stored:
        assert hashlib.sha256(row.data).hexdigest() == row.sha256 and row.mime == "image/png"
    assert await enqueue_daily_summaries(ctx, DAY) == 0  # once a day


async def test_wecom_app_uploads_the_chart_then_sends_it_as_an_image(
    ctx: Ctx,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    fake_wecom: FakeWeCom,
) -> None:
    w = await summary_world(ctx, session)
    await bind(session, w.lead_leader, "wecom", "qianld")
    await bind(session, w.other_leader, "wecom", "zhould")
    await enqueue_daily_summaries(ctx, DAY)
    await session.commit()
    await send_all_by_wecom(fake_wecom, sessionmaker, clock)
    per_user = {
        user: [b["msgtype"] for b in fake_wecom.delivered if b["touser"] == user]
        for user in ("qianld", "zhould")
    }
    assert per_user == {"qianld": ["markdown", "image"], "zhould": ["markdown", "image"]}
    uploads = fake_wecom.calls("/cgi-bin/media/upload")
    assert len(uploads) == 2 and all(u.query["type"] == "image" for u in uploads)
    stored = {row.data for row in (await session.scalars(select(StoredImage))).all()}
    assert set(fake_wecom.pictures) == stored and len(fake_wecom.pictures) == 2


async def test_a_leader_with_nothing_in_progress_gets_no_daily_summary(
    ctx: Ctx, session: AsyncSession
) -> None:
    """No task in progress, referral to sign for or plan row overdue: the tick sends nothing
    (暂无进行中的联合抽查任务 every working day would be noise); 汇总 still answers."""
    await summary_world(ctx, session)
    idle = await f.officer(session, await f.department(session, "县水利局"), "leader")
    await session.commit()
    assert await enqueue_daily_summaries(ctx, DAY) == 2
    await session.commit()
    rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert not [r for r in rows if r.destination.get("officer_id") == idle.id]
    [asked] = await requested_summary(ctx, DAY, idle.department_id)
    assert "暂无进行中的联合抽查任务" in asked.body


async def test_a_department_that_declined_gets_no_daily_summary_of_the_task_000_s7(
    ctx: Ctx, session: AsyncSession
) -> None:
    """000 §七: a department that declined (or let its invitation lapse) takes no part in the
    task; its leader was sent the task's figures and chart every working day regardless."""
    w = await summary_world(ctx, session)
    invitation = await session.scalar(select(Invitation).where(Invitation.task_id == w.task.id))
    assert invitation is not None
    invitation.state = InvitationState.DECLINED
    invitation.reason = "本月人员集中参加专项整治，无法抽调"
    await session.commit()
    assert await enqueue_daily_summaries(ctx, DAY) == 1
    await session.commit()
    rows = (await session.scalars(select(OutboxMessage))).all()
    assert {r.destination.get("officer_id") for r in rows} == {w.lead_leader.id}
    [asked] = await requested_summary(ctx, DAY, w.other.id)
    assert "暂无进行中的联合抽查任务" in asked.body


async def test_the_command_gets_the_daily_text_and_chart_delivered_the_same_way(
    ctx: Ctx,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    fake_wecom: FakeWeCom,
) -> None:
    """汇总 (003 附件1 一(五), 000 §十三): a leader asking gets the tick's text and, right after
    it, the very chart the tick sends (same bytes, one stored row), uploaded and sent as an
    image by the same sender and adapter."""
    w = await summary_world(ctx, session)
    await bind(session, w.lead_leader, "wecom", "qianld")
    asked = await send(
        sessionmaker, make_dispatcher(sessionmaker, clock), text_event("qianld", "汇总", "wecom")
    )
    assert [OutMessage.model_validate(r.message).kind for r in asked] == ["markdown", "image"]
    await send_all_by_wecom(fake_wecom, sessionmaker, clock)
    assert [b["msgtype"] for b in fake_wecom.delivered] == ["markdown", "image"]
    text = fake_wecom.delivered[0]["markdown"]["content"]
    assert text.startswith("**双随机联合抽查日报（2026年5月20日）**\n范围：")  # the title once
    assert [u.query["type"] for u in fake_wecom.calls("/cgi-bin/media/upload")] == ["image"]
    chart = await images.load(session, asked[1].message["image"]["sha256"])
    assert chart is not None and fake_wecom.pictures == [chart]
    await enqueue_daily_summaries(ctx, DAY)
    await session.commit()
    ticked = [
        r.message
        for r in (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        if r.id > asked[-1].id and r.destination.get("officer_id") == w.lead_leader.id
    ]
    assert [m.get("body") for m in ticked] == [asked[0].message["body"], None]
    assert ticked[1]["image"] == asked[1].message["image"]


async def test_wecom_app_reuses_an_uploaded_chart_for_a_second_leader(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, fake_wecom: FakeWeCom
) -> None:
    png = small_chart()
    async with sessionmaker() as session:
        picture = await images.store(session, png, now=clock.now())
        for n in (1, 2):
            dest = Destination.platform_user(Platform.WECOM, f"leader{n}")
            await outbox.enqueue(
                session, dest, OutMessage.picture("图表", picture), now=clock.now()
            )
        await session.commit()
    await send_all_by_wecom(fake_wecom, sessionmaker, clock)
    assert len(fake_wecom.calls("/cgi-bin/media/upload")) == 1  # media_id lasts three days
    assert fake_wecom.pictures == [png, png]


async def test_wecom_robot_takes_the_chart_inline_with_the_md5_of_its_bytes(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, fake_wecom: FakeWeCom
) -> None:
    png = small_chart()
    async with sessionmaker() as session:
        picture = await images.store(session, png, now=clock.now())
        session.add(
            ChatBinding(platform="wecom", is_office=True, webhook_url=fake_wecom.webhook_url())
        )
        await outbox.enqueue(
            session, Destination.office(), OutMessage.picture("图表", picture), now=clock.now()
        )
        await session.commit()
    await send_all_by_wecom(fake_wecom, sessionmaker, clock)
    (body,) = fake_wecom.delivered
    assert body["msgtype"] == "image" and base64.b64decode(body["image"]["base64"]) == png
    assert fake_wecom.pictures == [png]


async def test_the_fake_robot_refuses_a_wrong_md5_as_wecom_does(fake_wecom: FakeWeCom) -> None:
    png = small_chart()
    image = {"base64": base64.b64encode(png).decode(), "md5": hashlib.md5(b"other").hexdigest()}
    adapter_less = await _post(fake_wecom.webhook_url(), {"msgtype": "image", "image": image})
    assert adapter_less["errcode"] == 301019 and fake_wecom.pictures == []


async def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    async with aiohttp.ClientSession() as client, client.post(url, json=body) as resp:
        answer: dict[str, object] = await resp.json()
        return answer


async def test_dingtalk_shows_the_chart_from_our_signed_expiring_link(
    ctx: Ctx,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    fake_dingtalk: FakeDingTalk,
) -> None:
    w = await summary_world(ctx, session)
    await bind(session, w.lead_leader, "dingtalk", "qianld")
    await enqueue_daily_summaries(ctx, DAY)
    await session.commit()
    adapter = DingTalkAdapter(dingtalk_settings(fake_dingtalk), clock)
    services = make_services(sessionmaker, clock, {Platform.DINGTALK: adapter})
    site = await _image_site(services)
    try:
        await drain(Sender(services))
        keys = [b["msgKey"] for b in fake_dingtalk.delivered if b["userIds"] == ["qianld"]]
        assert keys == ["sampleMarkdown", "sampleMarkdown"]
        chart = (await session.scalars(select(StoredImage))).first()
        assert chart is not None
        shown = await fake_dingtalk.fetch_pictures()
        assert shown == [(200, "image/png", chart.data)]
        clock.advance(dt.timedelta(days=31))  # the link expires
        assert [status for status, *_ in await fake_dingtalk.fetch_pictures()] == [403]
    finally:
        await adapter.close()
        await site.close()


async def _image_site(services: Services) -> TestServer:
    server = TestServer(pages_app(services, image_page.routes(services)), host="127.0.0.1")
    await server.start_server()
    services.public_base_url = str(server.make_url("")).rstrip("/")
    return server


async def test_a_forged_or_foreign_image_link_shows_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock)
    site = await _image_site(services)
    try:
        async with aiohttp.ClientSession() as client:
            for token in ("", "abc.def", "x" * 2000):
                async with client.get(site.make_url("/h5/image"), params={"t": token}) as resp:
                    assert resp.status == 403 and resp.content_type == "text/html"
    finally:
        await site.close()


async def test_the_simulator_shows_the_chart(
    ctx: Ctx,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    w = await summary_world(ctx, session)
    await enqueue_daily_summaries(ctx, DAY)
    await session.commit()
    services = make_services(sessionmaker, clock)
    shown = await messages_for(services, session, w.other_leader, 0)
    assert [m["kind"] for m in shown] == ["markdown", "image"]
    chart = {c.sha256: c.data for c in (await session.scalars(select(StoredImage))).all()}
    assert shown[1]["image"] in {f"/sim/api/image?sha256={sha}" for sha in chart}
    site = TestServer(pages_app(services, sim_routes(services)), host="127.0.0.1")
    await site.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(site.make_url(shown[1]["image"])) as resp:
                assert resp.status == 200 and resp.content_type == "image/png"
                assert await resp.read() in chart.values()
            async with client.get(site.make_url("/sim/api/image?sha256=../etc")) as resp:
                assert resp.status == 400
    finally:
        await site.close()


async def test_without_a_cjk_font_the_text_goes_alone_with_a_warning(
    ctx: Ctx,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await summary_world(ctx, session)
    monkeypatch.setattr(charts, "CJK_FONTS", ("No Such Font",))
    with caplog.at_level(logging.WARNING, logger="core.charts"):
        assert await enqueue_daily_summaries(ctx, DAY) == 2
    await session.commit()
    assert [m.kind for m in await queued(session)] == ["markdown", "markdown"]
    assert caplog.text.count("fonts-wqy-microhei") == 1
    assert (await session.scalars(select(StoredImage))).all() == []
