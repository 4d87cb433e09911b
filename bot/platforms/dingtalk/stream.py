"""DingTalk Stream mode: the robot's messages come over an outbound WebSocket, so no public
callback URL is needed (docs/longconn.md part 1).

Our own client on aiohttp (the official SDK blocks the event loop): `connections/open` gives an
endpoint and a single-use ticket (valid 90 s), so every (re)connect opens afresh. Every frame is
acknowledged by its messageId — a robot message only after it is committed to the inbox —
SYSTEM pings are echoed, and a SYSTEM `disconnect` or a closed socket leads to a reconnect after
a jittered backoff (1 s doubling to 60 s, back to 1 s once frames flow again). Message data is
the same JSON as an HTTP-mode callback, so `DingTalkAdapter.message_event` makes the Event and
replies go out exactly as in HTTP mode.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import yarl

from bot.platforms.base import CallbackRejected, inbound_json
from bot.platforms.dingtalk import DingTalkAdapter
from bot.platforms.longconn import (
    Backoff,
    Busy,
    EventSink,
    ReconnectingClient,
    StoreBatches,
    json_frames,
)
from core.clock import Clock, SystemClock
from core.messages import Event

log = logging.getLogger(__name__)

OPEN_PATH = "/v1.0/gateway/connections/open"
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
USER_AGENT = "lianjian/0.1 (aiohttp)"
DRAIN_S = 5.0  # frames in hand get this long to store and ack when the socket goes away
NO_RESPONSE = json.dumps({"response": None})


class StreamFailure(Exception):
    """The gateway refused to open a connection or answered nonsense; reason for the log."""


class DingTalkStream(ReconnectingClient):
    """One Stream connection for the app in `adapter.settings`, kept up until `stop()`."""

    name = "dingtalk_stream"

    def __init__(
        self,
        adapter: DingTalkAdapter,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            clock or SystemClock(),
            Backoff(
                adapter.settings.stream_backoff_base_s, adapter.settings.stream_backoff_cap_s, rand
            ),
        )
        self.adapter = adapter
        self.settings = adapter.settings

    async def run(self, sink: EventSink, busy: Busy | None = None) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.http_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:

            async def connect() -> None:
                await self._session(http, await self._open(http), sink, busy)

            await self._keep_connected(connect, (StreamFailure,))

    async def _open(self, http: aiohttp.ClientSession) -> yarl.URL:
        """connections/open → the WebSocket URL with a fresh ticket (single use, 90 s)."""
        body = {
            "clientId": self.settings.app_key,
            "clientSecret": self.settings.app_secret,
            "subscriptions": [
                {"type": "CALLBACK", "topic": ROBOT_TOPIC},
                {"type": "CALLBACK", "topic": CARD_TOPIC},
            ],
            "ua": USER_AGENT,
        }
        # without Accept an old gateway answered XML
        async with http.post(
            self.settings.api_base + OPEN_PATH, json=body, headers={"Accept": "application/json"}
        ) as resp:
            status, text = resp.status, await resp.text()
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if status != 200 or not isinstance(data, dict):
            code = data.get("code", "") if isinstance(data, dict) else ""
            raise StreamFailure(f"connections/open answered HTTP {status} {code}".strip())
        endpoint, ticket = data.get("endpoint"), data.get("ticket")
        if not (isinstance(endpoint, str) and isinstance(ticket, str) and ticket):
            raise StreamFailure("connections/open gave no endpoint or ticket")
        url = yarl.URL(endpoint)
        if url.scheme not in ("ws", "wss") or not url.host:
            raise StreamFailure("connections/open gave an endpoint that is not a WebSocket URL")
        return url.update_query(ticket=ticket)

    async def _session(
        self, http: aiohttp.ClientSession, url: yarl.URL, sink: EventSink, busy: Busy | None
    ) -> None:
        async with http.ws_connect(
            url, heartbeat=self.settings.stream_heartbeat_s, autoclose=True
        ) as ws:
            self._ws = ws
            self.health_info.connects += 1
            self.health_info.set("connected")
            log.info("DingTalk Stream connected (connection %s)", self.health_info.connects)
            batches = StoreBatches(
                sink, self.settings.stream_max_inflight, functools.partial(_ack_stored, ws), busy
            )
            try:
                await self._read(ws, batches)
            finally:
                await batches.close(DRAIN_S)
                self._ws = None

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, batches: StoreBatches) -> None:
        async for frame in json_frames(ws):
            headers = frame["headers"]
            message_id, topic = str(headers.get("messageId", "")), str(headers.get("topic", ""))
            if not message_id:
                continue
            self._backoff.reset()  # the connection works: a later failure starts at base again
            if frame.get("type") == "SYSTEM":
                if topic == "disconnect":
                    # the gateway rebalances; it closes the TCP connection ~10 s later
                    log.info("DingTalk Stream: gateway asked to reconnect")
                    return
                if topic == "ping":
                    await _ack(ws, message_id, 200, frame.get("data", ""))
                continue
            self.health_info.frames += 1
            await self._handle(ws, frame, message_id, topic, batches)

    async def _handle(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        frame: dict[str, Any],
        message_id: str,
        topic: str,
        batches: StoreBatches,
    ) -> None:
        """Queue the frame's event for storing; it is acknowledged on the socket it came from
        once stored (`_ack_stored`)."""
        if frame.get("type") != "CALLBACK" or topic not in (ROBOT_TOPIC, CARD_TOPIC):
            await _ack(ws, message_id, 404, NO_RESPONSE, "unknown topic")
            return
        try:
            event = self._event(topic, frame.get("data"))
        except CallbackRejected as exc:
            log.warning("DingTalk Stream frame %s rejected: %s", message_id, exc.reason)
            await _ack(ws, message_id, 400, NO_RESPONSE, "rejected")
            return
        await batches.put(event, message_id)

    def _event(self, topic: str, raw: object) -> Event:
        try:
            data = inbound_json(raw) if isinstance(raw, str) else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise CallbackRejected(400, "frame data is not a JSON object")
        if topic == CARD_TOPIC:
            return self.adapter.card_event(data)
        return self.adapter.message_event(data)


def ack_frame(message_id: str, code: int, data: object, message: str = "OK") -> str:
    """The ack frame's text, matched by messageId; its data is always a JSON string."""
    if code == 200 and data is NO_RESPONSE and message == "OK":
        # a stored message's ack, once per frame: only the messageId differs
        return _STORED_ACK_HEAD + json.dumps(message_id) + _STORED_ACK_TAIL
    frame = {
        "code": code,
        "headers": {"contentType": "application/json", "messageId": message_id},
        "message": message,
        "data": data if isinstance(data, str) else json.dumps(data),
    }
    return json.dumps(frame)


# ack_frame(<id>, 200, NO_RESPONSE) is this head, the id as JSON, this tail (the same text)
_STORED_ACK_HEAD, _STORED_ACK_TAIL = json.dumps(
    {
        "code": 200,
        "headers": {"contentType": "application/json", "messageId": ""},
        "message": "OK",
        "data": NO_RESPONSE,
    }
).split('""')


async def _ack_stored(
    ws: aiohttp.ClientWebSocketResponse, message_ids: list[str], ok: bool
) -> None:
    """The acks of a batch of frames once their events are stored (500 if storing failed:
    DingTalk may deliver them again)."""
    code, message = (200, "OK") if ok else (500, "not stored")
    for message_id in message_ids:
        await _ack(ws, message_id, code, NO_RESPONSE, message)


async def _ack(
    ws: aiohttp.ClientWebSocketResponse,
    message_id: str,
    code: int,
    data: object,
    message: str = "OK",
) -> None:
    """Send the ack frame (`ack_frame`)."""
    try:
        await ws.send_str(ack_frame(message_id, code, data, message))
    except (ConnectionError, RuntimeError) as exc:  # socket gone: the frame comes again
        log.info("DingTalk Stream ack for %s not sent: %s", message_id, type(exc).__name__)
