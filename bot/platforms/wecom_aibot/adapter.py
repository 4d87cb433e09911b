"""The AI bot adapter: callback mode's routes (verification, encrypted callbacks, passive
replies) and sending in a conversation — the waiting callback, the socket, the response_url or
the self-built app."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.platforms.base import (
    CARD_NOT_UPDATABLE,
    CallbackRejected,
    Channel,
    HttpClient,
    PlatformAdapter,
    SendResult,
    deliver,
    inbound_json,
    read_limited_body,
    updates_sent_card,
)
from bot.platforms.wecom import WeComCrypto, wecom_result
from bot.platforms.wecom_aibot.bodies import (
    markdown_body,
    picture_card,
    stream_body,
    update_card_body,
)
from bot.platforms.wecom_aibot.protocol import WeComAiBotSettings, address_parts, body_event
from core.clock import Clock, SystemClock
from core.messages import Event, OutMessage, Platform

if TYPE_CHECKING:
    from bot.platforms.wecom_aibot.websocket import WeComAiBotSocket

CALLBACK_PATH = "/wecom/aibot/callback"
RESPONSE_URL_TTL_MS = 3600 * 1000  # a response_url takes one POST within an hour
SLOT_MAX_AGE_S = 10.0  # passive-reply slots older than this are forgotten
USED_URLS = 4096


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
            from bot.platforms.wecom_aibot.websocket import WeComAiBotSocket

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
        if updates_sent_card(msg):  # the AI bot updates a card only in answer to its click
            return CARD_NOT_UPDATABLE
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
