"""WeCom 智能机器人 (AI bot): the WeCom product that joins group chats and hears @-mentions.

Two ways in (docs/wecom_aibot.md; docs/longconn.md part 2):
- callback mode: WeCom posts encrypted JSON to /wecom/aibot/callback (the app's crypto with an
  empty receiveid). An answer can ride back in the HTTP response (passive reply) only within
  5 s, so the callback stores the event, wakes the workers and waits up to `passive_wait_s` for
  the first answer the sender routes to this conversation; later answers go to the callback's
  `response_url` (one POST, within an hour), and after that to the self-built app ([wecom]).
- websocket mode: bot/platforms/wecom_aibot_ws.py carries the same JSON bodies over a socket.

A conversation is addressed by an opaque string the adapter alone reads (`conversation_address`):
it travels through the outbox as a chat Destination like DingTalk's session webhook, so handlers
answer "in this conversation" without knowing any of this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, quote_plus

from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from bot.platforms.base import (
    CallbackRejected,
    Channel,
    EventExtras,
    HttpClient,
    PlatformAdapter,
    SendResult,
    card_markdown,
    deliver,
    inbound_json,
    read_limited_body,
    titled,
    truncate_utf8,
)
from bot.platforms.wecom import (
    WeComCrypto,
    aes_key_from,
    button_card,
    clip,
    inline_picture,
    wecom_result,
)
from core.clock import Clock, SystemClock
from core.images import png_size
from core.messages import Button, Card, Destination, Event, OutMessage, Platform

if TYPE_CHECKING:
    from bot.platforms.wecom_aibot_ws import WeComAiBotSocket

log = logging.getLogger(__name__)

CALLBACK_PATH = "/wecom/aibot/callback"
STREAM_MAX_BYTES = 20480  # stream and markdown content
RESPONSE_URL_TTL_MS = 3600 * 1000  # a response_url takes one POST within an hour
SLOT_MAX_AGE_S = 10.0  # passive-reply slots older than this are forgotten
USED_URLS = 4096
PICTURE_MAX_BYTES = 10 * 1024 * 1024  # a stream's msg_item image, before Base64
CARD_IMAGE_RATIOS = (1.3, 2.25)  # news_notice card_image.aspect_ratio: width / height


class WeComAiBotSettings(BaseModel):
    mode: Literal["callback", "websocket"] = "callback"
    # callback mode: the bot's 接收消息 settings
    token: str = Field("", repr=False)
    encoding_aes_key: str = Field("", repr=False)
    # websocket mode: the bot's "使用长连接" credentials
    bot_id: str = ""
    secret: str = Field("", repr=False)
    ws_url: str = "wss://openws.work.weixin.qq.com"
    response_url_base: str = "https://qyapi.weixin.qq.com"  # a response_url must live here
    passive_wait_s: float = Field(3.0, gt=0, lt=5)  # WeCom waits 5 s for a passive reply
    max_body_bytes: int = 64 * 1024
    timestamp_window_s: int = 300
    http_timeout_s: float = 10.0
    ping_interval_s: float = Field(30.0, gt=0)  # websocket: two unanswered pings = dead
    reply_timeout_s: float = Field(5.0, gt=0)  # websocket: wait for a command's ack
    backoff_base_s: float = Field(1.0, gt=0)
    backoff_cap_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _credentials_for_mode(self) -> WeComAiBotSettings:
        if self.mode == "callback":
            if not self.token or len(self.encoding_aes_key) != 43:
                raise ValueError("callback mode needs token and a 43-character encoding_aes_key")
            aes_key_from(self.encoding_aes_key)
        elif not (self.bot_id and self.secret):
            raise ValueError("websocket mode needs bot_id and secret")
        return self


class WeComAiBotExtras(EventExtras):
    """The conversation an AI-bot event came from, and whether it is a card click."""

    adapter: Literal[Platform.WECOM_AIBOT] = Platform.WECOM_AIBOT
    conversation: str = ""  # conversation_address(...): opaque outside this module
    is_card: bool = False

    def reply_to(self) -> Destination | None:
        if not self.conversation:
            return None
        return Destination(kind="chat", platform=Platform.WECOM_AIBOT, address=self.conversation)

    def card_ref(self) -> str:
        return self.conversation if self.is_card else ""


def conversation_address(**parts: str | int) -> str:
    """m msgid, u userid, c chatid (groups), r response_url, q WebSocket req_id, t received ms,
    k clicked card's task_id. A leading "?" keeps logs (Channel.redacted) from showing it.
    The text is urlencode's; values quote_plus would leave alone (ids, times) are taken as
    they are, since quoting every value in Python was a third of a socket frame's cost."""
    return "?" + "&".join(f"{k}={_quoted(str(v))}" for k, v in parts.items() if v)


