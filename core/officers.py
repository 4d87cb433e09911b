"""Officers: their accounts on the chat platforms (bound by the office's admin or by the
inspector import) and the look-ups the bot makes by account, leaving (离岗, 调离), and declared
conflicts of interest (利害关系)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import joinedload, raiseload

from core.cases import OPEN_FOR_ENTRY
from core.changes import Ctx, Notice, record
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.jointtask import answerers
from core.messages import Destination, OutMessage, Platform
from core.models import (
    Case,
    ChatPlatform,
    GroupMember,
    JointTask,
    Officer,
    OfficerConflict,
    PlatformAccount,
    Target,
)
from core.models.county import CONFLICT_REASON_CHARS
from core.rules import written_reason
from core.uscc import validate_uscc

# Case states in which the group still has work to do: a member who left must be replaced

PLATFORM_LABELS = {ChatPlatform.WECOM: "企业微信", ChatPlatform.DINGTALK: "钉钉"}
# What an admin may type for a platform: its name, the government edition's, or the enum value.
PLATFORM_WORDS = {
    **{p.value: p for p in ChatPlatform},
    "企业微信": ChatPlatform.WECOM,
    "政务微信": ChatPlatform.WECOM,
    "钉钉": ChatPlatform.DINGTALK,
    "浙政钉": ChatPlatform.DINGTALK,
}
DEFAULT_TENANT = ""  # the deployment's configured organisation on each platform


def cert_key(cert_no: str) -> str:
    """An 执法证号 as stored and compared: no spaces, half-width, upper case."""
    return "".join(unicodedata.normalize("NFKC", cert_no).split()).upper()


def shared_certificates(officers: Iterable[Officer]) -> dict[str, list[Officer]]:
    """执法证号 held by more than one active officer (one certificate is one person): the import
    refuses new ones; data from before that check may still have them."""
    holders: dict[str, list[Officer]] = {}
    for officer in officers:
        if officer.active and (key := cert_key(officer.cert_no)):
            holders.setdefault(key, []).append(officer)
    return {key: held for key, held in holders.items() if len(held) > 1}


async def bind_account(ctx: Ctx, officer_code: str, platform_word: str, user_id: str) -> Officer:
    """Admin binds `user_id` on a platform to an officer; an account serves one officer only."""
    _admin_only(
        ctx,
        "只有联席会议办公室管理员可以绑定账号",
        "officer.bind.denied",
        f"officer:{officer_code}",
    )
    platform = platform_named(platform_word)
    user_id = user_id.strip()
    if not user_id or len(user_id) > 64:
        raise ValidationFailed("账号不能为空，且不超过 64 个字符")
    officer = await officer_by_code(ctx, officer_code)
    holder = await account_holder(ctx, platform, user_id)
    if holder is not None and holder.id != officer.id:
        raise ValidationFailed(
            f"该账号已绑定到 {holder.name}（{holder.code}）。如绑定有误，请先发送"
            f"“解绑 {holder.code} {platform_word.strip()}”，再重新绑定"
        )
    previous = set_account(officer, platform, user_id)
    await record(
        ctx,
        "officer.account_bound",
        f"officer:{officer.code}",
        {"platform": platform.value, "user_id": user_id, "previous": previous},
    )
    return officer


async def unbind_account(ctx: Ctx, officer_code: str, platform_word: str) -> tuple[Officer, str]:
    """Admin removes an officer's account on a platform (bound to the wrong person, or the
    person changed accounts); the account removed, "" if none was bound. The account then
    speaks as nobody until it is bound again."""
    _admin_only(
        ctx,
        "只有联席会议办公室管理员可以解绑账号",
        "officer.unbind.denied",
        f"officer:{officer_code}",
    )
    platform = platform_named(platform_word)
    officer = await officer_by_code(ctx, officer_code)
    bound = next(
        (a for a in officer.accounts if a.platform == platform and a.tenant == DEFAULT_TENANT),
        None,
    )
    if bound is None:
        return officer, ""
    officer.accounts.remove(bound)
    await record(
        ctx,
        "officer.account_unbound",
        f"officer:{officer.code}",
        {"platform": platform.value, "user_id": bound.account},
    )
    return officer, bound.account


def platform_named(word: str) -> ChatPlatform:
    """The platform an admin names (企业微信, 政务微信, 钉钉, 浙政钉, or its code)."""
    platform = PLATFORM_WORDS.get(word.strip().lower())
    if platform is None:
        raise ValidationFailed(f"不认识的平台“{word}”，请写 企业微信 或 钉钉")
    return platform


# Whose accounts each way in knows its users by: the WeCom AI bot's senders are the corp's WeCom
# user ids. The simulator has none (its "accounts" are officer codes).
ACCOUNTS_OF: dict[str, ChatPlatform] = {
    Platform.WECOM: ChatPlatform.WECOM,
    Platform.WECOM_AIBOT: ChatPlatform.WECOM,
    Platform.DINGTALK: ChatPlatform.DINGTALK,
}


def account_platform(platform: str) -> ChatPlatform | None:
    """Whose accounts a messaging platform's users are."""
    return ACCOUNTS_OF.get(platform)


