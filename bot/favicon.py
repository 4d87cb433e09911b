"""The site icon: browsers ask every host for /favicon.ico, and a 404 there logs a console
error on every page. A 16x16 32-bit ICO is built here from a pixel map (no static file, no CDN)."""

from __future__ import annotations

import struct
from functools import cache

from aiohttp import web

FAVICON_PATH = "/favicon.ico"

# a blue rounded square (the pages' button colour) with a white check mark; top row first
_ART = (
    ".bbbbbbbbbbbbbb.",
    "bbbbbbbbbbbbbbbb",
    "bbbbbbbbbbbbbbbb",
    "bbbbbbbbbbbbwwbb",
    "bbbbbbbbbbbwwwbb",
    "bbbbbbbbbbwwwbbb",
    "bbbbbbbbbwwwbbbb",
    "bbwwbbbbwwwbbbbb",
    "bbwwwbbwwwbbbbbb",
    "bbbwwwwwwbbbbbbb",
    "bbbbwwwwbbbbbbbb",
    "bbbbbwwbbbbbbbbb",
    "bbbbbbbbbbbbbbbb",
    "bbbbbbbbbbbbbbbb",
    "bbbbbbbbbbbbbbbb",
    ".bbbbbbbbbbbbbb.",
)
_BGRA = {"b": b"\xeb\x63\x25\xff", "w": b"\xff\xff\xff\xff", ".": b"\x00\x00\x00\x00"}


@cache
def favicon_ico() -> bytes:
    size = len(_ART)
    pixels = b"".join(_BGRA[c] for row in reversed(_ART) for c in row)  # BMP rows bottom-up
    mask = bytes(4 * size)  # AND mask unused with 32-bit alpha; rows padded to 4 bytes
    header = struct.pack("<IiiHHIIiiII", 40, size, 2 * size, 1, 32, 0, 0, 0, 0, 0, 0)
    image = header + pixels + mask
    directory = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(image), 6 + 16)
    return directory + entry + image


async def favicon(request: web.Request) -> web.Response:
    return web.Response(
        body=favicon_ico(),
        content_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def routes() -> list[web.RouteDef]:
    return [web.get(FAVICON_PATH, favicon)]
