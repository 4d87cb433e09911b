"""Officer identity: binding platform accounts to officers (by the office's admin)."""

from __future__ import annotations

from sqlalchemy import select

from core.changes import Ctx, record
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.models import Officer

PLATFORM_WORDS = {"企业微信": "wecom", "政务微信": "wecom", "wecom": "wecom",
                  "钉钉": "dingtalk", "浙政钉": "dingtalk", "dingtalk": "dingtalk"}
_COLUMN = {"wecom": Officer.wecom_userid, "dingtalk": Officer.dingtalk_userid}


async def bind_account(ctx: Ctx, officer_code: str, platform_word: str, user_id: str) -> Officer:
    """Admin binds `user_id` on a platform to an officer; an account serves one officer only."""
    if ctx.actor is not None and not ctx.actor.has_role("admin"):
        raise PermissionDenied("只有联席会议办公室管理员可以绑定账号", action="officer.bind.denied",
                               subject=f"officer:{officer_code}")
    platform = PLATFORM_WORDS.get(platform_word.strip().lower())
    if platform is None:
        raise ValidationFailed(f"不认识的平台“{platform_word}”，请写 企业微信 或 钉钉")
    user_id = user_id.strip()
    if not user_id or len(user_id) > 64:
        raise ValidationFailed("账号不能为空，且不超过 64 个字符")
    officer = await ctx.session.scalar(select(Officer).where(Officer.code == officer_code.upper()))
    if officer is None:
        raise NotFound(f"未找到人员编号 {officer_code}")
    holder = await ctx.session.scalar(select(Officer).where(_COLUMN[platform] == user_id))
    if holder is not None and holder.id != officer.id:
        raise ValidationFailed(f"该账号已绑定到 {holder.name}（{holder.code}），请先核实")
    previous = getattr(officer, f"{platform}_userid")
    setattr(officer, f"{platform}_userid", user_id)
    await record(ctx, "officer.account_bound", f"officer:{officer.code}",
                 {"platform": platform, "user_id": user_id, "previous": previous})
    return officer
