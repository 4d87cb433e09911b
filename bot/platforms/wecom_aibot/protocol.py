"""The AI bot's protocol facts: settings, event extras, the opaque conversation address, and
a decrypted callback or socket frame body as an Event."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus

from pydantic import Field

from bot.platforms.base import CallbackRejected, EventExtras, PlatformSettings
from bot.platforms.wecom.crypto import aes_key_problem
from core.messages import Destination, Event, Platform


class WeComAiBotSettings(PlatformSettings):
    label = "企业微信智能机器人"
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

    @classmethod
    def problems(cls, values: dict[str, Any]) -> list[str]:
        mode = values.get("mode", "callback")
        what = f'（mode = "{mode}"）'
        if mode == "websocket":
            return cls.missing(values, ("bot_id", "secret"), what)
        problem = aes_key_problem(values.get("encoding_aes_key"))
        lacking = cls.missing(values, ("token", "encoding_aes_key"), what)
        return lacking + ([problem] if problem else [])


class WeComAiBotExtras(EventExtras):
    """The conversation an AI-bot event came from, and whether it is a card click."""

    adapter: Literal[Platform.WECOM_AIBOT] = Platform.WECOM_AIBOT
    conversation: str = ""  # conversation_address(...): opaque outside this package
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
