"""Group chats of departments and of the office (robot webhooks), managed by the office."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from core import department_names
from core.changes import Ctx, Notice, record
from core.errors import ValidationFailed
from core.messages import Destination, OutMessage
from core.models import ChatBinding, ChatPlatform, Department
from core.officers import PLATFORM_LABELS
from core.render import render

PLATFORMS = tuple(p.value for p in ChatPlatform)

# where in the group a robot's address is copied from
_COPIED_FROM = {
    ChatPlatform.WECOM: "企业微信群设置的“消息推送（群机器人）”",
    ChatPlatform.DINGTALK: "钉钉群设置的“机器人”（自定义机器人）",
}


@dataclass(frozen=True)
class RobotAddress:
    """What a platform's group robot address looks like, from its adapter (bot/platforms):
    `prefix` the configured host and the robot path, `credential` the query parameter."""

    prefix: str
    credential: str
    # said after a refusal of the host: how to have another host checked (the CLI read no
    # configuration, so the platform's public host is the one expected)
    advice: str = ""


def masked(url: str) -> str:
    """The webhook URL without its secret query (key / access_token), for lists and audit."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}?…" if parts.query else url


async def bind_chat(
    ctx: Ctx,
    *,
    department_code: str | None,
    platform: str,
    webhook_url: str,
    robot: RobotAddress,
    sign_secret: str = "",
) -> ChatBinding:
    """Bind a robot webhook to a department's chat (or the office's when department_code is
    None). A new binding replaces the enabled one of the same platform for that chat.
    `robot`: the platform's robot address under its configured host (the sender refuses any
    other host: WeCom's webhook_base, DingTalk's oapi_base)."""
    if platform not in PLATFORMS:
        raise ValidationFailed(f"平台须为 {' / '.join(PLATFORMS)}")
    if problem := robot_problem(ChatPlatform(platform), webhook_url, sign_secret, robot):
        raise ValidationFailed(problem)
    department_id = None
    if department_code is not None:  # a code, full or short name, as the importers take
        department = await department_names.find(ctx.session, department_code)
        department_id, department_code = department.id, department.code
    previous = await ctx.session.scalars(
        select(ChatBinding).where(
            ChatBinding.platform == platform,
            ChatBinding.enabled.is_(True),
            ChatBinding.department_id == department_id
            if department_id is not None
            else ChatBinding.is_office.is_(True),
        )
    )
    for old in previous:
        old.enabled, old.disabled_reason = False, "已被新的绑定替换"
    binding = ChatBinding(
        platform=platform,
        department_id=department_id,
        is_office=department_id is None,
        webhook_url=webhook_url,
        sign_secret=sign_secret,
        enabled=True,
    )
    ctx.session.add(binding)
    await ctx.session.flush()
    await record(
        ctx,
        "chat.bound",
        f"chat_binding:{binding.id}",
        {
            "department": department_code or "office",
            "platform": platform,
            "webhook": masked(webhook_url),
            "signed": bool(sign_secret),
        },
    )
    return binding


def robot_problem(
    platform: ChatPlatform, webhook_url: str, sign_secret: str, robot: RobotAddress
) -> str:
    """Why `bind_chat` refuses the address ("" when it takes it): what the robot's settings
    page gives, copied whole, is the address with its scheme, on the platform's robot host
    and path, with its key (WeCom) or access_token (DingTalk), and a DingTalk signing secret
    starting with SEC."""
    address = urlsplit(webhook_url.strip())
    if address.scheme != "https":
        return "机器人 Webhook 地址应以 https:// 开头，请从群机器人设置中完整复制地址"
    if not address.query:
        return "机器人 Webhook 地址不完整（应包含 key 或 access_token 参数）"
    expected, credential, where = robot.prefix, robot.credential, _COPIED_FROM[platform]
    if not webhook_url.strip().startswith(expected + "?"):
        label = PLATFORM_LABELS.get(platform, platform)
        return (
            f"这不是{label}群机器人的地址：应为 {expected}?{credential}=…，"
            f"请从{where}中复制 Webhook 地址（未做任何更改）{robot.advice}"
        )
    if not parse_qs(address.query).get(credential):
        return f"机器人 Webhook 地址不完整（应包含 {credential} 参数），请从{where}中完整复制"
    if sign_secret and platform == ChatPlatform.DINGTALK and not sign_secret.startswith("SEC"):
        return "钉钉机器人的加签密钥以 SEC 开头，请从机器人安全设置的“加签”一项完整复制"
    return ""


async def robot_for(
    ctx: Ctx, platforms: Collection[str], *, department_id: int | None, office: bool = False
) -> ChatBinding | None:
    """The enabled robot webhook of a department's chat (or the office's) on one of
    `platforms`; the oldest binding first."""
    where = (
        ChatBinding.is_office.is_(True) if office else ChatBinding.department_id == department_id
    )
    return await ctx.session.scalar(
        select(ChatBinding)
        .where(
            ChatBinding.enabled.is_(True),
            ChatBinding.webhook_url != "",
            ChatBinding.platform.in_(list(platforms)),
            where,
        )
        .order_by(ChatBinding.id)
        .limit(1)
    )


async def disable_robot(
    ctx: Ctx, binding_id: int, *, code: str, detail: str, outbox_id: int
) -> None:
    """The platform says the robot is gone (outbox row `outbox_id` failed with `code`): stop
    using it (audited) and tell the office. A binding already off is left alone."""
    binding = await ctx.session.get(ChatBinding, binding_id, with_for_update=True)
    if binding is None or not binding.enabled:
        return
    reason = f"{code}: {detail}".strip()
    binding.enabled, binding.disabled_reason = False, reason
    owner = "联席会议办公室"
    if binding.department_id is not None:
        dept = await ctx.session.get(Department, binding.department_id)
        owner = dept.name if dept is not None else owner
    body = render(
        "messages/binding_disabled.md.j2",
        owner=owner,
        code=code,
        detail=detail,
        message_id=outbox_id,
        platform_label=PLATFORM_LABELS.get(ChatPlatform(binding.platform), binding.platform),
    )
    alert = Notice(
        Destination.office(),
        OutMessage.md("群机器人已停用", body),
        key=f"binding-disabled:{binding_id}:{outbox_id}",
    )
    await record(
        ctx,
        "chat_binding.disabled",
        f"chat_binding:{binding_id}",
        {
            "platform": binding.platform,
            "department_id": binding.department_id,
            "is_office": binding.is_office,
            "reason": reason,
            "outbox_id": outbox_id,
        },
        notices=[alert],
    )


async def list_chats(ctx: Ctx) -> list[tuple[ChatBinding, str]]:
    rows = await ctx.session.execute(
        select(ChatBinding, Department.name)
        .outerjoin(Department, Department.id == ChatBinding.department_id)
        .order_by(ChatBinding.id)
    )
    return [(b, name or "联席会议办公室") for b, name in rows]
