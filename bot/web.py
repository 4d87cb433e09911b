"""Signed-link H5 pages: the invitation answer page that DingTalk action-card buttons open.

The token in the link is the credential: it names the officer, the invitation and the action,
and expires. The page works the same on every platform and in any phone browser.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import yarl
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import Services
from core import tasks
from core.changes import Ctx
from core.clock import CHINA_TZ
from core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from core.links import MISMATCH, link_url, sign_link, verify_link
from core.models import Department, Invitation, Item, JointTask, Officer, TaskItem
from core.render import render
from handlers.cards import InvitationAction, unpack_action

INVITATION_PATH = "/h5/invitation"
RESPOND = "respond"
# Long enough to cover the reply deadline (5 working days can span a week-long holiday);
# an answer after the deadline is refused by the core, not by the link.
INVITATION_LINK_TTL = dt.timedelta(days=14)
MAX_FORM_BYTES = 16 * 1024  # a reason of 2,000 Chinese characters is about 18 KiB url-encoded
MAX_REASON_CHARS = 2000
DB_ID = re.compile(r"[0-9]{1,9}")  # form and link ids: ASCII digits that fit the int column

# The token is in the page URL: keep it out of Referer headers to other sites and out of caches.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
}


def invitation_link(services: Services, officer_id: int, invitation_id: int) -> str:
    """The signed URL of the answer page for this officer and invitation (for card buttons)."""
    expires_at = int((services.clock.now() + INVITATION_LINK_TTL).timestamp())
    token = sign_link(services.link_secret, officer_id, f"invitation:{invitation_id}", RESPOND,
                      expires_at)
    return link_url(services.public_base_url, INVITATION_PATH, token)


def action_link(services: Services, officer_id: int, action_key: str) -> str:
    """A signed page that does what a card button's callback would, for platforms whose
    buttons only open URLs (DingTalk); "" when no page serves that action."""
    try:
        action = unpack_action(action_key)
    except DomainError:
        return ""
    if isinstance(action, InvitationAction):
        return invitation_link(services, officer_id, action.invitation_id)
    return ""


@dataclass
class InvitationView:
    invitation: Invitation
    task: JointTask
    task_items: list[tuple[str, Item]]  # (department name, item), every department's
    own_items: list[Item]  # the invited department's item list, offered as check boxes
    items_in_task: set[int]  # own items already in the task (once accepted)
    responder: str = ""


@dataclass
class FormInput:
    """What the officer typed, echoed back on an error so nothing is lost."""

    action: str = ""
    item_ids: set[int] = field(default_factory=set)
    reason: str = ""


async def load_invitation(session: AsyncSession, invitation_id: int) -> InvitationView:
    invitation = await session.scalar(
        select(Invitation).where(Invitation.id == invitation_id)
        .execution_options(populate_existing=True))
    if invitation is None:
        raise NotFound("邀请不存在或已被撤回。")
    task = await session.get(JointTask, invitation.task_id)
    if task is None:
        raise NotFound("任务不存在。")
    rows = (await session.execute(
        select(Department.name, Item, TaskItem.department_id)
        .join(TaskItem, TaskItem.item_id == Item.id)
        .join(Department, Department.id == TaskItem.department_id)
        .where(TaskItem.task_id == task.id).order_by(Department.id, Item.code))).all()
    own_items = list(await session.scalars(
        select(Item).where(Item.department_id == invitation.department_id).order_by(Item.code)))
    responder = ""
    if invitation.responded_by_id is not None:
        who = await session.get(Officer, invitation.responded_by_id)
        responder = who.name if who is not None else ""
    return InvitationView(
        invitation=invitation, task=task, task_items=[(name, item) for name, item, _ in rows],
        own_items=own_items,
        items_in_task={item.id for _, item, dept in rows if dept == invitation.department_id},
        responder=responder)


def _default_items(view: InvitationView) -> set[int]:
    """Pre-checked boxes: the items already in the task for this department (after an answer),
    else the same default the core applies to a one-tap 接受 — key items, or all without any."""
    if view.items_in_task:
        return set(view.items_in_task)
    key = {i.id for i in view.own_items if i.category == "key"}
    return key or {i.id for i in view.own_items}


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers=PAGE_HEADERS)


def denied_page(err: DomainError) -> web.Response:
    status = 404 if isinstance(err, NotFound) else 403
    return _html(render("web/denied.html", message=err.message), status)


def invitation_page(view: InvitationView, *, token: str, officer_label: str, min_reason: int,
                    form: FormInput | None = None, error: str = "", notice: str = "",
                    status: int = 200) -> web.Response:
    form = form or FormInput(item_ids=_default_items(view))
    responded_at = view.invitation.responded_at
    return _html(render(
        "web/invitation.html", invitation=view.invitation, task=view.task,
        task_items=view.task_items, own_items=view.own_items, responder=view.responder,
        responded_on=responded_at.astimezone(CHINA_TZ).date() if responded_at else None,
        token=token, officer_label=officer_label, min_reason=min_reason,
        form_items=form.item_ids, form_reason=form.reason, error=error, notice=notice), status)


def same_site(request: web.Request, public_base_url: str) -> bool:
    """False when Origin (or, without it, Referer) names another host than ours.

    Absent headers are allowed: some in-app WebViews send neither, and the token itself is the
    credential, so this check only narrows cross-site form posts, it does not authorise.
    """
    origin = request.headers.get("Origin", "")
    source = origin if origin and origin != "null" else request.headers.get("Referer", "")
    if not source:
        return True
    host = yarl.URL(source).host
    ours = {request.url.host, yarl.URL(public_base_url).host}
    return host is not None and host.lower() in {h.lower() for h in ours if h}


def parse_form(post: MultiDictProxy[Any]) -> tuple[str, FormInput]:
    def text(name: str) -> str:
        value = post.get(name, "")
        return value if isinstance(value, str) else ""

    raw_ids = [v for v in post.getall("items", []) if isinstance(v, str)]
    if not all(DB_ID.fullmatch(v) for v in raw_ids):
        # str.isdigit() admits "²" and unbounded digit strings, on which int() raises
        raise web.HTTPBadRequest(text="提交的抽查事项编号无效，请刷新页面后重新勾选提交。",
                                 content_type="text/plain")
    item_ids = {int(v) for v in raw_ids}
    return text("t"), FormInput(action=text("action"), item_ids=item_ids,
                                reason=text("reason").strip()[:MAX_REASON_CHARS])


class InvitationPages:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def authorise(self, session: AsyncSession, token: str) -> tuple[Officer, int]:
        """The officer named by a valid token and the invitation id it is bound to."""
        claims = verify_link(self.services.link_secret, token,
                             self.services.clock.now().timestamp(), action=RESPOND)
        kind, _, ident = claims.obj.partition(":")
        if kind != "invitation" or not DB_ID.fullmatch(ident):
            raise PermissionDenied(MISMATCH)
        officer = await session.get(Officer, claims.officer_id)
        if officer is None or not officer.active:
            raise PermissionDenied("该链接的使用人已停用，请联系管理员。")
        return officer, int(ident)

    async def show(self, request: web.Request) -> web.Response:
        token = request.query.get("t", "")
        async with self.services.sessionmaker() as session:
            try:
                officer, invitation_id = await self.authorise(session, token)
                view = await load_invitation(session, invitation_id)
            except DomainError as err:
                return denied_page(err)
            return invitation_page(view, token=token, officer_label=_label(officer),
                                   min_reason=self.services.rules.decline_reason_min_chars)

    async def submit(self, request: web.Request) -> web.Response:
        if not same_site(request, self.services.public_base_url):
            return denied_page(PermissionDenied("拒绝来自其他网站的提交。"))
        if request.content_length is None:
            raise web.HTTPLengthRequired()
        if request.content_length > MAX_FORM_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_FORM_BYTES, request.content_length)
        if request.content_type != "application/x-www-form-urlencoded":
            raise web.HTTPUnsupportedMediaType()
        token, form = parse_form(await request.post())
        async with self.services.sessionmaker() as session:
            try:
                officer, invitation_id = await self.authorise(session, token)
            except DomainError as err:
                return denied_page(err)
            label = _label(officer)  # read now: a rollback below expires the loaded rows
            error, notice = await self.answer(session, officer, invitation_id, form)
            try:
                view = await load_invitation(session, invitation_id)
            except DomainError as err:
                return denied_page(err)
            return invitation_page(view, token=token, officer_label=label, form=form,
                                   min_reason=self.services.rules.decline_reason_min_chars,
                                   error=error, notice=notice, status=422 if error else 200)

    async def answer(self, session: AsyncSession, officer: Officer, invitation_id: int,
                     form: FormInput) -> tuple[str, str]:
        """Apply the answer in one transaction; (error, notice), one of them empty."""
        ctx = Ctx(session=session, clock=self.services.clock, actor=officer,
                  rules=self.services.rules)
        try:
            if form.action == "accept":
                if not form.item_ids:
                    raise ValidationFailed("请至少勾选一项本部门的抽查事项；如不参加，请填写理由后拒绝。")
                await tasks.accept_invitation(ctx, invitation_id, sorted(form.item_ids))
                notice = "已记录：本部门接受该联合抽查任务，将通知发起部门。"
            elif form.action == "decline":
                await tasks.decline_invitation(ctx, invitation_id, form.reason)
                notice = "已记录：本部门拒绝该任务，书面理由将转告发起部门。"
            else:
                raise ValidationFailed("请选择接受或拒绝。")
            await session.commit()
        except DomainError as err:
            await session.rollback()
            if isinstance(err, PermissionDenied) and err.action:
                # the refusal stays on record even though the answer itself was rolled back;
                # the rollback expired the officer row, so load it again before auditing
                await session.refresh(officer)
                await tasks.record_denied(ctx, err.action, err.subject, err.message)
                await session.commit()
            return err.message, ""
        return "", notice


def _label(officer: Officer) -> str:
    return f"{officer.name}（{officer.department.name}）"


def routes(services: Services) -> list[web.RouteDef]:
    pages = InvitationPages(services)
    return [web.get(INVITATION_PATH, pages.show), web.post(INVITATION_PATH, pages.submit)]