_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote_plus leaves as it is


def _quoted(value: str) -> str:
    return value if _UNQUOTED.fullmatch(value) else quote_plus(value)


def address_parts(address: str) -> dict[str, str]:
    return dict(parse_qsl(address.lstrip("?")))


def body_event(
    body: dict[str, Any], *, now_ms: int, req_id: str = "", response_url_base: str = ""
) -> Event | None:
    """The Event of a decrypted callback or socket frame body; None for a stream refresh (we
    always finish our streams at once, so there is nothing to refresh)."""
    msgid, sender = body.get("msgid"), body.get("from")
    user = sender.get("userid") if isinstance(sender, dict) else None
    if not (isinstance(msgid, str) and msgid and isinstance(user, str) and user):
        raise CallbackRejected(400, "AI bot message without msgid or from.userid")
    msgtype = body.get("msgtype")
    if msgtype == "stream":
        return None
    group = body.get("chattype") == "group"
    chat = str(body.get("chatid") or "") if group else ""
    url = body.get("response_url")
    if not (isinstance(url, str) and response_url_base and url.startswith(response_url_base)):
        url = ""  # only WeCom's own host may receive our answers
    where: dict[str, Any] = {"m": msgid, "u": user, "c": chat, "r": url, "q": req_id, "t": now_ms}
    common: dict[str, Any] = {
        "platform": Platform.WECOM_AIBOT,
        "event_id": msgid,
        "user_id": user,
        "chat_id": chat,
        "is_group": group,
        "received_ms": now_ms,
        "raw": body,
    }
    if msgtype in ("text", "voice"):  # voice arrives already transcribed
        part = body.get(msgtype)
        text = str(part.get("content", "")) if isinstance(part, dict) else ""
        extras = WeComAiBotExtras(conversation=conversation_address(**where))
        return Event(kind="text", text=text.strip(), extras=extras.dump(), **common)
    event = body.get("event") if msgtype == "event" else None
    kind = event.get("eventtype") if isinstance(event, dict) else None
    if isinstance(event, dict) and kind == "template_card_event":
        # the official plugin nests the fields, the Node SDK's type does not: accept both
        card = event.get("template_card_event")
        card = card if isinstance(card, dict) else event
        key, task = str(card.get("event_key") or ""), str(card.get("task_id") or "")
        extras = WeComAiBotExtras(conversation=conversation_address(**where, k=task), is_card=True)
        return Event(kind="card_action", action_key=key, extras=extras.dump(), **common)
    return Event(kind="enter_chat" if kind == "enter_chat" else "other", **common)


def markdown_of(msg: OutMessage) -> str:
    if msg.kind == "text":
        return msg.body
    if msg.card is not None:
        return card_markdown(msg.card)
    if msg.kind == "image":  # where the picture cannot ride along: our signed link to it
        url = msg.image.url if msg.image is not None else ""
        return f"**{msg.title}**\n" + (f"[查看图表]({url})" if url else "（图表无法在此显示）")
    return titled(msg)


def inline(msg: OutMessage) -> bytes | None:
    """The picture's bytes when it can go inside a stream (msg_item: JPG/PNG ≤ 10 MB)."""
    data = msg.image.data if msg.kind == "image" and msg.image is not None else b""
    return data if 0 < len(data) <= PICTURE_MAX_BYTES else None


def stream_body(msg: OutMessage) -> dict[str, Any]:
    """A whole answer as one finished stream (the reply type a message callback takes); a
    picture rides in it as msg_item, which only the finishing frame may carry (Base64 + MD5,
    as the group robot takes it), under its title."""
    stream: dict[str, Any] = {"id": secrets.token_hex(8), "finish": True}
    if (picture := inline(msg)) is not None:
        stream["content"] = truncate_utf8(f"**{msg.title}**", STREAM_MAX_BYTES)
        stream["msg_item"] = [{"msgtype": "image", "image": inline_picture(picture)}]
    else:
        stream["content"] = truncate_utf8(markdown_of(msg), STREAM_MAX_BYTES)
    return {"msgtype": "stream", "stream": stream}


