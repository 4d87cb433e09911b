"""DingTalk (钉钉) enterprise internal robot in HTTP mode: signed JSON callbacks, replies via the
session webhook, group pushes via the signed custom-robot webhook, direct messages via OpenAPI.

Protocol facts are in docs/platforms.md sections d and e. ActionCard buttons only open URLs, so
card buttons without a URL are dropped there; the signed H5 link is the way to answer. With an
interactive card template (`card_template_id`) buttons call back: over Stream in Stream mode,
and in HTTP mode to /dingtalk/card/callback, registered under `card_callback_route_key`. No
source we found says how DingTalk signs an HTTP card callback, so each button's action carries
our own signature (HMAC over card, recipient and action), checked before anything is stored.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote_plus

import yarl
from aiohttp import web
from pydantic import BaseModel, Field

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
    inbound_json,
    read_limited_body,
    titled,
    truncate_utf8,
)
from bot.platforms.tokens import TokenCache, TokenStore
from core.clock import Clock, SystemClock
from core.messages import Button, Card, Destination, Event, OutMessage, Platform

log = logging.getLogger(__name__)

# DingTalk markdown needs a blank line to break a line.
NEWLINE = "\n\n"
# No official size limit was found; a client library maps "message too long, exceed 20000 bytes".
MAX_BYTES = 20000
THROTTLED = {"130101", "410100"}  # robot throttled for 10 minutes after 20 messages a minute
THROTTLE_RETRY_S = 600.0
ROBOT_GONE = {"310000", "300001"}  # security check failed / token does not exist
OPENAPI_THROTTLE_RETRY_S = 60.0
TOKEN_FAILURE_RETRY_S = 60.0
MAX_CARD_BUTTONS = 5  # the largest OpenAPI action-card template (sampleActionCard5)
SESSION_WEBHOOK_PATH = "/robot/sendBySession"
_PLAIN_SESSION = re.compile(r"[A-Za-z0-9._~-]+")  # a session value needing no decoding
CARD_ACTION_PARAM = "action"  # the interactive card button's callback parameter we set
CARD_CALLBACK_PATH = "/dingtalk/card/callback"  # HTTP mode: registered callback URL's path
CARD_SIG_SEPARATOR = "."  # HTTP mode: action value = "<key>.<signature>" (keys have no dot)
CARD_SLOT_MAX_AGE_S = 10.0  # waiting card answers older than this are forgotten


class SignLedger(Protocol):
    """Durable memory of used (timestamp, sign) pairs (bot.replays.SignatureLedger)."""

    async def claim(self, key: str, body_sha256: str, keep_until: dt.datetime) -> bool: ...


class DingTalkExtras(EventExtras):
    """What a DingTalk robot message carries besides the neutral event."""

    adapter: Literal[Platform.DINGTALK] = Platform.DINGTALK
    session_webhook: str = ""  # answers this conversation without a token: a credential
    session_webhook_expires_ms: int = 0
    out_track_id: str = ""  # the clicked interactive card (updated by this id)

    def card_ref(self) -> str:
        return self.out_track_id

    def reply_to(self) -> Destination | None:
        if not self.session_webhook:
            return None  # replies go to the officer through the OpenAPI
        return Destination(kind="chat", platform=Platform.DINGTALK, address=self.session_webhook)


class DingTalkSettings(BaseModel):
    app_key: str
    app_secret: str = Field(repr=False)
    robot_code: str
    corp_id: str = ""  # when set, callbacks must name this corp as chatbotCorpId and senderCorpId
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"  # robot and session webhooks must live here
    max_body_bytes: int = 64 * 1024
    timestamp_window_s: int = 3600
    http_timeout_s: float = 10.0
    # "http": DingTalk posts to /dingtalk/callback (needs a public HTTPS URL); "stream": we
    # connect out to DingTalk's Stream gateway (bot/platforms/dingtalk_stream.py)
    mode: Literal["http", "stream"] = "http"
    stream_backoff_base_s: float = Field(1.0, gt=0)  # reconnect delay doubles from here…
    stream_backoff_cap_s: float = Field(60.0, gt=0)  # …up to here
    stream_heartbeat_s: float = Field(60.0, gt=0)  # WebSocket ping; no pong → reconnect
    stream_max_inflight: int = Field(100, ge=1)  # frames being stored at once
    # An interactive card template (卡片平台) whose buttons call back; empty → invitation
    # buttons open signed H5 links. Its variables: docs/longconn.md "Cards". In HTTP mode the
    # callbacks come to <public_base_url>/dingtalk/card/callback, registered under this key.
    card_template_id: str = ""
    card_callback_route_key: str = Field("lianjian", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # HTTP mode: a click's card update rides back in the callback's answer when it is ready
    # this soon; otherwise it goes out by PUT /v1.0/card/instances
    card_answer_wait_s: float = Field(2.0, gt=0, lt=5)


def hmac_b64(secret: str, timestamp_ms: str) -> str:
    """Base64(HMAC-SHA256(secret, timestamp + "\\n" + secret)) — both callback and webhook sign."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def derived_key(app_secret: str, purpose: str) -> bytes:
    """A key of its own for one purpose, derived from the app secret."""
    return hmac.new(app_secret.encode(), f"lianjian {purpose}".encode(), hashlib.sha256).digest()


