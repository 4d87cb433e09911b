"""Building Services for server-side tests (inbox, sender, app) on the `engine` fixtures."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from collections.abc import Iterable
from html import unescape
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.config import Settings
from bot.platforms.base import PlatformAdapter
from bot.platforms.dingtalk import DingTalkSettings
from bot.platforms.wecom import WeComSettings
from bot.server import start_demo
from bot.services import SERVICES, Services
from core.clock import Clock, FixedClock
from core.demo_clock import DemoClock
from core.messages import Destination, Event, OutMessage, Platform
from core.models import Department, OutboxMessage
from core.outbox import enqueue
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom


def page_text(html: str) -> str:
    """The words on a page as read: without tags, styles and scripts."""
    html = re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", "", html))


def random_aes_key() -> str:
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


def wecom_settings(fake: FakeWeCom, token: str = "tok", aes: str | None = None) -> WeComSettings:
    """A self-built app's settings pointing at the fake WeCom; its callbacks signed with `token`
    and encrypted with `aes` (a random key unless given)."""
    return WeComSettings(
        corp_id=fake.corp_id,
        agent_id=fake.agent_id,
        secret=fake.corp_secret,
        token=token,
        encoding_aes_key=aes or random_aes_key(),
        api_base=fake.base,
        webhook_base=fake.base,
    )


def dingtalk_settings(fake: FakeDingTalk, **kw: Any) -> DingTalkSettings:
    """Settings pointing both DingTalk API hosts at the fake (HTTP mode unless `kw` says)."""
    return DingTalkSettings(
        app_key=fake.app_key,
        app_secret=fake.app_secret,
        robot_code=fake.robot_code,
        api_base=fake.base,
        oapi_base=fake.base,
        **kw,
    )


def make_services(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    adapters: dict[Platform, PlatformAdapter] | None = None,
    **settings: Any,
) -> Services:
    cfg = Settings(link_secret="x" * 40, **settings)
    return Services(
        settings=cfg,
        sessionmaker=sessionmaker,
        clock=clock,
        rules=cfg.rules,
        link_secret=b"x" * 40,
        public_base_url="http://127.0.0.1:8080",
        adapters=adapters or {},
    )


class ReplyingHandler:
    """Stands in for bot.dispatch.Dispatcher: its one effect is a real outbox row per event,
    written in the session it is given, so duplicates would show as extra rows."""

    def __init__(self, clock: Clock, fail_times: int = 0) -> None:
        self.clock = clock
        self.fail_times = fail_times
        self.calls = 0

    async def handle(self, session: AsyncSession, event: Event) -> None:
        self.calls += 1
        # a simulator conversation: the sender "delivers" it without any platform call
        await enqueue(
            session,
            Destination(kind="chat", platform="sim", address=event.user_id),
            OutMessage.text(f"收到：{event.text}"),
            now=self.clock.now(),
        )
        if self.calls <= self.fail_times:
            raise RuntimeError("handler exploded")


def pages_app(services: Services, routes: Iterable[web.AbstractRouteDef]) -> web.Application:
    """An app serving only `routes` (no middlewares, no workers), with its services where the
    pages look them up."""
    app = web.Application()
    app[SERVICES] = services
    app.add_routes(routes)
    return app


async def add_department(session: AsyncSession, code: str = "SJ", name: str = "市场监管局") -> int:
    dept = Department(code=code, name=name)
    session.add(dept)
    await session.flush()
    return dept.id


async def outbox_count(session: AsyncSession, **where: Any) -> int:
    query = select(func.count()).select_from(OutboxMessage)
    for column, value in where.items():
        query = query.where(getattr(OutboxMessage, column) == value)
    return int(await session.scalar(query) or 0)


async def demo_client(
    sessionmaker: async_sessionmaker[AsyncSession],
    start: dt.datetime,
    workers: tuple[str, ...] = (),
) -> tuple[TestClient[Any, Any], DemoClock]:
    """`serve --demo`'s app, started at `start` on its demo clock, as a started test client."""
    clock = DemoClock(FixedClock(start))
    services = make_services(sessionmaker, clock)
    await start_demo(services, clock)
    client = TestClient(TestServer(create_app(services, workers=workers), host="127.0.0.1"))
    await client.start_server()
    return client, clock
