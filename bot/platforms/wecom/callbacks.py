"""WeCom callbacks: URL verification, signed and encrypted XML messages and card clicks."""

from __future__ import annotations

from typing import Any, Literal
from xml.etree.ElementTree import Element

from aiohttp import web

from bot.platforms.base import (
    CallbackRejected,
    read_limited_body,
)
from bot.platforms.wecom.crypto import (
    parse_xml,
)
from bot.platforms.wecom.protocol import (
    WeComBase,
    WeComExtras,
)
from core.messages import Event, Platform


class WeComCallbacks(WeComBase):
    def _authenticate(self, request: web.Request, encrypted: str) -> None:
        self._crypto.check_query(
            request.query,
            encrypted,
            self._clock.now().timestamp(),
            self.settings.timestamp_window_s,
        )

    async def verify_url(self, request: web.Request) -> web.Response:
        """GET URL verification: verify first, then echo exactly the decrypted echostr."""
        # A '+' that reached us unescaped was decoded to a space; Base64 never holds spaces.
        echostr = request.query.get("echostr", "").replace(" ", "+")
        if not echostr:
            raise CallbackRejected(400, "missing echostr")
        self._authenticate(request, echostr)
        plain = self._crypto.decrypt(echostr)
        return web.Response(body=plain.encode(), content_type="text/plain")

    async def parse(self, request: web.Request) -> list[Event]:
        body = await read_limited_body(request, self.settings.max_body_bytes)
        envelope = parse_xml(body)
        encrypted = envelope.findtext("Encrypt") or ""
        if not encrypted:
            raise CallbackRejected(400, "no Encrypt element")
        self._authenticate(request, encrypted)
        message = parse_xml(self._crypto.decrypt(encrypted).encode())
        return [self._event(message)]

    def _event(self, message: Element) -> Event:
        fields = {child.tag: (child.text or "").strip() for child in message}
        user = fields.get("FromUserName", "")
        if not user:
            raise CallbackRejected(400, "message without FromUserName")
        msg_type, created = fields.get("MsgType", ""), fields.get("CreateTime", "")
        common: dict[str, Any] = {
            "platform": Platform.WECOM,
            "user_id": user,
            "chat_id": fields.get("ChatId", ""),
            "is_group": bool(fields.get("ChatId")),
            "received_ms": int(self._clock.now().timestamp() * 1000),
            "raw": fields,
        }
        if msg_type == "text":
            if not fields.get("MsgId"):
                raise CallbackRejected(400, "text message without MsgId")
            return Event(
                kind="text", event_id=fields["MsgId"], text=fields.get("Content", ""), **common
            )
        if msg_type == "event":
            event = fields.get("Event", "")
            if event in ("template_card_event", "template_card_menu_event"):
                task, key = fields.get("TaskId", ""), fields.get("EventKey", "")
                return Event(
                    kind="card_action",
                    # no MsgId on events; a retry repeats CreateTime, a second click does not
                    event_id=f"card:{user}:{task}:{key}:{created}",
                    action_key=key,
                    extras=WeComExtras(
                        task_id=task, response_code=fields.get("ResponseCode", "")
                    ).dump(),
                    **common,
                )
            kind: Literal["enter_chat", "other"] = (
                "enter_chat" if event == "enter_agent" else "other"
            )
            return Event(kind=kind, event_id=f"event:{user}:{event}:{created}", **common)
        event_id = fields.get("MsgId") or f"{msg_type}:{user}:{created}"
        return Event(kind="other", event_id=event_id, **common)

    async def ack(self, events: list[Event], new: list[bool]) -> web.Response:
        """200 with an empty body: WeCom then expects nothing; replies go out via the API."""
        return web.Response(status=200)