def set_account(
    officer: Officer, platform: ChatPlatform, account: str, tenant: str = DEFAULT_TENANT
) -> str | None:
    """Bind (or re-bind) the officer's account on a platform and tenant; the previous one."""
    for bound in officer.accounts:
        if bound.platform == platform and bound.tenant == tenant:
            previous, bound.account = bound.account, account
            return previous
    officer.accounts.append(
        PlatformAccount(platform=platform.value, tenant=tenant, account=account)
    )
    return None


async def account_holder(
    ctx: Ctx,
    platform: ChatPlatform,
    account: str,
    tenant: str = DEFAULT_TENANT,
    *,
    lock: bool = False,
    skip_locked: bool = False,
) -> Officer | None:
    """Whoever holds the account, active or not, with their accounts, in one statement; with
    `lock` on PostgreSQL, their row locked as `lock_officer` does (`skip_locked`: None at once
    when another transaction holds it)."""
    return await _one_officer(
        ctx,
        select(Officer)
        .join(PlatformAccount)
        .where(
            PlatformAccount.platform == platform.value,
            PlatformAccount.tenant == tenant,
            PlatformAccount.account == account,
        ),
        lock=lock,
        skip_locked=skip_locked,
    )


async def _one_officer(
    ctx: Ctx, query: Select[Officer], *, lock: bool, skip_locked: bool = False
) -> Officer | None:
    """The officer `query` finds, their accounts loaded by the same statement (a join, not a
    second query); `lock`: FOR UPDATE of the officer's row on PostgreSQL (`skip_locked`: not
    found while another transaction holds it)."""
    query = query.options(joinedload(Officer.accounts))
    if lock and _is_postgres(ctx):
        query = query.with_for_update(of=Officer, skip_locked=skip_locked)
    return (await ctx.session.scalars(query)).unique().first()


def _is_postgres(ctx: Ctx) -> bool:
    bind = ctx.session.bind
    return bind is not None and bind.dialect.name == "postgresql"


async def first_account(
    ctx: Ctx, officer_id: int, platforms: Iterable[Platform]
) -> tuple[Platform, str] | None:
    """Where a direct message to the officer goes: the first of `platforms` (those the
    deployment runs) on whose accounts they have one, and that account. Platforms go in
    ChatPlatform order, each one's own app before its other ways in (the WeCom AI bot reaches
    a person only over its long connection)."""
    return (await first_accounts(ctx, [officer_id], platforms))[officer_id]


async def first_accounts(
    ctx: Ctx, officer_ids: Iterable[int], platforms: Iterable[Platform]
) -> dict[int, tuple[Platform, str] | None]:
    """`first_account` of each officer in one look-up (the sender's batch of rows)."""
    ids = set(officer_ids)
    rows = await ctx.session.execute(
        select(PlatformAccount.officer_id, PlatformAccount.platform, PlatformAccount.account).where(
            PlatformAccount.officer_id.in_(ids), PlatformAccount.tenant == DEFAULT_TENANT
        )
    )
    bound: dict[int, dict[ChatPlatform, str]] = {officer: {} for officer in ids}
    for officer, platform, account in rows:
        bound[officer][ChatPlatform(platform)] = account
    order, names = list(ChatPlatform), list(platforms)

    def first(accounts: dict[ChatPlatform, str]) -> tuple[Platform, str] | None:
        usable = [
            (order.index(p), name != p.value, name, accounts[p])
            for name in names
            if (p := account_platform(name)) is not None and p in accounts
        ]
        return min(usable)[2:] if usable else None

    return {officer: first(accounts) for officer, accounts in bound.items()}


async def accounts_on(ctx: Ctx, platform: str, officer_ids: Iterable[int]) -> list[str]:
    """The accounts of these officers that a platform knows them by (to @mention them)."""
    account_kind = account_platform(platform)
    if account_kind is None:
        return []
    return list(
        await ctx.session.scalars(
            select(PlatformAccount.account).where(
                PlatformAccount.platform == account_kind.value,
                PlatformAccount.tenant == DEFAULT_TENANT,
                PlatformAccount.officer_id.in_(list(officer_ids)),
            )
        )
    )


