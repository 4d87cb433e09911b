"""Fakes of the WeCom AI bot (智能机器人): its callback sender and response_url endpoint, and its
long-connection gateway.

The callback crypto is the fake WeCom's independent implementation (tests/fakes/wecom.py,
checked against WeCom's published sample) with an empty receiveid, as the AI bot uses. Card
events are sent once and never retried: the client records how long our passive answer took.
The gateway speaks the `{cmd, headers: {req_id}, body}` frames: subscribe with bot_id + secret,
ping, callbacks, our replies and pushes; a second subscribe for the same bot sends the first
socket a `disconnected_event` and closes it; a card update later than 5 s is refused.
Pictures are checked as WeCom documents them (docs/longconn.md 1.4): a stream's msg_item only
on the finishing frame, at most 10, each JPG/PNG ≤ 10 MB with the MD5 of its bytes; a pushed
image names a media_id this gateway issued through aibot_upload_media_init / _chunk (≤ 512 KB,
counted from 0) / _finish, whose size and MD5 must match what init announced. The response_url
takes a template_card only from a single chat; a news_notice needs its card_image and action.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from core.clock import Clock
from tests.fakes import FakeServer
from tests.fakes.wecom import FakeWeCom, WeComCallbackClient

CARD_DEADLINE_S = 5.0


def aibot_text(
    user: str, content: str, msgid: str, *, chatid: str = "", response_url: str = ""
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "msgid": msgid,
        "aibotid": "aibfake",
        "chattype": "group" if chatid else "single",
        "from": {"userid": user},
        "msgtype": "text",
        "text": {"content": content},
    }
    if chatid:
        body["chatid"] = chatid
    if response_url:
        body["response_url"] = response_url
    return body


def aibot_card_click(
    user: str, event_key: str, task_id: str, msgid: str, *, chatid: str = "", response_url: str = ""
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "msgid": msgid,
        "aibotid": "aibfake",
        "create_time": int(time.time()),
        "chattype": "group" if chatid else "single",
        "from": {"userid": user},
        "msgtype": "event",
        "event": {
            "eventtype": "template_card_event",
            "template_card_event": {
                "card_type": "button_interaction",
                "event_key": event_key,
                "task_id": task_id,
            },
        },
    }
    if chatid:
        body["chatid"] = chatid
    if response_url:
        body["response_url"] = response_url
    return body


@dataclass
class Answer:
    status: int
    reply: dict[str, Any] | None  # the decrypted passive reply, if any
    seconds: float


class AiBotCallbackClient(WeComCallbackClient):
    """Plays the AI bot's side of callback mode: JSON envelope, receiveid ''."""

    def __init__(
        self, token: str, encoding_aes_key: str, url: str, clock: Clock | None = None
    ) -> None:
        super().__init__(token, encoding_aes_key, "", url, clock=clock)

    async def send(self, body: dict[str, Any], *, timestamp: int | None = None) -> Answer:
        encrypted = self.encrypt(json.dumps(body, ensure_ascii=False))
        query = self._query(encrypted, timestamp, None)
        started = time.monotonic()
        async with self._session_().post(
            self.url, params=query, json={"encrypt": encrypted}
        ) as resp:
            status, raw = resp.status, await resp.read()
        took = time.monotonic() - started
        return Answer(status, self.open_reply(raw, query["nonce"]) if raw else None, took)

    def open_reply(self, raw: bytes, nonce: str) -> dict[str, Any]:
        """Check a passive reply the way WeCom would: signature, our nonce, receiveid ''."""
        envelope = json.loads(raw)
        expected = self.sign(envelope["timestamp"], envelope["nonce"], envelope["encrypt"])
        assert envelope["msgsignature"] == expected, "passive reply signature"
        assert envelope["nonce"] == nonce, "the callback's nonce is reused"
        message, receive_id = self.decrypt(envelope["encrypt"])
        assert receive_id == "", "AI bot receiveid is empty"
        return json.loads(message)


