"""Fast paths of a long-connection frame's intake give what the slow ones gave: inbound_json
without its walk (and through pydantic-core's parser, not json.loads) when the text cannot hold
a lone surrogate or NUL, and the AI bot's
conversation address without quoting values that need none."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.platforms.base import _encodable, inbound_json
from bot.platforms.wecom_aibot import address_parts, conversation_address
from core.messages import encodable_text

# every code point, lone surrogates and NUL included, and the escapes that make them
TEXT = st.text(st.characters(exclude_categories=())) | st.sampled_from(
    ["\ud800", "\udfff", "\x00", "a\\ud800", "\U0001f600", "中文", "\\", "\\u0000"]
)
JSONISH: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def clean(value: Any) -> bool:
    """No lone surrogate and no NUL anywhere in `value`."""
    if isinstance(value, str):
        return "\x00" not in value and value.encode("utf-8", "strict") is not None
    if isinstance(value, list):
        return all(clean(v) for v in value)
    if isinstance(value, dict):
        return all(clean(k) and clean(v) for k, v in value.items())
    return True


def encodes(value: Any) -> bool:
    try:
        return clean(value)
    except UnicodeEncodeError:
        return False


@settings(max_examples=400, deadline=None)
@given(JSONISH, st.booleans())
def test_fast_path_gives_what_the_walk_gives(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    parsed = inbound_json(text)
    assert parsed == _encodable(json.loads(text))
    assert encodes(parsed)


def test_escaped_lone_surrogates_and_nul_are_cleaned_on_the_fast_path_too() -> None:
    assert inbound_json('{"k\\ud800": "a\\u0000b\\uDFFF"}') == {"k?": "ab?"}
    assert inbound_json('{"a": "\ud800"}') == {"a": "?"}  # the character itself, not escaped
    assert inbound_json('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}  # a valid pair stays
    assert inbound_json('{"a": "\\\\ud800"}') == {"a": "\\ud800"}  # an escaped backslash: text


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from("mucrqtk"),
        st.text()
        | st.sampled_from(["a b", "x&y=z", "~._-", "中文", "https://h/p?q=1"])
        | st.integers(min_value=0),
    )
)
def test_conversation_address_is_what_urlencode_writes(parts: dict[str, str | int]) -> None:
    """The AI bot's conversation address skips quoting values that need none; the text is
    still urlencode's, so addresses already stored read back the same."""
    expected = "?" + urlencode({k: str(v) for k, v in parts.items() if v})
    assert conversation_address(**parts) == expected
    assert address_parts(conversation_address(**parts)) == dict(parse_qsl(expected.lstrip("?")))


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_encodable_text_fast_path_gives_what_the_round_trip_gives(value: str) -> None:
    """ASCII text skips the encode round trip; NUL still goes, nothing else changes."""
    assert encodable_text(value) == value.encode("utf-8", "replace").decode().replace("\x00", "")
    assert encodable_text("a\x00b") == "ab"