def picture_card(msg: OutMessage) -> dict[str, Any] | None:
    """A picture where only a card can show one (a response_url in a single chat): a
    news_notice whose card_image WeCom loads from our signed link, opening it full size when
    tapped. None without a link."""
    if msg.image is None or not msg.image.url:
        return None
    url = msg.image.url
    title, _, detail = msg.title.partition(" ")
    main_title = {"title": clip(title, 26)} | ({"desc": clip(detail, 30)} if detail else {})
    size = png_size(msg.image.data)
    low, high = CARD_IMAGE_RATIOS
    ratio = min(max(size[0] / size[1], low), high) if size and size[1] else low
    return {
        "card_type": "news_notice",
        "main_title": main_title,
        "card_image": {"url": url, "aspect_ratio": round(ratio, 2)},
        "jump_list": [{"type": 1, "title": "查看原图", "url": url}],
        "card_action": {"type": 1, "url": url},
    }


def markdown_body(msg: OutMessage) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"content": truncate_utf8(markdown_of(msg), STREAM_MAX_BYTES)},
    }


def push_body(msg: OutMessage) -> dict[str, Any]:
    """A proactive message: cards with callback buttons as template cards, the rest markdown."""
    card = msg.card
    if (
        msg.kind == "card"
        and card is not None
        and card.task_id
        and any(b.action_key for b in card.buttons)
    ):
        return {"msgtype": "template_card", "template_card": button_card(card)}
    return markdown_body(msg)


def update_card_body(parts: dict[str, str], msg: OutMessage) -> dict[str, Any]:
    """update_template_card for the clicked card: same task_id, the answer shown, its one
    button greyed with who answered (the key calls nothing)."""
    answered = (msg.card.answered if msg.card else "") or msg.body
    card = Card(
        title=msg.card.title if msg.card else answered,
        description=answered,
        task_id=parts.get("k", ""),
        buttons=[Button(label=answered[:10], action_key="answered")],
    )
    template = button_card(card)
    template["button_list"][0]["style"] = 2
    return {
        "response_type": "update_template_card",
        "userids": [parts["u"]],
        "template_card": template,
    }


@dataclass
class Slot:
    """A callback waiting for its passive answer."""

    answer: asyncio.Future[dict[str, Any]]
    card: bool  # a card click: only a card update may take the slot
    nonce: str
    opened: float  # loop time


