"""Signed H5 links: a token only works for its officer, object, action and time."""

from __future__ import annotations

import base64
import json

import pytest

from core.errors import PermissionDenied
from core.links import EXPIRED, INVALID, MISMATCH, link_url, sign_link, verify_link

SECRET = b"s" * 32
NOW = 1_772_000_000


def token(
    *,
    officer_id: int = 7,
    obj: str = "invitation:12",
    action: str = "respond",
    expires_at: int = NOW + 3600,
) -> str:
    return sign_link(SECRET, officer_id, obj, action, expires_at)


def test_round_trip_returns_the_claims() -> None:
    claims = verify_link(SECRET, token(), NOW, obj="invitation:12", action="respond")
    assert (claims.officer_id, claims.obj, claims.action, claims.expires_at) == (
        7,
        "invitation:12",
        "respond",
        NOW + 3600,
    )


def test_tokens_are_url_safe_and_unique_per_issue() -> None:
    a, b = token(), token()
    assert a != b  # random nonce
    assert set(a) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_expired_token_is_refused_at_the_exact_second() -> None:
    t = token(expires_at=NOW)
    with pytest.raises(PermissionDenied) as err:
        verify_link(SECRET, t, NOW)
    assert str(err.value) == EXPIRED
    verify_link(SECRET, t, NOW - 1)


def test_wrong_object_or_action_is_refused() -> None:
    t = token()
    for kwargs in ({"obj": "invitation:13"}, {"action": "result"}):
        with pytest.raises(PermissionDenied) as err:
            verify_link(SECRET, t, NOW, **kwargs)
        assert str(err.value) == MISMATCH


def _reforge(t: str, **changes: object) -> str:
    payload_b64, mac = t.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    payload.update(changes)
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac


@pytest.mark.parametrize(
    "bad",
    [
        lambda t: _reforge(t, o=8),  # another officer, old MAC
        lambda t: _reforge(t, e=NOW + 10**9),  # extended expiry, old MAC
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),  # flipped MAC
        lambda t: t.split(".")[0],  # MAC removed
        lambda t: t + ".x",
        lambda t: "",
        lambda t: "链接." + t.split(".")[1],
        lambda t: "!!!." + t.split(".")[1],
    ],
)
def test_tampered_token_is_refused(bad) -> None:
    with pytest.raises(PermissionDenied) as err:
        verify_link(SECRET, bad(token()), NOW)
    assert str(err.value) == INVALID


def test_other_secret_is_refused() -> None:
    with pytest.raises(PermissionDenied) as err:
        verify_link(b"t" * 32, token(), NOW)
    assert str(err.value) == INVALID


def test_short_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        sign_link(b"short", 1, "invitation:1", "respond", NOW)


def test_link_url_joins_and_quotes() -> None:
    t = token()
    assert link_url("http://h:8080/", "/h5/invitation", t) == f"http://h:8080/h5/invitation?t={t}"


def test_an_officer_id_beyond_the_database_integer_is_an_invalid_link() -> None:
    """Issue 11 defect 5: a token naming officer 2**63 overflowed the officer query (500)."""
    token = sign_link(SECRET, 2**63, "invitation:1", "respond", 2_000_000_000)
    with pytest.raises(PermissionDenied):
        verify_link(SECRET, token, 1_000_000_000, action="respond")
