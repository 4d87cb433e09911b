"""WeCom protocol facts: limits and error codes, settings, card-click extras."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bot.platforms.base import (
    EventExtras,
    HttpClient,
    PlatformSettings,
)
from bot.platforms.tokens import TokenCache
from bot.platforms.wecom.crypto import (
    WeComCrypto,
    aes_key_problem,
)
from core.clock import Clock
from core.messages import Platform

if TYPE_CHECKING:
    from bot.platforms.wecom.media import MediaCache  # imports this module's constants


DEFAULT_BASE = "https://qyapi.weixin.qq.com"
# a group robot's address: <webhook_base>/cgi-bin/webhook/send?key=… (docs/platforms.md a.)
ROBOT_PATH, ROBOT_CREDENTIAL = "/cgi-bin/webhook/send", "key"
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


class WeComSettings(PlatformSettings):
    label = "企业微信自建应用"
    corp_id: str = ""
    agent_id: int = Field(0, examples=[1000002])
    # credentials: kept out of repr() so a logged settings object leaks nothing
    secret: str = Field("", repr=False)
    token: str = Field("", repr=False)
    encoding_aes_key: str = Field("", repr=False)
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

    @classmethod
    def problems(cls, values: dict[str, Any]) -> list[str]:
        keys = ("corp_id", "agent_id", "secret", "token", "encoding_aes_key")
        problem = aes_key_problem(values.get("encoding_aes_key"))
        return cls.missing(values, keys) + ([problem] if problem else [])


class WeComBase:
    """What the callback and sending halves of the adapter share (set in WeComAdapter)."""

    settings: WeComSettings
    _clock: Clock
    _crypto: WeComCrypto
    _http: HttpClient
    _tokens: TokenCache
    _media: MediaCache
