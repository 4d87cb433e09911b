"""The local simulator chat (`/sim/`) on a 375 px phone: an officer picked from the roster sees
the messages queued for them, dated as a chat app dates them (12月14日 21:32, China time), not
as ISO text. Needs Debian's chromium (see tests/browser.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from core import outbox
from core.clock import CHINA_TZ, FixedClock
from core.db import make_engine, make_sessionmaker
from core.messages import Destination, OutMessage
from tests import factories
from tests.browser import PHONE_HEIGHT, page_width, shoot, shot_path
from tests.server_helpers import demo_client, make_services

DEMO_START = dt.datetime(2026, 11, 30, 10, 0, tzinfo=CHINA_TZ)  # a Monday


async def test_simulator_shows_an_officers_messages_dated_in_words(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, aiohttp_server, phone: Any
) -> None:
    async with sessionmaker() as session:
        w = await factories.world(session, partners=1, inspectors=1, n_targets=0)
        me = w.lead.liaison
        await outbox.enqueue(
            session, Destination.officer(me.id), OutMessage.text("请查看本周待办"), now=clock.now()
        )
        await session.commit()
    server = await aiohttp_server(
        create_app(make_services(sessionmaker, clock, simulator={"enabled": True}), workers=())
    )
    sent = clock.now().astimezone(CHINA_TZ)

    await phone.goto(str(server.make_url("/sim")))
    await phone.wait_for_selector(f"#officer option[value='{me.code}']", state="attached")
    await phone.select_option("#officer", me.code)
    await phone.wait_for_selector("text=请查看本周待办")
    meta = await phone.inner_text("#chat .msg .meta")
    overflow = await shoot(phone, "simulator")

    assert f"{sent.month}月{sent.day}日 {sent:%H:%M}" in meta
    assert "T" not in meta and str(sent.year) not in meta
    assert overflow <= 375


async def test_the_demo_header_leaves_a_phone_most_of_its_screen_for_the_chat(
    sqlite_url: str, phone: Any
) -> None:
    """`serve --demo` on a 375 px phone: the officer picker, demo clock and guide took 383 of
    the screen's 740 px, and the chat got what was left. On SQLite, as the demo runs."""
    engine = make_engine(sqlite_url)
    client, _ = await demo_client(make_sessionmaker(engine), DEMO_START)
    try:
        await phone.goto(str(client.make_url("/sim")))
        await phone.wait_for_selector("#guide-say:not(:empty)")
        await phone.screenshot(path=shot_path("simulator-demo"))
        header = await phone.evaluate(
            "document.querySelector('header').getBoundingClientRect().height"
        )
        overflow = await page_width(phone)
        go = await phone.is_visible("#guide-go")
    finally:
        await client.close()
        await engine.dispose()
    assert header <= 0.4 * PHONE_HEIGHT and overflow <= 375 and go