def card_signature(key: bytes, out_track_id: str, user_id: str, action: str) -> str:
    """Binds an action to one card instance and its one recipient (128 bits, URL-safe)."""
    mac = hmac.new(key, f"{out_track_id}\n{user_id}\n{action}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


@dataclass
class CardSlot:
    """An HTTP card callback waiting for its card update (the answer to the click)."""

    answer: asyncio.Future[dict[str, Any]]
    out_track_id: str  # the clicked card
    opened: float  # loop time


def signed_webhook_url(url: str, secret: str, now_ms: int) -> yarl.URL:
    """Custom-robot 加签: append timestamp and the URL-encoded sign."""
    sign = quote_plus(hmac_b64(secret, str(now_ms)))
    joiner = "&" if "?" in url else "?"
    # encoded=True: the sign is already percent-encoded and must not be encoded twice
    return yarl.URL(f"{url}{joiner}timestamp={now_ms}&sign={sign}", encoded=True)


class DingTalkAdapter:
    name = Platform.DINGTALK
    buttons_call_back = False  # robot action cards only open URLs

    def __init__(
        self,
        settings: DingTalkSettings,
        clock: Clock | None = None,
        ledger: SignLedger | None = None,
        tokens: TokenStore | None = None,
        public_base_url: str = "",
    ) -> None:
        """`tokens` shares the access token with other processes (bot.token_store)."""
        self.settings = settings
        self._clock = clock or SystemClock()
        self._http = HttpClient(settings.http_timeout_s)
        self._tokens = TokenCache(
            self._fetch_token, self._clock, store=tokens, key=f"dingtalk:{settings.app_key}"
        )
        self.ledger = ledger  # HTTP callbacks are refused without one (bot.server sets it)
        http_mode = settings.mode == "http"
        # Stream mode has no inbound HTTP route: an empty path registers none
        self.callback_path = "/dingtalk/callback" if http_mode else ""
        self._card_url = ""  # HTTP mode: where DingTalk posts card clicks
        if http_mode and settings.card_template_id and public_base_url:
            self._card_url = public_base_url.rstrip("/") + CARD_CALLBACK_PATH
        self.card_callback_path = CARD_CALLBACK_PATH if self._card_url else ""
        self._card_key = derived_key(settings.app_secret, "card action")
        self._api_secret = base64.urlsafe_b64encode(
            derived_key(settings.app_secret, "card callback apiSecret")[:24]
        ).decode()
        self._registered = False
        self._register_lock = asyncio.Lock()
        self._card_slots: dict[str, CardSlot] = {}

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

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
            extras=DingTalkExtras(
                session_webhook=self._session_webhook(data.get("sessionWebhook")),
                session_webhook_expires_ms=expires_ms,
            ).dump(),
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

    async def send(
        self, channel: Channel, msg: OutMessage, mention_user_ids: list[str] | None = None
    ) -> SendResult:
        if msg.kind == "card_update":
            if not (msg.card_ref and self._cards_call_back()):
                return SendResult(
                    False, code="unsupported", detail="action cards cannot be updated"
                )
            if self._answer_click(msg):
                return SendResult(True)
            return await deliver(channel, self._update_interactive(msg))
        if channel.kind == "user":
            return await deliver(channel, self._send_oto(channel.address, msg))
        return await deliver(channel, self._send_webhook(channel, msg, mention_user_ids or []))

    async def _send_webhook(
        self, channel: Channel, msg: OutMessage, mentions: list[str]
    ) -> SendResult:
        if not channel.address.startswith(self.settings.oapi_base.rstrip("/") + "/"):
            # a binding pointing elsewhere would hand message content to an unknown host
            return SendResult(
                False, permanent=True, code="bad_address", detail="webhook URL not under oapi_base"
            )
        url: str | yarl.URL = channel.address
        if channel.kind == "group_webhook" and channel.secret:
            url = signed_webhook_url(channel.address, channel.secret, self._now_ms())
        _, data = await self._http.request_json("POST", url, payload=robot_body(msg, mentions))
        return webhook_result(data)

    async def _send_oto(self, user_id: str, msg: OutMessage) -> SendResult:
        """Direct message through OpenAPI batchSend (the robot must be the app's robot); a card
        with callback buttons as an interactive card when a template is configured, falling
        back to the action card whose buttons open signed links."""
        if self._interactive(msg):
            result = await self._send_interactive(user_id, msg)
            if result.ok:
                return result
            log.warning(
                "interactive card to %s failed (%s %s); sending the link card",
                user_id,
                result.code,
                result.detail,
            )
        key, param = oto_template(msg)
        payload = {
            "robotCode": self.settings.robot_code,
            "userIds": [user_id],
            "msgKey": key,
            "msgParam": json.dumps(param, ensure_ascii=False),
        }
        status, data = await self._openapi("POST", "/v1.0/robot/oToMessages/batchSend", payload)
        return oto_result(status, data, user_id)

    def _cards_call_back(self) -> bool:
        """Card callbacks reach us with a template: over Stream, or in HTTP mode at our card
        callback URL (which needs the public base URL)."""
        if not self.settings.card_template_id:
            return False
        return self.settings.mode == "stream" or bool(self._card_url)

    def _answer_click(self, msg: OutMessage) -> bool:
        """Hand a card update to the HTTP card callback still waiting for it, if any."""
        for slot in self._card_slots.values():
            if slot.out_track_id == msg.card_ref and not slot.answer.done():
                slot.answer.set_result(card_update_data(msg))
                return True
        return False

    async def _register_card_callback(self) -> SendResult:
        """Register our card callback URL under the route key (once per process; forceUpdate
        so a moved URL replaces the old one)."""
        async with self._register_lock:
            if self._registered:
                return SendResult(True)
            payload = {
                "callbackRouteKey": self.settings.card_callback_route_key,
                "callbackUrl": self._card_url,
                "apiSecret": self._api_secret,
                "forceUpdate": True,
            }
            status, data = await self._openapi("POST", "/v1.0/card/callbacks/register", payload)
            result = card_result(status, data)
            self._registered = result.ok
            return result

    def _interactive(self, msg: OutMessage) -> bool:
        return (
            msg.kind == "card"
            and msg.card is not None
            and self._cards_call_back()
            and any(b.action_key for b in msg.card.buttons)
        )

    async def _send_interactive(self, user_id: str, msg: OutMessage) -> SendResult:
        assert msg.card is not None
        track = out_track_id(msg.card.task_id, user_id)
        params = card_params(msg.card)
        callback: dict[str, str] = {"callbackType": "STREAM"}
        if self.settings.mode == "http":
            registered = await self._register_card_callback()
            if not registered.ok:
                return registered
            callback = {
                "callbackType": "HTTP",
                "callbackRouteKey": self.settings.card_callback_route_key,
            }
            for name in [n for n in params if n.endswith("_action")]:
                sig = card_signature(self._card_key, track, user_id, params[name])
                params[name] += CARD_SIG_SEPARATOR + sig
        payload = {
            "cardTemplateId": self.settings.card_template_id,
            "outTrackId": track,
            **callback,
            "cardData": {"cardParamMap": params},
            "openSpaceId": f"dtv1.card//IM_ROBOT.{user_id}",
            "imRobotOpenSpaceModel": {"supportForward": False},
            "imRobotOpenDeliverModel": {
                "spaceType": "IM_ROBOT",
                "robotCode": self.settings.robot_code,
            },
        }
        status, data = await self._openapi("POST", "/v1.0/card/instances/createAndDeliver", payload)
        return card_result(status, data)

    async def _update_interactive(self, msg: OutMessage) -> SendResult:
        """Show who answered on the clicked card; the template hides its buttons once
        `status` is set."""
        payload = {"outTrackId": msg.card_ref, **card_update_data(msg)}
        status, data = await self._openapi("PUT", "/v1.0/card/instances", payload)
        return card_result(status, data)

    async def _openapi(
        self, method: str, path: str, payload: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """An OpenAPI call with the access token; a rejected token is refetched once."""
        token = await self._tokens.get()
        status, data = await self._call_openapi(method, path, token, payload)
        if token_rejected(status, data):
            await self._tokens.invalidate(token)
            status, data = await self._call_openapi(method, path, await self._tokens.get(), payload)
        return status, data

    async def _call_openapi(
        self, method: str, path: str, token: str, payload: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        return await self._http.request_json(
            method,
            self.settings.api_base + path,
            payload=payload,
            headers={"x-acs-dingtalk-access-token": token},
        )

    async def _fetch_token(self) -> tuple[str, float]:
        payload = {"appKey": self.settings.app_key, "appSecret": self.settings.app_secret}
        status, data = await self._http.request_json(
            "POST", self.settings.api_base + "/v1.0/oauth2/accessToken", payload=payload
        )
        token = data.get("accessToken")
        if status != 200 or not isinstance(token, str) or not token:
            raise PlatformCallFailed(
                SendResult(
                    False,
                    TOKEN_FAILURE_RETRY_S,
                    code=str(data.get("code", f"http_{status}")),
                    detail=f"accessToken failed: {data.get('message', '')}",
                )
            )
        return token, float(data.get("expireIn", 7200))

    async def close(self) -> None:
        await self._http.close()


def is_session_webhook(address: str, oapi_base: str) -> bool:
    """Exactly <oapi_base>/robot/sendBySession?session=<one value>: same scheme, host and port,
    no credentials, no fragment, no other query parameter."""
    prefix = oapi_base.rstrip("/") + SESSION_WEBHOOK_PATH + "?session="
    if address.startswith(prefix) and _PLAIN_SESSION.fullmatch(address[len(prefix) :]):
        return True  # the canonical form DingTalk sends, without parsing (57 µs a message)
    return parsed_session_webhook(address, oapi_base)


def parsed_session_webhook(address: str, oapi_base: str) -> bool:
    """`is_session_webhook` by parsing both URLs (any spelling of the same URL)."""
    try:
        url, base = yarl.URL(address), yarl.URL(oapi_base)
    except ValueError:
        return False
    query = url.query
    return (
        url.absolute
        and url.scheme == base.scheme
        and url.host == base.host
        and url.port == base.port
        and url.user is None
        and url.password is None
        and not url.fragment
        and url.path == base.path.rstrip("/") + SESSION_WEBHOOK_PATH
        and list(query.keys()) == ["session"]
        and bool(query["session"])
    )


def _mention_suffix(mentions: list[str]) -> str:
    return "".join(f" @{u}" for u in mentions)


def robot_body(msg: OutMessage, mentions: list[str]) -> dict[str, Any]:
    """Custom-robot / session-webhook payload. Mentions
    need both `@id` in the text and at.atUserIds."""
    at = {"at": {"atUserIds": mentions}} if mentions else {}
    suffix = _mention_suffix(mentions)
    if msg.kind == "text":
        content = truncate_utf8(msg.body, MAX_BYTES - len(suffix.encode())) + suffix
        return {"msgtype": "text", "text": {"content": content}, **at}
    if msg.kind == "image":
        markdown = {"title": notification_title(msg), "text": picture_markdown(msg)}
        return {"msgtype": "markdown", "markdown": markdown, **at}
    card = msg.card if msg.kind == "card" else None
    if card is not None and url_buttons(card):
        buttons = url_buttons(card)
        action_card = {
            "title": card.title,
            "text": truncate_utf8(card_markdown(card, NEWLINE, with_links=False), MAX_BYTES),
            "btns": [{"title": b.label, "actionURL": b.url} for b in buttons],
            # two buttons (accept / decline) side by side; more stack vertically
            "btnOrientation": "1" if len(buttons) <= 2 else "0",
        }
        return {"msgtype": "actionCard", "actionCard": action_card, **at}
    text = card_markdown(card, NEWLINE) if card is not None else titled(msg, NEWLINE)
    markdown = {
        "title": notification_title(msg),
        "text": truncate_utf8(text, MAX_BYTES - len(suffix.encode())) + suffix,
    }
    return {"msgtype": "markdown", "markdown": markdown, **at}


def picture_markdown(msg: OutMessage) -> str:
    """DingTalk takes no picture bytes from a robot: its markdown shows one from a URL, here
    our signed, expiring image page. A copy without a link (a group's) says where to look."""
    title = msg.title or "图表"
    url = msg.image.url if msg.image is not None else ""
    if not url:
        return f"**{title}**{NEWLINE}（图表仅在私聊中显示）"
    return f"**{title}**{NEWLINE}![{title}]({url})"


def url_buttons(card: Card) -> list[Button]:
    """Buttons DingTalk can show: only those that open a URL (no callback reaches the bot)."""
    return [b for b in card.buttons if b.url]


def notification_title(msg: OutMessage) -> str:
    """markdown.title is what the conversation list and notification show."""
    if msg.card is not None and msg.card.title:
        return msg.card.title
    return msg.title or msg.body.strip().split("\n", 1)[0][:20] or "通知"


def oto_template(msg: OutMessage) -> tuple[str, dict[str, str]]:
    """OpenAPI message template (msgKey) and its parameters for a direct message.

    Parameter names follow DingTalk's published robot message templates as reproduced by
    several SDKs: sampleActionCard (one button), sampleActionCard6 (two side by side) and
    sampleActionCard3..5 (vertical, actionTitleN / actionURLN).
    """
    if msg.kind == "text":
        return "sampleText", {"content": truncate_utf8(msg.body, MAX_BYTES)}
    if msg.kind == "image":
        return "sampleMarkdown", {"title": notification_title(msg), "text": picture_markdown(msg)}
    card = msg.card if msg.kind == "card" else None
    buttons = url_buttons(card) if card is not None else []
    if card is None or not buttons:
        text = card_markdown(card, NEWLINE) if card is not None else titled(msg, NEWLINE)
        return "sampleMarkdown", {
            "title": notification_title(msg),
            "text": truncate_utf8(text, MAX_BYTES),
        }
    shown, extra = buttons[:MAX_CARD_BUTTONS], buttons[MAX_CARD_BUTTONS:]
    text = card_markdown(card.model_copy(update={"buttons": extra}), NEWLINE)  # overflow as links
    param = {"title": card.title, "text": truncate_utf8(text, MAX_BYTES)}
    if len(shown) == 1:
        return "sampleActionCard", {
            **param,
            "singleTitle": shown[0].label,
            "singleURL": shown[0].url,
        }
    if len(shown) == 2:
        for i, b in enumerate(shown, 1):
            param.update({f"buttonTitle{i}": b.label, f"buttonUrl{i}": b.url})
        return "sampleActionCard6", param
    for i, b in enumerate(shown, 1):
        param.update({f"actionTitle{i}": b.label, f"actionURL{i}": b.url})
    return f"sampleActionCard{len(shown)}", param


def out_track_id(task_id: str, user_id: str) -> str:
    """One card instance per card and recipient (DingTalk updates it by this id)."""
    return f"{task_id}.{user_id}"[:128]


def card_params(card: Card) -> dict[str, str]:
    """The template's variables (all strings): title, content (markdown), status (empty until
    answered), and per callback button N (1..3) buttonN_text and buttonN_action (the key the
    button sends back as its `action` parameter)."""
    params = {
        "title": card.title,
        "content": card_markdown(card, NEWLINE, with_links=False),
        "status": "",
    }
    for n, button in enumerate([b for b in card.buttons if b.action_key][:3], 1):
        params[f"button{n}_text"] = button.label
        params[f"button{n}_action"] = button.action_key
    return params


def card_update_data(msg: OutMessage) -> dict[str, Any]:
    """The card data that shows who answered (an update by the OpenAPI, or the answer to an
    HTTP card callback): only `status`, the other variables kept."""
    answered = (msg.card.answered if msg.card else "") or msg.body
    return {
        "cardData": {"cardParamMap": {"status": answered}},
        "cardUpdateOptions": {"updateCardDataByKey": True},
    }


def card_result(status: int, data: dict[str, Any]) -> SendResult:
    if status == 200 and data.get("success", True) is not False:
        return SendResult(True)
    return oto_result(status, data, "")


def webhook_result(data: dict[str, Any]) -> SendResult:
    code, detail = str(data.get("errcode")), str(data.get("errmsg", ""))
    if code == "0":
        return SendResult(True)
    if code in THROTTLED:
        return SendResult(False, THROTTLE_RETRY_S, code=code, detail=detail)
    if code in ROBOT_GONE:
        return SendResult(False, permanent=True, code=code, detail=detail)
    return SendResult(False, code=code, detail=detail)


def token_rejected(status: int, data: dict[str, Any]) -> bool:
    # Assumption from SDK error handling: a bad token answers 401 / code InvalidAuthentication.
    return status == 401 or data.get("code") == "InvalidAuthentication"


def oto_result(status: int, data: dict[str, Any], user_id: str) -> SendResult:
    code, detail = str(data.get("code", "")), str(data.get("message", ""))
    if status == 200:
        if user_id in (data.get("flowControlledStaffIdList") or []):
            return SendResult(
                False,
                OPENAPI_THROTTLE_RETRY_S,
                code="flow_controlled",
                detail="user is flow controlled",
            )
        if user_id in (data.get("invalidStaffIdList") or []):
            return SendResult(False, code="invalid_staff", detail="userid unknown to DingTalk")
        return SendResult(True)
    if status == 429 or "throttl" in code.lower():
        return SendResult(False, OPENAPI_THROTTLE_RETRY_S, code=code or "http_429", detail=detail)
    if status >= 500:
        return SendResult(False, TRANSIENT_RETRY_S, code=code or f"http_{status}", detail=detail)
    return SendResult(False, code=code or f"http_{status}", detail=detail)
