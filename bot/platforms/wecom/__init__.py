"""WeCom (企业微信) self-built app: callback crypto + XML events, app messages, group robot.

Protocol facts are in docs/platforms.md sections a–c. The callback crypto is ours (no SDK):
SHA-1 signature over the sorted strings, AES-256-CBC with PKCS#7 padding to 32-byte blocks.

This package: `protocol` (limits, settings, extras), `crypto` (signature, AES, XML),
`callbacks`, `client` (app API, media upload, token, group robot), `media`, `bodies`.
"""

from __future__ import annotations

from bot.platforms.base import HttpClient
from bot.platforms.tokens import TokenCache, TokenStore
from bot.platforms.wecom.bodies import app_body, button_card, clip, webhook_body, wecom_result
from bot.platforms.wecom.callbacks import WeComCallbacks
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.crypto import WeComCrypto, aes_key_from, parse_xml
from bot.platforms.wecom.media import MediaCache, inline_picture, picture_problem
from bot.platforms.wecom.protocol import MEDIA_MIN_BYTES, WeComExtras, WeComSettings
from core.clock import Clock, SystemClock
from core.messages import Platform

__all__ = [
    "MEDIA_MIN_BYTES",
    "MediaCache",
    "WeComAdapter",
    "WeComCrypto",
    "WeComExtras",
    "WeComSettings",
    "aes_key_from",
    "app_body",
    "button_card",
    "clip",
    "inline_picture",
    "parse_xml",
    "picture_problem",
    "webhook_body",
    "wecom_result",
]


class WeComAdapter(WeComCallbacks, WeComClient):
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