_NO_ACCOUNTS = [raiseload(Officer.accounts)]  # built once: every page asks
# `named`'s look-up, built once: Session.get builds its statement (and cache key) on every call
_NAMED = select(Officer).where(Officer.id == bindparam("officer_id")).options(*_NO_ACCOUNTS)


async def named(ctx: Ctx, officer_id: int) -> Officer | None:
    """The officer with this id, active or not, without the platform accounts no page uses
    (a second query)."""
    return await ctx.session.scalar(_NAMED, {"officer_id": officer_id})


async def link_holder(ctx: Ctx, officer_id: int) -> Officer:
    """The officer a signed link names, while still active: a deactivated officer's links die.
    (The page has read them with `named`: the session's copy, no second look-up.)"""
    officer = await ctx.session.get(Officer, officer_id, options=_NO_ACCOUNTS)
    if officer is None or not officer.active:
        raise PermissionDenied("该链接的使用人已停用，请联系管理员。")
    return officer


async def holder(
    ctx: Ctx, platform: str, user_id: str, *, lock: bool = False, skip_locked: bool = False
) -> Officer | None:
    """The officer behind a platform user id (in the simulator: the officer code), active or
    not; `lock`, `skip_locked` as `by_account`."""
    account_kind = account_platform(platform)
    if not user_id:
        return None
    if platform == Platform.SIM:
        return await _one_officer(
            ctx, select(Officer).where(Officer.code == user_id), lock=lock, skip_locked=skip_locked
        )
    if account_kind is not None:
        return await account_holder(ctx, account_kind, user_id, lock=lock, skip_locked=skip_locked)
    return None


async def by_account(
    ctx: Ctx, platform: str, user_id: str, *, lock: bool = False, skip_locked: bool = False
) -> Officer | None:
    """The active officer behind a platform user id (in the simulator: the officer code).
    With `lock`, the officer's events are serialised from here to the end of the transaction
    (`lock_officer`; on PostgreSQL taken by the look-up itself). `skip_locked` (PostgreSQL):
    None rather than waiting while another transaction holds the officer."""
    officer = await holder(ctx, platform, user_id, lock=lock, skip_locked=skip_locked)
    if officer is None or not officer.active:
        return None
    if lock and not _is_postgres(ctx):
        await lock_officer(ctx, officer)
    return officer


async def any_officers(ctx: Ctx) -> bool:
    return await ctx.session.scalar(select(Officer.id).limit(1)) is not None


async def by_code(ctx: Ctx, code: str) -> Officer | None:
    return await ctx.session.scalar(select(Officer).where(Officer.code == code))


async def roster(ctx: Ctx) -> list[Officer]:
    """Every officer, active or not, by department then code."""
    return list(
        await ctx.session.scalars(select(Officer).order_by(Officer.department_id, Officer.code))
    )


async def lock_officer(ctx: Ctx, officer: Officer) -> None:
    """Serialise one officer's events across processes (aiogram #1317: steps interleaving).

    PostgreSQL: a row lock held to the end of the caller's transaction. SQLite: a no-op UPDATE
    takes the database write lock now — which also opens the transaction before the handler's
    SAVEPOINT, so releasing that savepoint can never commit the caller's work early. Both hold
    to the end of the transaction: a transaction that already took SQLite's lock (several
    events handled together) does not take it again.
    """
    session = ctx.session
    assert session.bind is not None
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(Officer.id).where(Officer.id == officer.id).with_for_update())
        return
    transaction = session.sync_session.get_transaction()
    if transaction is not None and session.info.get(_WRITE_LOCKED) is transaction:
        return
    await session.execute(
        update(Officer)
        .where(Officer.id == officer.id)
        .values(id=Officer.id)
        .execution_options(synchronize_session=False)
    )
    session.info[_WRITE_LOCKED] = session.sync_session.get_transaction()


_WRITE_LOCKED = "lianjian.sqlite_write_locked"  # session.info: the transaction holding it


def _admin_only(ctx: Ctx, why: str, action: str, subject: str) -> None:
    if ctx.actor is not None and not ctx.actor.has_role("admin"):
        raise PermissionDenied(why, action=action, subject=subject)


async def officer_by_code(ctx: Ctx, code: str) -> Officer:
    officer = await ctx.session.scalar(select(Officer).where(Officer.code == code.strip().upper()))
    if officer is None:
        raise NotFound(f"未找到人员编号 {code}")
    return officer


async def open_cases(ctx: Ctx, officer_id: int) -> list[Case]:
    """Cases whose group still counts on this officer (to be replaced when they leave)."""
    return list(
        await ctx.session.scalars(
            select(Case)
            .join(GroupMember, GroupMember.case_id == Case.id)
            .where(
                GroupMember.officer_id == officer_id,
                GroupMember.active.is_(True),
                Case.state.in_(OPEN_FOR_ENTRY),
            )
            .order_by(Case.code)
        )
    )


