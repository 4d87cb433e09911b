"""DingTalk adapter against a signing callback client and a fake DingTalk server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.platforms.base import TRUNCATION_NOTE, Channel
from bot.platforms.dingtalk import (
    DingTalkAdapter,
    DingTalkExtras,
    is_session_webhook,
    parsed_session_webhook,
    signed_webhook_url,
)
from bot.replays import PRUNE_EVERY, SignatureLedger
from core.clock import FixedClock
from core.db import make_engine, make_sessionmaker
from core.messages import Button, Card, Event, Field_, OutMessage, Platform
from core.models import UsedSignature
from tests.fakes import callback_app
from tests.fakes.dingtalk import DingTalkCallbackClient, FakeDingTalk, robot_message, robot_sign
from tests.server_helpers import dingtalk_settings, make_services

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
SECRET = "SECfake0123456789"


@dataclass
class Rig:
    adapter: DingTalkAdapter
    fake: FakeDingTalk
    client: DingTalkCallbackClient
    received: list[list[Event]]
    clock: FixedClock

    def group(self, token: str = "robot-token-1", secret: str = SECRET) -> Channel:
        return Channel(Platform.DINGTALK, "group_webhook", self.fake.webhook_url(token), secret)


@contextlib.asynccontextmanager
async def serving(
    fake: FakeDingTalk, clock: FixedClock, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Rig]:
    """One `serve` process's DingTalk side: adapter, replay ledger on the database, callback
    route. Two of these on one database are two processes (or one before and after a restart)."""
    adapter = DingTalkAdapter(
        dingtalk_settings(fake), clock, SignatureLedger(make_services(sessionmaker, clock))
    )
    app, received = callback_app(adapter)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = DingTalkCallbackClient(
        fake.app_secret, str(server.make_url("/dingtalk/callback")), clock
    )
    try:
        yield Rig(adapter, fake, client, received, clock)
    finally:
        await client.close()
        await server.close()
        await adapter.close()


@pytest.fixture
async def rig(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Rig]:
    clock = FixedClock(NOW)
    fake = await FakeDingTalk(clock=clock).start()
    async with serving(fake, clock, sessionmaker) as serving_rig:
        yield serving_rig
    await fake.close()


# ---- callbacks --------------------------------------------------------------------------------


async def test_signed_group_message_becomes_event(rig: Rig) -> None:
    session = rig.fake.new_session_webhook()
    now = rig.client.now_ms()
    status, body = await rig.client.post(
        robot_message(" 任务 列表 ", created_ms=now, session_webhook=session)
    )
    assert (status, body) == (200, b"")
    [[event]] = rig.received
    assert event.platform == "dingtalk" and event.kind == "text"
    assert (event.event_id, event.user_id, event.text) == (
        "msgzFeY3Fd5vUm9K+fJ1Sw0zQ==",
        "manager7675",
        "任务 列表",
    )
    assert (event.chat_id, event.is_group) == ("cidAbCdEfGh1234567890==", True)
    extras = DingTalkExtras.of(event)
    assert (extras.session_webhook, extras.session_webhook_expires_ms) == (
        session,
        now + 90 * 60 * 1000,
    )


def test_conversation_extras_are_the_models_dump() -> None:
    """The hand-built extras of a robot message are exactly what the model would dump, and
    every message gets its own dict."""
    webhook = "https://oapi.dingtalk.com/robot/sendBySession?session=abc"
    built = DingTalkExtras.conversation(webhook, 1234)
    assert built == DingTalkExtras(session_webhook=webhook, session_webhook_expires_ms=1234).dump()
    assert (
        DingTalkExtras.of(
            Event(platform=Platform.DINGTALK, event_id="m", user_id="u", extras=built)
        ).reply_to()
        is not None
    )
    assert DingTalkExtras.conversation("", 0) == DingTalkExtras().dump()
    assert DingTalkExtras.conversation("", 0) is not DingTalkExtras.conversation("", 0)


async def test_single_chat_has_no_chat_id(rig: Rig) -> None:
    await rig.client.post(robot_message("帮助", group=False, created_ms=rig.client.now_ms()))
    event = rig.received[0][0]
    assert (event.is_group, event.chat_id) == (False, "")


async def test_bad_sign_is_rejected(rig: Rig) -> None:
    msg = robot_message("x", created_ms=rig.client.now_ms())
    status, _ = await rig.client.post(
        msg, sign=robot_sign("another-secret", str(rig.client.now_ms()))
    )
    assert status == 401
    status, _ = await rig.client.post(msg, sign="")
    assert status == 401
    assert rig.received == []


@pytest.mark.parametrize("skew_s", [-3601, 3601])
async def test_stale_or_future_timestamp_is_rejected(rig: Rig, skew_s: int) -> None:
    ts = rig.client.now_ms() + skew_s * 1000
    status, _ = await rig.client.post(robot_message("x", created_ms=ts), timestamp_ms=ts)
    assert status == 403
    assert rig.received == []


async def test_timestamp_inside_window_is_accepted(rig: Rig) -> None:
    ts = rig.client.now_ms() - 3599 * 1000
    status, _ = await rig.client.post(robot_message("x", created_ms=ts), timestamp_ms=ts)
    assert status == 200


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", "中文".encode("gbk")])
async def test_malformed_json_is_400(rig: Rig, body: bytes) -> None:
    status, _ = await rig.client.post(body=body)
    assert status == 400


async def test_missing_sender_staff_id_is_400(rig: Rig) -> None:
    msg = robot_message("x", created_ms=rig.client.now_ms())
    del msg["senderStaffId"]
    status, _ = await rig.client.post(msg)
    assert status == 400


async def test_message_for_another_robot_is_403(rig: Rig) -> None:
    msg = robot_message("x", created_ms=rig.client.now_ms(), robot_code="someoneelse")
    assert (await rig.client.post(msg))[0] == 403


async def test_message_without_robot_code_is_400(rig: Rig) -> None:
    msg = robot_message("x", created_ms=rig.client.now_ms())
    del msg["robotCode"]
    assert (await rig.client.post(msg))[0] == 400
    assert rig.received == []


async def test_configured_corp_id_must_match_both_corp_fields(rig: Rig) -> None:
    rig.adapter.settings.corp_id = "dingcorp123"
    assert (await rig.client.post(robot_message("x", created_ms=rig.client.now_ms())))[0] == 200
    for field in ("chatbotCorpId", "senderCorpId"):
        msg = robot_message("x", created_ms=rig.client.now_ms(), msg_id=f"m-{field}")
        msg[field] = "dingattacker"
        assert (await rig.client.post(msg))[0] == 403
    assert len(rig.received) == 1


@pytest.mark.parametrize(
    "webhook",
    [
        "https://oapi.dingtalk.com/robot/send?access_token=ATTACKER",
        "{base}/robot/send?access_token=ATTACKER",
        "{base}/robot/sendBySession?session=abc&access_token=ATTACKER",
        "{base}/robot/sendBySession?session=",
        "{base}/robot/sendBySession/x?session=abc",
        "{base}/robot/sendBySession?session=abc#frag",
        "http://user:pw@{host}/robot/sendBySession?session=abc",
        "https://evil.example/robot/sendBySession?session=abc",
        "/robot/sendBySession?session=abc",
    ],
)
async def test_session_webhook_other_than_send_by_session_is_400(rig: Rig, webhook: str) -> None:
    url = webhook.format(base=rig.fake.base, host=rig.fake.base.split("//", 1)[1])
    msg = robot_message("x", created_ms=rig.client.now_ms(), session_webhook=url)
    assert (await rig.client.post(msg))[0] == 400
    assert rig.received == []


@pytest.mark.parametrize(
    "address",
    [
        "{base}/robot/sendBySession?session=c5f9d6d9f6ac9d2b",
        "{base}/robot/sendBySession?session=a.b_c~d-e",
        "{base}/robot/sendBySession?session=abc&access_token=ATTACKER",
        "{base}/robot/sendBySession?session=abc%26x%3D1",
        "{base}/robot/sendBySession?session=",
        "{base}/robot/sendBySession?session=abc#frag",
        "{base}/robot/sendBySessionX?session=abc",
        "{base}.evil.example/robot/sendBySession?session=abc",
        "{base}/robot/sendBySession?session=ab/../../robot/send",
    ],
)
def test_the_quick_session_webhook_check_agrees_with_parsing(address: str) -> None:
    """The unparsed fast path only ever says yes where parsing both URLs says yes."""
    base = "https://oapi.dingtalk.com"
    url = address.format(base=base)
    assert is_session_webhook(url, base) == parsed_session_webhook(url, base)


async def test_replayed_sign_with_another_msg_id_is_refused(rig: Rig) -> None:
    ts = rig.client.now_ms()
    first = robot_message("帮助", created_ms=ts, msg_id="msg-original")
    assert (await rig.client.post(first, timestamp_ms=ts))[0] == 200
    # DingTalk redelivering the same message is fine (the inbox de-duplicates it)
    assert (await rig.client.post(first, timestamp_ms=ts))[0] == 200
    forged = robot_message(
        "拒绝 LJ-2026-001 不参加", created_ms=ts, msg_id="msg-forged", staff_id="admin"
    )
    assert (await rig.client.post(forged, timestamp_ms=ts))[0] == 403
    assert [e.event_id for [e] in rig.received] == ["msg-original", "msg-original"]
    rig.clock.advance(dt.timedelta(milliseconds=1))
    fresh = robot_message("帮助", created_ms=rig.client.now_ms(), msg_id="msg-next")
    assert (await rig.client.post(fresh))[0] == 200


async def test_replay_after_a_restart_is_refused(
    rig: Rig, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Issue 11 defect 2: headers captured from a real message, the server restarted, a forged
    body naming the admin with a new msgId under the same headers: refused, nothing parsed."""
    ts = rig.client.now_ms()
    real = robot_message("帮助", created_ms=ts, msg_id="msg-real", staff_id="officer1")
    assert (await rig.client.post(real, timestamp_ms=ts))[0] == 200
    async with serving(rig.fake, rig.clock, sessionmaker) as restarted:
        forged = robot_message(
            "绑定 GA003 钉钉 attacker9", created_ms=ts, msg_id="msg-forged", staff_id="admin"
        )
        assert (await restarted.client.post(forged, timestamp_ms=ts))[0] == 403
        # DingTalk re-sending the real message after the restart is still accepted
        assert (await restarted.client.post(real, timestamp_ms=ts))[0] == 200
        assert [e.event_id for [e] in restarted.received] == ["msg-real"]


