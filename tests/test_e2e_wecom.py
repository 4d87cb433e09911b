"""End to end over loopback HTTP with the real WeCom adapter and a fake WeCom that signs,
encrypts and records like the platform: an invitation card reaches the partner's liaison, a
click on 拒绝 without a reason makes the bot ask, the reason declines, the card is updated and
the lead department's group robot is told. A retried callback has no second effect."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.dispatch import Dispatcher
from bot.platforms.wecom import WeComAdapter
from bot.sender import Sender
from bot.services import Services
from bot.workers import InboxWorker
from core.changes import Ctx
from core.consultation import opening
from core.messages import Platform
from core.models import AuditEvent, ChatBinding, ChatPlatform, Invitation
from core.officers import set_account
from tests import factories as f
from tests.fakes.wecom import FakeWeCom, WeComCallbackClient, card_event_xml, text_xml
from tests.server_helpers import make_services, random_aes_key, wecom_settings

TOKEN = "e2e-token"
_ids = itertools.count(9000)


@dataclass
class Rig:
    services: Services
    fake: FakeWeCom
    client: WeComCallbackClient
    inbox: InboxWorker
    sender: Sender

    async def step(self) -> None:
        """What the workers do after a callback: handle the inbox, deliver the outbox."""
        await self.inbox.run_once()
        await self.sender.run_once()

    def app_messages_to(self, userid: str) -> list[dict]:
        return [d for d in self.fake.delivered if d.get("touser") == userid]


@pytest.fixture
async def rig(sessionmaker, clock) -> AsyncIterator[Rig]:
    fake = await FakeWeCom(clock=clock).start()
    aes = random_aes_key()
    adapter = WeComAdapter(wecom_settings(fake, TOKEN, aes), clock)
    services = make_services(sessionmaker, clock, {Platform.WECOM: adapter})
    server = TestServer(create_app(services, workers=()), host="127.0.0.1")
    await server.start_server()
    client = WeComCallbackClient(
        TOKEN, aes, fake.corp_id, str(server.make_url("/wecom/callback")), clock=clock
    )
    try:
        yield Rig(
            services, fake, client, InboxWorker(services, Dispatcher(services)), Sender(services)
        )
    finally:
        await client.close()
        await server.close()
        await adapter.close()
        await fake.close()


async def test_card_decline_without_reason_then_reason_tells_the_lead(
    rig, sessionmaker, clock
) -> None:
    async with sessionmaker() as s:
        w = await f.world(s, partners=1, inspectors=1, n_targets=0)
        liaison = w.partners[0].liaison
        set_account(liaison, ChatPlatform.WECOM, "wx-liaison")
        s.add(
            ChatBinding(
                platform="wecom", department_id=w.lead.dep.id, webhook_url=rig.fake.webhook_url()
            )
        )
        ctx = Ctx(session=s, clock=clock, rules=rig.services.rules)
        _, inv = await f.invite_first_partner(ctx, w)
        await s.commit()
    await rig.sender.run_once()
    [card] = [m for m in rig.app_messages_to("wx-liaison") if m["msgtype"] == "template_card"]
    buttons = {b["text"]: b["key"] for b in card["template_card"]["button_list"]}
    task_id = card["template_card"]["task_id"]

    now = int(clock.now().timestamp())
    click = card_event_xml("wx-liaison", buttons["拒绝"], task_id, "rc-1", created=now)
    assert (await rig.client.post(click))[0] == 200
    assert (await rig.client.post(click))[0] == 200  # WeCom retries: one effect only
    await rig.step()
    asked = [m for m in rig.app_messages_to("wx-liaison") if "理由" in str(m)]
    assert len(asked) == 1

    reason = "本部门本季度执法力量已全部投入食品安全专项整治，无法参加"
    assert (
        await rig.client.post(
            text_xml("wx-liaison", reason, str(next(_ids)), created=now, corp_id=rig.fake.corp_id)
        )
    )[0] == 200
    await rig.step()
    async with sessionmaker() as s:
        answered = await s.get(Invitation, inv.id)
        assert (answered.state, answered.reason) == ("declined", reason)
        declines = (
            await s.scalars(select(AuditEvent).where(AuditEvent.action == "invitation.declined"))
        ).all()
        assert len(declines) == 1
    # group robot posts carry no "touser": this is the lead department's chat
    to_lead = [d for d in rig.fake.delivered if "touser" not in d and reason in str(d)]
    assert to_lead and "已拒绝" in str(to_lead[0]), (
        "the lead's group robot is told, with the reason"
    )
    updates = rig.fake.calls("/cgi-bin/message/update_template_card")
    assert len(updates) == 1 and "拒绝" in str(updates[0])


async def test_liaison_and_leader_each_get_the_invitation_card(rig, sessionmaker, clock) -> None:
    """Found by the fuzz suite's setup (issue 11): both answerers' cards carried the task_id
    inv-<id>, and WeCom refuses a template card whose task_id the app already used (40058), so
    the department's leader never got the card."""
    async with sessionmaker() as s:
        w = await f.world(s, partners=1, inspectors=1, n_targets=0)
        partner = w.partners[0]
        set_account(partner.liaison, ChatPlatform.WECOM, "wx-liaison")
        set_account(partner.leader, ChatPlatform.WECOM, "wx-leader")
        ctx = Ctx(session=s, clock=clock, rules=rig.services.rules)
        task = await f.draft_task(ctx, w)
        await opening.open_consultation(f.as_actor(ctx, w.lead.liaison), task, [partner.dep.id])
        await s.commit()
    await rig.sender.run_once()
    cards = {
        who: [m for m in rig.app_messages_to(who) if m["msgtype"] == "template_card"]
        for who in ("wx-liaison", "wx-leader")
    }
    assert all(len(c) == 1 for c in cards.values()), cards
    ids = {c[0]["template_card"]["task_id"] for c in cards.values()}
    assert len(ids) == 2
