"""What every platform adapter offers the rest of the bot, and the small helpers they share.

The server calls `verify_url` / `parse` / `ack` on the callback route; the sender calls `send`
with a `Channel` it has already resolved. Adapters never raise for platform errors on send:
they return a `SendResult` that tells the sender whether to retry, when, or to give up.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, Self

import aiohttp
import yarl
from aiohttp import web
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import from_json

from core.messages import Card, Destination, Event, OutMessage, Platform, encodable_text

log = logging.getLogger(__name__)

# How long to wait before retrying after a network failure or "system busy".
TRANSIENT_RETRY_S = 5.0
TRUNCATION_NOTE = "…（内容过长，已截断）"


def inbound_json(text: str | bytes) -> Any:
    """A platform's JSON (callback body, socket frame, decrypted message) with every lone
    surrogate ("\\ud800" is valid JSON) replaced by "?" and every NUL ("\\u0000") dropped, in
    keys and strings alike: such text cannot be encoded or stored, so it failed wherever it went
    next — a URL, the inbox (PostgreSQL refuses NUL), a reply. Raises
    ValueError (RecursionError included: brackets nested thousands deep) like json.loads.

    Clean text (nearly every frame) goes through pydantic-core's parser, a dependency already:
    it gives what json.loads gives (tests/test_frame_intake.py) in ~60 % of the time, which is
    a tenth of a long-connection frame's intake (docs/longconn.md). It refuses nesting deeper
    than ~200 levels with ValueError; no platform sends more than five."""
    try:
        if isinstance(text, str) and _clean(text):
            # nothing to replace: skip the walk over every key and string (it was more than
            # half the cost of a long-connection frame's parse)
            return from_json(text)
        return _encodable(json.loads(text))
    except RecursionError as exc:
        raise ValueError("JSON nested too deep") from exc


# What can put a lone surrogate or a NUL into parsed JSON text: their escapes (a high or low
# surrogate, also one of a valid pair, which the walk then leaves alone) and the characters
# themselves. A false alarm (an escaped backslash before "ud800") only costs the walk. Bytes
# always take the walk: json.loads decodes them with "surrogatepass". Three checks, not one
# alternation: each alone runs at C speed (one regex with all three took 17 us on a frame).
_UNCLEAN_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")


def _clean(text: str) -> bool:
    """Whether json.loads(text) has no lone surrogate or NUL in any key or string."""
    return "\x00" not in text and _UNCLEAN_ESCAPE.search(text) is None and _encodes(text)


def _encodes(text: str) -> bool:
    """No surrogate character in `text` (UTF-8 refuses exactly those). Encoding a frame's
    non-ASCII data text took ~0.3 us where searching it for one took ~1.2 us."""
    if text.isascii():  # known without reading the text
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return encodable_text(value)
    if isinstance(value, list):
        return [_encodable(v) for v in value]
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    return value


class CallbackRejected(Exception):
    """A callback that must not be processed; the server answers with `status`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason  # English, for logs; never echo secrets into it


@dataclass(frozen=True)
class Channel:
    """A concrete address on one platform, resolved by the sender."""

    platform: Platform
    kind: Literal["user", "group_webhook", "session_webhook"]
    address: str  # userid, webhook URL or session webhook URL (secret: never log in full)
    secret: str = ""  # DingTalk 加签 secret for group_webhook

    def redacted(self) -> str:
        """A label safe for logs: user ids are shown, webhook credentials are not."""
        if self.kind == "user":
            return f"{self.platform}:user:{self.address}"
        url = yarl.URL(self.address)
        return f"{self.platform}:{self.kind}:{url.host or '?'}{url.path}?***"

    def __repr__(self) -> str:  # keep secrets out of tracebacks and log records
        return f"Channel({self.redacted()})"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    retry_after: float | None = None  # rate limited: try again after this many seconds
    permanent: bool = False  # e.g. webhook invalid / robot removed: disable the binding
    code: str = ""  # platform errcode
    detail: str = ""
    response_code: str = ""  # WeCom interactive card response_code (to update it later)


# A card update that names no click (OutMessage.card_ref "") shows a card we sent as answered
# (core.consultation.opening.card_answered). Where the platform updates a card only in answer to
# its click, there is nothing to send: the officer was told in text, and a click on the card
# later gets the answer and updates it then.
CARD_NOT_UPDATABLE = SendResult(
    True, code="not_updatable", detail="this platform updates a card only in answer to its click"
)


def updates_sent_card(msg: OutMessage) -> bool:
    """A card update naming a card we sent (its Card.task_id), not a click's handle."""
    return msg.kind == "card_update" and not msg.card_ref and msg.card is not None


class PlatformSettings(BaseModel):
    """A platform's config section: a mistyped key is refused, not ignored, and a section
    begun names every key its mode still lacks at once (half-filled, it switched the simulator
    off and then failed to connect)."""

    model_config = ConfigDict(extra="forbid")
    label: ClassVar[str]  # the platform as `setup check` and the refusals name it

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any) -> Any:
        if not isinstance(data, dict) or set(data) - set(cls.model_fields):
            return data  # pydantic tells a mistyped key (or a section that is no table) first
        if problems := cls.problems(data):
            raise ValueError("；".join(problems))
        return data

    @classmethod
    def problems(cls, values: dict[str, Any]) -> list[str]:
        """What the section as written lacks for its mode, in Chinese."""
        raise NotImplementedError

    @classmethod
    def missing(cls, values: dict[str, Any], keys: tuple[str, ...], mode: str = "") -> list[str]:
        if lacking := [k for k in keys if not values.get(k)]:
            return [f"{cls.label}{mode}缺少 {'、'.join(lacking)}"]
        return []


