"""A fake WeCom: API server (gettoken, message/send, update_template_card, robot webhook) and a
callback client that encrypts and signs events the way WeCom does.

The callback crypto here is written independently of bot/platforms/wecom/crypto.py (padding
through `cryptography`'s PKCS7(256) padder/unpadder instead of by hand) and is itself checked
against the published sample in tests/test_wecom.py, so the adapter is not only checked against
itself.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import hashlib
import os
import secrets
import struct
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from core.clock import Clock, SystemClock
from tests.fakes import FakeServer, RateLimiter

TEXT_LIMIT = 2048
MARKDOWN_LIMIT = {"app": 2048, "webhook": 4096}
MEDIA_TYPES = ("image", "voice", "video", "file")
IMAGE_UPLOAD_LIMIT = 10 * 1024 * 1024  # 上传临时素材: image ≤ 10 MB, JPG or PNG
MEDIA_LIFETIME_S = 3 * 24 * 3600  # a media_id works for three days
ROBOT_IMAGE_LIMIT = 2 * 1024 * 1024  # robot image: ≤ 2 MB before Base64


def picture_kind(data: bytes) -> str | None:
    """JPG or PNG by their signatures (what WeCom accepts as pictures)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    return None


def err(code: int, msg: str) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": msg})


class FakeWeCom(FakeServer):
    def __init__(
        self,
        corp_id: str = "wwfakecorp",
        corp_secret: str = "fake-secret",
        agent_id: int = 1000002,
        webhook_keys: tuple[str, ...] = ("robot-key-1",),
        clock: Clock | None = None,
        token_lifetime_s: int = 7200,
    ) -> None:
        super().__init__(clock)
        self.corp_id, self.corp_secret, self.agent_id = corp_id, corp_secret, agent_id
        self.webhook_keys = set(webhook_keys)
        self.token_lifetime_s = token_lifetime_s
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.response_codes: dict[str, bool] = {}  # response_code -> already used
        self.task_ids: set[str] = set()
        self.delivered: list[dict[str, Any]] = []  # accepted app messages and webhook posts
        self._sent_at: list[
            tuple[float, dict[str, Any]]
        ] = []  # app messages, for the duplicate check
        self.duplicates_dropped = 0
        self.media: dict[str, tuple[bytes, float]] = {}  # media_id -> (bytes, uploaded at)
        self.pictures: list[bytes] = []  # pictures delivered (app by media_id, robot inline)
        self.webhook_limit = RateLimiter(self.clock, per_minute=20)
        self.app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        self.app.router.add_post("/cgi-bin/message/send", self.message_send)
        self.app.router.add_post("/cgi-bin/message/update_template_card", self.update_card)
        self.app.router.add_post("/cgi-bin/webhook/send", self.webhook_send)
        self.app.router.add_post("/cgi-bin/media/upload", self.media_upload)

    @property
    def gettoken_calls(self) -> int:
        return len(self.calls("/cgi-bin/gettoken"))

    def revoke_tokens(self) -> None:
        """WeCom may revoke tokens early; the next API call then answers 40014."""
        self.tokens.clear()

    def webhook_url(self, key: str = "robot-key-1") -> str:
        return self.url(f"/cgi-bin/webhook/send?key={key}")

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token not in self.tokens:
            return err(40014, "invalid access_token")
        if self.tokens[token] <= self._now():
            return err(42001, "access_token expired")
        return None

    async def gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id:
            return err(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.corp_secret:
            return err(40001, "invalid credential")
        token = secrets.token_urlsafe(48)
        self.tokens[token] = self._now() + self.token_lifetime_s
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "access_token": token,
                "expires_in": self.token_lifetime_s,
            }
        )

    async def message_send(self, request: web.Request) -> web.Response:
        if (bad := self._token_error(request)) is not None:
            return bad
        if (scripted := self.script.pop("message/send")) is not None:
            return web.json_response(scripted)
        body = await request.json()
        if body.get("agentid") != self.agent_id:
            return err(40056, "invalid agentid")
        if not body.get("touser"):
            return err(40031, "invalid user list")
        if (bad := self._content_error(body, "app")) is not None:
            return bad
        if body["msgtype"] == "image":
            stored = self.media.get(str(body["image"].get("media_id", "")))
            if stored is None or self._now() - stored[1] >= MEDIA_LIFETIME_S:
                return err(40007, "invalid media_id")
        answer: dict[str, Any] = {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": "",
            "msgid": secrets.token_hex(8),
        }
        if self._duplicate(body):
            self.duplicates_dropped += 1
            return web.json_response(answer)
        if body["msgtype"] == "template_card":
            card = body["template_card"]
            if not card.get("task_id") or card["task_id"] in self.task_ids:
                return err(40058, "task_id missing or already used")
            self.task_ids.add(card["task_id"])
            code = secrets.token_urlsafe(16)
            self.response_codes[code] = False
            answer["response_code"] = code
        if body["msgtype"] == "image":
            self.pictures.append(self.media[body["image"]["media_id"]][0])
        self.delivered.append(body)
        self._sent_at.append((self._now(), body))
        return web.json_response(answer)

    def _duplicate(self, body: dict[str, Any]) -> bool:
        """enable_duplicate_check: the same message to the same member within the interval
        (default 1800 s, at most 4 hours) is accepted but not delivered again."""
        if body.get("enable_duplicate_check") != 1:
            return False
        interval = min(int(body.get("duplicate_check_interval", 1800)), 14400)
        now = self._now()
        return any(
            now - at < interval and _message(old) == _message(body) for at, old in self._sent_at
        )

    async def media_upload(self, request: web.Request) -> web.Response:
        """上传临时素材: multipart/form-data whose part "media" carries filename, filelength
        and content type; a picture must really be JPG or PNG, more than 5 bytes, ≤ 10 MB."""
        if (bad := self._token_error(request)) is not None:
            return bad
        kind = request.query.get("type", "")
        if kind not in MEDIA_TYPES:
            return err(40004, "invalid media type")
        if request.content_type != "multipart/form-data":
            return err(41005, "media data missing")
        raw = await request.read()  # cached by the recording middleware
        header = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + raw)
        parts = [
            p
            for p in form.iter_parts()
            if p.get_param("name", header="content-disposition") == "media"
        ]
        if len(parts) != 1 or not parts[0].get_filename():
            return err(41005, "media data missing")
        part = parts[0]
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        declared = part.get_param("filelength", header="content-disposition")
        if declared is not None and str(declared) != str(len(data)):
            return err(40006, "invalid file size")
        if len(data) <= 5:
            return err(40006, "invalid file size")
        if kind == "image":
            if picture_kind(data) is None or not part.get_content_type().startswith("image/"):
                return err(40005, "invalid file type")
            if len(data) > IMAGE_UPLOAD_LIMIT:
                return err(40009, "invalid image size")
        media_id = secrets.token_urlsafe(24)
        self.media[media_id] = (data, self._now())
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "",
                "type": kind,
                "media_id": media_id,
                "created_at": str(int(self._now())),
            }
        )

    async def update_card(self, request: web.Request) -> web.Response:
        if (bad := self._token_error(request)) is not None:
            return bad
        body = await request.json()
        code = body.get("response_code", "")
        if self.response_codes.get(code, True):  # unknown or used: each code works once
            return err(40058, "invalid response_code")
        if body.get("agentid") != self.agent_id or not body.get("userids"):
            return err(40058, "invalid agentid or userids")
        self.response_codes[code] = True
        self.delivered.append(body)
        return err(0, "ok")

    async def webhook_send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if key not in self.webhook_keys:
            return err(93000, "invalid webhook url")
        if (scripted := self.script.pop("webhook/send")) is not None:
            return web.json_response(scripted)
        if not self.webhook_limit.allow(key):
            return err(45009, "api freq out of limit")
        body = await request.json()
        if (bad := self._content_error(body, "webhook")) is not None:
            return bad
        if body["msgtype"] == "image":
            picture = robot_picture(body["image"])
            if isinstance(picture, web.Response):
                return picture
            self.pictures.append(picture)
        self.delivered.append(body)
        return err(0, "ok")

    def _content_error(self, body: dict[str, Any], where: str) -> web.Response | None:
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown", "template_card", "image") or not isinstance(
            body.get(msgtype), dict
        ):
            return err(40008, "invalid message type")
        if msgtype in ("template_card", "image"):
            return None
        content = body[msgtype].get("content", "")
        if not content:
            return err(44004, "empty content")
        limit = TEXT_LIMIT if msgtype == "text" else MARKDOWN_LIMIT[where]
        if len(content.encode()) > limit:
            return err(45002, "content size out of limit")
        return None