async def liaisons(ctx: Ctx, department_id: int) -> list[Officer]:
    """The department's active liaisons, by code: whom its officers ask about their own
    standing. Read as `answerers` reads them (the same statement; a caller needing both calls
    `answerers` once and filters)."""
    found = await answerers(ctx, department_id)
    return sorted((o for o in found if o.has_role("liaison")), key=lambda o: o.code)


async def left_officers_notes(ctx: Ctx, officers: Sequence[Officer]) -> list[str]:
    """One Chinese line per officer who left and still has open cases to hand over."""
    notes = []
    for officer in officers:
        if cases := await open_cases(ctx, officer.id):
            notes.append(
                f"{officer.name}（{officer.code}）已{officer.inactive_reason or '离岗'}，"
                f"以下案件需更换检查人员：{'、'.join(c.code for c in cases)}"
            )
    return notes


async def deactivate(ctx: Ctx, officer_code: str, reason: str) -> tuple[Officer, list[Case]]:
    """The admin marks an officer as gone (离岗, 调离…): never deleted, never drawn again.

    The lead department of every task with an open case of theirs is told which cases need a
    replacement (001 第十四条: a changed post is replaced by an approved 更换, not redrawn).
    """
    _admin_only(
        ctx,
        "只有联席会议办公室管理员可以办理人员离岗",
        "officer.deactivate.denied",
        f"officer:{officer_code}",
    )
    reason = reason.strip() or "离岗"
    if len(reason) > 100:
        raise ValidationFailed("离岗原因不超过 100 个字")
    officer = await officer_by_code(ctx, officer_code)
    if not officer.active:
        raise ValidationFailed(
            f"{officer.name}（{officer.code}）已是离岗状态（{officer.inactive_reason}）"
        )
    officer.active, officer.inactive_reason = False, reason
    cases = await open_cases(ctx, officer.id)
    notices = []
    for task_id in dict.fromkeys(c.task_id for c in cases):
        task = await ctx.session.get(JointTask, task_id)
        assert task is not None  # foreign key
        codes = "、".join(c.code for c in cases if c.task_id == task_id)
        notices.append(
            Notice(
                Destination.department(task.lead_department_id),
                OutMessage.md(
                    "检查人员离岗，需更换",
                    f"{officer.department.name}的{officer.name}（{officer.code}）"
                    f"已{reason}，不再参加检查。任务 {task.code} "
                    f"中以下案件需按更换程序指定替换人员：{codes}",
                ),
            )
        )
    await record(
        ctx,
        "officer.deactivated",
        f"officer:{officer.code}",
        {"reason": reason, "open_cases": [c.code for c in cases]},
        notices,
    )
    return officer, cases


async def declare_conflict(ctx: Ctx, officer: Officer, target_code: str, reason: str) -> Target:
    """An officer declares a conflict of interest (利害关系) with a target: never matched to it
    (000 §八: an inspector with an interest in the target withdraws)."""
    example = "例如：本人配偶在该企业任职"
    reason = written_reason(
        reason,
        "利害关系说明",
        f"请写明利害关系，{example}",
        min_chars=ctx.rules.recusal_reason_min_chars,
        missing=f"请写明利害关系，{example}",
        max_chars=CONFLICT_REASON_CHARS,
    )
    check = validate_uscc(target_code)
    if not check.ok:
        raise ValidationFailed(check.reason)
    target = await ctx.session.scalar(select(Target).where(Target.uscc == check.code))
    if target is None:
        raise NotFound(f"检查对象名录库中没有统一社会信用代码 {check.code}")
    await register_conflict(ctx, officer, target, reason)
    return target


async def register_conflict(
    ctx: Ctx, officer: Officer, target: Target, reason: str, *, case_code: str = ""
) -> None:
    """The officer's conflict of interest with the target, its reason (at most
    CONFLICT_REASON_CHARS, checked by the caller) replacing an earlier one: declared, or an
    approved 回避 of case `case_code` (000 §八), so the officer is never matched to the target
    again."""
    existing = await ctx.session.scalar(
        select(OfficerConflict).where(
            OfficerConflict.officer_id == officer.id, OfficerConflict.target_id == target.id
        )
    )
    if existing is None:
        ctx.session.add(OfficerConflict(officer_id=officer.id, target_id=target.id, reason=reason))
    else:
        existing.reason = reason
    await record(
        ctx,
        "officer.conflict_declared",
        f"officer:{officer.code}",
        {"target": target.uscc, "reason": reason} | ({"case": case_code} if case_code else {}),
    )
