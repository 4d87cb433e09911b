"""DingTalk buttons cannot call back: an invitation card sent to a DingTalk-bound liaison
arrives (through the real sender and the fake DingTalk OpenAPI) with signed links, and the link
opens that liaison's answer page."""

from __future__ import annotations

import urllib.parse

from bot.platforms.dingtalk import DingTalkAdapter
from bot.sender import Sender
from core.changes import Ctx
from core.links import verify_link
from core.messages import Platform
from core.models import ChatPlatform
from core.officers import set_account
from tests import factories as f
from tests.fakes.dingtalk import FakeDingTalk
from tests.server_helpers import dingtalk_settings, make_services


async def test_invitation_card_on_dingtalk_carries_signed_answer_links(sessionmaker, clock) -> None:
    fake = await FakeDingTalk(clock=clock).start()
    adapter = DingTalkAdapter(dingtalk_settings(fake), clock)
    try:
        services = make_services(
            sessionmaker, clock, {Platform.DINGTALK: adapter}, sender={"app_user_per_minute": 1000}
        )
        async with sessionmaker() as s:
            w = await f.world(s, partners=1, inspectors=1, n_targets=0)
            liaison = w.partners[0].liaison
            set_account(liaison, ChatPlatform.DINGTALK, "ding-liaison")
            ctx = Ctx(session=s, clock=clock, rules=services.rules)
            _, inv = await f.invite_first_partner(ctx, w)
            await s.commit()
        await Sender(services).run_once()
        [sent] = [d for d in fake.delivered if d.get("userIds") == ["ding-liaison"]]
        urls = [v for k, v in sent["msgParam"].items() if "url" in k.lower()]
        assert len(urls) == 2 and all("/h5/invitation?t=" in u for u in urls)
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(urls[0]).query)["t"][0]
        claims = verify_link(
            services.link_secret, token, clock.now().timestamp(), obj=f"invitation:{inv.id}"
        )
        assert claims.officer_id == liaison.id
    finally:
        await adapter.close()
        await fake.close()
