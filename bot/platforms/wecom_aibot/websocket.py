"""WeCom AI bot long connection (docs/longconn.md part 2): one outbound WebSocket per bot.

Frames are `{cmd, headers: {req_id}, body}`; the server answers each of our commands with
`{headers: {req_id}, errcode, errmsg}` (no cmd). We subscribe with bot_id + secret, ping every
30 s (two pings without an answer: the socket is dead, reconnect), store every callback in the
inbox (WeCom expects no ack for callbacks), answer a message with `aibot_respond_msg` on its
req_id, push with `aibot_send_msg` (a picture uploaded first with `aibot_upload_media_*`), and
update a clicked card with `aibot_respond_update_msg` within 5 s. One live connection per bot:
a newer one gets the callbacks and the older one a `disconnected_event` — we log that loudly
and stop, so two processes never kick each other in a loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.platforms.base import TRANSIENT_RETRY_S, CallbackRejected, PlatformCallFailed, SendResult
from bot.platforms.longconn import (
    MAX_IN_HAND,
    Backoff,
    Busy,
    EventSink,
    ReconnectingClient,
    StoreBatches,
    json_frames,
)
from bot.platforms.wecom import MEDIA_MIN_BYTES, MediaCache, picture_problem
from bot.platforms.wecom_aibot.adapter import WeComAiBotAdapter
from bot.platforms.wecom_aibot.bodies import (
    PICTURE_MAX_BYTES,
    push_body,
    stream_body,
    update_card_body,
)
from bot.platforms.wecom_aibot.protocol import body_event
from core.clock import Clock
from core.messages import Image, OutMessage

log = logging.getLogger(__name__)

CALLBACKS = ("aibot_msg_callback", "aibot_event_callback")
CARD_WINDOW_MS = 5000  # a card event not answered within 5 s is dropped by WeCom
MISSED_PINGS = 2
DRAIN_S = 5.0
STALE_REQ = {"846605", "846608"}  # invalid req_id, stream expired: push instead
ANSWERED_MEMORY = 4096
UPLOAD_CHUNK_BYTES = 512 * 1024  # each aibot_upload_media_chunk, before Base64
UPLOAD_MAX_CHUNKS = 100


class KickedOut(Exception):
    """Another connection subscribed with this bot's credentials."""


class SubscribeRefused(Exception):
    pass


class DeadSocket(Exception):
    """Pings went unanswered: the socket was closed on our side."""


def new_req_id(cmd: str) -> str:
    """<cmd>_<ms>_<8 hex>, the official SDK's shape (its prefix tells acks apart in logs)."""
    return f"{cmd}_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


def ack_result(ack: dict[str, Any]) -> SendResult:
    code = ack.get("errcode")
    if code == 0:
        return SendResult(True)
    return SendResult(False, code=str(code), detail=str(ack.get("errmsg", "")))


