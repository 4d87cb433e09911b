"""A real phone-sized browser answers an invitation on the signed-link page (the browser and
its screenshots: tests/browser.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.pages.invitation import INVITATION_PATH, invitation_link
from core.changes import Ctx
from core.clock import FixedClock
from core.models import Invitation
from tests import factories
from tests.browser import db_url, foreign_requests, shoot, shot_path  # noqa: F401 (db_url: fixture)
from tests.server_helpers import make_services


async def test_decline_with_reason_on_a_375px_page(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    aiohttp_server,
    phone: Any,
) -> None:
    services = make_services(sessionmaker, clock)
    async with sessionmaker() as session:
        w = await factories.world(session, partners=1, inspectors=1, n_targets=0)
        ctx = Ctx(session=session, clock=clock, rules=services.rules)
        _, inv = await factories.invite_first_partner(ctx, w)
        await session.commit()
    server = await aiohttp_server(create_app(services, workers=()))
    token = invitation_link(services, w.partners[0].liaison.id, inv.id).split("?t=", 1)[1]
    url = str(server.make_url(INVITATION_PATH).with_query(t=token))
    reason = "本部门四月集中开展专项整治，执法人员全部抽调，无法参加本次联合抽查。"

    foreign = foreign_requests(phone, str(server.make_url("/")).rstrip("/"))
    await phone.goto(url)
    await shoot(phone, "invitation")
    await phone.fill("textarea[name=reason]", reason)
    await phone.click("text=拒绝并提交理由")
    await phone.wait_for_selector("text=已记录")
    overflow = await shoot(phone, "invitation-declined")
    body = await phone.inner_text("body")

    assert "已记录" in body and reason in body and "已答复" in body
    assert overflow <= 375 and foreign == []
    assert shot_path("invitation-declined").stat().st_size > 10_000
    async with sessionmaker() as session:
        row = await session.get(Invitation, inv.id)
        assert row is not None and (row.state, row.reason) == ("declined", reason)