def robot_picture(image: dict[str, Any]) -> bytes | web.Response:
    """A robot `image`: Base64 of a JPG or PNG of at most 2 MB, with the MD5 (hex) of the
    decoded bytes — a wrong digest is refused with 301019 "media md5 not match"."""
    try:
        data = base64.b64decode(str(image.get("base64", "")), validate=True)
    except (binascii.Error, ValueError):
        return err(40009, "invalid image")
    if not data or len(data) > ROBOT_IMAGE_LIMIT or picture_kind(data) is None:
        return err(40009, "invalid image size")
    if str(image.get("md5", "")).lower() != hashlib.md5(data, usedforsecurity=False).hexdigest():
        return err(301019, "media md5 not match")
    return data


def _message(body: dict[str, Any]) -> dict[str, Any]:
    """What the duplicate check compares: recipient,
    agent and content, not the check's own fields."""
    return {
        k: v
        for k, v in body.items()
        if k not in ("enable_duplicate_check", "duplicate_check_interval")
    }


class WeComCallbackClient:
    """Plays WeCom's side of the callback: encrypts, signs, and calls our endpoint."""

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        url: str,
        clock: Clock | None = None,
    ) -> None:
        self.token, self.receive_id, self.url = token, receive_id, url
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.clock = clock or SystemClock()
        self._session: aiohttp.ClientSession | None = None

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(
        self, message: str, receive_id: str | None = None, random16: bytes | None = None
    ) -> str:
        # a lone surrogate becomes bytes that are not UTF-8 (the fuzz suite sends those inside
        # a valid ciphertext); any other text encodes as plain UTF-8
        msg = message.encode("utf-8", "surrogatepass")
        rid = (self.receive_id if receive_id is None else receive_id).encode()
        buffer = (random16 or os.urandom(16)) + struct.pack("!I", len(msg)) + msg + rid
        padder = padding.PKCS7(256).padder()  # 32-byte blocks, as WeCom pads
        padded = padder.update(buffer) + padder.finalize()
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> tuple[str, str]:
        """(message, receive_id) — used to check this fake against the published sample."""
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
        unpadder = padding.PKCS7(256).unpadder()
        buffer = unpadder.update(padded) + unpadder.finalize()
        size = struct.unpack("!I", buffer[16:20])[0]
        return buffer[20 : 20 + size].decode(), buffer[20 + size :].decode()

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return hashlib.sha1(
            "".join(sorted((self.token, timestamp, nonce, encrypted))).encode()
        ).hexdigest()

    def _session_(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _query(
        self, encrypted: str, timestamp: int | None, signature: str | None
    ) -> dict[str, str]:
        ts = str(int(self.clock.now().timestamp()) if timestamp is None else timestamp)
        nonce = str(secrets.randbelow(10**9))
        return {
            "msg_signature": signature or self.sign(ts, nonce, encrypted),
            "timestamp": ts,
            "nonce": nonce,
        }

    async def verify_url(
        self, echo_plain: str, *, timestamp: int | None = None, signature: str | None = None
    ) -> tuple[int, bytes]:
        echostr = self.encrypt(echo_plain)
        params = {**self._query(echostr, timestamp, signature), "echostr": echostr}
        async with self._session_().get(self.url, params=params) as resp:
            return resp.status, await resp.read()

    async def post(
        self,
        plain_xml: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        receive_id: str | None = None,
        body: bytes | None = None,
    ) -> tuple[int, bytes]:
        encrypted = self.encrypt(plain_xml, receive_id=receive_id)
        envelope = (
            f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
        )
        data = envelope.encode() if body is None else body
        async with self._session_().post(
            self.url, params=self._query(encrypted, timestamp, signature), data=data
        ) as resp:
            return resp.status, await resp.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def message_xml(corp_id: str, from_user: str, created: int, msg_type: str, **fields: str) -> str:
    """A decrypted callback message as WeCom builds it (values escaped, AgentID last)."""
    items = {
        "ToUserName": corp_id,
        "FromUserName": from_user,
        "CreateTime": str(created),
        "MsgType": msg_type,
    }
    items.update(fields, AgentID="1000002")
    return (
        "<xml>"
        + "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in items.items())
        + "</xml>"
    )


def text_xml(
    from_user: str, content: str, msg_id: str, created: int, corp_id: str = "wwfakecorp"
) -> str:
    return message_xml(corp_id, from_user, created, "text", Content=content, MsgId=msg_id)


def card_event_xml(
    from_user: str,
    event_key: str,
    task_id: str,
    response_code: str,
    created: int,
    corp_id: str = "wwfakecorp",
) -> str:
    return message_xml(
        corp_id,
        from_user,
        created,
        "event",
        Event="template_card_event",
        EventKey=event_key,
        TaskId=task_id,
        CardType="button_interaction",
        ResponseCode=response_code,
    )