class WeComAiBotAdapter:
    name = Platform.WECOM_AIBOT
    buttons_call_back = True  # template_card buttons post template_card_event

    def __init__(
        self,
        settings: WeComAiBotSettings,
        clock: Clock | None = None,
        app: PlatformAdapter | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or SystemClock()
        self._app = app  # the self-built app: the way to reach a person the bot cannot
        self._http = HttpClient(settings.http_timeout_s)
        self._slots: dict[str, Slot] = {}
        self._used_urls: OrderedDict[str, None] = OrderedDict()
        self.ws: WeComAiBotSocket | None = None
        self.callback_path = ""
        self._crypto: WeComCrypto | None = None
        if settings.mode == "callback":
            self.callback_path = CALLBACK_PATH
            self._crypto = WeComCrypto(settings.token, settings.encoding_aes_key, receive_id="")
        else:
            from bot.platforms.wecom_aibot_ws import WeComAiBotSocket

            self.ws = WeComAiBotSocket(self, self._clock)

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

    # ---- callbacks -------------------------------------------------------------------------

    def _checked(self, request: web.Request, encrypted: str) -> str:
        """Verify signature and timestamp, then decrypt."""
        assert self._crypto is not None
        self._crypto.check_query(
            request.query,
            encrypted,
            self._clock.now().timestamp(),
            self.settings.timestamp_window_s,
        )
        return self._crypto.decrypt(encrypted)

    async def verify_url(self, request: web.Request) -> web.Response:
        echostr = request.query.get("echostr", "").replace(" ", "+")  # '+' decoded as space
        if not echostr:
            raise CallbackRejected(400, "missing echostr")
        return web.Response(
            body=self._checked(request, echostr).encode(), content_type="text/plain"
        )

    async def parse(self, request: web.Request) -> list[Event]:
        raw = await read_limited_body(request, self.settings.max_body_bytes)
        try:
            envelope = inbound_json(raw)
            encrypted = envelope["encrypt"]
        except (ValueError, TypeError, KeyError) as exc:
            raise CallbackRejected(400, 'body is not {"encrypt": ...}') from exc
        if not isinstance(encrypted, str) or not encrypted:
            raise CallbackRejected(400, "empty encrypt")
        try:
            body = inbound_json(self._checked(request, encrypted))
        except ValueError as exc:
            raise CallbackRejected(400, "decrypted message is not JSON") from exc
        if not isinstance(body, dict):
            raise CallbackRejected(400, "decrypted message is not a JSON object")
        event = body_event(
            body, now_ms=self._now_ms(), response_url_base=self.settings.response_url_base
        )
        if event is None:
            return []
        if event.kind in ("text", "card_action"):
            self._open_slot(event, request.query["nonce"])
        return [event]

    def _open_slot(self, event: Event, nonce: str) -> None:
        loop = asyncio.get_running_loop()
        for msgid in [m for m, s in self._slots.items() if loop.time() - s.opened > SLOT_MAX_AGE_S]:
            self._slots.pop(msgid).answer.cancel()
        if event.event_id not in self._slots:
            self._slots[event.event_id] = Slot(
                loop.create_future(), event.kind == "card_action", nonce, loop.time()
            )

    async def ack(self, events: list[Event], new: list[bool]) -> web.Response:
        """Wait (a little) for the passive answer the sender hands over; empty 200 otherwise.
        A retried callback (not new) gets the empty answer at once: its answer went, or goes,
        by response_url."""
        slot = self._slots.get(events[0].event_id) if events and new[0] else None
        if slot is None:
            return web.Response(status=200)
        loop = asyncio.get_running_loop()
        left = self.settings.passive_wait_s - (loop.time() - slot.opened)
        if left > 0:
            await asyncio.wait({slot.answer}, timeout=left)
        self._slots.pop(events[0].event_id, None)
        if not slot.answer.done() or slot.answer.cancelled():
            slot.answer.cancel()  # the sender now takes the response_url
            return web.Response(status=200)
        return web.json_response(self._encrypted(slot.answer.result(), slot.nonce))

    def _encrypted(self, answer: dict[str, Any], nonce: str) -> dict[str, str]:
        """The passive reply envelope, signed like a callback (the callback's nonce reused)."""
        assert self._crypto is not None
        timestamp = str(int(self._clock.now().timestamp()))
        encrypted = self._crypto.encrypt(json.dumps(answer, ensure_ascii=False))
        return {
            "encrypt": encrypted,
            "msgsignature": self._crypto.signature(timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
        }

    # ---- sending ---------------------------------------------------------------------------

    async def send(
        self, channel: Channel, msg: OutMessage, mention_user_ids: list[str] | None = None
    ) -> SendResult:
        if channel.kind == "session_webhook":
            return await deliver(channel, self._answer(address_parts(channel.address), msg))
        if channel.kind == "user":
            if self.ws is not None:
                return await deliver(channel, self.ws.push_message(channel.address, msg))
            if self._app is not None:
                return await self._app.send(Channel(Platform.WECOM, "user", channel.address), msg)
        return SendResult(
            False,
            permanent=True,
            code="unsupported",
            detail="the AI bot in callback mode cannot start a conversation",
        )

    async def _answer(self, parts: dict[str, str], msg: OutMessage) -> SendResult:
        """In this conversation: the waiting callback, else the socket, else response_url,
        else the self-built app. A card update answers the click named by its card_ref."""
        is_update = msg.kind == "card_update"
        if is_update:
            parts = address_parts(msg.card_ref)
        slot = self._slots.get(parts.get("m", ""))
        if slot is not None and not slot.answer.done() and slot.card == is_update:
            body = update_card_body(parts, msg) if is_update else stream_body(msg)
            slot.answer.set_result(body)
            return SendResult(True)
        if self.ws is not None:
            return await self.ws.answer(parts, msg)
        if is_update:  # WeCom drops a card event not answered within 5 s: nothing to retry
            return SendResult(
                False,
                permanent=True,
                code="card_expired",
                detail="card events must be answered within 5 s",
            )
        result = await self._post_response_url(parts, msg)
        if result is not None:
            return result
        if self._app is not None and parts.get("u"):
            return await self._app.send(Channel(Platform.WECOM, "user", parts["u"]), msg)
        return SendResult(
            False,
            permanent=True,
            code="no_route",
            detail="response_url used or expired and no [wecom] app configured",
        )

    async def _post_response_url(self, parts: dict[str, str], msg: OutMessage) -> SendResult | None:
        """One POST per response_url within the hour; None when that way is closed."""
        url, received = parts.get("r", ""), int(parts.get("t", "0") or 0)
        if not url or url in self._used_urls or self._now_ms() - received > RESPONSE_URL_TTL_MS:
            return None
        self._used_urls[url] = None
        while len(self._used_urls) > USED_URLS:
            self._used_urls.popitem(last=False)
        # a picture shows in a card, which a response_url takes in a single chat only
        card = picture_card(msg) if msg.kind == "image" and not parts.get("c") else None
        body = {"msgtype": "template_card", "template_card": card} if card else markdown_body(msg)
        _, data = await self._http.request_json("POST", url, payload=body)
        result = wecom_result(data)
        return result if result.ok else None

    async def close(self) -> None:
        await self._http.close()
