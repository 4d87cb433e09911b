"""WeCom (企业微信) self-built app: callback crypto + XML events, app messages, group robot.

Protocol facts are in docs/platforms.md sections a–c. The callback crypto is ours (no SDK):
SHA-1 signature over the sorted strings, AES-256-CBC with PKCS#7 padding to 32-byte blocks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from xml.etree.ElementTree import Element

import aiohttp
import defusedxml.ElementTree as SafeET
from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pydantic import BaseModel, Field, field_validator

from bot.platforms.base import (
    TRANSIENT_RETRY_S,
    CallbackRejected,
    Channel,
    EventExtras,
    HttpClient,
    PlatformCallFailed,
    SendResult,
    card_markdown,
    check_window,
    deliver,
    read_limited_body,
    titled,
    truncate_utf8,
)
from bot.platforms.tokens import TokenCache, TokenStore
from core.clock import Clock, SystemClock
from core.messages import Card, Event, Image, OutMessage, Platform

DEFAULT_BASE = "https://qyapi.weixin.qq.com"
TEXT_MAX_BYTES = 2048
WEBHOOK_MARKDOWN_MAX_BYTES = 4096
APP_MARKDOWN_MAX_BYTES = (
    2048  # the app API documents 2048 for text; copies say the same for markdown
)
TOKEN_REJECTED = {40014, 42001}  # invalid / expired access_token: refetch once, retry once
RATE_LIMITED = 45009
WEBHOOK_GONE = {93000, 93004, 93008}  # invalid URL, robot disabled, robot not in the group
SYSTEM_BUSY = -1
RATE_LIMIT_RETRY_S = 60.0  # a frequency block lasts about one limit window (one minute)
TOKEN_FAILURE_RETRY_S = 60.0
# Pictures: the robot takes JPG/PNG up to 2 MB inline (base64 + md5); the app uploads them as
# temporary media first (> 5 bytes; the media_id lasts 3 days, reused here for 2)
ROBOT_IMAGE_MAX_BYTES = 2 * 1024 * 1024
MEDIA_MIN_BYTES = 6
MEDIA_REUSE_S = 2 * 24 * 3600
CARD_MAX_BUTTONS = 6
CARD_MAX_FIELDS = 6
# Button style 1–4 per the template_card docs; which colour each number shows is our reading.
BUTTON_STYLE = {"primary": 1, "default": 2, "danger": 3}


class WeComExtras(EventExtras):
    """What a WeCom card click carries besides the neutral event."""

    adapter: Literal[Platform.WECOM] = Platform.WECOM
    task_id: str = ""  # the clicked card's task_id
    response_code: str = ""  # updates the clicked card once (update_template_card)

    def card_ref(self) -> str:
        return self.response_code


class WeComSettings(BaseModel):
    corp_id: str
    agent_id: int
    # credentials: kept out of repr() so a logged settings object leaks nothing
    secret: str = Field(repr=False)
    token: str = Field(repr=False)
    encoding_aes_key: str = Field(repr=False)
    api_base: str = DEFAULT_BASE  # 政务微信 deployments and the test fake use another host
    webhook_base: str = DEFAULT_BASE  # robot webhooks must live under this base
    max_body_bytes: int = 64 * 1024
    timestamp_window_s: int = 300
    http_timeout_s: float = 10.0
    # WeCom drops an app message identical to one sent to the same member within this many
    # seconds (enable_duplicate_check): a row re-sent after its sender died between the send
    # and recording it arrives once. Longer than the sender's lease (a re-send comes when it
    # runs out); 0 turns it off; WeCom's maximum is 4 hours.
    duplicate_check_s: int = Field(300, ge=0, le=14400)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: str) -> str:
        if len(value) != 43:
            raise ValueError("EncodingAESKey must be exactly 43 characters")
        aes_key_from(value)
        return value


def aes_key_from(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key: Base64 of the 43-character EncodingAESKey plus one '='."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("EncodingAESKey is not Base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


class WeComCrypto:
    """Verify and decrypt WeCom callbacks (加解密方案). `receive_id` is the CorpID for an app."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self._token = token
        self._key = aes_key_from(encoding_aes_key)
        self._receive_id = receive_id.encode()

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        joined = "".join(sorted([self._token, timestamp, nonce, encrypted]))
        return hashlib.sha1(joined.encode()).hexdigest()

    def check_signature(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = self.signature(timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise CallbackRejected(401, "msg_signature does not match")

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        """Encrypt for a passive reply: 16 random bytes, length, message, receiveid, padded to
        32-byte blocks (the pad byte is the pad length, 1..32)."""
        raw = message.encode()
        buffer = (random16 or os.urandom(16)) + struct.pack(">I", len(raw)) + raw + self._receive_id
        pad = 32 - len(buffer) % 32
        buffer += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).encryptor()
        return base64.b64encode(encryptor.update(buffer) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        """Plaintext message; raises CallbackRejected for any malformed or foreign buffer."""
        try:
            cipher_text = base64.b64decode(encrypted, validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text such as 中文
            raise CallbackRejected(400, "Encrypt is not Base64") from exc
        if not cipher_text or len(cipher_text) % 16:
            raise CallbackRejected(400, "ciphertext is not whole AES blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).decryptor()
        plain = decryptor.update(cipher_text) + decryptor.finalize()
        pad = plain[-1]
        # WeCom pads to 32-byte blocks, so the pad byte is 1..32 (not 1..16)
        if not 1 <= pad <= 32 or len(plain) < 20 + pad:
            raise CallbackRejected(400, "bad padding")
        content = plain[16:-pad]  # drop the 16 random bytes and the padding
        (length,) = struct.unpack(">I", content[:4])
        if 4 + length > len(content):
            raise CallbackRejected(400, "message length beyond the buffer")
        message, receive_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receive_id, self._receive_id):
            raise CallbackRejected(403, "receiveid does not match the CorpID")
        try:
            return message.decode()
        except UnicodeDecodeError as exc:
            raise CallbackRejected(400, "message is not UTF-8") from exc


def parse_xml(data: bytes) -> Element:
    """Parse untrusted XML with defusedxml (no entities, no external references)."""
    try:
        root: Element = SafeET.fromstring(data)
    except (SafeET.ParseError, ValueError) as exc:  # defusedxml's refusals are ValueErrors
        raise CallbackRejected(400, f"malformed XML: {type(exc).__name__}") from exc
    return root


def clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


class WeComAdapter:
    name = Platform.WECOM
    callback_path = "/wecom/callback"
    buttons_call_back = True  # button_interaction cards post template_card_event

    def __init__(
        self,
        settings: WeComSettings,
        clock: Clock | None = None,
        tokens: TokenStore | None = None,
    ) -> None:
        """`tokens` shares the access token with other processes (bot.token_store)."""
        self.settings = settings
        self._clock = clock or SystemClock()
        self._crypto = WeComCrypto(
            settings.token,
            settings.encoding_aes_key,
            settings.corp_id,
        )
        self._http = HttpClient(settings.http_timeout_s)
        self._tokens = TokenCache(
            self._fetch_token,
            self._clock,
            store=tokens,
            key=f"wecom:{settings.corp_id}:{settings.agent_id}",  # each app has its own token
        )
        self._media = MediaCache(self._clock)

    # ---- callbacks -------------------------------------------------------------------------

    def _authenticate(self, request: web.Request, encrypted: str) -> None:
        query = request.query
        signature, timestamp, nonce = (
            query.get(k, "") for k in ("msg_signature", "timestamp", "nonce")
        )
        if not (signature and timestamp and nonce):
            raise CallbackRejected(400, "missing msg_signature, timestamp or nonce")
        self._crypto.check_signature(signature, timestamp, nonce, encrypted)
        try:
            sent_s = int(timestamp)
        except ValueError as exc:
            raise CallbackRejected(400, "timestamp is not an integer") from exc
        check_window(sent_s, self._clock.now().timestamp(), self.settings.timestamp_window_s)

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

    # ---- sending ---------------------------------------------------------------------------

    async def send(
        self, channel: Channel, msg: OutMessage, mention_user_ids: list[str] | None = None
    ) -> SendResult:
        if channel.kind == "user":
            return await deliver(channel, self._send_app(channel.address, msg))
        if channel.kind == "group_webhook":
            return await deliver(
                channel, self._send_webhook(channel.address, msg, mention_user_ids or [])
            )
        return SendResult(False, code="unsupported_channel", detail=f"WeCom has no {channel.kind}")

    async def _send_app(self, userid: str, msg: OutMessage) -> SendResult:
        if msg.kind == "card_update":
            return await self._update_card(userid, msg)
        if msg.kind == "image":
            if (problem := picture_problem(msg.image, MEDIA_MIN_BYTES)) is not None:
                return problem
            assert msg.image is not None
            body = {"msgtype": "image", "image": {"media_id": await self._media_id(msg.image)}}
        else:
            body = app_body(msg)
        payload = {"touser": userid, "agentid": self.settings.agent_id, **body}
        if self.settings.duplicate_check_s:
            payload |= {
                "enable_duplicate_check": 1,
                "duplicate_check_interval": self.settings.duplicate_check_s,
            }
        try:
            data = await self._app_call("/cgi-bin/message/send", payload)
        except PlatformCallFailed as exc:
            if exc.result.code != "network" or not self.settings.duplicate_check_s:
                raise
            # WeCom may have taken the message before the connection failed (a timeout, a
            # reset): send it again at once, well inside the duplicate check's interval, so
            # WeCom drops a second copy; the sender's later retry might come after it
            data = await self._app_call("/cgi-bin/message/send", payload)
        result = wecom_result(data)
        if result.ok and data.get("response_code"):
            return SendResult(True, response_code=str(data["response_code"]))
        return result

    async def _update_card(self, userid: str, msg: OutMessage) -> SendResult:
        """Grey the clicked card's buttons and show who answered (update_template_card API)."""
        replace_name = (msg.card.answered if msg.card else "") or msg.body
        if not (msg.card_ref and replace_name):
            return SendResult(
                False, code="invalid_message", detail="card_update needs card_ref and text"
            )
        payload = {
            "userids": [userid],
            "agentid": self.settings.agent_id,
            "response_code": msg.card_ref,
            "button": {"replace_name": replace_name},
        }
        return wecom_result(await self._app_call("/cgi-bin/message/update_template_card", payload))

    async def _media_id(self, image: Image) -> str:
        """The picture as temporary media (上传临时素材, type=image), uploaded once per content
        while its media_id is fresh: every leader of a department gets the same chart."""
        return await self._media.media_id(image, self._fresh_media_id)

    async def _fresh_media_id(self, image: Image) -> str:
        token = await self._tokens.get()
        data = await self._upload(token, image)
        if data.get("errcode") in TOKEN_REJECTED:
            await self._tokens.invalidate(token)
            data = await self._upload(await self._tokens.get(), image)
        media_id = data.get("media_id")
        if data.get("errcode", 0) != 0 or not isinstance(media_id, str) or not media_id:
            failed = wecom_result(data) if data.get("errcode") else SendResult(False)
            raise PlatformCallFailed(
                SendResult(
                    False,
                    failed.retry_after,
                    code=failed.code or "upload",
                    detail=f"media/upload failed: {failed.detail}",
                )
            )
        return media_id

    async def _upload(self, token: str, image: Image) -> dict[str, Any]:
        """multipart/form-data, one part named "media" with filename, filelength and its
        content type (docs/platforms.md c)."""
        with aiohttp.MultipartWriter("form-data") as form:
            part = form.append(image.data, {"Content-Type": image.mime})
            suffix = "png" if image.mime == "image/png" else "jpg"
            part.set_content_disposition(
                "form-data",
                name="media",
                filename=f"chart-{image.sha256[:12]}.{suffix}",
                filelength=str(len(image.data)),
            )
        _, data = await self._http.request_json(
            "POST",
            self.settings.api_base + "/cgi-bin/media/upload",
            params={"access_token": token, "type": "image"},
            data=form,
        )
        return data

    async def _app_call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = await self._tokens.get()
        data = await self._post_api(path, token, payload)
        if data.get("errcode") in TOKEN_REJECTED:
            # WeCom may revoke a token early: drop it, fetch once, retry once
            await self._tokens.invalidate(token)
            data = await self._post_api(path, await self._tokens.get(), payload)
        return data

    async def _post_api(self, path: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.settings.api_base + path
        _, data = await self._http.request_json(
            "POST", url, params={"access_token": token}, payload=payload
        )
        return data

    async def _fetch_token(self) -> tuple[str, float]:
        params = {"corpid": self.settings.corp_id, "corpsecret": self.settings.secret}
        _, data = await self._http.request_json(
            "GET", self.settings.api_base + "/cgi-bin/gettoken", params=params
        )
        token = data.get("access_token")
        if data.get("errcode", 0) != 0 or not isinstance(token, str) or not token:
            raise PlatformCallFailed(
                SendResult(
                    False,
                    TOKEN_FAILURE_RETRY_S,
                    code=str(data.get("errcode", "")),
                    detail=f"gettoken failed: {data.get('errmsg', '')}",
                )
            )
        return token, float(data.get("expires_in", 7200))

    async def _send_webhook(self, url: str, msg: OutMessage, mentions: list[str]) -> SendResult:
        if not url.startswith(self.settings.webhook_base.rstrip("/") + "/"):
            # a binding pointing elsewhere would hand message content to an unknown host
            return SendResult(
                False,
                permanent=True,
                code="bad_address",
                detail="webhook URL not under webhook_base",
            )
        if msg.kind == "card_update":
            return SendResult(False, code="unsupported", detail="webhook cards cannot be updated")
        if msg.kind == "image" and (
            problem := picture_problem(msg.image, 1, ROBOT_IMAGE_MAX_BYTES)
        ):
            return problem
        _, data = await self._http.request_json("POST", url, payload=webhook_body(msg, mentions))
        return wecom_result(data)

    async def close(self) -> None:
        await self._http.close()


def app_body(msg: OutMessage) -> dict[str, Any]:
    """The msgtype part of an app message (message/send)."""
    if msg.kind == "text":
        return {"msgtype": "text", "text": {"content": truncate_utf8(msg.body, TEXT_MAX_BYTES)}}
    card = msg.card
    if msg.kind == "card" and card is not None:
        if card.task_id and any(b.action_key for b in card.buttons):
            return {"msgtype": "template_card", "template_card": button_card(card)}
        content = card_markdown(card)
    else:
        content = titled(msg)
    return {
        "msgtype": "markdown",
        "markdown": {"content": truncate_utf8(content, APP_MARKDOWN_MAX_BYTES)},
    }


def button_card(card: Card) -> dict[str, Any]:
    """An interactive button_interaction template card; clicks come back as card events."""
    buttons: list[dict[str, Any]] = []
    for b in card.buttons[:CARD_MAX_BUTTONS]:
        button: dict[str, Any] = {"text": b.label, "style": BUTTON_STYLE[b.style]}
        if b.action_key:
            button["key"] = b.action_key
        elif b.url:
            button.update(type=1, url=b.url)  # type 1 opens a URL instead of calling back
        else:
            continue
        buttons.append(button)
    shown, rest = card.fields[:CARD_MAX_FIELDS], card.fields[CARD_MAX_FIELDS:]
    sub_title = "\n".join([card.description, *(f"{f.name}：{f.value}" for f in rest)]).strip()
    template: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": clip(card.title, 26)},
        "task_id": card.task_id,
        "button_list": buttons,
    }
    if sub_title:
        template["sub_title_text"] = clip(sub_title, 112)
    if shown:
        template["horizontal_content_list"] = [
            {"keyname": clip(f.name, 5), "value": f.value} for f in shown
        ]
    return template


class MediaCache:
    """media_ids of uploaded pictures by content hash, reused while fresh (temporary media
    lasts 3 days; reused here for 2). One upload at a time: the leaders served together share
    one. Used by the app (media/upload) and the AI bot's socket (aibot_upload_media_*)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._ids: dict[str, tuple[str, float]] = {}  # picture sha256 -> (media_id, until)
        self._lock = asyncio.Lock()

    async def media_id(self, image: Image, upload: Callable[[Image], Awaitable[str]]) -> str:
        async with self._lock:
            now = self._clock.now().timestamp()
            cached = self._ids.get(image.sha256)
            if cached is not None and cached[1] > now:
                return cached[0]
            media_id = await upload(image)
            self._ids = {k: v for k, v in self._ids.items() if v[1] > now}
            self._ids[image.sha256] = (media_id, now + MEDIA_REUSE_S)
            return media_id


def inline_picture(raw: bytes) -> dict[str, str]:
    """A picture carried in the message itself: Base64 with the MD5 of the raw bytes (the group
    robot's image message, the AI bot's stream msg_item)."""
    return {
        "base64": base64.b64encode(raw).decode(),
        "md5": hashlib.md5(raw, usedforsecurity=False).hexdigest(),
    }


def picture_problem(
    image: Image | None, min_bytes: int, max_bytes: int | None = None
) -> SendResult | None:
    """Why this picture cannot go (never permanent: a robot must not be disabled for it)."""
    if image is None or len(image.data) < min_bytes:
        return SendResult(False, code="no_picture", detail="the picture's bytes are missing")
    if max_bytes is not None and len(image.data) > max_bytes:
        return SendResult(False, code="too_large", detail=f"picture over {max_bytes} bytes")
    return None


def webhook_body(msg: OutMessage, mentions: list[str]) -> dict[str, Any]:
    """Group robot payload. Webhook cards cannot call back, so cards become markdown + links;
    a picture goes inline as Base64 with the MD5 of its bytes (no mentions on images)."""
    if msg.kind == "image" and msg.image is not None:
        return {"msgtype": "image", "image": inline_picture(msg.image.data)}
    if msg.kind == "text":
        text: dict[str, Any] = {"content": truncate_utf8(msg.body, TEXT_MAX_BYTES)}
        if mentions:
            text["mentioned_list"] = mentions
        return {"msgtype": "text", "text": text}
    content = card_markdown(msg.card) if msg.kind == "card" and msg.card else titled(msg)
    # mentions go after the truncation so a long message still notifies the people in it
    suffix = ("\n" + " ".join(f"<@{u}>" for u in mentions)) if mentions else ""
    content = truncate_utf8(content, WEBHOOK_MARKDOWN_MAX_BYTES - len(suffix.encode())) + suffix
    return {"msgtype": "markdown", "markdown": {"content": content}}


def wecom_result(data: dict[str, Any]) -> SendResult:
    code = data.get("errcode")
    detail = str(data.get("errmsg", ""))
    if code == 0:
        return SendResult(True)
    if code == RATE_LIMITED:
        return SendResult(False, RATE_LIMIT_RETRY_S, code=str(code), detail=detail)
    if code in WEBHOOK_GONE:
        return SendResult(False, permanent=True, code=str(code), detail=detail)
    if code == SYSTEM_BUSY:
        return SendResult(False, TRANSIENT_RETRY_S, code=str(code), detail=detail)
    return SendResult(False, code=str(code), detail=detail)