class FakeWeComWithAiBot(FakeWeCom):
    """The WeCom API fake plus the AI bot's response_url: one POST each, within an hour."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.response_urls: dict[str, list[dict[str, Any]]] = {}
        self._group_urls: set[str] = set()
        self.app.router.add_post("/cgi-bin/aibot/response", self.respond)

    def new_response_url(self, *, group: bool = False) -> str:
        code = secrets.token_hex(8)
        self.response_urls[code] = []
        if group:
            self._group_urls.add(code)
        return self.url(f"/cgi-bin/aibot/response?response_code={code}")

    async def respond(self, request: web.Request) -> web.Response:
        posts = self.response_urls.get(request.query.get("response_code", ""))
        if posts is None:
            return web.json_response({"errcode": 40001, "errmsg": "invalid response_code"})
        body = await request.json()
        if posts:
            return web.json_response({"errcode": 40001, "errmsg": "response_code used"})
        code = request.query["response_code"]
        if body.get("msgtype") not in ("markdown", "template_card"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        if body["msgtype"] == "template_card" and (
            code in self._group_urls or not _card_ok(body.get("template_card"))
        ):
            return web.json_response({"errcode": 40008, "errmsg": "invalid template_card"})
        posts.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


def _card_ok(card: Any) -> bool:
    """The fields WeCom requires of the template cards we send (docs/platforms.md a)."""
    if not isinstance(card, dict) or not (card.get("main_title") or {}).get("title"):
        return False
    if card.get("card_type") == "news_notice":
        image, action = card.get("card_image") or {}, card.get("card_action") or {}
        ratio = image.get("aspect_ratio", 1.3)
        return bool(image.get("url")) and 1.3 <= ratio <= 2.25 and action.get("type") == 1
    return card.get("card_type") in ("text_notice", "button_interaction")


def picture_of(image: Any, max_bytes: int) -> bytes | None:
    """The bytes of an inline {base64, md5} picture if WeCom would take it, else None."""
    if not isinstance(image, dict):
        return None
    try:
        raw = base64.b64decode(str(image.get("base64", "")), validate=True)
    except binascii.Error:
        return None
    if hashlib.md5(raw).hexdigest() != image.get("md5") or not 0 < len(raw) <= max_bytes:
        return None
    return raw if raw.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) else None


@dataclass
class Upload:
    total_size: int
    total_chunks: int
    md5: str
    chunks: dict[int, bytes]


@dataclass
class Received:
    cmd: str
    req_id: str
    body: dict[str, Any]
    at: float  # monotonic


class FakeAiBotGateway(FakeServer):
    """wss://openws.work.weixin.qq.com on loopback."""

    def __init__(self, bot_id: str = "aibfakebot", secret: str = "fake-bot-secret") -> None:
        super().__init__()
        self.bot_id, self.secret = bot_id, secret
        self.answer_pings = True
        self.subscribed: list[web.WebSocketResponse] = []  # in subscribe order
        self.received: list[Received] = []
        self.kicked = 0
        self._pushed_at: dict[str, tuple[float, bool]] = {}  # req_id -> (time, card event)
        self._transports: dict[int, Any] = {}
        self._uploads: dict[str, Upload] = {}
        self.media: dict[str, bytes] = {}  # media_id -> uploaded bytes
        self.pictures: list[bytes] = []  # every picture shown: inline or by media_id
        self.connected = asyncio.Event()
        self.app.router.add_get("/", self.connect)

    @property
    def ws_url(self) -> str:
        return self.url("/").replace("http://", "ws://")

    @property
    def live(self) -> web.WebSocketResponse:
        return [ws for ws in self.subscribed if not ws.closed and id(ws) in self._transports][-1]

    def got(self, cmd: str) -> list[Received]:
        return [r for r in self.received if r.cmd == cmd]

    async def connect(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._transports[id(ws)] = request.transport
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            await self._on_frame(ws, frame)
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        cmd, req_id, body = frame["cmd"], frame["headers"]["req_id"], frame.get("body") or {}
        self.received.append(Received(cmd, req_id, body, time.monotonic()))
        if cmd == "aibot_subscribe":
            await self._subscribe(ws, req_id, body)
        elif cmd == "ping":
            if self.answer_pings:
                await ws.send_json({"headers": {"req_id": req_id}, "errcode": 0, "errmsg": "ok"})
        elif cmd in ("aibot_respond_msg", "aibot_respond_update_msg"):
            answer = self._check_reply(cmd, req_id)
            if answer["errcode"] == 0 and cmd == "aibot_respond_msg":
                answer = self._check_stream(body)
            await ws.send_json({"headers": {"req_id": req_id}, **answer})
        elif cmd == "aibot_send_msg":
            await ws.send_json({"headers": {"req_id": req_id}, **self._check_push(body)})
        elif cmd.startswith("aibot_upload_media_"):
            await ws.send_json({"headers": {"req_id": req_id}, **self._upload(cmd, body)})

    def _check_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        stream = body.get("stream") or {}
        if body.get("msgtype") != "stream" or not stream.get("id"):
            return {"errcode": 40008, "errmsg": "invalid stream"}
        if len(str(stream.get("content", "")).encode()) > 20480:
            return {"errcode": 40058, "errmsg": "content too long"}
        items = stream.get("msg_item")
        if items is None:
            return {"errcode": 0, "errmsg": "ok"}
        if stream.get("finish") is not True or not isinstance(items, list) or len(items) > 10:
            return {"errcode": 40058, "errmsg": "msg_item only on the finishing frame, ≤ 10"}
        pictures = [
            picture_of(i.get("image"), 10 * 1024 * 1024) if i.get("msgtype") == "image" else None
            for i in items
        ]
        if any(p is None for p in pictures):
            return {"errcode": 40058, "errmsg": "invalid msg_item image"}
        self.pictures += [p for p in pictures if p is not None]
        return {"errcode": 0, "errmsg": "ok"}

    def _check_push(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("msgtype")
        if not body.get("chatid") or kind not in ("markdown", "template_card", "image"):
            return {"errcode": 40008, "errmsg": "invalid"}
        if kind == "image":
            data = self.media.get(str((body.get("image") or {}).get("media_id")))
            if data is None:
                return {"errcode": 40007, "errmsg": "invalid media_id"}
            self.pictures.append(data)
        return {"errcode": 0, "errmsg": "ok"}

    def _upload(self, cmd: str, body: dict[str, Any]) -> dict[str, Any]:
        bad = {"errcode": 40058, "errmsg": f"invalid {cmd}"}
        if cmd == "aibot_upload_media_init":
            size, chunks = body.get("total_size"), body.get("total_chunks")
            if not (
                body.get("type") in ("file", "image", "voice", "video")
                and body.get("filename")
                and isinstance(size, int)
                and size > 5
                and isinstance(chunks, int)
                and 1 <= chunks <= 100
                and len(str(body.get("md5", ""))) == 32
            ):
                return bad
            upload_id = "up_" + secrets.token_hex(6)
            self._uploads[upload_id] = Upload(size, chunks, str(body["md5"]), {})
            return {"errcode": 0, "errmsg": "ok", "body": {"upload_id": upload_id}}
        upload = self._uploads.get(str(body.get("upload_id")))
        if upload is None:
            return bad
        if cmd == "aibot_upload_media_chunk":
            index = body.get("chunk_index")
            try:
                raw = base64.b64decode(str(body.get("base64_data", "")), validate=True)
            except binascii.Error:
                return bad
            if not (isinstance(index, int) and 0 <= index < upload.total_chunks) or not (
                0 < len(raw) <= 512 * 1024
            ):
                return bad
            upload.chunks[index] = raw
            return {"errcode": 0, "errmsg": "ok"}
        if cmd != "aibot_upload_media_finish" or len(upload.chunks) != upload.total_chunks:
            return bad
        data = b"".join(upload.chunks[i] for i in range(upload.total_chunks))
        if len(data) != upload.total_size or hashlib.md5(data).hexdigest() != upload.md5:
            return {"errcode": 40058, "errmsg": "size or md5 mismatch"}
        media_id = "media_" + secrets.token_hex(8)
        self.media[media_id] = data
        del self._uploads[str(body["upload_id"])]
        body = {"type": "image", "media_id": media_id, "created_at": str(int(time.time()))}
        return {"errcode": 0, "errmsg": "ok", "body": body}

    def _check_reply(self, cmd: str, req_id: str) -> dict[str, Any]:
        pushed = self._pushed_at.get(req_id)
        if pushed is None:
            return {"errcode": 846605, "errmsg": "invalid req_id"}
        at, is_card = pushed
        if cmd == "aibot_respond_msg" and is_card:
            return {"errcode": 846605, "errmsg": "invalid req_id"}  # events take no reply
        if cmd == "aibot_respond_update_msg" and time.monotonic() - at > CARD_DEADLINE_S:
            return {"errcode": 846605, "errmsg": "card event expired"}
        return {"errcode": 0, "errmsg": "ok"}

    async def _subscribe(
        self, ws: web.WebSocketResponse, req_id: str, body: dict[str, Any]
    ) -> None:
        if body.get("bot_id") != self.bot_id or body.get("secret") != self.secret:
            await ws.send_json(
                {
                    "headers": {"req_id": req_id},
                    "errcode": 40058,
                    "errmsg": "invalid bot_id or secret",
                }
            )
            await ws.close()
            return
        # one connection per bot (a cut connection is gone already: nobody to tell)
        for old in [w for w in self.subscribed if not w.closed and id(w) in self._transports]:
            self.kicked += 1
            await old.send_json(
                {
                    "cmd": "aibot_event_callback",
                    "headers": {"req_id": "kick-" + secrets.token_hex(4)},
                    "body": {
                        "msgid": secrets.token_hex(8),
                        "msgtype": "event",
                        "from": {"userid": ""},
                        "event": {"eventtype": "disconnected_event"},
                    },
                }
            )
            await old.close()
        self.subscribed.append(ws)
        await ws.send_json({"headers": {"req_id": req_id}, "errcode": 0, "errmsg": "ok"})
        self.connected.set()

    def kill(self) -> None:
        """Drop every connection without a close frame, like a cut network."""
        for ws in self.subscribed:
            if (transport := self._transports.pop(id(ws), None)) is not None:
                transport.abort()

    async def push(self, body: dict[str, Any]) -> str:
        """A callback frame to the live connection; returns its req_id."""
        req_id = "srv-" + secrets.token_hex(6)
        is_event = body.get("msgtype") == "event"
        self._pushed_at[req_id] = (time.monotonic(), is_event)
        cmd = "aibot_event_callback" if is_event else "aibot_msg_callback"
        await self.live.send_json({"cmd": cmd, "headers": {"req_id": req_id}, "body": body})
        return req_id
