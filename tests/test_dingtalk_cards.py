"""DingTalk interactive cards in HTTP mode, over real HTTP on loopback: the bot registers its
card callback URL, delivers the invitation card with HTTP callbacks, and a click that the fake
DingTalk posts to that URL answers the invitation once (a double click or a re-sent callback
is the same answer) and updates the card to show who answered. A click that is not JSON, or
whose action we did not sign for this card and this user, is refused with a 4xx and nothing is
stored."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.platforms.dingtalk import CARD_CALLBACK_PATH, DingTalkAdapter
from bot.replays import SignatureLedger
from bot.services import Services
from core.changes import Ctx
from core.clock import FixedClock
from core.consultation import answers
from core.messages import Platform
from core.models import AuditEvent, ChatPlatform, InboxEvent, Invitation, Officer
from core.officers import set_account
from tests import factories as f
from tests.fakes import wait_until
from tests.fakes.dingtalk import (
    CARD_TEMPLATE,
    DingTalkCallbackClient,
    FakeDingTalk,
    robot_message,
)
from tests.server_helpers import dingtalk_settings, make_services

LIAISON = "ding-liaison"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rig:
    fake: FakeDingTalk
    services: Services
    server: TestServer
    invitation_id: int
    liaison_name: str

    @property
    def track(self) -> str:
        [track] = self.fake.cards
        return track

    async def inbox_rows(self) -> int:
        async with self.services.sessionmaker() as s:
            return int(await s.scalar(select(func.count()).select_from(InboxEvent)) or 0)

    async def invitation_state(self) -> str:
        async with self.services.sessionmaker() as s:
            inv = await s.get(Invitation, self.invitation_id)
            assert inv is not None
            return str(inv.state)

    async def audited(self, action: str) -> int:
        async with self.services.sessionmaker() as s:
            query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
            return int(await s.scalar(query) or 0)


@pytest.fixture
async def rig(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> AsyncIterator[Rig]:
    """HTTP mode with an interactive card template; a partner's liaison on DingTalk has been
    invited and the running sender has delivered the card."""
    async with serving(sessionmaker, clock) as r:
        await wait_until(lambda: len(r.fake.cards) == 1)
        yield r


@contextlib.asynccontextmanager
async def serving(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    refuse_registration: bool = False,
) -> AsyncIterator[Rig]:
    async with sessionmaker() as s:
        w = await f.world(s, partners=1, inspectors=1, n_targets=0)
        liaison = w.partners[0].liaison
        set_account(liaison, ChatPlatform.DINGTALK, LIAISON)
        ctx = Ctx(session=s, clock=clock, rules=make_services(sessionmaker, clock).rules)
        _, inv = await f.invite_first_partner(ctx, w)
        await s.commit()
        invitation_id, name = inv.id, liaison.name
    fake = await FakeDingTalk(clock=clock).start()
    if refuse_registration:
        fake.script.fail_next(
            "callbacks/register", {"status": 403, "code": "Forbidden.AccessDenied"}
        )
    port = free_port()
    settings = dingtalk_settings(fake, mode="http", card_template_id=CARD_TEMPLATE)
    base = f"http://127.0.0.1:{port}"
    services = make_services(sessionmaker, clock)
    adapter = DingTalkAdapter(settings, clock, SignatureLedger(services), public_base_url=base)
    services.adapters[Platform.DINGTALK] = adapter
    app = create_app(services, workers=("inbox", "sender"))
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield Rig(fake, services, server, invitation_id, name)
    finally:
        await server.close()
        await adapter.close()
        await fake.close()


async def test_the_card_callback_url_is_registered_and_the_card_calls_back_over_http(
    rig: Rig,
) -> None:
    assert rig.fake.card_routes == {"lianjian": f"{rig.server.make_url(CARD_CALLBACK_PATH)}"}
    card = rig.fake.cards[rig.track]
    assert (card["callbackType"], card["callbackRouteKey"]) == ("HTTP", "lianjian")
    params = card["cardData"]["cardParamMap"]
    assert (params["button1_text"], params["button2_text"]) == ("接受", "拒绝")
    assert params["button1_action"].startswith("inv:accept:"), "the key, then our signature"
    assert "http" not in params["content"], "the interactive card needs no signed link"


async def test_accept_click_answers_once_and_the_card_shows_who_answered(rig: Rig) -> None:
    """000 二(七): each participating department decides whether to take part; one click is
    one answer however often it arrives."""
    status, answer = await rig.fake.click_http(rig.track, LIAISON, button=1)
    assert status == 200
    assert answer["cardData"]["cardParamMap"]["status"] == f"已由 {rig.liaison_name} 接受", (
        "the update rides back in the callback's answer"
    )
    assert rig.fake.card_state[rig.track]["status"] == f"已由 {rig.liaison_name} 接受"
    assert await rig.invitation_state() == "accepted"
    # the officer double-clicks, and DingTalk re-sends the first callback
    again = await rig.fake.click_http(rig.track, LIAISON, button=1)
    assert again == (200, {})
    assert await rig.inbox_rows() == 1, "the same click is stored once"
    assert await rig.audited("invitation.accepted") == 1


async def test_decline_click_asks_the_reason_and_the_card_shows_the_decline(rig: Rig) -> None:
    """000 二(七): a decline needs a written reason (书面函告理由); the click starts that
    conversation and the card is updated once the reason arrives (then by the OpenAPI: the
    click is long answered)."""
    status, answer = await rig.fake.click_http(rig.track, LIAISON, button=2)
    assert (status, answer) == (200, {}), "nothing to show on the card yet"
    await wait_until(lambda: any("理由" in json.dumps(d, ensure_ascii=False) for d in sent(rig)))
    assert await rig.invitation_state() == "pending"
    client = DingTalkCallbackClient(
        rig.fake.app_secret, str(rig.server.make_url("/dingtalk/callback")), rig.services.clock
    )
    try:
        now_ms = client.now_ms()
        message = robot_message(
            "本季度人手不足，无法参加本次联合抽查",
            staff_id=LIAISON,
            msg_id="msg-reason-1",
            group=False,
            created_ms=now_ms,
            robot_code=rig.fake.robot_code,
        )
        assert (await client.post(message))[0] == 200
    finally:
        await client.close()
    await wait_until(lambda: bool(rig.fake.card_updates))
    assert await rig.invitation_state() == "declined"
    assert rig.fake.card_state[rig.track]["status"] == f"已由 {rig.liaison_name} 拒绝"
    assert await rig.audited("invitation.declined") == 1


async def test_a_card_answered_by_another_answerer_shows_it_000_s7(rig: Rig) -> None:
    """000 §七: the department answers once; when its leader accepts in chat, the card the
    liaison was sent shows who accepted (by the id the card was created under)."""
    async with rig.services.sessionmaker() as s:
        inv = await s.get(Invitation, rig.invitation_id)
        assert inv is not None
        people = await s.scalars(select(Officer).where(Officer.department_id == inv.department_id))
        [leader] = [o for o in people.unique() if o.has_role("leader")]
        ctx = Ctx(session=s, clock=rig.services.clock, actor=leader, rules=rig.services.rules)
        await answers.accept_invitation(ctx, rig.invitation_id)
        await s.commit()
        name = leader.name
    await wait_until(lambda: bool(rig.fake.card_updates))
    assert rig.fake.card_state[rig.track]["status"] == f"已由 {name} 接受"


def sent(rig: Rig) -> list[dict[str, Any]]:  # the fake's JSON bodies
    return [d for d in rig.fake.delivered if d.get("userIds") == [LIAISON]]


@pytest.mark.parametrize(
    "forge",
    ["unsigned", "wrong_signature", "other_user", "other_action", "not_json", "no_action"],
)
async def test_a_click_we_did_not_sign_is_refused_and_nothing_is_stored(
    rig: Rig, forge: str
) -> None:
    track = rig.track
    params = rig.fake.card_state[track]
    signed = params["button1_action"]
    key = signed.rpartition(".")[0]
    user, action, raw = LIAISON, signed, None
    if forge == "unsigned":
        action = key
    elif forge == "wrong_signature":
        action = key + ".AAAAAAAAAAAAAAAAAAAAAA"
    elif forge == "other_user":
        user = "ding-someone-else"
    elif forge == "other_action":
        params["button1_action"] = signed.replace("inv:accept:", "inv:decline:")
    elif forge == "not_json":
        raw = b"{not json"
    elif forge == "no_action":
        action = ""
    params["button1_action"] = params["button1_action"] if forge == "other_action" else action
    status, _ = await rig.fake.click_http(track, user, button=1, body=raw)
    assert 400 <= status < 500
    assert await rig.inbox_rows() == 0
    assert await rig.invitation_state() == "pending"


async def test_a_refused_registration_falls_back_to_signed_links(sessionmaker, clock) -> None:
    """No registered callback URL, no card that calls back: the invitation goes out as the
    action card whose buttons open the signed H5 pages."""
    async with serving(sessionmaker, clock, refuse_registration=True) as r:
        await wait_until(lambda: bool(sent(r)))
        [card] = sent(r)
        assert card["msgKey"] == "sampleActionCard6"
        assert "/h5/" in card["msgParam"]["buttonUrl1"]
        assert r.fake.cards == {} and r.fake.card_routes == {}