class WeComAiBotSocket(ReconnectingClient):
    name = "wecom_aibot_ws"

    def __init__(
        self, adapter: WeComAiBotAdapter, clock: Clock, rand: Callable[[], float] = random.random
    ) -> None:
        settings = adapter.settings
        super().__init__(clock, Backoff(settings.backoff_base_s, settings.backoff_cap_s, rand))
        self.adapter = adapter
        self.settings = settings
        self._clock = clock
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._unanswered_pings = 0
        # callback req_ids already used by aibot_respond_msg (later answers are pushed)
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._media = MediaCache(clock)

    async def run(self, sink: EventSink, busy: Busy | None = None) -> None:
        async with aiohttp.ClientSession() as http:
            try:
                await self._keep_connected(
                    lambda: self._session(http, sink, busy), (SubscribeRefused, DeadSocket)
                )
            except KickedOut:
                log.error(
                    "WeCom AI bot: ANOTHER PROCESS SUBSCRIBED WITH THIS BOT (bot_id %s) and "
                    "took over its connection; this process no longer receives AI bot "
                    "messages and will not reconnect. Run one long-connection process per "
                    "bot.",
                    self.settings.bot_id,
                )
                self.health_info.set("kicked", "disconnected_event: another connection took over")

    async def _session(
        self, http: aiohttp.ClientSession, sink: EventSink, busy: Busy | None
    ) -> None:
        async with http.ws_connect(self.settings.ws_url) as ws:
            await self._subscribe(ws)
            self._ws, self._unanswered_pings = ws, 0
            self.health_info.connects += 1
            self.health_info.set("connected")
            self._backoff.reset()
            log.info("WeCom AI bot socket subscribed (connection %s)", self.health_info.connects)
            batches = StoreBatches(sink, MAX_IN_HAND, busy=busy)
            pinger = asyncio.create_task(self._ping_loop(ws))
            try:
                await self._read(ws, batches)
                if self._unanswered_pings > MISSED_PINGS:  # the ping loop closed it
                    raise DeadSocket(f"{MISSED_PINGS} pings unanswered")
            finally:
                pinger.cancel()
                self._ws = None
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ConnectionError("AI bot socket closed"))
                await batches.close(DRAIN_S)

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        req_id = new_req_id("aibot_subscribe")
        await ws.send_json(
            {
                "cmd": "aibot_subscribe",
                "headers": {"req_id": req_id},
                "body": {"bot_id": self.settings.bot_id, "secret": self.settings.secret},
            }
        )
        msg = await ws.receive(timeout=self.settings.reply_timeout_s)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise SubscribeRefused("socket closed before the subscribe answer")
        answer = json.loads(msg.data)
        if answer.get("headers", {}).get("req_id") != req_id or answer.get("errcode") != 0:
            raise SubscribeRefused(f"subscribe refused: errcode {answer.get('errcode')}")

    async def _ping_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Ping until the socket closes; after MISSED_PINGS unanswered ones, close it (the
        count then exceeds MISSED_PINGS, which tells `_session` why the socket ended)."""
        while not ws.closed:
            await asyncio.sleep(self.settings.ping_interval_s)
            self._unanswered_pings += 1
            if self._unanswered_pings > MISSED_PINGS:
                await ws.close()
                return
            await ws.send_json({"cmd": "ping", "headers": {"req_id": new_req_id("ping")}})

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, batches: StoreBatches) -> None:
        async for frame in json_frames(ws):
            req_id = str(frame["headers"].get("req_id", ""))
            cmd = frame.get("cmd")
            if cmd is None:  # the answer to one of our commands
                self._on_answer(req_id, frame)
            elif cmd in CALLBACKS and isinstance(body := frame.get("body"), dict):
                if _event_type(body) == "disconnected_event":
                    raise KickedOut
                self.health_info.frames += 1
                await self._store(body, req_id, batches)

    def _on_answer(self, req_id: str, frame: dict[str, Any]) -> None:
        if req_id.startswith("ping"):
            self._unanswered_pings = 0
        future = self._pending.get(req_id)
        if future is not None and not future.done():
            future.set_result(frame)

    async def _store(self, body: dict[str, Any], req_id: str, batches: StoreBatches) -> None:
        try:
            event = body_event(
                body, now_ms=int(self._clock.now().timestamp() * 1000), req_id=req_id
            )
        except CallbackRejected as exc:
            log.warning("WeCom AI bot callback rejected: %s", exc.reason)
            return
        if event is not None:  # WeCom takes no ack for callbacks; msgid de-duplicates
            await batches.put(event)

    # ---- commands --------------------------------------------------------------------------

    async def _command(self, cmd: str, req_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send one command and wait for its answer (same req_id)."""
        ws = self._ws
        if ws is None or ws.closed:
            raise PlatformCallFailed(
                SendResult(
                    False,
                    TRANSIENT_RETRY_S,
                    code="disconnected",
                    detail="AI bot socket not connected",
                )
            )
        future = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            await ws.send_json({"cmd": cmd, "headers": {"req_id": req_id}, "body": body})
            return await asyncio.wait_for(future, self.settings.reply_timeout_s)
        except (TimeoutError, ConnectionError) as exc:
            raise PlatformCallFailed(
                SendResult(False, TRANSIENT_RETRY_S, code="no_answer", detail=type(exc).__name__)
            ) from exc
        finally:
            self._pending.pop(req_id, None)

    async def push(self, chatid: str, body: dict[str, Any]) -> SendResult:
        """aibot_send_msg: a message nobody asked for (nudges, assignments, summaries)."""
        answer = await self._command(
            "aibot_send_msg", new_req_id("aibot_send_msg"), {"chatid": chatid, **body}
        )
        return ack_result(answer)

    async def push_message(self, chatid: str, msg: OutMessage) -> SendResult:
        """A message to a person or chat; a picture is uploaded over the socket first (once
        per content while its media_id is fresh) and sent as an image message."""
        if msg.kind != "image":
            return await self.push(chatid, push_body(msg))
        problem = picture_problem(msg.image, MEDIA_MIN_BYTES, PICTURE_MAX_BYTES)
        if problem is not None:
            return problem
        assert msg.image is not None
        media_id = await self._media.media_id(msg.image, self._upload)
        return await self.push(chatid, {"msgtype": "image", "image": {"media_id": media_id}})

    async def _upload(self, image: Image) -> str:
        """aibot_upload_media_init → _chunk (≤ 512 KB each, counted from 0) → _finish, whose
        answer carries the media_id (valid 3 days)."""
        data = image.data
        chunks = [data[i : i + UPLOAD_CHUNK_BYTES] for i in range(0, len(data), UPLOAD_CHUNK_BYTES)]
        suffix = "png" if image.mime == "image/png" else "jpg"
        init = await self._step(
            "aibot_upload_media_init",
            {
                "type": "image",
                "filename": f"chart-{image.sha256[:12]}.{suffix}",
                "total_size": len(data),
                "total_chunks": len(chunks),
                "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            },
        )
        upload_id = str(init.get("upload_id") or "")
        for index, chunk in enumerate(chunks):
            await self._step(
                "aibot_upload_media_chunk",
                {
                    "upload_id": upload_id,
                    "chunk_index": index,
                    "base64_data": base64.b64encode(chunk).decode(),
                },
            )
        media_id = (await self._step("aibot_upload_media_finish", {"upload_id": upload_id})).get(
            "media_id"
        )
        if not (isinstance(media_id, str) and media_id):
            raise PlatformCallFailed(
                SendResult(False, code="upload", detail="upload finished without a media_id")
            )
        return media_id

    async def _step(self, cmd: str, body: dict[str, Any]) -> dict[str, Any]:
        """One upload command; its answer's body, or the failure as PlatformCallFailed."""
        answer = await self._command(cmd, new_req_id(cmd), body)
        result = ack_result(answer)
        if not result.ok:
            raise PlatformCallFailed(
                SendResult(False, code=result.code, detail=f"{cmd} failed: {result.detail}")
            )
        found = answer.get("body")
        return found if isinstance(found, dict) else {}

    async def answer(self, parts: dict[str, str], msg: OutMessage) -> SendResult:
        """In the conversation of one callback: a card update on its req_id within 5 s; the
        first answer on its req_id; later ones pushed to the chat."""
        req_id = parts.get("q", "")
        if msg.kind == "card_update":
            age_ms = int(self._clock.now().timestamp() * 1000) - int(parts.get("t", "0") or 0)
            if not req_id or age_ms > CARD_WINDOW_MS:
                return SendResult(
                    False,
                    permanent=True,
                    code="card_expired",
                    detail="card events must be answered within 5 s",
                )
            return ack_result(
                await self._command(
                    "aibot_respond_update_msg", req_id, update_card_body(parts, msg)
                )
            )
        if req_id and req_id not in self._answered:
            self._answered[req_id] = None
            while len(self._answered) > ANSWERED_MEMORY:
                self._answered.popitem(last=False)
            result = ack_result(await self._command("aibot_respond_msg", req_id, stream_body(msg)))
            if result.ok or result.code not in STALE_REQ:
                return result
        return await self.push_message(parts.get("c") or parts["u"], msg)


def _event_type(body: dict[str, Any]) -> str:
    event = body.get("event")
    return str(event.get("eventtype", "")) if isinstance(event, dict) else ""
