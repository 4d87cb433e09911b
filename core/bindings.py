"""Group chats of departments and of the office (robot webhooks), managed by the office."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from core.changes import Ctx, record
from core.errors import NotFound, ValidationFailed
from core.models import ChatBinding, ChatPlatform, Department

PLATFORMS = tuple(p.value for p in ChatPlatform)


def masked(url: str) -> str:
    """The webhook URL without its secret query (key / access_token), for lists and audit."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}?…" if parts.query else url


async def bind_chat(ctx: Ctx, *, department_code: str | None, platform: str, webhook_url: str,
                    sign_secret: str = "") -> ChatBinding:
    """Bind a robot webhook to a department's chat (or the office's when department_code is
    None). A new binding replaces the enabled one of the same platform for that chat."""
    if platform not in PLATFORMS:
        raise ValidationFailed(f"平台须为 {' / '.join(PLATFORMS)}")
    if urlsplit(webhook_url).scheme not in ("https", "http") or not urlsplit(webhook_url).query:
        raise ValidationFailed("机器人 Webhook 地址不完整（应包含 key 或 access_token 参数）")
    department_id = None
    if department_code is not None:
        department_id = await ctx.session.scalar(
            select(Department.id).where(Department.code == department_code.upper()))
        if department_id is None:
            raise NotFound(f"未找到部门 {department_code}")
    previous = await ctx.session.scalars(select(ChatBinding).where(
        ChatBinding.platform == platform, ChatBinding.enabled.is_(True),
        ChatBinding.department_id == department_id if department_id is not None
        else ChatBinding.is_office.is_(True)))
    for old in previous:
        old.enabled, old.disabled_reason = False, "已被新的绑定替换"
    binding = ChatBinding(platform=platform, department_id=department_id,
                          is_office=department_id is None, webhook_url=webhook_url,
                          sign_secret=sign_secret, enabled=True)
    ctx.session.add(binding)
    await ctx.session.flush()
    await record(ctx, "chat.bound", f"chat_binding:{binding.id}", {
        "department": department_code or "office", "platform": platform,
        "webhook": masked(webhook_url), "signed": bool(sign_secret)})
    return binding


async def list_chats(ctx: Ctx) -> list[tuple[ChatBinding, str]]:
    rows = await ctx.session.execute(select(ChatBinding, Department.name).outerjoin(
        Department, Department.id == ChatBinding.department_id).order_by(ChatBinding.id))
    return [(b, name or "联席会议办公室") for b, name in rows]
