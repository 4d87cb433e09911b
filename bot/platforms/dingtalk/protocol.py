"""DingTalk protocol facts: settings, event extras, signatures and the session-webhook check."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote_plus

import yarl
from pydantic import Field

from bot.platforms.base import (
    EventExtras,
    HttpClient,
    PlatformSettings,
)
from bot.platforms.longconn import MAX_IN_HAND
from bot.platforms.tokens import TokenCache
from core.clock import Clock
from core.messages import Destination, Platform

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
DEFAULT_OAPI_BASE = "https://oapi.dingtalk.com"
SESSION_WEBHOOK_PATH = "/robot/sendBySession"
# a custom robot's address: <oapi_base>/robot/send?access_token=… (docs/platforms.md d.)
ROBOT_PATH, ROBOT_CREDENTIAL = "/robot/send", "access_token"
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

    @staticmethod
    def conversation(session_webhook: str, expires_ms: int) -> dict[str, Any]:
        """`DingTalkExtras(session_webhook=…, session_webhook_expires_ms=…).dump()` for values
        the caller has already checked (a vetted session webhook, an int), without building
        the model: once per robot message, it was ~2 us of a Stream frame's ~46 us intake."""
        return {
            **_DEFAULT_EXTRAS,
            "session_webhook": session_webhook,
            "session_webhook_expires_ms": expires_ms,
        }


_DEFAULT_EXTRAS = DingTalkExtras().dump()


class DingTalkSettings(PlatformSettings):
    label = "钉钉机器人"
    app_key: str = ""
    app_secret: str = Field("", repr=False)
    robot_code: str = ""
    corp_id: str = ""  # when set, callbacks must name this corp as chatbotCorpId and senderCorpId
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = DEFAULT_OAPI_BASE  # robot and session webhooks must live here
    max_body_bytes: int = 64 * 1024
    timestamp_window_s: int = 3600
    http_timeout_s: float = 10.0
    # "http": DingTalk posts to /dingtalk/callback (needs a public HTTPS URL); "stream": we
    # connect out to DingTalk's Stream gateway (bot/platforms/dingtalk/stream.py)
    mode: Literal["http", "stream"] = "http"
    stream_backoff_base_s: float = Field(1.0, gt=0)  # reconnect delay doubles from here…
    stream_backoff_cap_s: float = Field(60.0, gt=0)  # …up to here
    stream_heartbeat_s: float = Field(60.0, gt=0)  # WebSocket ping; no pong → reconnect
    stream_max_inflight: int = Field(MAX_IN_HAND, ge=1)  # frames read, not yet acked
    # An interactive card template (卡片平台) whose buttons call back; empty → invitation
    # buttons open signed H5 links. Its variables: docs/longconn.md "Cards". In HTTP mode the
    # callbacks come to <public_base_url>/dingtalk/card/callback, registered under this key.
    card_template_id: str = ""
    card_callback_route_key: str = Field("lianjian", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # HTTP mode: a click's card update rides back in the callback's answer when it is ready
    # this soon; otherwise it goes out by PUT /v1.0/card/instances
    card_answer_wait_s: float = Field(2.0, gt=0, lt=5)

    @classmethod
    def problems(cls, values: dict[str, Any]) -> list[str]:
        # both modes sign in with AppKey and AppSecret (HTTP callbacks are verified with the
        # secret) and send as the robot (docs/platforms.md "Stream mode")
        return cls.missing(values, ("app_key", "app_secret", "robot_code"))


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


class DingTalkBase:
    """What the callback and sending halves of the adapter share (set in DingTalkAdapter)."""

    settings: DingTalkSettings
    ledger: SignLedger | None
    card_callback_path: str
    _clock: Clock
    _http: HttpClient
    _tokens: TokenCache
    _card_url: str
    _card_key: bytes
    _api_secret: str
    _registered: bool
    _register_lock: asyncio.Lock
    _card_slots: dict[str, CardSlot]

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)
