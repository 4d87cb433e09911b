"""Signed links for H5 pages: who may do what to which object, until when.

A token is `base64url(payload) + "." + base64url(HMAC-SHA256(secret, domain ‖ payload))`,
where the payload is compact JSON holding the officer id, the object ("invitation:12"), the
action ("respond"), the expiry (unix seconds) and a random nonce (so two links issued in the
same second differ and a leaked link cannot be matched to another one).

Tokens are not stored, so they are not single-use by themselves. Where a second use matters the
action is idempotent in the core instead: an invitation can be answered once, a second answer is
refused by core.consultation — no token store is needed for that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from core.errors import PermissionDenied
from core.models import MAX_ROW_ID

# Bound into every MAC so a token can never be confused with another HMAC made with the same key.
_DOMAIN = b"lianjian-link-v1\x00"
_NONCE_BYTES = 12
_MAX_TOKEN_CHARS = 1024  # anything longer is not ours; refuse before decoding

EXPIRED = "链接已过期，请在聊天中重新打开。"
INVALID = "链接无效或被篡改。"
MISMATCH = "链接与操作不符。"


class LinkExpired(PermissionDenied):
    """A genuine link whose time ran out: its holder may be shown back what they posted."""


@dataclass(frozen=True)
class LinkClaims:
    officer_id: int
    obj: str  # e.g. "invitation:12"
    action: str  # e.g. "respond"
    expires_at: int  # unix seconds
    nonce: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload_b64: str) -> bytes:
    return hmac.new(secret, _DOMAIN + payload_b64.encode("ascii"), hashlib.sha256).digest()


def sign_link(secret: bytes, officer_id: int, obj: str, action: str, expires_at: int) -> str:
    """A token letting `officer_id` perform `action` on `obj` until `expires_at` (unix s)."""
    if len(secret) < 16:
        raise ValueError("link secret must be at least 16 bytes")
    claims = {
        "o": officer_id,
        "b": obj,
        "a": action,
        "e": int(expires_at),
        "n": _b64encode(secrets.token_bytes(_NONCE_BYTES)),
    }
    payload_b64 = _b64encode(
        json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    )
    return f"{payload_b64}.{_b64encode(_mac(secret, payload_b64))}"


def _claims_from(payload: bytes) -> LinkClaims:
    """Parse a payload whose MAC already matched; shape errors still mean an invalid link."""
    data = json.loads(payload.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("payload is not an object")
    officer_id, obj, action, expires_at, nonce = (data.get(k) for k in ("o", "b", "a", "e", "n"))
    if not (
        isinstance(officer_id, int)
        and isinstance(obj, str)
        and isinstance(action, str)
        and isinstance(expires_at, int)
        and isinstance(nonce, str)
    ):
        raise ValueError("payload fields have the wrong types")
    if not 0 < officer_id <= MAX_ROW_ID:  # a larger id overflows the database's integer
        raise ValueError("officer id out of range")
    return LinkClaims(officer_id, obj, action, expires_at, nonce)


def verify_link(
    secret: bytes, token: str, now: float, *, obj: str | None = None, action: str | None = None
) -> LinkClaims:
    """The claims of a genuine, unexpired token; PermissionDenied (Chinese message) otherwise.

    The MAC is checked first (constant time), so nothing from a forged payload is trusted or
    even parsed; then the expiry; then, when given, the expected object and action.
    """
    if not token or len(token) > _MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 1:
        raise PermissionDenied(INVALID)
    payload_b64, mac_b64 = token.split(".")
    try:
        given_mac = _b64decode(mac_b64)
    except (ValueError, binascii.Error):
        raise PermissionDenied(INVALID) from None
    if not hmac.compare_digest(given_mac, _mac(secret, payload_b64)):
        raise PermissionDenied(INVALID)
    try:
        claims = _claims_from(_b64decode(payload_b64))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise PermissionDenied(INVALID) from None
    if now >= claims.expires_at:
        raise LinkExpired(EXPIRED)
    if (obj is not None and claims.obj != obj) or (action is not None and claims.action != action):
        raise PermissionDenied(MISMATCH)
    return claims


def link_url(base_url: str, path: str, token: str) -> str:
    """Absolute URL of an H5 page carrying the token as `t`."""
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}?{urlencode({'t': token})}"


# ---------------------------------------------------------------- page references in messages

# Core renders messages when they are enqueued, long before anyone knows which officer's signed
# link each copy needs. A message therefore carries references, `[label](lianjian-page:ACTION/OBJ)`,
# and the sender turns each into a link signed for the officer it delivers to (bot.pages.links).
PAGE_REF_SCHEME = "lianjian-page:"


def page_ref(action: str, obj: str) -> str:
    """The markdown link target standing for the signed page `action` on `obj` (e.g.
    `page_ref("documents", "case:LJ-2026-001-0001")`)."""
    return f"{PAGE_REF_SCHEME}{action}/{obj}"
