"""Text files an office hands the CLI (task, holiday and config files, CSV sheets): decoded as
Chinese Windows saves them, and an Excel or Word file named by mistake told apart."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from core.errors import ValidationFailed, toml_position

# What a wrong file most often is: the spreadsheet or document next to the text file
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "Excel 或 Word 文件（.xlsx / .docx）"),
    (b"\xd0\xcf\x11\xe0", "旧版 Excel 或 Word 文件（.xls / .doc）"),
    (b"%PDF", "PDF 文件"),
)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), else GB18030 (a
    superset of GBK: what Notepad and Excel on Chinese Windows save); UnicodeDecodeError when
    none fits."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def binary_kind(data: bytes) -> str | None:
    """“Excel 或 Word 文件…” when the bytes are such a file rather than text, else None."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text is full of NULs
        return None
    for signature, kind in _BINARY_SIGNATURES:
        if data.startswith(signature):
            return kind
    return "二进制文件" if b"\x00" in data[:4096] else None


def read_text_file(path: Path, what: str, hint: str) -> str:
    """The text of a file the operator named; ValidationFailed (Chinese, naming the file and
    `hint`: what such a file is and how to get one) when it is not text. OSError passes."""
    data = path.read_bytes()
    if (kind := binary_kind(data)) is not None:
        raise ValidationFailed(f"{path.name} 是{kind}，不是{what}。{hint}")
    try:
        return decode_text(data)
    except UnicodeDecodeError:
        raise ValidationFailed(
            f"{what} {path.name} 的文字编码无法识别：请用记事本打开，“另存为”时编码选 UTF-8，再试"
        ) from None


def read_toml_file(path: Path, what: str, hint: str) -> tuple[str, dict[str, Any]]:
    """A TOML file's text and data; a syntax error names where it is and `hint`."""
    text = read_text_file(path, what, hint)
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValidationFailed(
            f"{what} {path.name} {toml_position(err)}不是有效的 TOML。{hint}"
        ) from err
