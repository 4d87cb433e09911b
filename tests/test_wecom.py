"""WeCom adapter against published crypto samples, a callback client and a fake API server."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from bot.platforms.base import TRUNCATION_NOTE, Channel, titled, truncate_utf8
from bot.platforms.wecom import WeComAdapter, WeComExtras, WeComSettings
from core.clock import FixedClock
from core.messages import Button, Card, Event, Field_, OutMessage, Platform
from tests.fakes import callback_app
from tests.fakes.wecom import FakeWeCom, WeComCallbackClient, card_event_xml, text_xml
from tests.server_helpers import random_aes_key, wecom_settings

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
CORP = "wwfakecorp"


@dataclass
class Rig:
    adapter: WeComAdapter
    fake: FakeWeCom
    client: WeComCallbackClient
    received: list[list[Event]]
    clock: FixedClock


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FixedClock(NOW)
    fake = await FakeWeCom(corp_id=CORP, clock=clock).start()
    aes_key = random_aes_key()
    adapter = WeComAdapter(wecom_settings(fake, "cbtoken", aes_key), clock)
    app, received = callback_app(adapter)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = WeComCallbackClient(
        "cbtoken", aes_key, CORP, str(server.make_url("/wecom/callback")), clock
    )
    yield Rig(adapter, fake, client, received, clock)
    await client.close()
    await server.close()
    await adapter.close()
    await fake.close()


@dataclass
class VectorServer:
    server: TestServer
    adapter: WeComAdapter
    received: list[list[Event]]

    async def close(self) -> None:
        await self.server.close()
        await self.adapter.close()


@pytest.fixture
async def serve_vector() -> AsyncIterator[Callable[..., Awaitable[VectorServer]]]:
    """Our adapter with a published sample's credentials, its clock at the sample's time."""
    started: list[VectorServer] = []

    async def start(token: str, aes_key: str, corp: str, at: int) -> VectorServer:
        settings = WeComSettings(
            corp_id=corp, agent_id=1, secret="s", token=token, encoding_aes_key=aes_key
        )
        adapter = WeComAdapter(settings, FixedClock(dt.datetime.fromtimestamp(at, dt.UTC)))
        app, received = callback_app(adapter)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        started.append(VectorServer(server, adapter, received))
        return started[-1]

    yield start
    for vs in started:
        await vs.close()


# ---- published samples (facts, not code) ----------------------------------------------------

OFFICIAL = {  # github sbzhu/weworkapi_python callback/Sample.py
    "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "corp": "ww1436e0e65a779aee",
}
OFFICIAL_ECHO = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",  # noqa: E501 (protocol test vector)
}
OFFICIAL_POST = {
    "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    "timestamp": "1476422779",
    "nonce": "1597212914",
}
OFFICIAL_BODY = (
    "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA["
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzT"
    "tRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5j"
    "aU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX"
    "3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
    "]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)


def test_a_message_shows_one_heading() -> None:
    """WeCom and DingTalk markdown show no title of their own, so the title goes first as a
    bold line, but not over a body with its own heading: nearly every notice read
    “**LJ-…-001 结果被退回**” then “**LJ-…-001 某公司：检查结果被退回**”."""
    own = "**LJ-2026-001-001 某某公司：检查结果被退回**\n退回理由：缺少现场照片"
    assert titled(OutMessage.md("LJ-2026-001-001 结果被退回", own)) == own
    assert titled(OutMessage.md("节假日数据提醒", "尚未导入 2027 年节假日安排。")) == (
        "**节假日数据提醒**\n尚未导入 2027 年节假日安排。"
    )


async def test_official_sample_url_verification_echoes_exact_plaintext(
    serve_vector: Callable[..., Awaitable[VectorServer]],
) -> None:
    vs = await serve_vector(**OFFICIAL, at=1476416373)
    async with aiohttp.ClientSession() as http:
        async with http.get(vs.server.make_url("/wecom/callback"), params=OFFICIAL_ECHO) as resp:
            assert resp.status == 200
            assert await resp.read() == b"1288432023552776189"
        forged = {**OFFICIAL_ECHO, "nonce": "47744684"}
        async with http.get(vs.server.make_url("/wecom/callback"), params=forged) as resp:
            assert resp.status == 401


async def test_official_sample_message_decrypts_with_pad_byte_above_16(
    serve_vector: Callable[..., Awaitable[VectorServer]],
) -> None:
    # This sample's plaintext is padded with 22 bytes: a 16-byte PKCS#7 unpadder would reject it.
    vs = await serve_vector(**OFFICIAL, at=1476422779)
    async with aiohttp.ClientSession() as http:
        url = vs.server.make_url("/wecom/callback")
        async with http.post(url, params=OFFICIAL_POST, data=OFFICIAL_BODY.encode()) as resp:
            assert resp.status == 200
            assert await resp.read() == b""  # the ack: 200 with an empty body
    [[event]] = vs.received
    assert (event.kind, event.user_id, event.text, event.event_id) == (
        "text",
        "ChenJiaShun",
        "你好",
        "1456453720",
    )


WECHATPY = {  # github wechatpy/wechatpy tests/test_crypto.py
    "token": "123456",
    "aes_key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "corp": "wx49f0ab532d5d035a",
}
WECHATPY_ECHO = {
    "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    "timestamp": "1411443780",
    "nonce": "437374425",
    "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",  # noqa: E501 (protocol test vector)
}


async def test_second_published_sample_verifies_even_when_plus_arrives_unescaped(
    serve_vector: Callable[..., Awaitable[VectorServer]],
) -> None:
    vs = await serve_vector(**WECHATPY, at=1411443780)
    # a proxy that forgets to escape '+' hands us spaces; the adapter must restore them
    raw_query = "&".join(f"{k}={v}" for k, v in WECHATPY_ECHO.items())
    url = f"{vs.server.make_url('/wecom/callback')}?{raw_query}"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        assert await resp.read() == b"5927782489442352469"


def test_fake_callback_crypto_reproduces_published_encryption() -> None:
    """The fake's independent crypto must match wechatpy's published ciphertext and signature."""
    client = WeComCallbackClient(WECHATPY["token"], WECHATPY["aes_key"], WECHATPY["corp"], "unused")
    reply = (
        "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
        "<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n"
        "<CreateTime>1411525903</CreateTime>\n</xml>"
    )
    encrypted = client.encrypt(reply, random16=b"1234567890123456")
    assert encrypted == (
        "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNc"
        "BqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0"
        "nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbw"
        "bgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3"
        "ypD3WeK2XeFYFMNMpatF9XiKzHo3"
    )
    assert (
        client.sign("1411525903", "461056294", encrypted)
        == "407518b7649e86ef23978113f92d27afa9296533"
    )


# ---- callbacks through the fake WeCom client --------------------------------------------------


def now_s(rig: Rig) -> int:
    return int(rig.clock.now().timestamp())


async def test_url_verification_echoes_exactly_the_plaintext(rig: Rig) -> None:
    status, body = await rig.client.verify_url("echo+with/odd=chars 123")
    assert (status, body) == (200, b"echo+with/odd=chars 123")


async def test_forged_signature_is_rejected_before_anything_is_echoed(rig: Rig) -> None:
    status, body = await rig.client.verify_url("secret-echo", signature="0" * 40)
    assert status == 401 and b"secret-echo" not in body
    status, _ = await rig.client.post(
        text_xml("zhangsan", "hi", "1", now_s(rig)), signature="0" * 40
    )
    assert status == 401
    assert rig.received == []


@pytest.mark.parametrize("skew", [-301, 301, -10_000])
async def test_stale_or_future_timestamp_is_rejected(rig: Rig, skew: int) -> None:
    msg = text_xml("zhangsan", "hi", "1", now_s(rig))
    status, _ = await rig.client.post(msg, timestamp=now_s(rig) + skew)
    assert status == 403
    status, _ = await rig.client.verify_url("x", timestamp=now_s(rig) + skew)
    assert status == 403
    assert rig.received == []


async def test_timestamp_inside_window_is_accepted(rig: Rig) -> None:
    status, _ = await rig.client.post(
        text_xml("zhangsan", "hi", "1", now_s(rig)), timestamp=now_s(rig) - 299
    )
    assert status == 200


@pytest.mark.parametrize("body", [b"<xml><Encrypt>abc", b"not xml at all", b"<xml></xml>"])
async def test_malformed_envelope_is_400(rig: Rig, body: bytes) -> None:
    status, _ = await rig.client.post(text_xml("u", "hi", "1", now_s(rig)), body=body)
    assert status == 400


async def test_entity_expansion_inside_the_encrypted_message_is_refused(rig: Rig) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>&b;</Content>"
        "<MsgId>1</MsgId></xml>"
    )
    status, _ = await rig.client.post(bomb)
    assert status == 400
    assert rig.received == []


async def test_oversize_body_is_413_with_and_without_content_length(rig: Rig) -> None:
    big = b"<xml>" + b"x" * (64 * 1024) + b"</xml>"
    status, _ = await rig.client.post("<xml/>", body=big)
    assert status == 413

    async def chunks() -> AsyncIterator[bytes]:  # chunked transfer: no Content-Length to trust
        for _ in range(80):
            yield b"x" * 1024

    query = {"msg_signature": "a", "timestamp": "1", "nonce": "1"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(rig.client.url, params=query, data=chunks()) as resp,
    ):
        assert resp.status == 413


async def test_receiveid_of_another_corp_is_rejected(rig: Rig) -> None:
    status, _ = await rig.client.post(
        text_xml("u", "hi", "1", now_s(rig)), receive_id="wwsomeoneelse"
    )
    assert status == 403
    assert rig.received == []


async def test_message_padded_with_more_than_16_bytes_decrypts(rig: Rig) -> None:
    # find a Content length whose plaintext buffer needs a pad byte above 16
    def pad_for(msg: str) -> int:
        return 32 - (16 + 4 + len(msg.encode()) + len(CORP)) % 32

    n = next(n for n in range(1, 64) if pad_for(text_xml("u", "a" * n, "7", now_s(rig))) > 16)
    msg = text_xml("u", "a" * n, "7", now_s(rig))
    assert pad_for(msg) > 16
    status, _ = await rig.client.post(msg)
    assert status == 200
    assert rig.received[0][0].text == "a" * n


async def test_text_message_becomes_text_event(rig: Rig) -> None:
    status, body = await rig.client.post(
        text_xml("zhangsan", " 任务 列表 <&> ", "6912345678901234567", now_s(rig))
    )
    assert (status, body) == (200, b"")
    [[event]] = rig.received
    assert event.platform == "wecom" and event.kind == "text"
    assert (event.event_id, event.user_id, event.text) == (
        "6912345678901234567",
        "zhangsan",
        "任务 列表 <&>",
    )
    assert event.received_ms == now_s(rig) * 1000


async def test_card_click_becomes_card_action_unique_per_click(rig: Rig) -> None:
    for created in (now_s(rig), now_s(rig) + 5):
        xml = card_event_xml("lisi", "inv:accept:12", "task-12-3", "RC123", created)
        assert (await rig.client.post(xml))[0] == 200
    first, second = rig.received[0][0], rig.received[1][0]
    assert first.kind == "card_action"
    extras = WeComExtras.of(first)
    assert (first.action_key, extras.task_id, extras.response_code, first.user_id) == (
        "inv:accept:12",
        "task-12-3",
        "RC123",
        "lisi",
    )
    assert first.event_id != second.event_id
    # a WeCom retry repeats CreateTime, so it gets the same id and the inbox drops it
    await rig.client.post(card_event_xml("lisi", "inv:accept:12", "task-12-3", "RC123", now_s(rig)))
    assert rig.received[2][0].event_id == first.event_id


# ---- sending through the fake WeCom API -------------------------------------------------------


def user(userid: str = "zhangsan") -> Channel:
    return Channel(Platform.WECOM, "user", userid)


async def test_token_is_cached_and_refetched_once_after_revocation(rig: Rig) -> None:
    for n in range(3):  # different texts: WeCom's duplicate check would merge identical ones
        assert (await rig.adapter.send(user(), OutMessage.text(f"你好{n}"))).ok
    assert rig.fake.gettoken_calls == 1
    rig.fake.revoke_tokens()
    assert (await rig.adapter.send(user(), OutMessage.text("再次"))).ok
    assert rig.fake.gettoken_calls == 2
    assert len(rig.fake.calls("/cgi-bin/message/send")) == 5  # 3 + rejected + retried
    assert [m["text"]["content"] for m in rig.fake.delivered] == ["你好0", "你好1", "你好2", "再次"]


async def test_token_refreshed_before_expiry(rig: Rig) -> None:
    assert (await rig.adapter.send(user(), OutMessage.text("a"))).ok
    rig.clock.advance(dt.timedelta(seconds=7200 - 299))  # inside the early-refresh margin
    assert (await rig.adapter.send(user(), OutMessage.text("b"))).ok
    assert rig.fake.gettoken_calls == 2


async def test_concurrent_senders_share_one_token_fetch(rig: Rig) -> None:
    results = await asyncio.gather(
        *(rig.adapter.send(user(f"u{i}"), OutMessage.text("x")) for i in range(20))
    )
    assert all(r.ok for r in results)
    assert rig.fake.gettoken_calls == 1


async def test_expired_token_42001_is_refetched(rig: Rig) -> None:
    assert (await rig.adapter.send(user(), OutMessage.text("a"))).ok
    rig.fake.script.fail_next("message/send", {"errcode": 42001, "errmsg": "access_token expired"})
    assert (await rig.adapter.send(user(), OutMessage.text("b"))).ok
    assert rig.fake.gettoken_calls == 2


async def test_wrong_corp_secret_is_a_plain_failure(rig: Rig) -> None:
    rig.fake.corp_secret = "rotated"
    result = await rig.adapter.send(user(), OutMessage.text("a"))
    assert (result.ok, result.permanent, result.code) == (False, False, "40001")
    assert result.retry_after == 60


async def test_rate_limited_45009_asks_to_retry_after_a_minute(rig: Rig) -> None:
    rig.fake.script.fail_next("message/send", {"errcode": 45009, "errmsg": "api freq out of limit"})
    result = await rig.adapter.send(user(), OutMessage.text("a"))
    assert (result.ok, result.retry_after, result.code) == (False, 60, "45009")


async def test_system_busy_retries_soon(rig: Rig) -> None:
    rig.fake.script.fail_next("message/send", {"errcode": -1, "errmsg": "system busy"})
    result = await rig.adapter.send(user(), OutMessage.text("a"))
    assert not result.ok and result.retry_after is not None and result.retry_after <= 10


async def test_network_failure_is_retryable_not_raised() -> None:
    settings = WeComSettings(
        corp_id=CORP,
        agent_id=1,
        secret="s",
        token="t",
        encoding_aes_key=random_aes_key(),
        api_base="http://127.0.0.1:9",
        http_timeout_s=2,  # port 9: nothing listens
    )
    adapter = WeComAdapter(settings, FixedClock(NOW))
    result = await adapter.send(user(), OutMessage.text("a"))
    await adapter.close()
    assert (result.ok, result.code, result.permanent) == (False, "network", False)
    assert result.retry_after is not None


async def test_interactive_card_then_update_with_response_code(rig: Rig) -> None:
    card = Card(
        title="联合抽查邀请：2026年食品安全双随机",
        description="请在 5 个工作日内答复",
        fields=[Field_(name=f"字段{i}", value=f"值{i}") for i in range(8)],
        buttons=[
            Button(label="接受", action_key="inv:accept:12", style="primary"),
            Button(label="拒绝", action_key="inv:decline:12", style="danger"),
            Button(label="详情", url="https://example.org/h5/inv/12?sig=abc"),
        ],
        task_id="inv-12-dept-3",
    )
    sent = await rig.adapter.send(user(), OutMessage(kind="card", card=card))
    assert sent.ok and sent.response_code
    template = rig.fake.delivered[0]["template_card"]
    assert template["card_type"] == "button_interaction" and template["task_id"] == "inv-12-dept-3"
    assert [b.get("key") for b in template["button_list"]] == [
        "inv:accept:12",
        "inv:decline:12",
        None,
    ]
    assert template["button_list"][2] == {
        "text": "详情",
        "style": 2,
        "type": 1,
        "url": "https://example.org/h5/inv/12?sig=abc",
    }
    assert len(template["horizontal_content_list"]) == 6
    assert "字段7：值7" in template["sub_title_text"]

    update = OutMessage(
        kind="card_update",
        card_ref=sent.response_code,
        card=card.model_copy(update={"answered": "张三 已接受"}),
    )
    assert (await rig.adapter.send(user(), update)).ok
    assert rig.fake.delivered[1]["button"] == {"replace_name": "张三 已接受"}
    again = await rig.adapter.send(user(), update)  # each response_code works once
    assert not again.ok and not again.permanent
    # a card we sent, named by its own id (no click): WeCom takes a click's response_code only,
    # so nothing is sent and nothing is retried (the officer was told in text)
    sent_card = OutMessage(kind="card_update", card=card.model_copy(update={"answered": "已接受"}))
    assert (await rig.adapter.send(user(), sent_card)).code == "not_updatable"
    assert len(rig.fake.delivered) == 2


async def test_card_without_callback_buttons_goes_as_markdown(rig: Rig) -> None:
    card = Card(
        title="结果公示",
        buttons=[
            Button(label="查看", url="https://example.org/p/1"),
            Button(label="无链接", action_key="k"),
        ],
    )
    assert (await rig.adapter.send(user(), OutMessage(kind="card", card=card))).ok  # no task_id
    body = rig.fake.delivered[0]
    assert body["msgtype"] == "markdown"
    assert "[查看](https://example.org/p/1)" in body["markdown"]["content"]


# ---- group robot webhook ----------------------------------------------------------------------


async def test_webhook_markdown_truncated_on_utf8_boundary_with_mentions_kept(rig: Rig) -> None:
    channel = Channel(Platform.WECOM, "group_webhook", rig.fake.webhook_url())
    msg = OutMessage.md("逾期提醒", "检" * 3000)  # 9000 bytes
    assert (await rig.adapter.send(channel, msg, mention_user_ids=["zhangsan"])).ok
    content = rig.fake.delivered[0]["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.startswith("**逾期提醒**\n检检")
    assert content.endswith(TRUNCATION_NOTE + "\n<@zhangsan>")


async def test_webhook_text_uses_mentioned_list(rig: Rig) -> None:
    channel = Channel(Platform.WECOM, "group_webhook", rig.fake.webhook_url())
    assert (
        await rig.adapter.send(channel, OutMessage.text("请查收"), mention_user_ids=["a", "b"])
    ).ok
    assert rig.fake.delivered[0] == {
        "msgtype": "text",
        "text": {"content": "请查收", "mentioned_list": ["a", "b"]},
    }


async def test_webhook_card_becomes_markdown_with_links_only(rig: Rig) -> None:
    channel = Channel(Platform.WECOM, "group_webhook", rig.fake.webhook_url())
    card = Card(
        title="邀请",
        fields=[Field_(name="牵头", value="市场监管局")],
        buttons=[
            Button(label="接受", action_key="k", url="https://h5/accept"),
            Button(label="仅回调", action_key="k2"),
        ],
    )
    assert (await rig.adapter.send(channel, OutMessage(kind="card", card=card))).ok
    content = rig.fake.delivered[0]["markdown"]["content"]
    assert content == "**邀请**\n> 牵头：市场监管局\n[接受](https://h5/accept)"


async def test_webhook_rate_limit_from_the_fake_gives_retry_after(rig: Rig) -> None:
    channel = Channel(Platform.WECOM, "group_webhook", rig.fake.webhook_url())
    results = [await rig.adapter.send(channel, OutMessage.text(f"n{i}")) for i in range(21)]
    assert all(r.ok for r in results[:20])
    assert (results[20].ok, results[20].retry_after, results[20].code) == (False, 60, "45009")
    rig.clock.advance(dt.timedelta(seconds=61))
    assert (await rig.adapter.send(channel, OutMessage.text("later"))).ok


async def test_removed_robot_93000_is_permanent(rig: Rig) -> None:
    channel = Channel(Platform.WECOM, "group_webhook", rig.fake.webhook_url("deleted-key"))
    result = await rig.adapter.send(channel, OutMessage.text("a"))
    assert (result.ok, result.permanent, result.code) == (False, True, "93000")


async def test_webhook_outside_configured_base_is_refused_without_sending(rig: Rig) -> None:
    channel = Channel(
        Platform.WECOM, "group_webhook", "https://evil.example/cgi-bin/webhook/send?key=robot-key-1"
    )
    result = await rig.adapter.send(channel, OutMessage.text("a"))
    assert result.permanent and result.code == "bad_address"
    assert rig.fake.requests == []


def test_channel_repr_hides_the_webhook_key() -> None:
    channel = Channel(
        Platform.WECOM,
        "group_webhook",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY",
    )
    assert "SECRETKEY" not in repr(channel) and "SECRETKEY" not in channel.redacted()


@given(st.text(), st.integers(min_value=40, max_value=300))
def test_truncate_utf8_never_splits_a_character(text: str, limit: int) -> None:
    cut = truncate_utf8(text, limit)
    assert len(cut.encode()) <= limit
    if cut != text:
        assert cut.endswith(TRUNCATION_NOTE)
        assert text.startswith(cut[: -len(TRUNCATION_NOTE)])


def test_settings_keep_credentials_out_of_repr_and_check_the_aes_key() -> None:
    key = random_aes_key()
    settings = WeComSettings(
        corp_id=CORP, agent_id=1, secret="S3CRET", token="T0KEN", encoding_aes_key=key
    )
    assert not any(secret in repr(settings) for secret in ("S3CRET", "T0KEN", key))
    with pytest.raises(ValueError, match="43"):
        WeComSettings(corp_id=CORP, agent_id=1, secret="s", token="t", encoding_aes_key=key[:-1])


async def test_non_ascii_echostr_or_encrypt_with_a_valid_signature_is_400(rig: Rig) -> None:
    """Issue 11 defect 5: base64 of "中文" raised ValueError (500) after the signature passed."""
    ts, nonce = str(int(NOW.timestamp())), "123"
    signature = rig.client.sign(ts, nonce, "中文")
    query = {"msg_signature": signature, "timestamp": ts, "nonce": nonce}
    async with aiohttp.ClientSession() as http:
        async with http.get(rig.client.url, params={**query, "echostr": "中文"}) as resp:
            assert resp.status == 400
        envelope = f"<xml><ToUserName>{CORP}</ToUserName><Encrypt>中文</Encrypt></xml>"
        async with http.post(rig.client.url, params=query, data=envelope.encode()) as resp:
            assert resp.status == 400
    assert rig.received == []


async def test_card_subtitle_is_shown_as_typed_so_our_markdown_is_taken_out(rig: Rig) -> None:
    """WeCom shows sub_title_text as plain text: an invitation's ** and backticks would show."""
    card = Card(
        title="联合抽查邀请",
        description="检查时间：2026年12月1日\n\n请于 **2026年12月7日** 前答复。\n"
        "承诺值：`ab12`\n> 引用\n[详情](https://example.org/x)",
        buttons=[Button(label="接受", action_key="inv:accept:12", style="primary")],
        task_id="inv-12",
    )
    assert (await rig.adapter.send(user(), OutMessage(kind="card", card=card))).ok
    shown = rig.fake.delivered[0]["template_card"]["sub_title_text"]
    assert shown == (
        "检查时间：2026年12月1日\n请于 2026年12月7日 前答复。\n承诺值：ab12\n引用\n详情"
    )