async def test_a_replayed_pair_is_refused_before_the_body_is_parsed(rig: Rig) -> None:
    """A body that would be expensive (or impossible) to parse never reaches the parser."""
    ts = rig.client.now_ms()
    assert (await rig.client.post(robot_message("帮助", created_ms=ts), timestamp_ms=ts))[0] == 200
    status, _ = await rig.client.post(timestamp_ms=ts, body=b"[" * 2000)
    assert status == 403


async def test_two_processes_race_for_one_pair_and_one_wins(
    db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Two processes (own engines) on one database claim the same pair with different bodies
    at once: exactly one is accepted."""
    clock = FixedClock(NOW)
    engines = [make_engine(db_url) for _ in range(2)]
    ledgers = [SignatureLedger(make_services(make_sessionmaker(e), clock)) for e in engines]
    keep = NOW + dt.timedelta(hours=1)
    try:
        for n in range(5):
            results = await asyncio.gather(
                *(
                    ledger.claim(f"dingtalk:{n}:sig", body, keep)
                    for ledger, body in zip(ledgers, "ab", strict=True)
                )
            )
            assert sorted(results) == [False, True]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_used_pairs_are_pruned_after_the_window(
    rig: Rig, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ts = rig.client.now_ms()
    assert (await rig.client.post(robot_message("帮助", created_ms=ts), timestamp_ms=ts))[0] == 200
    rig.clock.advance(dt.timedelta(seconds=rig.adapter.settings.timestamp_window_s) + PRUNE_EVERY)
    fresh = robot_message("帮助", created_ms=rig.client.now_ms(), msg_id="msg-later")
    assert (await rig.client.post(fresh))[0] == 200
    async with sessionmaker() as session:  # only the fresh pair is left
        assert await session.scalar(select(func.count()).select_from(UsedSignature)) == 1


async def test_nested_or_overflowing_bodies_are_400(rig: Rig) -> None:
    """Issue 11 defect 5: 2,000 nested brackets (RecursionError) and an expiry of 1e400
    (OverflowError) were 500s."""
    assert (await rig.client.post(body=b"[" * 2000 + b"]" * 2000))[0] == 400
    rig.clock.advance(dt.timedelta(milliseconds=1))  # a fresh (timestamp, sign) pair
    message = robot_message("帮助", created_ms=rig.client.now_ms())
    raw = json.dumps(message).replace('"sessionWebhookExpiredTime": ', '"x": ')
    raw = raw[:-1] + ', "sessionWebhookExpiredTime": 1e400}'
    assert (await rig.client.post(body=raw.encode()))[0] == 400
    assert rig.received == []


async def test_oversize_body_is_413(rig: Rig) -> None:
    msg = robot_message("检" * 30_000, created_ms=rig.client.now_ms())
    assert (await rig.client.post(msg))[0] == 413


async def test_non_text_message_is_kind_other(rig: Rig) -> None:
    msg = robot_message("", created_ms=rig.client.now_ms())
    msg.update(msgtype="picture", content={"downloadCode": "abc"})
    del msg["text"]
    assert (await rig.client.post(msg))[0] == 200
    assert rig.received[0][0].kind == "other"


# ---- custom robot webhook (加签) --------------------------------------------------------------


async def test_signed_webhook_url_is_accepted_by_the_fake(rig: Rig) -> None:
    # a sign holding '+' is the case that breaks when it is not URL-encoded (it arrives as a space)
    while "+" not in robot_sign(SECRET, str(rig.client.now_ms())):
        rig.clock.advance(dt.timedelta(milliseconds=1))
    result = await rig.adapter.send(rig.group(), OutMessage.md("今日汇总", "共 3 项逾期"))
    assert result.ok, result
    [sent] = rig.fake.delivered
    assert sent == {
        "msgtype": "markdown",
        "markdown": {"title": "今日汇总", "text": "**今日汇总**\n\n共 3 项逾期"},
    }
    query = rig.fake.calls("/robot/send")[0].query
    assert query["timestamp"] == str(rig.client.now_ms())


def test_webhook_sign_is_url_encoded_once() -> None:
    url = signed_webhook_url(
        "https://oapi.dingtalk.com/robot/send?access_token=abc", SECRET, 1_700_000_000_000
    )
    raw = str(url)
    assert "+" not in raw.split("sign=")[1] and "/" not in raw.split("sign=")[1]
    assert url.query["sign"] == robot_sign(SECRET, "1700000000000")


async def test_wrong_secret_gets_310000_and_is_permanent(rig: Rig) -> None:
    result = await rig.adapter.send(rig.group(secret="SECwrong"), OutMessage.text("x"))
    assert (result.ok, result.permanent, result.code) == (False, True, "310000")
    assert rig.fake.delivered == []


async def test_unknown_robot_token_is_permanent(rig: Rig) -> None:
    result = await rig.adapter.send(rig.group(token="gone"), OutMessage.text("x"))
    assert (result.permanent, result.code) == (True, "300001")


async def test_throttled_robot_waits_ten_minutes(rig: Rig) -> None:
    results = [await rig.adapter.send(rig.group(), OutMessage.text(f"{i}")) for i in range(21)]
    assert all(r.ok for r in results[:20])
    assert (results[20].retry_after, results[20].code) == (600, "130101")
    rig.fake.script.fail_next("robot/send", {"errcode": 410100, "errmsg": "send too fast"})
    rig.clock.advance(dt.timedelta(minutes=1))
    assert (await rig.adapter.send(rig.group(), OutMessage.text("x"))).retry_after == 600


async def test_text_mentions_need_at_in_content_and_at_user_ids(rig: Rig) -> None:
    assert (
        await rig.adapter.send(
            rig.group(), OutMessage.text("请尽快录入结果"), mention_user_ids=["u1", "u2"]
        )
    ).ok
    assert rig.fake.delivered[0] == {
        "msgtype": "text",
        "text": {"content": "请尽快录入结果 @u1 @u2"},
        "at": {"atUserIds": ["u1", "u2"]},
    }


async def test_action_card_carries_the_urls_and_drops_callback_only_buttons(rig: Rig) -> None:
    card = Card(
        title="联合抽查邀请",
        description="请在 5 个工作日内答复",
        fields=[Field_(name="牵头部门", value="市场监管局")],
        buttons=[
            Button(
                label="接受",
                action_key="inv:accept:1",
                url="https://lj.example/h5/inv/1?a=accept&sig=x",
            ),
            Button(
                label="拒绝",
                action_key="inv:decline:1",
                url="https://lj.example/h5/inv/1?a=decline&sig=y",
            ),
            Button(label="仅回调", action_key="inv:other:1"),
        ],
    )
    assert (await rig.adapter.send(rig.group(), OutMessage(kind="card", card=card))).ok
    action_card = rig.fake.delivered[0]["actionCard"]
    assert action_card["btns"] == [
        {"title": "接受", "actionURL": "https://lj.example/h5/inv/1?a=accept&sig=x"},
        {"title": "拒绝", "actionURL": "https://lj.example/h5/inv/1?a=decline&sig=y"},
    ]
    assert action_card["title"] == "联合抽查邀请"
    assert (
        action_card["text"] == "**联合抽查邀请**\n\n请在 5 个工作日内答复\n\n> 牵头部门：市场监管局"
    )


async def test_card_update_is_unsupported_not_sent(rig: Rig) -> None:
    result = await rig.adapter.send(
        rig.group(), OutMessage(kind="card_update", card_ref="x", body="已答复")
    )
    assert (result.ok, result.permanent, result.code) == (False, False, "unsupported")
    assert rig.fake.requests == []


async def test_long_markdown_truncated_and_mentions_kept(rig: Rig) -> None:
    msg = OutMessage.md("汇总", "检" * 8000)
    assert (await rig.adapter.send(rig.group(), msg, mention_user_ids=["u1"])).ok
    text = rig.fake.delivered[0]["markdown"]["text"]
    assert len(text.encode()) <= 20000 and text.endswith(TRUNCATION_NOTE + " @u1")


# ---- session webhook --------------------------------------------------------------------------


async def test_reply_through_session_webhook_without_token(rig: Rig) -> None:
    channel = Channel(Platform.DINGTALK, "session_webhook", rig.fake.new_session_webhook())
    assert (await rig.adapter.send(channel, OutMessage.text("收到"))).ok
    assert rig.fake.delivered == [{"msgtype": "text", "text": {"content": "收到"}}]
    assert rig.fake.token_calls == 0


async def test_expired_session_webhook_fails(rig: Rig) -> None:
    channel = Channel(
        Platform.DINGTALK, "session_webhook", rig.fake.url("/robot/sendBySession?session=expired")
    )
    result = await rig.adapter.send(channel, OutMessage.text("收到"))
    assert not result.ok and result.code == "300001"


async def test_webhook_outside_oapi_base_is_refused(rig: Rig) -> None:
    channel = Channel(
        Platform.DINGTALK, "session_webhook", "https://evil.example/robot/sendBySession?session=1"
    )
    result = await rig.adapter.send(channel, OutMessage.text("x"))
    assert (result.permanent, result.code) == (True, "bad_address")
    assert rig.fake.requests == []


# ---- OpenAPI direct messages ------------------------------------------------------------------


def user(staff_id: str = "manager7675") -> Channel:
    return Channel(Platform.DINGTALK, "user", staff_id)


async def test_direct_markdown_via_batch_send_with_cached_token(rig: Rig) -> None:
    for _ in range(3):
        assert (await rig.adapter.send(user(), OutMessage.md("提醒", "请录入结果"))).ok
    assert rig.fake.token_calls == 1
    sent = rig.fake.delivered[0]
    assert (sent["robotCode"], sent["userIds"], sent["msgKey"]) == (
        "dingfakeappkey",
        ["manager7675"],
        "sampleMarkdown",
    )
    assert sent["msgParam"] == {"title": "提醒", "text": "**提醒**\n\n请录入结果"}


async def test_revoked_token_is_refetched_once(rig: Rig) -> None:
    assert (await rig.adapter.send(user(), OutMessage.text("a"))).ok
    rig.fake.revoke_tokens()
    assert (await rig.adapter.send(user(), OutMessage.text("b"))).ok
    assert rig.fake.token_calls == 2


async def test_concurrent_direct_messages_fetch_one_token(rig: Rig) -> None:
    results = await asyncio.gather(
        *(rig.adapter.send(user(f"u{i}"), OutMessage.text("x")) for i in range(10))
    )
    assert all(r.ok for r in results) and rig.fake.token_calls == 1


async def test_wrong_app_secret_fails_without_raising(rig: Rig) -> None:
    rig.fake.app_secret = "rotated"
    result = await rig.adapter.send(user(), OutMessage.text("a"))
    assert (result.ok, result.code) == (False, "invalidClientSecret")


@pytest.mark.parametrize(
    ("count", "msg_key", "first_keys"),
    [
        (1, "sampleActionCard", ("singleTitle", "singleURL")),
        (2, "sampleActionCard6", ("buttonTitle1", "buttonUrl1")),
        (4, "sampleActionCard4", ("actionTitle1", "actionURL1")),
    ],
)
async def test_direct_action_card_templates(
    rig: Rig, count: int, msg_key: str, first_keys: tuple[str, str]
) -> None:
    buttons = [Button(label=f"按钮{i}", url=f"https://lj.example/h5/{i}") for i in range(count)]
    assert (
        await rig.adapter.send(
            user(), OutMessage(kind="card", card=Card(title="卡片", buttons=buttons))
        )
    ).ok
    sent = rig.fake.delivered[0]
    assert sent["msgKey"] == msg_key
    assert (sent["msgParam"][first_keys[0]], sent["msgParam"][first_keys[1]]) == (
        "按钮0",
        "https://lj.example/h5/0",
    )


async def test_more_than_five_buttons_overflow_into_links(rig: Rig) -> None:
    buttons = [Button(label=f"b{i}", url=f"https://lj.example/{i}") for i in range(7)]
    assert (
        await rig.adapter.send(
            user(), OutMessage(kind="card", card=Card(title="多", buttons=buttons))
        )
    ).ok
    sent = rig.fake.delivered[0]
    assert sent["msgKey"] == "sampleActionCard5"
    assert "[b5](https://lj.example/5)" in sent["msgParam"]["text"]
    assert "[b6](https://lj.example/6)" in sent["msgParam"]["text"]


async def test_unknown_staff_id_is_not_ok(rig: Rig) -> None:
    rig.fake.invalid_staff.add("ghost")
    result = await rig.adapter.send(user("ghost"), OutMessage.text("a"))
    assert (result.ok, result.code) == (False, "invalid_staff")


async def test_openapi_throttling_asks_to_wait(rig: Rig) -> None:
    rig.fake.script.fail_next(
        "batchSend", {"status": 429, "code": "Forbidden.AccessDenied.QpsLimitForApi"}
    )
    result = await rig.adapter.send(user(), OutMessage.text("a"))
    assert not result.ok and result.retry_after == 60
