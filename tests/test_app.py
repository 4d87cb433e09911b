"""The aiohttp app over real loopback HTTP: WeCom callbacks into the durable inbox, forged
callbacks refused, health, workers end to end, scheduled jobs, and `serve` start-up."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.config import load_settings
from bot.platforms.wecom import WeComAdapter, WeComSettings
from bot.scheduler import run_due_jobs_once
from bot.server import build_services
from bot.services import Services
from core.clock import FixedClock, SystemClock
from core.messages import Platform
from core.models import InboxEvent, OutboxMessage
from tests.fakes.wecom import WeComCallbackClient, text_xml
from tests.server_helpers import ReplyingHandler, make_services, outbox_count, random_aes_key

CORP, TOKEN = "wwfakecorp", "callback-token"


def wecom(aes: str, clock: FixedClock | SystemClock) -> WeComAdapter:
    return WeComAdapter(
        WeComSettings(
            corp_id=CORP, agent_id=1000002, secret="s", token=TOKEN, encoding_aes_key=aes
        ),
        clock,
    )


class Rig:
    def __init__(self, services: Services, server: TestServer, client: WeComCallbackClient) -> None:
        self.services, self.server, self.client = services, server, client

    async def get(self, path: str) -> tuple[int, dict[str, object]]:
        async with aiohttp.ClientSession() as http, http.get(self.server.make_url(path)) as resp:
            return resp.status, await resp.json()


async def start(
    services: Services,
    aes: str,
    workers: tuple[str, ...] = (),
    handler: ReplyingHandler | None = None,
) -> Rig:
    app = create_app(services, handler=handler or ReplyingHandler(services.clock), workers=workers)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = WeComCallbackClient(
        TOKEN, aes, CORP, str(server.make_url("/wecom/callback")), clock=services.clock
    )
    return Rig(services, server, client)


@pytest.fixture
async def rig(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> AsyncIterator[Rig]:
    aes = random_aes_key()
    services = make_services(sessionmaker, clock, {Platform.WECOM: wecom(aes, clock)})
    r = await start(services, aes)
    yield r
    await r.client.close()
    await r.server.close()


async def inbox_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[InboxEvent]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(InboxEvent))).all())


async def test_callback_is_stored_once_and_acked_empty(rig: Rig) -> None:
    created = int(rig.services.clock.now().timestamp())
    xml = text_xml("zhangsan", "任务", "7001", corp_id=CORP, created=created)
    for _ in range(3):  # WeCom retries when it thinks we were too slow
        status, body = await rig.client.post(xml)
        assert (status, body) == (200, b"")
    (row,) = await inbox_rows(rig.services.sessionmaker)
    assert (row.platform, row.event_id, row.state) == ("wecom", "7001", "pending")
    assert row.payload["text"] == "任务" and row.payload["user_id"] == "zhangsan"


@pytest.mark.parametrize("forgery", ["signature", "corp", "stale"])
async def test_forged_callback_is_refused_and_stores_nothing(rig: Rig, forgery: str) -> None:
    now = int(rig.services.clock.now().timestamp())
    xml = text_xml("zhangsan", "任务", "7002", corp_id=CORP, created=now)
    if forgery == "signature":
        status, body = await rig.client.post(xml, signature="0" * 40)
    elif forgery == "corp":
        status, body = await rig.client.post(xml, receive_id="wwsomeoneelse")
    else:
        status, body = await rig.client.post(xml, timestamp=now - 3600)
    assert 400 <= status < 500
    assert "callback rejected" in body.decode()
    assert await inbox_rows(rig.services.sessionmaker) == []


async def test_url_verification_goes_through_the_adapter(rig: Rig) -> None:
    assert await rig.client.verify_url("echo-12345") == (200, b"echo-12345")
    status, _ = await rig.client.verify_url("echo-12345", signature="f" * 40)
    assert status == 401


async def test_healthz_reports_queues(rig: Rig) -> None:
    clock = rig.services.clock
    await rig.client.post(
        text_xml("zhangsan", "帮助", "7003", corp_id=CORP, created=int(clock.now().timestamp()))
    )
    status, data = await rig.get("/healthz")
    assert status == 200
    assert data == {
        "status": "ok",
        "db": "ok",
        "pending_inbox": 1,
        "dead_inbox": 0,
        "pending_outbox": 0,
        "dead_outbox": 0,
        "platforms": ["wecom"],
        "connections": {},
    }


async def test_healthz_is_503_when_the_database_is_gone(tmp_path: Path, clock: FixedClock) -> None:
    from core.db import make_engine, make_sessionmaker

    engine = make_engine(str(tmp_path / "missing" / "db.sqlite3"))  # directory does not exist
    services = make_services(make_sessionmaker(engine), clock)
    r = await start(services, random_aes_key())
    try:
        async with aiohttp.ClientSession() as http, http.get(r.server.make_url("/healthz")) as resp:
            assert resp.status == 503
            assert (await resp.json())["status"] == "error"
    finally:
        await r.server.close()
        await engine.dispose()


async def test_workers_handle_callbacks_and_deliver_replies(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Real clock, real loops: callback → inbox → handler → outbox → sender (simulator)."""
    clock = SystemClock()
    aes = random_aes_key()
    services = make_services(
        sessionmaker,
        clock,
        {Platform.WECOM: wecom(aes, clock)},
        inbox={"poll_interval_s": 30},
        sender={"poll_interval_s": 30},
    )
    handler = ReplyingHandler(clock)
    r = await start(services, aes, workers=("inbox", "sender"), handler=handler)
    try:
        now = int(clock.now().timestamp())
        for i in range(5):
            xml = text_xml("zhangsan", f"消息{i}", f"80{i}", corp_id=CORP, created=now)
            assert (await r.client.post(xml))[0] == 200
            assert (await r.client.post(xml))[0] == 200  # duplicate
        # the long poll intervals mean only the wake-ups can make this finish in time
        async with asyncio.timeout(5):
            while True:
                async with sessionmaker() as session:
                    if await outbox_count(session, state="sent") == 5:
                        break
                await asyncio.sleep(0.02)
    finally:
        await r.client.close()
        await r.server.close()
    assert handler.calls == 5
    async with sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
        assert sorted(row.message["body"] for row in rows) == [f"收到：消息{i}" for i in range(5)]
        assert {row.channel for row in rows} == {"sim"}
    assert {row.state for row in await inbox_rows(sessionmaker)} == {"done"}


