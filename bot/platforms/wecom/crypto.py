"""WeCom callback crypto (加解密方案: SHA-1 signature, AES-256-CBC) and safe XML parsing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.platforms.base import (
    CallbackRejected,
    check_window,
)


def aes_key_from(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key: Base64 of the 43-character EncodingAESKey plus one '='."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("EncodingAESKey is not Base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def aes_key_problem(encoding_aes_key: Any) -> str | None:
    """What is wrong with a configured EncodingAESKey, in Chinese (None: nothing, or unset)."""
    if not isinstance(encoding_aes_key, str) or not encoding_aes_key:
        return None
    if len(encoding_aes_key) != 43:
        return f"encoding_aes_key 应为 43 个字符（现为 {len(encoding_aes_key)} 个）"
    try:
        aes_key_from(encoding_aes_key)
    except ValueError:
        return "encoding_aes_key 应只含字母和数字：请从管理后台重新复制"
    return None


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

    def check_query(
        self, query: Mapping[str, str], encrypted: str, now_s: float, window_s: int
    ) -> None:
        """A callback's msg_signature over (token, timestamp, nonce, encrypted), then its
        timestamp within the replay window; the app callback and the AI bot share it."""
        signature, timestamp, nonce = (
            query.get(k, "") for k in ("msg_signature", "timestamp", "nonce")
        )
        if not (signature and timestamp and nonce):
            raise CallbackRejected(400, "missing msg_signature, timestamp or nonce")
        self.check_signature(signature, timestamp, nonce, encrypted)
        if not (timestamp.isascii() and timestamp.isdigit()):  # int() takes "²" or " 5"
            raise CallbackRejected(400, "timestamp is not an integer")
        check_window(int(timestamp), now_s, window_s)

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