class EventExtras(BaseModel):
    """An adapter's own typed additions to the neutral `Event`, stored as `Event.extras`.

    Each adapter subclasses it with its own `adapter` tag (see `bot.platforms.extras`); the
    dispatcher turns them into the neutral meaning handlers get, so no handler reads them.
    """

    model_config = ConfigDict(frozen=True)
    adapter: str = ""

    def reply_to(self) -> Destination | None:
        """Where an answer in this conversation goes, when the platform lets it go there."""
        return None

    def card_ref(self) -> str:
        """The platform's handle for updating the card whose button was clicked ("" if none)."""
        return ""

    def dump(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def of(cls, event: Event) -> Self:
        return cls.model_validate(event.extras)


class PlatformAdapter(Protocol):
    name: Platform
    callback_path: str
    buttons_call_back: bool  # False: card buttons can only open URLs (the sender adds signed links)

    async def verify_url(self, request: web.Request) -> web.Response: ...

    async def parse(self, request: web.Request) -> list[Event]: ...

    async def ack(self, events: list[Event], new: list[bool]) -> web.Response:
        """The HTTP answer once `events` are stored (`new`: not a duplicate, per event)."""
        ...

    async def send(
        self, channel: Channel, msg: OutMessage, mention_user_ids: list[str] | None = None
    ) -> SendResult: ...

    async def close(self) -> None: ...


class PlatformCallFailed(Exception):
    """An HTTP call to a platform that produced no usable answer; carries the SendResult."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.detail)
        self.result = result


async def deliver(channel: Channel, attempt: Awaitable[SendResult]) -> SendResult:
    """Await one send; a transport failure becomes its SendResult, and failures are logged."""
    try:
        result = await attempt
    except PlatformCallFailed as exc:
        result = exc.result
    if not result.ok:
        log.warning("send to %s failed: code=%s %s", channel.redacted(), result.code, result.detail)
    return result


async def read_limited_body(request: web.Request, max_bytes: int) -> bytes:
    """Read the body, refusing more than `max_bytes` whatever Content-Length claims."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise CallbackRejected(413, f"declared body of {declared} bytes exceeds {max_bytes}")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > max_bytes:
            raise CallbackRejected(413, f"body exceeds {max_bytes} bytes")
    return bytes(body)


def check_window(sent_s: float, now_s: float, window_s: float) -> None:
    """Reject callbacks whose timestamp is too far from now (replays, forged old requests)."""
    if abs(now_s - sent_s) > window_s:
        raise CallbackRejected(403, f"timestamp outside the {window_s:.0f}s window")


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut `text` to at most `max_bytes` UTF-8 bytes on a character boundary, with a note."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    room = max_bytes - len(TRUNCATION_NOTE.encode())
    # errors="ignore" drops the partial character a byte cut may leave at the end
    return raw[: max(room, 0)].decode(errors="ignore") + TRUNCATION_NOTE


def card_markdown(card: Card, newline: str = "\n", with_links: bool = True) -> str:
    """A card in the markdown subset both platforms render; buttons become links."""
    lines = [f"**{card.title}**"]
    if card.description:
        lines.append(card.description)
    lines.extend(f"> {f.name}：{f.value}" for f in card.fields)
    if card.answered:
        lines.append(card.answered)
    links = [f"[{b.label}]({b.url})" for b in card.buttons if b.url]
    if with_links and links:
        lines.append("  ".join(links))
    return newline.join(lines)


_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_LINE_MARK = re.compile(r"^(?:#{1,6}|>)\s*", re.MULTILINE)


def plain_text(markdown: str) -> str:
    """What a reader should see of our markdown where a platform shows text as typed (WeCom's
    card sub_title_text): links as their label, no **, backticks, heading or quote marks, no
    empty lines (a card has little room)."""
    text = _LINE_MARK.sub("", _LINK.sub(r"\1", markdown)).replace("**", "").replace("`", "")
    return "\n".join(line for line in text.splitlines() if line.strip())


def titled(msg: OutMessage, newline: str = "\n") -> str:
    """Markdown body with the title as a bold first line (platforms show no separate title),
    unless the body opens with it or with a bold heading of its own, which says the same in
    full (“LJ-…-001 结果被退回” over “**LJ-…-001 某公司：检查结果被退回**”): once is enough.
    The simulator decides the same way."""
    first = msg.body.split("\n", 1)[0]
    if msg.title and msg.title not in first and not first.startswith("**"):
        return f"**{msg.title}**{newline}{msg.body}"
    return msg.body


class HttpClient:
    """A lazily created aiohttp session and JSON calls that turn transport failures into
    `PlatformCallFailed` with a retryable SendResult."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def request_json(
        self,
        method: str,
        url: str | yarl.URL,
        *,
        params: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: aiohttp.MultipartWriter | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """HTTP status and the JSON object answered (to a JSON `payload`, or a multipart
        upload as `data`); raises PlatformCallFailed otherwise."""
        try:
            async with self.session().request(
                method, url, params=params, json=payload, data=data, headers=headers
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformCallFailed(
                SendResult(False, TRANSIENT_RETRY_S, code="network", detail=type(exc).__name__)
            ) from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise PlatformCallFailed(
                SendResult(
                    False,
                    TRANSIENT_RETRY_S,
                    code=f"http_{status}",
                    detail="answer is not a JSON object",
                )
            )
        return status, data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