async def test_unsent_work_resumes_after_a_restart(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Rows stored while no worker ran (the process died after acking) are picked up by the
    poll of the next process, without any wake-up."""
    clock = SystemClock()
    aes = random_aes_key()
    services = make_services(
        sessionmaker,
        clock,
        {Platform.WECOM: wecom(aes, clock)},
        inbox={"poll_interval_s": 0.05},
        sender={"poll_interval_s": 0.05},
    )
    first = await start(services, aes)  # no workers: acks only
    now = int(clock.now().timestamp())
    await first.client.post(text_xml("lisi", "进度", "9001", corp_id=CORP, created=now))
    await first.client.close()
    await first.server.close()
    app = create_app(services, handler=ReplyingHandler(clock), workers=("inbox", "sender"))
    runner = web.AppRunner(app)
    await runner.setup()  # starts the workers through cleanup_ctx
    try:
        async with asyncio.timeout(5):
            while True:
                async with sessionmaker() as session:
                    if await outbox_count(session, state="sent") == 1:
                        break
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()


async def test_due_jobs_run_once_and_are_idempotent(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # 1 November, 11:00 in China: every daily job is due, and next year's holidays are missing
    at = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC)
    services = make_services(sessionmaker, FixedClock(at))
    first = await run_due_jobs_once(services, at)
    assert first == {
        "nudges": True,
        "summaries": True,
        "invitation_expiry": True,
        "holiday_warning": True,
        "plan_reminders": True,
        "housekeeping": True,
    }
    await run_due_jobs_once(services, at)
    async with sessionmaker() as session:
        warnings = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.idempotency_key.like("holiday-warning:%"))
            )
        ).all()
    assert len(warnings) == 1 and "2027" in warnings[0].message["body"]


async def test_jobs_not_yet_due_are_skipped(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    at = dt.datetime(2026, 11, 1, 23, 0, tzinfo=dt.UTC)  # 07:00 in China
    services = make_services(sessionmaker, FixedClock(at))
    # the night's housekeeping (03:20) has passed, the morning's ticks have not
    assert set(await run_due_jobs_once(services, at)) == {"invitation_expiry", "housekeeping"}


async def test_build_services_migrates_and_serves_with_no_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(database_url=str(tmp_path / "fresh.sqlite3"))
    services = await build_services(settings)
    app = create_app(services, workers=())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/healthz")) as resp:
                assert resp.status == 200 and (await resp.json())["platforms"] == []
            async with http.get(server.make_url("/sim")) as resp:
                assert resp.status == 200
            async with http.post(server.make_url("/wecom/callback")) as resp:
                assert resp.status in (404, 405)  # no WeCom configured, no route
    finally:
        await server.close()
        assert services.engine is not None
        await services.engine.dispose()
    assert (tmp_path / ".lianjian-secret").exists()


async def test_demo_county_loads_once_into_an_empty_database(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    from sqlalchemy import func

    from bot.server import load_demo_county
    from core.models import Officer

    services = make_services(sessionmaker, clock)
    assert await load_demo_county(services) is True
    async with sessionmaker() as session:
        officers = await session.scalar(select(func.count()).select_from(Officer))
    assert officers
    assert await load_demo_county(services) is False
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Officer)) == officers


async def test_favicon_is_served(rig: Rig) -> None:
    # browsers fetch /favicon.ico for every page; a 404 there is a console error each time
    url = rig.server.make_url("/favicon.ico")
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200 and resp.content_type == "image/x-icon"
        ico = await resp.read()
    assert struct.unpack_from("<HHH", ico) == (0, 1, 1)  # an icon file holding one image
    width, height, _, _, _, bpp, size, offset = struct.unpack_from("<BBBBHHII", ico, 6)
    assert (width, height, bpp) == (16, 16, 32) and offset + size == len(ico)
    image = Image.open(io.BytesIO(ico)).convert("RGBA")
    assert image.size == (16, 16) and image.getpixel((8, 1)) == (0x25, 0x63, 0xEB, 255)
