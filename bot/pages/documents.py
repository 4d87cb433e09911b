"""The signed documents page (`/h5/documents`) linked from assignments and the `通知书` command:
the list of cases, each document as a printable page or a Word file. handlers/documents.py does
the rest; this module reads the query and answers with the page or the file."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from bot.pages.base import PAGE_HEADERS, respond, static_script
from bot.pages.links import PAGES
from bot.services import Services
from core import access, officers
from core.errors import DomainError
from core.links import verify_link
from handlers.documents import PRINT_SCRIPT_PATH, DocumentRequest, documents_page
from handlers.pages import PageCtx, denied

ACTION = "documents"
# a printable document runs our own print script, nothing else
HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; script-src 'self'",
}
PATH = PAGES[ACTION][0]


class DocumentPages:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def show(self, request: web.Request) -> web.Response:
        q, services = request.query, self.services
        token = q.get("t", "")
        # a write (the notice opened, a denial audited): queued like every writer
        async with services.write_gate(), services.sessionmaker() as session:
            try:
                claims = verify_link(
                    services.link_secret, token, services.clock.now().timestamp(), action=ACTION
                )
                holder = await officers.link_holder(services.core_ctx(session), claims.officer_id)
                page_ctx = PageCtx(
                    session=session,
                    clock=services.clock,
                    rules=services.rules,
                    officer=holder,
                    token=token,
                )
                async with access.denials_on_record(page_ctx.core):
                    doc = await documents_page(
                        page_ctx,
                        DocumentRequest(
                            obj=claims.obj,
                            case=q.get("case", ""),
                            doc=q.get("doc", ""),
                            fmt=q.get("fmt", "html"),
                        ),
                    )
            except DomainError as err:
                await session.commit()  # only a denial's audit is left to keep
                return respond(denied(err, ACTION))
            await session.commit()
        headers = {**HEADERS, "Content-Type": doc.mime}
        if doc.filename:
            mode = "attachment" if doc.filename.endswith(".docx") else "inline"
            headers["Content-Disposition"] = f"{mode}; filename*=UTF-8''{quote(doc.filename)}"
        return web.Response(body=doc.content, headers=headers)


def routes(services: Services) -> list[web.RouteDef]:
    return [web.get(PATH, DocumentPages(services).show), static_script(PRINT_SCRIPT_PATH, HEADERS)]
