"""A fake DingTalk Stream gateway on loopback, on top of the fake DingTalk OpenAPI.

It speaks the frames of DingTalk's Stream protocol: `connections/open` checks the app's
credentials and hands out single-use tickets; the WebSocket refuses a used, unknown or expired
ticket; pushes are CALLBACK frames with a `data` JSON string and a messageId; acks are matched
by messageId and recorded with their delay. Un-acked frames are pushed again on the next
connection (the at-least-once behaviour of EVENT frames, the worst case for duplicates), and
the socket can be killed without a close frame, like a network failure.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.dingtalk import CARD_TEMPLATE, FakeDingTalk, card_click

__all__ = ["CARD_TEMPLATE", "FakeDingTalkStream"]

ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"


@dataclass
class Ack:
    message_id: str
    code: int
    data: Any
    delay_s: float  # push → ack, measured by the gateway


class FakeDingTalkStream(FakeDingTalk):
    def __init__(self, *args: Any, ticket_ttl_s: float = 90.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticket_ttl_s = ticket_ttl_s
        self.tickets: dict[str, float] = {}  # unused ticket -> monotonic expiry
        self.expire_next = 0  # hand out this many tickets that are already expired
        self.refused: list[str] = []  # why each refused WebSocket upgrade was refused
        self.connections: list[web.WebSocketResponse] = []
        self.acks: list[Ack] = []
        self.ping_echoes: list[Any] = []
        self.unacked: dict[str, dict[str, Any]] = {}  # messageId -> frame
        self._pushed_at: dict[str, float] = {}
        self._transports: dict[int, Any] = {}
        self.connected = asyncio.Event()
        self.app.router.add_post("/v1.0/gateway/connections/open", self.open_connection)
        self.app.router.add_get("/connect", self.connect)

    @property
    def live(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self.connections if not ws.closed]

    async def open_connection(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return web.json_response(
                {"code": "InvalidAuthentication", "message": "无效的应用"}, status=401
            )
        topics = {(s.get("type"), s.get("topic")) for s in body.get("subscriptions") or []}
        if ("CALLBACK", ROBOT_TOPIC) not in topics:
            return web.json_response(
                {"code": "invalidParameter", "message": "subscriptions"}, status=400
            )
        ticket = secrets.token_hex(16)
        ttl = -1.0 if self.expire_next > 0 else self.ticket_ttl_s
        self.expire_next = max(self.expire_next - 1, 0)
        self.tickets[ticket] = time.monotonic() + ttl
        endpoint = self.url("/connect").replace("http://", "ws://")
        return web.json_response({"endpoint": endpoint, "ticket": ticket})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        expiry = self.tickets.pop(ticket, None)  # single use: gone whatever happens next
        if expiry is None or expiry < time.monotonic():
            self.refused.append("unknown or used ticket" if expiry is None else "expired ticket")
            return web.json_response({"code": "invalidTicket"}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections.append(ws)
        self._transports[id(ws)] = request.transport
        for frame in list(self.unacked.values()):  # re-push what nobody acknowledged
            await ws.send_str(json.dumps(frame))
        self.connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self._on_ack(json.loads(msg.data))
        return ws

    def _on_ack(self, ack: dict[str, Any]) -> None:
        message_id = ack["headers"]["messageId"]
        if message_id.startswith("ping-"):
            self.ping_echoes.append(json.loads(ack["data"]))
            return
        if message_id not in self._pushed_at:
            return
        delay = time.monotonic() - self._pushed_at[message_id]
        self.acks.append(Ack(message_id, ack["code"], json.loads(ack["data"]), delay))
        if ack["code"] != 500:  # 500: the client failed; the frame is pushed again later
            self.unacked.pop(message_id, None)

    async def push(self, data: dict[str, Any], topic: str = ROBOT_TOPIC) -> str:
        """One CALLBACK frame on the newest live connection; returns its messageId."""
        message_id = secrets.token_hex(8)
        frame = {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "appId": "fake-app-id",
                "connectionId": "conn-1",
                "contentType": "application/json",
                "messageId": message_id,
                "time": str(int(time.time() * 1000)),
                "topic": topic,
            },
            "data": json.dumps(data, ensure_ascii=False),
        }
        self.unacked[message_id] = frame
        self._pushed_at[message_id] = time.monotonic()
        await self.live[-1].send_str(json.dumps(frame))
        return message_id

    async def system(self, topic: str, data: dict[str, Any]) -> None:
        frame = {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {
                "contentType": "application/json",
                "messageId": f"{topic}-" + secrets.token_hex(4),
                "time": str(int(time.time() * 1000)),
                "topic": topic,
            },
            "data": json.dumps(data),
        }
        await self.live[-1].send_str(json.dumps(frame))

    async def click(self, out_track_id: str, user_id: str, action: str) -> str:
        """A button press on a delivered card, as the card callback topic carries it."""
        return await self.push(card_click(out_track_id, user_id, action, "button"), CARD_TOPIC)

    def kill(self) -> None:
        """Drop every connection without a close frame, like a cut network."""
        for ws in self.live:
            transport = self._transports.get(id(ws))
            if transport is not None:
                transport.abort()
        self.connected.clear()

    def acked(self, code: int = 200) -> set[str]:
        return {a.message_id for a in self.acks if a.code == code}
