"""Officer identity: binding platform accounts to officers (by the office's admin)."""

from __future__ import annotations

from sqlalchemy import select, update

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


async def link_holder(ctx: Ctx, officer_id: int) -> Officer:
    """The officer a signed link names, while still active: a deactivated officer's links die."""
    officer = await ctx.session.get(Officer, officer_id)
    if officer is None or not officer.active:
        raise PermissionDenied("该链接的使用人已停用，请联系管理员。")
    return officer


async def by_account(ctx: Ctx, platform: str, user_id: str) -> Officer | None:
    """The active officer behind a platform user id (in the simulator: the officer code)."""
    if not user_id:
        return None
    column = Officer.code if platform == "sim" else _COLUMN[platform]
    return await ctx.session.scalar(
        select(Officer).where(column == user_id, Officer.active.is_(True)))


async def any_officers(ctx: Ctx) -> bool:
    return await ctx.session.scalar(select(Officer.id).limit(1)) is not None


async def by_code(ctx: Ctx, code: str) -> Officer | None:
    return await ctx.session.scalar(select(Officer).where(Officer.code == code))


async def roster(ctx: Ctx) -> list[Officer]:
    """Every officer, active or not, by department then code."""
    return list(await ctx.session.scalars(select(Officer).order_by(Officer.department_id,
                                                                   Officer.code)))


async def lock_officer(ctx: Ctx, officer: Officer) -> None:
    """Serialise one officer's events across processes (aiogram #1317: steps interleaving).

    PostgreSQL: a row lock held to the end of the caller's transaction. SQLite: a no-op UPDATE
    takes the database write lock now — which also opens the transaction before the handler's
    SAVEPOINT, so releasing that savepoint can never commit the caller's work early.
    """
    session = ctx.session
    assert session.bind is not None
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(Officer.id).where(Officer.id == officer.id).with_for_update())
    else:
        await session.execute(update(Officer).where(Officer.id == officer.id)
                              .values(id=Officer.id).execution_options(synchronize_session=False))
