"""Result attachments (现场照片, PDF documents): checked by content, stored by content hash.

A file's type is what its bytes are, never what its name says: images must open, verify and
decode whole with Pillow as JPEG, PNG or WebP within a pixel limit (no decompression bombs;
the header's size is checked before anything is decoded), PDFs must start
with the PDF header and end with its end-of-file marker. Accepted files are stored once under
`<dir>/<sha256[:2]>/<sha256>` (written to a temporary name and renamed, so a reader never sees
half a file); the database keeps which result version carries which file under which name.
Attachments are shown to the group and the reviewers only, never on public pages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from PIL import Image, UnidentifiedImageError

from core.errors import ValidationFailed
from core.models import Attachment

IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PDF = "application/pdf"
FIELD = "attachments"
MAX_NAME_CHARS = 100


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_files: int
    max_image_pixels: int


@dataclass(frozen=True)
class Upload:
    """A file as posted: its name on the officer's phone, its bytes (empty when it was over
    the size limit and not kept) and its real size."""

    name: str
    data: bytes
    size: int


@dataclass(frozen=True)
class Stored:
    sha256: str
    name: str
    mime: str
    size: int


def attachment_row(
    result_id: int, f: Stored | Attachment, uploaded_by_id: int, uploaded_at: dt.datetime
) -> Attachment:
    """A result version's row for a file kept once under the data directory by its hash: one
    uploaded now (`Stored`) or one an earlier version had (`Attachment`)."""
    return Attachment(
        result_id=result_id,
        sha256=f.sha256,
        name=f.name,
        mime=f.mime,
        size=f.size,
        uploaded_by_id=uploaded_by_id,
        uploaded_at=uploaded_at,
    )


def clean_name(name: str) -> str:
    """The file's own name, without any path, control characters or excess length. Some
    clients percent-encode non-ASCII names in multipart (aiohttp does); browsers send UTF-8."""
    base = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[-MAX_NAME_CHARS:] or "附件"


def sniff(data: bytes, limits: Limits) -> str:
    """The MIME type the content proves, or ValidationFailed saying what is accepted."""
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise ValidationFailed("PDF 文件不完整，请重新导出后上传", field=FIELD)
        return PDF
    not_valid = ValidationFailed(
        "只能上传照片（JPG、PNG、WebP）或 PDF 文件，该文件内容不是有效的图片或 PDF", field=FIELD
    )
    size = _header_size(data)
    if size is not None and size[0] * size[1] > limits.max_image_pixels:
        raise _too_large(size, limits)
    try:
        with warnings.catch_warnings():
            # our own limit above decides; Pillow's warning, from half its refusal up, would
            # only be logged
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                img.verify()
            if fmt not in IMAGE_FORMATS:
                raise ValidationFailed(
                    f"不支持的图片格式 {fmt}，请上传 JPG、PNG 或 WebP", field=FIELD
                )
            # verify() reads no JPEG data and so passes a photo cut off in transfer; only a
            # full decode (already known to be within the pixel limit) finds the missing end
            with Image.open(io.BytesIO(data)) as img:
                img.load()
    except Image.DecompressionBombError:  # over Pillow's own limit, which ours may exceed
        raise _too_large(size, limits) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise not_valid from None
    return IMAGE_FORMATS[fmt]


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height as an accepted format's header states them, read by Pillow's own
    format reader without decoding and without its bomb refusal (which would hide the size);
    None when no accepted format reads it."""
    Image.init()
    for fmt in IMAGE_FORMATS:
        factory, accept = Image.OPEN[fmt]
        if accept is not None and not accept(data[:16]):
            continue
        try:
            with factory(io.BytesIO(data), "") as img:
                width, height = img.size
                return width, height
        except (OSError, SyntaxError, ValueError, EOFError):
            continue
    return None


def _too_large(size: tuple[int, int] | None, limits: Limits) -> ValidationFailed:
    stated = f"{size[0]}×{size[1]}，" if size else ""
    return ValidationFailed(
        f"图片像素过大（{stated}最多 {_pixels(limits.max_image_pixels)}像素），请缩小后上传",
        field=FIELD,
    )


def _pixels(n: int) -> str:
    """A pixel count as a person says it: 5000 万."""
    return f"{n // 10_000} 万" if n % 10_000 == 0 else f"{n:,} "


def check(upload: Upload, limits: Limits) -> Stored:
    """Size and content checks of one upload; the Stored record it will become."""
    name = clean_name(upload.name)
    if upload.size > limits.max_file_bytes or len(upload.data) != upload.size:
        raise ValidationFailed(
            f"文件“{name}”超过 {limits.max_file_bytes / 1048576:.1f} MB，请压缩后上传", field=FIELD
        )
    try:
        mime = sniff(upload.data, limits)
    except ValidationFailed as err:
        raise ValidationFailed(f"文件“{name}”：{err.message}", field=FIELD) from None
    return Stored(hashlib.sha256(upload.data).hexdigest(), name, mime, len(upload.data))


class FileStore:
    """Content-addressed files under one directory (the deployment's data directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        final = self.path(sha)
        if final.exists():
            return sha  # same content, same name: nothing to write
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f"{sha}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, final)
        return sha

    def has(self, sha256: str) -> bool:
        try:
            return self.path(sha256).is_file()
        except ValueError:
            return False

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()
