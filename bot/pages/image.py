"""The signed picture page (`/h5/image`): the summary chart DingTalk's markdown shows from our
link (docs/platforms.md d). The link names one picture by its hash, for one officer, and
expires; nothing else is served from it."""

from __future__ import annotations

from aiohttp import web

from bot.pages.base import PAGE_HEADERS, respond
from bot.pages.links import PAGES
from bot.services import Services
from core import images, officers
from core.errors import DomainError, NotFound
from core.links import verify_link
from handlers.pages import denied

ACTION = "image"
PATH = PAGES[ACTION][0]
PREFIX = "image:"


class ImagePage:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def show(self, request: web.Request) -> web.Response:
        services = self.services
        async with services.sessionmaker() as session:  # reads only
            try:
                claims = verify_link(
                    services.link_secret,
                    request.query.get("t", ""),
                    services.clock.now().timestamp(),
                    action=ACTION,
                )
                await officers.link_holder(services.core_ctx(session), claims.officer_id)
                sha = claims.obj.removeprefix(PREFIX)
                data = await images.load(session, sha) if claims.obj.startswith(PREFIX) else None
                if data is None:
                    raise NotFound("图片不存在或已清理。")
            except DomainError as err:
                return respond(denied(err))
        headers = {
            **PAGE_HEADERS,
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Content-Disposition": "inline",
        }
        mime = images.mime_of(data) or "application/octet-stream"
        return web.Response(body=data, content_type=mime, headers=headers)


def routes(services: Services) -> list[web.RouteDef]:
    return [web.get(PATH, ImagePage(services).show)]
