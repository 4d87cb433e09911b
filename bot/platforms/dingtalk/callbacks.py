"""DingTalk HTTP-mode callbacks: sign and replay checks, message and card-click parsing."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
from typing import Any

from aiohttp import web

from bot.platforms.base import (
    CallbackRejected,
    check_window,
    inbound_json,
    read_limited_body,
)
from bot.platforms.dingtalk.protocol import (
    CARD_ACTION_PARAM,
    CARD_SIG_SEPARATOR,
    CARD_SLOT_MAX_AGE_S,
    CardSlot,
    DingTalkBase,
    DingTalkExtras,
    card_signature,
    hmac_b64,
    is_session_webhook,
)
from core.messages import Event, Platform


class DingTalkCallbacks(DingTalkBase):
    # ---- callbacks -------------------------------------------------------------------------

    async def verify_url(self, request: web.Request) -> web.Response:
        raise CallbackRejected(405, "DingTalk callbacks have no URL verification step")

    def _authenticate(self, request: web.Request) -> tuple[str, int]:
        """Check the sign and window; return the (timestamp, sign) pair as one replay key, and
        the timestamp in milliseconds."""
        timestamp, sign = request.headers.get("timestamp", ""), request.headers.get("sign", "")
        if not (timestamp and sign):
            raise CallbackRejected(401, "missing timestamp or sign header")
        expected = hmac_b64(self.settings.app_secret, timestamp)
        if not hmac.compare_digest(expected.encode(), sign.encode()):
            raise CallbackRejected(401, "sign does not match")
        try:
            sent_ms = int(timestamp)
        except ValueError as exc:
            raise CallbackRejected(400, "timestamp is not an integer") from exc
        check_window(sent_ms / 1000, self._now_ms() / 1000, self.settings.timestamp_window_s)
        return f"dingtalk:{timestamp}:{sign}", sent_ms

    async def _check_replay(self, sign_key: str, sent_ms: int, body: bytes) -> None:
        """Refuse a (timestamp, sign) pair already used with another body, before the body is
        parsed. The sign covers only the timestamp, so a captured header pair would otherwise
        carry any body; the ledger is in the database, so this holds after a restart and
        across processes. The same body again is DingTalk re-sending (the inbox de-duplicates
        it by msgId). A pair is remembered while its timestamp is inside the window."""
        if self.ledger is None:
            raise CallbackRejected(503, "no replay ledger: callbacks cannot be checked")
        keep_until = dt.datetime.fromtimestamp(
            sent_ms / 1000 + self.settings.timestamp_window_s, dt.UTC
        )
        if not await self.ledger.claim(sign_key, hashlib.sha256(body).hexdigest(), keep_until):
            raise CallbackRejected(403, "timestamp and sign already used for another message")

    async def parse(self, request: web.Request) -> list[Event]:
        sign_key, sent_ms = self._authenticate(request)
        body = await read_limited_body(request, self.settings.max_body_bytes)
        await self._check_replay(sign_key, sent_ms, body)
        try:
            data = inbound_json(body)
        except ValueError as exc:  # RecursionError too: nested thousands deep
            raise CallbackRejected(400, "body is not JSON") from exc
        if not isinstance(data, dict):
            raise CallbackRejected(400, "body is not a JSON object")
        return [self.message_event(data)]

    def message_event(self, data: dict[str, Any]) -> Event:
        """A robot message (HTTP body or Stream frame data: the same fields) as an Event."""
        staff_id, msg_id = data.get("senderStaffId"), data.get("msgId")
        if not isinstance(staff_id, str) or not staff_id:
            # senderId is an encrypted per-robot id, not an identity we can map to an officer
            raise CallbackRejected(400, "message without senderStaffId")
        if not isinstance(msg_id, str) or not msg_id:
            raise CallbackRejected(400, "message without msgId")
        self._check_origin(data)
        text_part = data.get("text")
        is_text = data.get("msgtype") == "text" and isinstance(text_part, dict)
        is_group = data.get("conversationType") == "2"
        try:
            expires_ms = int(data.get("sessionWebhookExpiredTime") or 0)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: 1e400 is inf
            raise CallbackRejected(400, "bad sessionWebhookExpiredTime") from exc
        return Event(
            platform=Platform.DINGTALK,
            event_id=msg_id,
            kind="text" if is_text else "other",
            user_id=staff_id,
            text=str(text_part.get("content", "")).strip() if is_text and text_part else "",
            chat_id=str(data.get("conversationId", "")) if is_group else "",
            is_group=is_group,
            extras=DingTalkExtras.conversation(
                self._session_webhook(data.get("sessionWebhook")), expires_ms
            ),
            received_ms=self._now_ms(),
            raw=data,
        )

    def card_event(self, data: dict[str, Any], *, signed: bool = False) -> Event:
        """An interactive card's button callback (Stream topic /v1.0/card/instances/callback, or
        the HTTP card callback): `content` (some copies say `value`) is a JSON string whose
        cardPrivateData.params carry the button's action. `signed`: the action must carry our
        signature for this card and this user (HTTP mode, where nothing else proves origin)."""
        user, track = data.get("userId"), data.get("outTrackId")
        if not (isinstance(user, str) and user and isinstance(track, str) and track):
            raise CallbackRejected(400, "card callback without userId or outTrackId")
        if len(track) > 128 or len(user) > 128:
            raise CallbackRejected(400, "card callback ids too long")
        corp = self.settings.corp_id
        if corp and data.get("corpId") != corp:
            raise CallbackRejected(403, "card callback from another corp")
        try:
            content = inbound_json(data.get("content") or data.get("value") or "{}")
            private = content.get("cardPrivateData") or {}
            params, action_ids = private.get("params") or {}, private.get("actionIds") or []
        except (ValueError, AttributeError, TypeError, RecursionError) as exc:
            raise CallbackRejected(400, "card callback content is not JSON") from exc
        if not isinstance(params, dict) or not isinstance(action_ids, list):
            raise CallbackRejected(400, "card callback params are not an object")
        key = params.get(CARD_ACTION_PARAM) or (action_ids[0] if action_ids else "")
        if not isinstance(key, str) or not key:
            raise CallbackRejected(400, "card callback without an action")
        if signed:
            key, _, sig = key.rpartition(CARD_SIG_SEPARATOR)
            expected = card_signature(self._card_key, track, user, key)
            if not (key and hmac.compare_digest(sig.encode(), expected.encode())):
                raise CallbackRejected(403, "card action signature does not match")
        return Event(
            platform=Platform.DINGTALK,
            kind="card_action",
            user_id=user,
            action_key=key,
            # one answer per person, card and button: a repeated push is the same answer
            event_id=f"card:{track}:{user}:{key}",
            extras=DingTalkExtras(out_track_id=track).dump(),
            received_ms=self._now_ms(),
            raw=data,
        )

    def _check_origin(self, data: dict[str, Any]) -> None:
        """The body must name our robot (and our corp
        when configured): the sign does not cover it."""
        robot = data.get("robotCode")
        if not isinstance(robot, str) or not robot:
            raise CallbackRejected(400, "message without robotCode")
        if not hmac.compare_digest(robot.encode(), self.settings.robot_code.encode()):
            raise CallbackRejected(403, "message for another robot")
        corp = self.settings.corp_id
        if corp and any(data.get(k) != corp for k in ("chatbotCorpId", "senderCorpId")):
            raise CallbackRejected(403, "message from another corp")

    def _session_webhook(self, value: object) -> str:
        """The session webhook, only if it is DingTalk's own sendBySession URL with nothing else.

        Replies are posted there without a token: a forged URL would send our answers, signed
        links included, to whoever chose it.
        """
        if value is None or value == "":
            return ""  # no webhook: replies go to the officer through the OpenAPI
        if not isinstance(value, str):
            raise CallbackRejected(400, "sessionWebhook is not a string")
        if not is_session_webhook(value, self.settings.oapi_base):
            raise CallbackRejected(400, "sessionWebhook is not a DingTalk session webhook")
        return value

    async def ack(self, events: list[Event], new: list[bool]) -> web.Response:
        """200 with an empty body; the answer goes out later through the session webhook."""
        return web.Response(status=200)

    def extra_callbacks(self) -> list[tuple[str, Any, Any]]:
        """The HTTP card callback route (bot.app registers it), when cards call back here."""
        if not self.card_callback_path:
            return []
        return [(self.card_callback_path, self.parse_card, self.ack_card)]

    async def parse_card(self, request: web.Request) -> list[Event]:
        """HTTP mode's card callback: the click as an Event, refused (4xx, nothing stored) if
        it is not JSON or its action is not signed by us for this card and user."""
        body = await read_limited_body(request, self.settings.max_body_bytes)
        try:
            data = inbound_json(body)
        except ValueError as exc:
            raise CallbackRejected(400, "body is not JSON") from exc
        if not isinstance(data, dict):
            raise CallbackRejected(400, "body is not a JSON object")
        event = self.card_event(data, signed=True)
        self._open_card_slot(event.event_id, str(data["outTrackId"]))
        return [event]

    def _open_card_slot(self, event_id: str, track: str) -> None:
        loop = asyncio.get_running_loop()
        for key in [
            k for k, s in self._card_slots.items() if loop.time() - s.opened > CARD_SLOT_MAX_AGE_S
        ]:
            self._card_slots.pop(key).answer.cancel()
        if event_id not in self._card_slots:
            self._card_slots[event_id] = CardSlot(loop.create_future(), track, loop.time())

    async def ack_card(self, events: list[Event], new: list[bool]) -> web.Response:
        """Answer a stored click with its card update when the sender hands it over within
        `card_answer_wait_s`; otherwise (or for a repeated click) an empty JSON object, and
        the update goes out by the OpenAPI."""
        event_id = events[0].event_id if events else ""
        slot = self._card_slots.get(event_id) if events and new[0] else None
        if slot is None:
            return web.json_response({})
        loop = asyncio.get_running_loop()
        left = self.settings.card_answer_wait_s - (loop.time() - slot.opened)
        if left > 0:
            await asyncio.wait({slot.answer}, timeout=left)
        self._card_slots.pop(event_id, None)
        if not slot.answer.done() or slot.answer.cancelled():
            slot.answer.cancel()  # the sender now updates the card by the OpenAPI
            return web.json_response({})
        return web.json_response(slot.answer.result())

    # ---- sending ---------------------------------------------------------------------------
