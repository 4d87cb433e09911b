"""Web pages the bot serves besides platform callbacks and the simulator.

One module per page: it parses the HTTP request into the handler's typed input and names the
handler (handlers/), which calls core and renders the template; `base.SignedPages` verifies
the signed link and runs the handler in one transaction.
"""

from __future__ import annotations

from aiohttp import web

from bot.pages import documents, image, invitation, public, result, review
from bot.services import Services


def routes(services: Services) -> list[web.RouteDef]:
    return (
        invitation.routes(services)
        + documents.routes(services)
        + result.routes(services)
        + review.routes(services)
        + public.routes(services)
        + image.routes(services)
    )
